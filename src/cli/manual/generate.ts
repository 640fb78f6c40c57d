// Writes the manual pages and the bash completion from the program and the schema (run by
// scripts/build.mjs; the packages install what it writes). Usage: node generate.js <out-dir>
//   <out-dir>/man/node-health-agent.8.gz, <out-dir>/man/node-health.ini.5.gz, <out-dir>/completion/node-health-agent
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { families, sectionsOf } from '../../config/schema';
import type { KeySpec } from '../../config/key';
import { registeredSections } from '../../sections';
import type { HostProbe } from '../../sources/probes/probe';
import { VERSION } from '../../version';
import { configKeyWords } from '../config-check';
import { buildProgram } from '../main';
import { bashCompletion } from './completion';
import { configPage, commandPage, type ConfigSection } from './man';

/** The sections (the agent's and those the registry's sources declare) and named-section families as the man page lists them. */
export function configSections(probes?: readonly HostProbe[]): { sections: ConfigSection[]; families: ConfigSection[] } {
  const asKeys = (v: object): Record<string, KeySpec<unknown>> => v as Record<string, KeySpec<unknown>>;
  return {
    sections: sectionsOf(registeredSections(probes)).map(({ name, keys }) => ({ header: `[${name}]`, keys })),
    families: Object.entries(families).map(([name, keys]) => ({ header: `[${name} "name"]`, keys: asKeys(keys) })),
  };
}

/** `probes`: the host probes, when not the registry's own (a test adds one). */
export function manualFiles(probes?: readonly HostProbe[]): Record<string, string> {
  const program = buildProgram();
  const { sections, families: named } = configSections(probes);
  return {
    'man/node-health-agent.8': commandPage(program, VERSION),
    'man/node-health.ini.5': configPage(sections, named, program.name(), VERSION),
    'completion/node-health-agent': bashCompletion(program, { 'section.key': configKeyWords(probes) }),
  };
}

function main(out: string): void {
  for (const [path, text] of Object.entries(manualFiles())) {
    const file = join(out, path);
    mkdirSync(join(file, '..'), { recursive: true });
    // Man pages are installed compressed at the highest level (Debian policy 12.1); zlib writes no timestamp.
    if (path.startsWith('man/')) writeFileSync(`${file}.gz`, gzipSync(text, { level: 9 }));
    else writeFileSync(file, text);
  }
}

if (require.main === module) {
  const out = process.argv[2];
  if (!out) {
    process.stderr.write('usage: generate.js <out-dir>\n');
    process.exit(2);
  }
  main(out);
}
