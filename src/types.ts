// The contract where sources, engine and outputs meet. Plain data only.

/** The outcome of one check on one subject. `problem` means the node is unhealthy in this respect. */
export type CheckStatus = 'ok' | 'warning' | 'problem' | 'unknown';

export interface Finding {
  status: CheckStatus;
  /** CamelCase machine reason, like a NodeCondition reason (e.g. "DiskFull"). */
  reason: string;
  /** A sentence a human can act on. */
  message: string;
  /** What the finding is about (a mount point, a unit, a file); empty when the check has one subject. */
  subject?: string;
}

export interface CheckResult extends Finding {
  component: string;
  check: string;
  severity: Severity;
  durationMs: number;
}

export type Severity = 'info' | 'warning' | 'critical';

export function severityOf(status: CheckStatus): Severity {
  switch (status) {
    case 'ok':
      return 'info';
    case 'warning':
    case 'unknown':
      return 'warning';
    case 'problem':
      return 'critical';
  }
}
