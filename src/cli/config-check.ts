// `config check`: validate the config directory and print the effective merged configuration.
import { loadConfig } from '../config/load';
import { keysOf, sectionNames, specOf } from '../config/schema';

export function configCheck(dir: string | undefined, out: NodeJS.WriteStream = process.stdout): number {
  const loaded = loadConfig(dir, { required: dir !== undefined });
  const lines: string[] = [
    loaded.files.length > 0
      ? `; merged from ${loaded.files.join(', ')}`
      : '; no config files found: every value below is the default',
  ];
  for (const section of sectionNames()) {
    lines.push('', `[${section}]`);
    for (const name of keysOf(section)) {
      const origin = loaded.origins.get(`${section}.${name}`);
      const value = origin ? origin.text : specOf(section, name)?.default;
      lines.push(`${name} = ${value}  ; ${origin ? `${origin.file}:${origin.line}` : 'default'}`);
    }
  }
  out.write(`${lines.join('\n')}\n`);
  return 0;
}
