// The agent's log. Under systemd (JOURNAL_STREAM names our stderr) entries go natively to journald with
// PRIORITY and NODE_HEALTH_* fields, so `journalctl -u node-health-agent NODE_HEALTH_ACTION=restart`
// finds them; elsewhere they are JSON lines on stderr.
import { fstatSync } from 'node:fs';
import winston from 'winston';
import Transport from 'winston-transport';
import type { Native } from '../system/native';
import type { LogFields, Logger, LogLevel } from '../types';

export type { LogFields, Logger, LogLevel } from '../types';

/** Levels in winston's order (lower is more severe) mapped to syslog priorities. */
const LEVELS: Record<LogLevel, number> = { error: 0, warning: 1, info: 2, debug: 3 };
const PRIORITY: Record<LogLevel, string> = { error: '3', warning: '4', info: '6', debug: '7' };

/** True when stderr is the journal stream systemd connected us to (systemd.exec(5), $JOURNAL_STREAM). */
export function stderrIsJournal(env: NodeJS.ProcessEnv = process.env): boolean {
  const stream = env.JOURNAL_STREAM;
  if (!stream) return false;
  try {
    const st = fstatSync(2);
    return stream === `${st.dev}:${st.ino}`;
  } catch {
    return false;
  }
}

class JournalTransport extends Transport {
  /** Entries journald did not take since it last took one, and why the first of them failed. */
  private unsent = 0;
  private unsentReason = '';

  constructor(private readonly native: Native) {
    super();
  }

  override log(info: winston.Logform.TransformableInfo, next: () => void): void {
    const { level, message, ...rest } = info;
    const fields: Record<string, string> = {
      MESSAGE: String(message),
      PRIORITY: PRIORITY[level as LogLevel] ?? '6',
      SYSLOG_IDENTIFIER: 'node-health-agent',
    };
    for (const [key, value] of Object.entries(rest)) {
      if (value !== undefined) fields[`NODE_HEALTH_${key.toUpperCase()}`] = String(value);
    }
    try {
      this.native.journalSend(fields);
    } catch (err) {
      // journald stopped or restarting (ECONNREFUSED), or the entry refused: stderr instead. A stopped
      // journald has closed that stream too, so the line may be lost there (the write's EPIPE is ignored
      // by the crash policy): it is counted and the count logged once journald takes entries again.
      if (this.unsent++ === 0) this.unsentReason = String(err);
      process.stderr.write(`${JSON.stringify({ ...fields, journalError: String(err) })}\n`);
      next();
      return;
    }
    if (this.unsent > 0) this.reportUnsent();
    next();
  }

  private reportUnsent(): void {
    const count = this.unsent;
    try {
      this.native.journalSend({
        MESSAGE: `${count} log entries could not be sent to journald (first: ${this.unsentReason}); they went to stderr, which a stopped journald closes, so they may be lost`,
        PRIORITY: PRIORITY.warning,
        SYSLOG_IDENTIFIER: 'node-health-agent',
        NODE_HEALTH_CODE: 'LOG_UNSENT',
        NODE_HEALTH_COUNT: String(count),
      });
      this.unsent = 0;
    } catch {
      // journald went away again: the count stands and is reported with the next entry it takes.
    }
  }
}

export function createLogger(level: LogLevel, native: (() => Native) | undefined): Logger {
  const transport: Transport =
    native && stderrIsJournal()
      ? new JournalTransport(native())
      : new winston.transports.Console({
          stderrLevels: Object.keys(LEVELS),
          format: winston.format.combine(winston.format.timestamp(), winston.format.json()),
        });
  const logger = winston.createLogger({ levels: LEVELS, level, transports: [transport] });
  const write = (lvl: LogLevel) => (message: string, fields: LogFields = {}) => {
    logger.log(lvl, message, fields);
  };
  return {
    error: write('error'),
    warning: write('warning'),
    info: write('info'),
    debug: write('debug'),
    setLevel(next) {
      logger.level = next;
    },
    close() {
      logger.close();
    },
  };
}
