// The daemon's wiring: builds checks, outputs and the status socket from the config, starts them,
// reloads on SIGHUP without losing state, and stops cleanly on SIGTERM.
import { unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfig, type LoadedConfig } from './config/load';
import { CheckTable } from './engine/check-table';
import { Scheduler } from './engine/scheduler';
import { AgentError, messageOf } from './errors';
import { createLogger, type Logger } from './outputs/log';
import { StatusServer } from './outputs/status/server';
import { runCheck } from './sources/check';
import { enabledChecks, type ScheduledCheck } from './sources/checks';
import type { Native } from './system/native';
import { makeDirs } from './system/files';
import { ServiceManager } from './system/sd-notify';
import { VERSION } from './version';

export interface AgentOptions {
  configDir?: string;
  native: () => Native;
}

interface ReloadOutcome {
  at: string;
  ok: boolean;
  error?: string;
}

export class Agent {
  private readonly startedAt = new Date();
  private readonly table = new CheckTable();
  private checks = new Map<string, ScheduledCheck>();
  private scheduler = new Scheduler();
  private generation = 1;
  private lastReload: ReloadOutcome | undefined;
  private watchdogTimer: NodeJS.Timeout | undefined;
  private stopping = false;
  private readonly status: StatusServer;

  private constructor(
    private readonly options: AgentOptions,
    private loaded: LoadedConfig,
    private readonly log: Logger,
    private readonly manager: ServiceManager,
  ) {
    this.status = new StatusServer(socketPath(loaded), () => this.snapshot());
  }

  /** Loads the config and starts everything; throws AgentError for anything the operator must fix. */
  static async start(options: AgentOptions): Promise<Agent> {
    const loaded = loadConfig(options.configDir, { required: options.configDir !== undefined });
    ensureWritableDir(loaded.config.agent.state_dir);
    const log = createLogger(loaded.config.agent.log_level, options.native);
    const agent = new Agent(options, loaded, log, new ServiceManager(options.native));
    await agent.status.listen();
    agent.schedule();
    agent.petWatchdog();
    agent.manager.ready(agent.summary());
    log.info(`node-health-agent ${VERSION} started`, {
      config_files: loaded.files.join(',') || 'none (defaults)',
      checks: enabledChecks(loaded.config).length,
    });
    return agent;
  }

  /** Re-reads the config; a bad one is rejected and the daemon keeps running on the old one. */
  reload(): void {
    this.manager.reloading();
    try {
      const next = loadConfig(this.options.configDir, { required: this.options.configDir !== undefined });
      for (const key of ['state_dir', 'runtime_dir'] as const) {
        if (next.config.agent[key] !== this.loaded.config.agent[key]) {
          this.log.warning(`[agent] ${key} changed to ${next.config.agent[key]}; it takes effect at the next restart`);
        }
      }
      this.loaded = next;
      this.generation++;
      this.log.setLevel(next.config.agent.log_level);
      this.scheduler.stop();
      this.scheduler = new Scheduler();
      this.schedule();
      this.lastReload = { at: new Date().toISOString(), ok: true };
      this.log.info(`configuration reloaded (generation ${this.generation})`);
    } catch (err) {
      const error = messageOf(err);
      this.lastReload = { at: new Date().toISOString(), ok: false, error };
      for (const line of error.split('\n')) {
        const file = /^([^:]+):\d+:/.exec(line)?.[1];
        this.log.error(`reload rejected, keeping generation ${this.generation}: ${line}`, file ? { file } : {});
      }
    }
    this.manager.ready(this.summary());
  }

  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    this.manager.stopping();
    this.scheduler.stop();
    if (this.watchdogTimer) clearInterval(this.watchdogTimer);
    await this.status.close();
    this.log.info('node-health-agent stopped');
    this.log.close();
  }

  private schedule(): void {
    // A check whose settings did not change keeps its instance, and with it its baselines (rates).
    const previous = this.checks;
    this.checks = new Map(
      enabledChecks(this.loaded.config).map((s) => {
        const id = checkId(s.check);
        const kept = previous.get(id);
        return [id, kept && kept.settings === s.settings ? kept : s];
      }),
    );
    this.table.retain(this.checks.keys());
    this.scheduler.start(
      [...this.checks].map(([id, { check, intervalMs }]) => ({
        name: id,
        intervalMs,
        run: async () => {
          const { appeared, cleared } = this.table.record(id, await runCheck(check));
          for (const r of appeared) {
            const log = r.status === 'problem' ? this.log.error : this.log.warning;
            log(`${id}: ${r.message}`, { check: id, reason: r.reason, subject: r.subject });
          }
          for (const r of cleared) this.log.info(`${id}: ${r.reason} cleared`, { check: id, reason: r.reason, subject: r.subject });
          this.manager.status(this.summary());
        },
      })),
    );
  }

  /** Petting from a timer on the main loop: a blocked or stopped loop stops the pets and systemd restarts us. */
  private petWatchdog(): void {
    const every = this.manager.watchdogIntervalMs();
    if (every <= 0) return;
    this.watchdogTimer = setInterval(() => this.manager.watchdog(), every);
    this.watchdogTimer.unref();
  }

  private summary(): string {
    const results = this.table.all();
    const bad = results.filter((r) => r.status === 'problem').length;
    const warn = results.filter((r) => r.status === 'warning').length;
    return `config generation ${this.generation}; ${results.length} findings, ${bad} problems, ${warn} warnings`;
  }

  private snapshot(): unknown {
    const results = this.table.all();
    return {
      version: VERSION,
      pid: process.pid,
      startedAt: this.startedAt.toISOString(),
      uptimeSeconds: Math.round((Date.now() - this.startedAt.getTime()) / 1000),
      config: {
        generation: this.generation,
        files: this.loaded.files,
        lastReload: this.lastReload ?? null,
      },
      checks: results,
      problems: results.filter((r) => r.status !== 'ok'),
    };
  }
}

function checkId(check: { component: string; name: string }): string {
  return `${check.component}/${check.name}`;
}

function socketPath(loaded: LoadedConfig): string {
  return join(loaded.config.agent.runtime_dir, 'agent.sock');
}

/** Creates the state directory and proves it takes writes (a read-only filesystem fails even for root). */
function ensureWritableDir(dir: string): void {
  const probe = join(dir, `.write-test-${process.pid}`);
  try {
    makeDirs(dir, 0o700);
    writeFileSync(probe, '');
    unlinkSync(probe);
  } catch (err) {
    throw new AgentError(
      'STATE_DIR_UNWRITABLE',
      `${dir}: state directory is not writable (${messageOf(err)}); fix it or set [agent] state_dir`,
    );
  }
}
