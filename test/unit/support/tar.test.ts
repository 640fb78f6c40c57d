// The support bundle's tar writer, read back by the system's GNU tar.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { TarWriter } from '../../../src/support/tar';

t.test('GNU tar lists and unpacks what the writer wrote, long names and binary data included', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'nha-tar-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const when = new Date('2026-01-02T03:04:05Z');
  const w = new TarWriter(when);
  const long = `b/${'d'.repeat(90)}/${'f'.repeat(80)}.txt`; // 175 bytes: needs the ustar prefix field
  const binary = Buffer.from(Array.from({ length: 1500 }, (_, i) => i % 256));
  w.file('b/README.txt', 'hello\n');
  w.file(long, 'long name\n');
  w.file('b/x/data.bin', binary, 0o600);
  w.file('b/empty', '');
  const archive = join(dir, 'a.tar.gz');
  writeFileSync(archive, w.finish());

  const list = spawnSync('tar', ['-tvzf', archive], { encoding: 'utf8', env: { ...process.env, TZ: 'UTC', LC_ALL: 'C' } });
  t.equal(list.status, 0, list.stderr);
  t.equal(list.stderr, '', 'no warnings (checksums, headers)');
  const lines = list.stdout.trim().split('\n');
  t.same(
    lines.map((l) => l.split(/\s+/).at(-1)),
    ['b/', 'b/README.txt', `b/${'d'.repeat(90)}/`, long, 'b/x/', 'b/x/data.bin', 'b/empty'],
    'parent directories first, every file once',
  );
  t.match(lines[1], /^-rw-r--r-- root\/root\s+6 2026-01-02 03:04 b\/README.txt$/);
  t.match(lines[5], /^-rw------- root\/root\s+1500 /);

  const out = join(dir, 'out');
  spawnSync('mkdir', [out]);
  const x = spawnSync('tar', ['-xzf', archive, '-C', out], { encoding: 'utf8' });
  t.equal(x.status, 0, x.stderr);
  t.equal(readFileSync(join(out, long), 'utf8'), 'long name\n');
  t.same(readFileSync(join(out, 'b/x/data.bin')), binary);
  t.equal(statSync(join(out, 'b/empty')).size, 0);
});

t.test('paths that would escape the archive or do not fit are refused', async (t) => {
  const w = new TarWriter(new Date());
  t.throws(() => w.file('/etc/passwd', 'x'), /relative path/);
  t.throws(() => w.file('a/../../x', 'x'), /relative path/);
  t.throws(() => w.file(`a/${'n'.repeat(120)}`, 'x'), /too long/);
});
