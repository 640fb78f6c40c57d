// The contract between the disruptive-repair ladder and cluster-wide coordination: the ladder may only
// cordon, drain or reboot while it holds a slot, and the gate decides whether a slot may be had now.

/** Why the gate said no; shown in status and in the Event on the Node. */
export interface Refusal {
  granted: false;
  /** CamelCase, e.g. "SlotsBusy", "MinimumGap", "NewNodeGrace", "RebootLockout", "UnhealthyBreaker", "CordonedNodes". */
  reason: string;
  message: string;
  /** When asking again could succeed (epoch ms); undefined when only a change elsewhere can help. */
  retryAt?: number;
}

/** A held slot. It is renewed in the background until released or lost. */
export interface Slot {
  granted: true;
  /** The Lease that holds it, for events and the ledger. */
  lease: string;
  /** Resolves if the slot could not be renewed before its TTL ran out (the ladder must stop disrupting). */
  readonly lost: Promise<void>;
  /** Gives the slot back; `rebootFailed` starts this node's lockout (the reboot did not help). */
  release(outcome: { repaired: boolean; rebootFailed?: boolean }): Promise<void>;
}

export interface RepairGate {
  /** Asks for a slot for this node to repair `condition`. Never throws for a refusal; throws on API errors. */
  acquire(condition: string): Promise<Slot | Refusal>;
  /**
   * After a restart (e.g. the reboot step), takes back a slot this node still holds, if any, so the
   * ladder can finish without asking again.
   */
  resume(): Promise<Slot | undefined>;
}
