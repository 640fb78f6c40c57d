// `run`: the daemon in the foreground, as systemd starts it.
import { Agent } from '../agent';
import { background, installCrashHandlers } from '../system/background';
import { loadNative } from '../system/native';

export async function run(options: { configDir?: string; nodeName?: string }): Promise<void> {
  // Before anything starts: whatever escapes the background helper ends the process on purpose.
  installCrashHandlers();
  const agent = await Agent.start({ configDir: options.configDir, nodeName: options.nodeName, native: loadNative });
  process.on('SIGHUP', () => void background('reloading the configuration', () => agent.reload()));
  const shutdown = (): void => {
    void agent.stop().then(
      () => {
        process.exitCode = 0;
      },
      (err: unknown) => {
        // Stopping failed part-way: exit anyway, and say so, rather than hang until SIGKILL.
        process.stderr.write(`node-health-agent: stopping failed: ${err instanceof Error ? err.message : String(err)}\n`);
        process.exit(1);
      },
    );
  };
  process.once('SIGTERM', shutdown);
  process.once('SIGINT', shutdown);
}
