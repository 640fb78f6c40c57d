// Cluster-wide coordination of disruptive repairs: the optional coordination identity and the Lease
// semaphore that bounds how many nodes are disrupted at once. Why the defaults: docs/fleet.md.
export const fleetSections = {} as const;
