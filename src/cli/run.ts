// `run`: the daemon in the foreground, as systemd starts it.
import { Agent } from '../agent';
import { loadNative } from '../system/native';

export async function run(options: { configDir?: string; nodeName?: string }): Promise<void> {
  const agent = await Agent.start({ configDir: options.configDir, nodeName: options.nodeName, native: loadNative });
  process.on('SIGHUP', () => agent.reload());
  const shutdown = (): void => {
    void agent.stop().then(() => {
      process.exitCode = 0;
    });
  };
  process.once('SIGTERM', shutdown);
  process.once('SIGINT', shutdown);
}
