// Errors the user sees: one line that names the thing and says what to do. Callers branch on `code`.

export type AgentErrorCode =
  | 'CONFIG_INVALID'
  | 'CONFIG_UNREADABLE'
  | 'CONFIG_INSECURE'
  | 'STATE_DIR_UNWRITABLE'
  | 'ALREADY_RUNNING'
  | 'DAEMON_UNREACHABLE'
  | 'NATIVE_UNAVAILABLE'
  | 'JOURNAL_UNAVAILABLE'
  | 'BUNDLE_UNWRITABLE'
  | 'INPUT_INVALID';

export class AgentError extends Error {
  constructor(
    readonly code: AgentErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'AgentError';
  }
}

/** The message of any thrown value, for logs and one-line errors. */
export function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
