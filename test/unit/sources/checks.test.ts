// The registry, runCheck's deadline, and the probe sections' cross-key rules in the config loader.
import t from 'tap';
import { loadConfig as loadWith } from '../../../src/config/load';
import { settingsOf } from '../../../src/config/schema';
import { AgentError } from '../../../src/errors';
import type { Check, Finding } from '../../../src/types';
import { runCheck } from '../../../src/engine/run-check';
import { enabledChecks, probeSections, PROBES } from '../../../src/sources/checks';
import { kernelTaintSection } from '../../../src/sources/probes/kernel-taint';
import { configDir } from '../../helpers/tmp';
import { loadNative } from '../../../src/system/native';

/** The loader with the probes' sections, as the daemon calls it. */
const loadConfig = (dir: string) => loadWith(dir, { sections: probeSections() });

t.test('every probe is registered with its interval; a disabled one is not', async (t) => {
  const all = enabledChecks(loadConfig(configDir({})).config, loadNative);
  t.same(all.map((s) => s.section), PROBES.map((p) => p.section.name), 'every registered probe runs by default, in registry order');
  t.same(
    all.map((s) => [s.check.name, s.intervalMs]),
    [
      ['disk', 30_000], ['readonly', 30_000], ['memory', 10_000], ['pressure', 10_000], ['pids', 30_000],
      ['file_handles', 30_000], ['conntrack', 30_000], ['zombies', 60_000], ['kernel_taint', 60_000],
      ['thermal', 30_000], ['nic', 30_000], ['tcp', 30_000], ['time_sync', 60_000],
    ],
  );
  const some = enabledChecks(loadConfig(configDir({ 'a.ini': '[zombies]\nenabled = false\n[tcp]\ninterval = 5s\n' })).config, loadNative);
  t.notOk(some.some((s) => s.check.name === 'zombies'));
  t.equal(some.find((s) => s.check.name === 'tcp')?.intervalMs, 5_000);
});

t.test('the default cycle on this host: every check answers, none is unknown, all well under 100 ms', async (t) => {
  const checks = enabledChecks(loadConfig(configDir({})).config, loadNative);
  const started = performance.now();
  const results = (await Promise.all(checks.map(({ check }) => runCheck(check)))).flat();
  const elapsed = performance.now() - started;
  t.same(new Set(results.map((r) => r.check)).size, checks.length, 'each check gave at least one finding');
  t.same(results.filter((r) => r.status === 'unknown').map((r) => r.message), []);
  for (const r of results) t.match(r, { reason: /^[A-Z][A-Za-z]+$/, message: /\S/, subject: /^.*$/ });
  t.ok(elapsed < 100, `one cycle took ${elapsed.toFixed(1)} ms`);
});

function configError(ini: string): string {
  try {
    loadConfig(configDir({ 'a.ini': ini }));
  } catch (err) {
    if (err instanceof AgentError) return err.message;
    throw err;
  }
  throw new Error('expected the config to be refused');
}

t.test('warning and critical must be in order, as written, with file:line', async (t) => {
  t.match(configError('[pids]\nwarning = 95%\n'), /a\.ini:2: \[pids\] warning \(95%\) must not exceed critical \(90%\)$/);
  t.match(
    configError('[memory]\n\navailable_critical = 20%\n'),
    /a\.ini:3: \[memory\] available_critical \(20%\) must not exceed available_warning \(10%\)/,
    'for available memory the critical level is the lower one',
  );
  t.match(configError('[thermal]\nwarning_margin = 2\n'), /\[thermal\] critical_margin \(5\) must not exceed warning_margin \(2\)/);
  t.match(configError('[zombies]\ncritical = 10\n'), /\[zombies\] warning \(50\) must not exceed critical \(10\)/);
  t.match(configError('[memory]\navailable_min = lots\n'), /\[memory\] available_min: "lots" is not a size/);
});

t.test('taint flags: letters only, each in one list', async (t) => {
  t.match(configError('[kernel_taint]\nwarning_flags = W, Q\n'), /\[kernel_taint\] warning_flags: "Q" is not one of P, F, S/);
  t.match(
    configError('[kernel_taint]\nwarning_flags = W, D\n'),
    /a\.ini:2: \[kernel_taint\] D listed in both problem_flags and warning_flags; keep each flag in one list/,
  );
  const { config } = loadConfig(configDir({ 'a.ini': '[kernel_taint]\nproblem_flags = D, M, B, W\nwarning_flags =\n' }));
  t.same(settingsOf(config, kernelTaintSection).warning_flags, []);
});

t.test('a check that hangs is Unknown at its deadline and is not started again beside itself', async (t) => {
  let runs = 0;
  let finish: (f: Finding[]) => void = () => undefined;
  const hanging: Check = {
    component: 'host',
    name: 'hangs',
    deadlineMs: 200,
    run: () => {
      runs++;
      return new Promise((resolve) => (finish = resolve));
    },
  };
  const started = Date.now();
  const first = await runCheck(hanging);
  const took = Date.now() - started;
  t.ok(took >= 190 && took < 1000, `answered at the deadline (${took} ms)`);
  t.match(first, [{ status: 'unknown', reason: 'CheckTimedOut', message: 'check did not finish within 200ms; its result is unknown', check: 'hangs' }]);

  const second = await runCheck(hanging);
  t.equal(runs, 1, 'the hung run is not doubled');
  t.match(second, [{ status: 'unknown', reason: 'CheckStillRunning' }]);

  finish([{ status: 'ok', reason: 'Fine', message: 'fine' }]);
  await new Promise((r) => setImmediate(r));
  const hangsAgain = runCheck(hanging);
  t.equal(runs, 2, 'runs again once the hung run ended');
  finish([{ status: 'ok', reason: 'Fine', message: 'fine' }]);
  t.match(await hangsAgain, [{ status: 'ok', reason: 'Fine' }]);
});

t.test('a check that throws before returning a promise is CheckFailed', async (t) => {
  const broken: Check = {
    component: 'host',
    name: 'broken',
    run: () => {
      throw new Error('no such file');
    },
  };
  t.match(await runCheck(broken), [{ status: 'unknown', reason: 'CheckFailed', message: 'check could not run: no such file' }]);
});
