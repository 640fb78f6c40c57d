// The k bound is on disruption, not only on slots: at no instant more than k nodes between an agent's
// cordon and its uncordon. A slot's TTL is right for the lock (a dead or deleted holder must not hold it
// forever: kured#137), but a holder whose agent is down past the TTL leaves its node cordoned — only that
// agent uncordons it — while its slot goes to another node. Such an *orphan* (the agent's cordon
// annotation and spec.unschedulable, no valid slot) counts against the k slots like a holder: a node
// that won a slot keeps it only if (valid holders other than itself) + (orphans other than itself) < k.
//
// Why that check keeps the bound, with the lists it makes after the claim is written — first the
// namespace's Leases, then the Nodes (both consistent reads, the Node pages one snapshot):
// - A node cordons only right after a grant, while its slot is valid, and its ladder stops at `lost`,
//   which comes max_clock_skew before any other node may see the slot run out (leases.ts). So a node
//   cordoned by an agent holds a valid slot or is an orphan, and an orphan was a holder whose slot ran
//   out: a slot running out turns a holder into an orphan and never adds to holders + orphans. Only a
//   grant does, and every grant that can lead to a cordon is checked (a slot taken back with resume()
//   only finishes its run, which never cordons anew; handed to a new run it is checked first).
// - Take the nodes cordoned at some instant and, of them, the one whose checked claim was written last.
//   Its Lease read came after every other one's claim: each other node then still held a valid slot
//   (counted as a holder), or its slot had run out or been given back after its cordon, so the Node list
//   that followed showed it cordoned without a slot (counted as an orphan). So that node counted every
//   other one and found fewer than k: never more than k at once. Of two grants at the same moment the
//   later claim always counts the earlier one.
// - Over-counting (a holder that gave its slot back between the two reads, an orphan uncordoned since)
//   only delays a grant. A holder whose slot runs out between the reads is counted once, as a holder.
// Deleted Nodes are not in the list; an operator's own cordon (no annotation) is not counted; an operator
// who wants a node to stay cordoned without holding up repairs removes the annotation.
import { CORDONED_BY_AGENT } from '../ladder/cordon';
import type { NodeLite } from './breaker';
import { ANN, LABEL_KIND, leaseEnd, parseTime, type Lease } from './leases';

export interface Orphan {
  node: string;
  /** The value of the agent's cordon annotation: condition, run and time of the cordon. */
  mark: string;
  /** What the slot Leases say about its agent. */
  why: string;
}

/**
 * Nodes in `nodes` cordoned by an agent that are not among `holders` (valid holders, from a Lease list
 * read before the Nodes) and are not `self`. `leases` only explain each one: that list and an earlier one
 * (the slot this node just claimed may be the orphan's, which named it until then).
 */
export function orphansOf(nodes: readonly NodeLite[], leases: readonly Lease[], holders: ReadonlySet<string>, self: string): Orphan[] {
  const slots = leases.filter((l) => l.metadata.labels?.[LABEL_KIND] === 'slot');
  const found: Orphan[] = [];
  for (const n of nodes) {
    const name = n.metadata.name;
    const mark = n.metadata.annotations?.[CORDONED_BY_AGENT];
    if (name === self || holders.has(name) || mark === undefined || n.spec?.unschedulable !== true) continue;
    found.push({ node: name, mark, why: whyNoSlot(name, slots) });
  }
  return found;
}

function whyNoSlot(node: string, slots: readonly Lease[]): string {
  const named = slots.find((l) => l.spec.holderIdentity === node);
  const end = named ? leaseEnd(named.spec) : undefined;
  if (named && end !== undefined) {
    return `down or cut off from the API server since ${named.spec.renewTime ?? '?'}: its agent last renewed ${named.metadata.name} then, and it ran out at ${new Date(end).toISOString()}`;
  }
  const released = slots
    .filter((l) => l.metadata.annotations?.[ANN.lastHolder] === node && parseTime(l.metadata.annotations?.[ANN.releasedAt]) !== undefined)
    .sort((a, b) => (parseTime(b.metadata.annotations?.[ANN.releasedAt]) ?? 0) - (parseTime(a.metadata.annotations?.[ANN.releasedAt]) ?? 0))[0];
  if (released) {
    const a = released.metadata.annotations ?? {};
    return `its ladder gave ${released.metadata.name} back at ${a[ANN.releasedAt]} (${a[ANN.outcome] ?? 'no outcome'}) and left it cordoned`;
  }
  return 'no slot Lease names it any more: its agent is down or cannot reach the API server';
}

const SHOWN = 10;

function listed(names: readonly string[]): string {
  const shown = names.slice(0, SHOWN);
  const more = names.length - shown.length;
  const all = more > 0 ? [...shown, `${more} more`] : shown;
  return all.length <= 1 ? (all[0] ?? '') : `${all.slice(0, -1).join(', ')} and ${all[all.length - 1]}`;
}

function heldPart(holders: readonly string[]): string {
  return holders.length === 0 ? 'no slot is held' : `${holders.length === 1 ? 'the slot' : `the ${holders.length} slots`} held by ${listed(holders)}`;
}

/** The refusal's message when a node that won a slot finds the bound reached. */
export function cordonedMessage(orphans: readonly Orphan[], holders: readonly string[], slots: number): string {
  const one = orphans.length === 1;
  const described = orphans
    .slice(0, SHOWN)
    .map((o) => `${o.node} (cordoned for ${o.mark}; ${o.why})`)
    .concat(orphans.length > SHOWN ? [`${orphans.length - SHOWN} more`] : []);
  const who = described.length <= 1 ? (described[0] ?? '') : `${described.slice(0, -1).join(', ')} and ${described[described.length - 1]}`;
  return (
    `${who} ${one ? 'is' : 'are'} still cordoned by ${one ? 'its agent' : 'their agents'}; ${one ? 'it counts' : 'they count'} against the ${slots} repair slots ` +
    `until ${one ? 'its agent uncordons it' : 'their agents uncordon them'} or an operator does, and with ${heldPart(holders)} none is left`
  );
}

/** The names a cordoned-nodes marker Lease carries. */
export function markedNodes(marker: Lease | undefined): string[] {
  const v = marker?.metadata.annotations?.[ANN.cordonedNodes] ?? '';
  return v === '' ? [] : v.split(',');
}

/** The refusal's message when a marker Lease says the bound was reached a moment ago. */
export function markedMessage(orphans: readonly string[], holders: readonly string[], slots: number, marker: Lease, lease: string): string {
  const one = orphans.length === 1;
  return (
    `${listed(orphans)} ${one ? 'is' : 'are'} still cordoned by ${one ? 'its agent' : 'their agents'} without a repair slot ` +
    `(found by ${marker.spec.holderIdentity ?? '?'} at ${marker.spec.renewTime ?? '?'}, Lease ${lease}); ${one ? 'it counts' : 'they count'} against the ${slots} repair slots ` +
    `until ${one ? 'its agent uncordons it' : 'their agents uncordon them'} or an operator does, and with ${heldPart(holders)} none is left`
  );
}
