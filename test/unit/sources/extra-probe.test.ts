// A probe added as one folder and one registry line (test/fixtures/probes/entropy, registered here as its
// line in src/sources/checks.ts would): its section is parsed with its defaults, validated with file:line,
// section and key, documented in the manual and the completion, and its findings reported by `diagnose`,
// with no other file changed.
import { readFileSync } from 'node:fs';
import t from 'tap';
import { diagnose } from '../../../src/cli/diagnose';
import { manualFiles } from '../../../src/cli/manual/generate';
import { effectiveConfig } from '../../../src/config/effective';
import { createLogger } from '../../../src/outputs/log';
import { makePlan } from '../../../src/plan';
import { PROBES } from '../../../src/sources/checks';
import { loadNative } from '../../../src/system/native';
import type { CheckResult } from '../../../src/types';
import { entropyProbe } from '../../fixtures/probes/entropy';
import { errorOf } from '../../helpers/errors';
import { configDir } from '../../helpers/tmp';

const probes = [...PROBES, entropyProbe];
const quiet = { log: createLogger('error', undefined), sink: { condition() {}, event() {} }, native: loadNative };

t.test('its section is parsed with its defaults and plans its check and its condition', async (t) => {
  const dir = configDir({ 'a.ini': '[entropy]\ninterval = 5m\nwarning = 512\n' });
  const plan = makePlan(dir, { ...quiet, probes });
  const check = plan.sources.get('probes')?.checks?.find((c) => c.section === 'entropy');
  t.match(check, {
    check: { component: 'host', name: 'entropy' },
    intervalMs: 300_000,
    condition: { type: 'EntropyLow', setAfter: 2, clearAfter: 2, reason: 'EntropyOK', message: 'the kernel has entropy', shared: false },
  });
  t.match(JSON.parse(check?.settings ?? '{}'), { warning: 512, critical: 64, enabled: true });
  t.match(plan.declarations.find((d) => d.type === 'EntropyLow'), { owner: '[entropy]', reason: 'EntropyOK' });
  const effective = effectiveConfig(plan.loaded);
  t.match(effective, `[entropy]\nenabled = true  ; default\ninterval = 5m  ; ${dir}/a.ini:2\n`);
  t.match(effective, `warning = 512  ; ${dir}/a.ini:3\ncritical = 64  ; default\n`);
  t.notOk(makePlan(configDir({ 'a.ini': '[entropy]\nenabled = false\n' }), { ...quiet, probes }).sources.get('probes')?.checks?.some((c) => c.section === 'entropy'), 'enabled = false turns it off');
});

t.test('bad values are refused naming file:line, section and key, as for the shipped probes', async (t) => {
  const refused = (ini: string): string => errorOf(() => makePlan(configDir({ 'a.ini': ini }), { ...quiet, probes })).message;
  t.match(refused('[entropy]\n\nwarning = lots\n'), /a\.ini:3: \[entropy\] warning: "lots" is not a whole number; expected a whole number/);
  t.match(refused('[entropy]\ncritical = 300\n'), /a\.ini:2: \[entropy\] critical \(300\) must not exceed warning \(256\)/);
  t.match(refused('[entropy]\nwarnig = 3\n'), /a\.ini:2: unknown key "warnig" in \[entropy\]; did you mean "warning"\?/);
  t.match(refused('[entropy]\ncondition = DiskFull\n'), /condition DiskFull is reported by both \[disk\] and \[entropy\] settings/);
  // Not registered, its section is unknown: the registration alone brings it in.
  t.match(errorOf(() => makePlan(configDir({ 'a.ini': '[entropy]\n' }), quiet)).message, /a\.ini:1: unknown section \[entropy\]/);
});

t.test('diagnose reports its finding from the live kernel', async (t) => {
  let text = '';
  const out = { isTTY: false, write: (s: string) => ((text += s), true) } as unknown as NodeJS.WriteStream;
  await diagnose({ configDir: configDir({}), json: true, probes }, out);
  const results = text.trim().split('\n').map((l) => JSON.parse(l) as CheckResult);
  const entropy = results.filter((r) => r.check === 'entropy');
  t.equal(entropy.length, 1, 'one entropy finding');
  const bits = Number(readFileSync('/proc/sys/kernel/random/entropy_avail', 'utf8'));
  t.match(entropy[0], { component: 'host', status: bits < 64 ? 'problem' : bits < 256 ? 'warning' : 'ok', message: /^\d+ bits of entropy available/ });
});

t.test('the manual and the completion list its section and keys', async (t) => {
  const files = manualFiles(probes);
  const page = files['man/node-health.ini.5'] ?? '';
  const at = page.indexOf('[entropy]');
  t.ok(at > page.indexOf('[time_sync]') && at < page.indexOf('[journal]'), 'after the shipped probes, before [journal]');
  t.match(page.slice(at), /Bits of entropy below which the node has a problem/);
  t.match(files['completion/node-health-agent'], /entropy\.critical/);
  t.notMatch(manualFiles()['man/node-health.ini.5'], '[entropy]', 'the shipped manual does not have it');
});
