// The crash-safe JSON-lines file on a real filesystem: records read back in order with the caller's
// refusals named by line, a torn last line cut off, a rewrite that replaces the file, and files that
// cannot be read or written reported through the caller's error with the file named.
import { appendFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { JsonLinesFile } from '../../../src/system/jsonl-file';
import { Tmpfs } from '../../helpers/tmpfs';

class TestFileError extends Error {
  override name = 'TestFileError';
}

interface Rec {
  n: number;
  pad?: string;
}

function file(t: { teardown(fn: () => unknown): void }): JsonLinesFile<Rec> {
  const d = mkdtempSync(join(tmpdir(), 'nha-jsonl-'));
  t.teardown(() => rmSync(d, { recursive: true, force: true }));
  return new JsonLinesFile<Rec>(join(d, 'records.jsonl'), {
    what: 'the test records',
    withoutIt: 'nothing is done without them',
    error: (message) => new TestFileError(message),
  });
}

function readAll(f: JsonLinesFile<Rec>): { records: number[]; warnings: string[] } {
  const records: number[] = [];
  const warnings = f.read((r) => {
    records.push(r.n);
    return r.n < 0 ? `negative ${r.n}; skipped` : undefined;
  });
  return { records, warnings };
}

t.test('a missing file holds nothing and is created by the first append, mode 600', async (t) => {
  const f = file(t);
  t.same(readAll(f), { records: [], warnings: [] });
  f.append({ n: 1 });
  f.append({ n: 2 });
  t.equal((statSync(f.path).mode & 0o777).toString(8), '600');
  t.equal(readFileSync(f.path, 'utf8'), '{"n":1}\n{"n":2}\n');
  t.same(readAll(f), { records: [1, 2], warnings: [] });
  t.equal(f.lines, 2);
});

t.test('a torn last line is cut off; corrupt and refused lines are named by line and not counted', async (t) => {
  const f = file(t);
  f.append({ n: 1 });
  appendFileSync(f.path, '\nnot json\n{"n":-3}\n{"n":4}\n{"n":');
  const { records, warnings } = readAll(f);
  t.same(records, [1, -3, 4], 'a blank line is passed over');
  t.same(warnings, [
    `${f.path}: dropped an incomplete last line (5 bytes) left by a crash`,
    `${f.path}:3: not a JSON record; skipped`,
    `${f.path}:4: negative -3; skipped`,
  ]);
  t.equal(f.lines, 3, 'the lines that parse, refused or not');
  t.equal(readFileSync(f.path, 'utf8'), '{"n":1}\n\nnot json\n{"n":-3}\n{"n":4}\n', 'the torn line is cut from the file');
  f.append({ n: 5 });
  t.same(readAll(f).records, [1, -3, 4, 5], 'appending after the cut gives whole lines');
});

t.test('a rewrite replaces the file and counts its lines', async (t) => {
  const f = file(t);
  for (let n = 0; n < 5; n++) f.append({ n });
  f.rewrite([{ n: 3 }, { n: 4 }]);
  t.equal(f.lines, 2);
  t.equal(readFileSync(f.path, 'utf8'), '{"n":3}\n{"n":4}\n');
  t.equal((statSync(f.path).mode & 0o777).toString(8), '600');
  f.append({ n: 5 });
  t.equal(f.lines, 3);
  t.same(readAll(f).records, [3, 4, 5]);
});

t.test("a file that cannot be read or written throws the caller's error naming it", async (t) => {
  const f = file(t);
  // Root ignores file modes; a directory where the file should be stops every access.
  mkdirSync(f.path);
  t.throws(() => readAll(f), { name: 'TestFileError', message: `${f.path}: cannot read the test records (EISDIR: illegal operation on a directory, read); fix its permissions or remove it` });
  t.throws(() => f.append({ n: 1 }), { name: 'TestFileError', message: /^.*records\.jsonl: cannot write the test records \(EISDIR.*\); nothing is done without them$/ });
  t.throws(() => f.rewrite([{ n: 1 }]), { name: 'TestFileError', message: /records\.jsonl: cannot rewrite the test records \(.*\); nothing is done without them$/ });
  t.equal(f.lines, 0, 'a failed write is not counted');

  const g = file(t);
  // Its directory gone and a file in its place: not even the new file's entry can be made.
  rmSync(join(g.path, '..'), { recursive: true });
  writeFileSync(join(g.path, '..'), '');
  t.throws(() => g.append({ n: 1 }), { name: 'TestFileError', message: /cannot write the test records \(ENOTDIR/ });
});

t.test('record(): a full filesystem keeps records in memory, in order, retried until written; append() still throws', async (t) => {
  const fs = Tmpfs.mount(t, 64);
  const events: string[] = [];
  const f = new JsonLinesFile<Rec>(join(fs.path, 'records.jsonl'), {
    what: 'the test records',
    withoutIt: 'nothing is done without them',
    error: (message) => new TestFileError(message),
    health: { failed: (e) => events.push(`failed ${(e as Error).message}`), recovered: () => events.push('recovered') },
    retryMs: 100,
  });
  f.append({ n: 1 });
  fs.fill();
  // Bigger than a page: a short line could still fit in the slack of the file's last page.
  const pad = 'x'.repeat(5000);
  f.record({ n: 2, pad }); // never throws
  f.record({ n: 3, pad });
  t.equal(f.waiting, 2);
  t.match(events[0], /^failed .*records\.jsonl: cannot write the test records \(ENOSPC/);
  t.throws(() => f.append({ n: 4, pad }), { name: 'TestFileError', message: /ENOSPC/ }, 'a record that must be on disk first is refused');
  t.same(readAll(f).records, [1], 'nothing torn or partial was left behind');
  fs.free();
  await new Promise((r) => setTimeout(r, 300));
  t.equal(f.waiting, 0);
  t.equal(events[events.length - 1], 'recovered');
  f.append({ n: 5 });
  t.same(readAll(f).records, [1, 2, 3, 5], 'the kept records reached the disk in order');

  fs.readOnly(true);
  f.record({ n: 6, pad });
  t.match(events[events.length - 1], /EROFS/);
  fs.readOnly(false);
  await new Promise((r) => setTimeout(r, 300));
  t.same(readAll(f).records, [1, 2, 3, 5, 6]);
  f.close();
});
