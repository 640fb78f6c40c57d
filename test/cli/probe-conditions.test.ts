// Host probes turned into NodeConditions by the running daemon: a real tmpfs filled and freed sets and
// clears DiskFull with its hysteresis; a reload renames the condition; names that belong to the kubelet
// or to another probe are refused with the section that names them.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { sectionsOf } from '../../src/config/schema';
import { registeredSections } from '../../src/sections';
import type { NodeCondition } from '../../src/types';
import { bin, daemonConfig, startDaemon, waitFor, type Daemon } from '../helpers/daemon';

/** A 1 MiB tmpfs with room for 32 inodes, unmounted at teardown. */
function smallTmpfs(t: { teardown(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'nha-fill-'));
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m,nr_inodes=32,mode=755', 'nha-fill', dir]);
  t.teardown(() => {
    execFileSync('umount', [dir]);
    rmSync(dir, { recursive: true, force: true });
  });
  return dir;
}

const condition = (d: Daemon, type: string): NodeCondition | undefined =>
  (d.status().conditions as NodeCondition[]).find((c) => c.type === type);

// Only this mount can be critical: everything else on the host would need to be over 99.9% used.
const diskIni = (mount: string, extra = '') =>
  `[disk]\ninterval = 1s\npaths = ${mount}\nspace_critical = 99.9%\ninodes_critical = 99.9%\nspace_warning = 99.8%\ninodes_warning = 99.8%\n` +
  `set_after = 2\nclear_after = 2\n${extra}` +
  // Keep the rest of the host out of it: of the probes, only [disk] runs.
  sectionsOf(registeredSections())
    .filter((s) => s.name !== 'disk' && 'set_after' in s.keys)
    .map((s) => `[${s.name}]\nenabled = false\n`)
    .join('');

t.test('a filled filesystem sets DiskFull after set_after runs and freeing it clears it', async (t) => {
  const mount = smallTmpfs(t);
  const { configDir, dir } = daemonConfig(diskIni(mount));
  const d = await startDaemon(t, { configDir, dir });
  const initial = await waitFor('DiskFull declared', () => condition(d, 'DiskFull'));
  t.match(initial, { status: 'False', reason: 'DiskSpaceOK' });

  execFileSync('dd', ['if=/dev/zero', `of=${mount}/blob`, 'bs=64k', 'count=16'], { stdio: 'ignore' });
  const full = await waitFor('DiskFull True', () => condition(d, 'DiskFull')?.status === 'True' && condition(d, 'DiskFull'), 15_000);
  t.equal(full.reason, 'DiskSpaceCritical');
  t.match(full.message, `${mount}: `, 'the message names the filesystem');
  const problems = (d.status().checks as Array<{ check: string; status: string; subject: string }>).filter((c) => c.status === 'problem');
  t.same(problems.map((p) => [p.check, p.subject]), [['disk', mount]], 'the finding behind it shows in status');

  rmSync(join(mount, 'blob'));
  const freed = await waitFor('DiskFull False', () => condition(d, 'DiskFull')?.status === 'False' && condition(d, 'DiskFull'), 15_000);
  t.match(freed, { reason: 'DiskSpaceOK', message: 'every watched filesystem has free space and inodes' });

  // Inodes run out long before bytes on this filesystem.
  for (let i = 0; i < 40; i++) spawnSync('touch', [join(mount, `f${i}`)]);
  const inodes = await waitFor('DiskFull True for inodes', () => condition(d, 'DiskFull')?.status === 'True' && condition(d, 'DiskFull'), 15_000);
  t.equal(inodes.reason, 'InodesCritical');

  // A reload renames the condition: the old type is dropped, the new one is set by the same findings.
  writeFileSync(join(configDir, '20-rename.ini'), '[disk]\ncondition = InodesExhausted\nset_after = 1\n', { mode: 0o644 });
  d.child.kill('SIGHUP');
  const renamed = await waitFor('InodesExhausted True', () => condition(d, 'InodesExhausted')?.status === 'True' && condition(d, 'InodesExhausted'), 15_000);
  t.equal(renamed.reason, 'InodesCritical');
  t.equal(condition(d, 'DiskFull'), undefined, 'DiskFull is no longer reported');

  // An empty condition keeps the finding in status but sets nothing.
  writeFileSync(join(configDir, '20-rename.ini'), '[disk]\ncondition =\n', { mode: 0o644 });
  d.child.kill('SIGHUP');
  await waitFor('generation 3', () => d.status().config.generation === 3);
  t.same((d.status().conditions as NodeCondition[]).filter((c) => c.type === 'InodesExhausted' || c.type === 'DiskFull'), []);
});

t.test('condition names of the kubelet, or of another probe, are refused naming the settings', async (t) => {
  const cases: Array<[string, string, RegExp]> = [
    ['kubelet name', '[memory]\ncondition = MemoryPressure\n', /condition MemoryPressure \(\[memory\] settings\) belongs to the kubelet; give it another type/],
    ['two probes', '[memory]\ncondition = DiskFull\n', /condition DiskFull is reported by both \[disk\] and \[memory\] settings/],
    ['not a type', '[pids]\ncondition = PID limit\n', /\[pids\] condition: "PID limit" is not a condition type/],
  ];
  for (const [what, ini, expected] of cases) {
    const { configDir } = daemonConfig(ini);
    const res = spawnSync(process.execPath, [bin, 'run', '--config-dir', configDir], { encoding: 'utf8', timeout: 15_000 });
    t.equal(res.status, 2, `${what}: exit 2`);
    t.match(res.stderr, expected, what);
  }
});
