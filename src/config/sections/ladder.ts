// The disruptive repair ladder (cordon, drain, reboot, uncordon): per condition, disabled until
// configured. Why the defaults: docs/ladder.md.
export const ladderSections = {} as const;
