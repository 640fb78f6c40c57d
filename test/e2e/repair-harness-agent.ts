// The runtime health monitor as a program of its own, for end-to-end tests in a box: the real
// RuntimeHealth against the box's systemd, D-Bus and containerd, with the agent's own logger (journald
// under systemd). Conditions and events go to a JSON-lines file; SIGUSR1 writes status() next to it.
// Usage: node harness.js <config dir> <state dir> <output file>
import { appendFileSync, renameSync, writeFileSync } from 'node:fs';
import { loadConfig } from '../../src/config/load';
import { createLogger } from '../../src/outputs/log';
import { RuntimeHealth } from '../../src/repair/health';
import { loadNative } from '../../src/system/native';

async function main(): Promise<void> {
  const [configDir, stateDir, out] = process.argv.slice(2) as [string, string, string];
  const { config } = loadConfig(configDir, { required: true });
  const log = createLogger(config.agent.log_level, () => loadNative());
  const write = (record: object) => appendFileSync(out, `${JSON.stringify({ t: Date.now(), ...record })}\n`);
  const health = await RuntimeHealth.create(
    config,
    log,
    {
      condition: (r) => write({ kind: 'condition', ...r }),
      event: (r) => write({ kind: 'event', ...r }),
    },
    stateDir,
  );
  const dumpStatus = () => {
    writeFileSync(`${out}.status.tmp`, JSON.stringify(health.status()));
    renameSync(`${out}.status.tmp`, `${out}.status`);
  };
  process.on('SIGUSR1', dumpStatus);
  process.on('SIGTERM', () => {
    void health.stop().then(() => {
      dumpStatus();
      log.close();
      process.exit(0);
    });
  });
  health.start();
  write({ kind: 'started', pid: process.pid, declarations: health.conditionDeclarations() });
  // Keep running until SIGTERM (the monitor's own timers are unref'ed, as in the daemon).
  setInterval(() => undefined, 1 << 30);
}

main().catch((err: unknown) => {
  process.stderr.write(`harness: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(2);
});
