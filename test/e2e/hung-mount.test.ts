// A hung FUSE mount against the real kernel: six mounts whose FUSE connection is never served (statfs
// on them blocks until the connection is aborted) — more than the four threads of libuv's pool that
// file I/O and DNS lookups share. The disk check must name each within its deadline, keep judging the
// other filesystems, and leave the pool free.
import { lookup } from 'node:dns/promises';
import { mkdtempSync, rmSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import { defaultsOf } from '../unit/sources/fake-fs';
import { runCheck } from '../../src/engine/run-check';
import { diskCheck, diskSection, SERVED_TIMEOUT_MS } from '../../src/sources/probes/disk';
import { hungFuseMount } from '../helpers/hung-mount';

const MOUNTS = 6;

/** Resolves with what `work` gave, or with "timed out" after ms; the test's own timers live on the main loop. */
function within<T>(ms: number, work: Promise<T>): Promise<T | 'timed out'> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([work, new Promise<'timed out'>((r) => (timer = setTimeout(() => r('timed out'), ms)))]).finally(() =>
    clearTimeout(timer),
  );
}

/** Work that needs the thread pool: four DNS lookups and four file system calls at once. */
async function poolWork(): Promise<string> {
  await Promise.all([
    ...Array.from({ length: 4 }, () => lookup('localhost')),
    stat('/'),
    stat('/proc/self'),
    readFile('/proc/self/stat'),
    readFile('/etc/hostname').catch(() => ''),
  ]);
  return 'done';
}

t.test('six FUSE mounts that never answer: each named within its deadline, other mounts judged, the pool free', async (t) => {
  const base = mkdtempSync('/tmp/nha-hung-');
  t.teardown(() => rmSync(base, { recursive: true, force: true }));
  const hung = Array.from({ length: MOUNTS }, (_, i) => hungFuseMount(t, join(base, `m${i}`), `hung${i}`));
  const check = diskCheck(defaultsOf(diskSection));

  for (const round of [1, 2]) {
    const started = Date.now();
    // The pool is used while the check runs: a statfs stuck in-process would hold a thread for good.
    const [results, during] = await Promise.all([within(SERVED_TIMEOUT_MS + 10_000, runCheck(check)), within(SERVED_TIMEOUT_MS + 3_000, poolWork())]);
    const took = Date.now() - started;
    t.equal(during, 'done', `round ${round}: DNS lookups and file reads complete while the check runs`);
    if (results === 'timed out') {
      t.fail(`round ${round}: the disk check did not answer`);
      return;
    }
    t.ok(took < SERVED_TIMEOUT_MS + 3_000, `round ${round}: the check answered in ${took} ms (deadline ${SERVED_TIMEOUT_MS} ms per mount)`);
    for (const m of hung) {
      const f = results.find((r) => r.subject === m.path);
      t.match(f, { status: 'unknown', reason: 'MountUnresponsive', message: new RegExp(`^${m.path} \\(nha-hung\\d, fuse\\.hung\\d\\): `) }, `round ${round}: ${m.path} is named`);
    }
    t.ok(results.some((r) => r.subject === '/' && /^DiskSpace/.test(r.reason)), `round ${round}: the root filesystem is still judged`);
    t.equal(await within(2_000, poolWork()), 'done', `round ${round}: the pool is free after the check`);
  }

  // Once the connections are gone the mounts answer again (with an error until they are detached).
  for (const m of hung) m.release();
  const after = await within(SERVED_TIMEOUT_MS + 3_000, runCheck(check));
  t.not(after, 'timed out');
  if (after !== 'timed out') t.notOk(after.some((r) => r.reason === 'MountUnresponsive'), 'nothing unresponsive after release');
});
