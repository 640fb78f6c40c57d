// `bundle`: writes the support bundle (src/support/bundle.ts) to a file, or to stdout with -o -.
import { resolve } from 'node:path';
import { parseDuration } from '../config/values';
import { AgentError, messageOf } from '../errors';
import { writeFileAtomic } from '../system/files';
import { loadNative } from '../system/native';
import { collectBundle } from '../support/bundle';

export interface BundleCliOptions {
  since: string;
  output?: string;
  configDir?: string;
}

export async function bundle(options: BundleCliOptions, out: NodeJS.WriteStream = process.stdout, err: NodeJS.WriteStream = process.stderr): Promise<number> {
  let sinceMs: number;
  try {
    sinceMs = parseDuration(options.since);
  } catch (e) {
    throw new AgentError('CONFIG_INVALID', `--since: ${messageOf(e)}`);
  }
  const made = await collectBundle({ sinceMs, configDir: options.configDir, native: loadNative });
  for (const n of made.notes) err.write(`node-health-agent: bundle: not collected: ${n}\n`);
  if (options.output === '-') {
    out.write(made.archive);
    return 0;
  }
  const path = resolve(options.output ?? `${made.name}.tar.gz`);
  // Only the operator may read it (it holds logs), and a reader never sees half an archive.
  try {
    writeFileAtomic(path, made.archive, 0o600);
  } catch (e) {
    throw new AgentError('BUNDLE_UNWRITABLE', `${path}: cannot write the bundle: ${messageOf(e)}; choose another place with -o FILE`);
  }
  out.write(`${path} (${made.archive.length} bytes)\n`);
  return 0;
}
