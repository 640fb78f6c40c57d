// The Journal Export Format reader: entries and fields whatever the chunking of the stream, binary
// fields, and mistakes named by line.
import t from 'tap';
import { looksLikeExport, readExport, type ExportEntry } from '../../../src/sources/journal/export-format';
import { exportEntry } from '../../helpers/journal-files';

async function* chunked(data: Buffer, size: number): AsyncGenerator<Buffer> {
  for (let i = 0; i < data.length; i += size) yield data.subarray(i, i + size);
}

async function parse(data: Buffer, size = 1 << 16): Promise<ExportEntry[]> {
  const out: ExportEntry[] = [];
  for await (const e of readExport(chunked(data, size), 'input')) out.push(e);
  return out;
}

const stream = Buffer.concat(
  [
    exportEntry({ realtimeUs: 1, fields: { _TRANSPORT: 'kernel', MESSAGE: 'a=b c' } }),
    exportEntry({ realtimeUs: 2, fields: { MESSAGE: Buffer.from('two\nlines \xff', 'latin1'), _TRANSPORT: 'kernel' } }),
    '_SYSTEMD_UNIT=a.service\n_SYSTEMD_UNIT=b.service\nMESSAGE=\n\n',
  ].map((e) => (typeof e === 'string' ? Buffer.from(e) : e)),
);

t.test('entries and fields, whatever the chunk size', async (t) => {
  for (const size of [1, 2, 7, 8, 9, 64, 1 << 16]) {
    const entries = await parse(stream, size);
    t.equal(entries.length, 3, `chunks of ${size}`);
    t.same(entries[0]?.fields.get('MESSAGE'), ['a=b c'], 'text value cut at the first "="');
    t.same(entries[0]?.fields.get('__REALTIME_TIMESTAMP'), ['1']);
    t.same(entries[1]?.fields.get('MESSAGE'), ['two\nlines \ufffd'], 'binary value with its newline; invalid UTF-8 replaced');
    t.same(entries[1]?.fields.get('_TRANSPORT'), ['kernel'], 'fields after a binary one');
    t.same(entries[2]?.fields.get('_SYSTEMD_UNIT'), ['a.service', 'b.service'], 'a repeated field keeps both values');
    t.same(entries[2]?.fields.get('MESSAGE'), ['']);
    t.same(entries.map((e) => e.line), [1, 7, 15], 'the line each entry starts on (the newline inside a binary value counts)');
  }
});

t.test('the last entry may end without the empty line; blank lines between entries are skipped', async (t) => {
  const entries = await parse(Buffer.from('\n\nMESSAGE=one\n\n\n\nMESSAGE=two\n'));
  t.same(entries.map((e) => [e.line, e.fields.get('MESSAGE')?.[0]]), [[3, 'one'], [7, 'two']]);
});

t.test('mistakes name the line', async (t) => {
  const fails = async (data: Buffer | string, message: string | RegExp): Promise<void> => {
    await t.rejects(parse(Buffer.from(data)), { code: 'INPUT_INVALID', message });
  };
  await fails('MESSAGE=ok\n\nnot a field\n', 'input:3: expected a journal field (NAME=value, or NAME and a binary value) but got "not a field": field names use only A-Z, 0-9 and _ (input whose first line is NAME=value is read as journalctl -o export output)');
  await fails('MESSAGE=cut', 'input:1: the input ends inside a field (its last line has no newline): is the export stream complete?');
  await fails('A=1\nMESSAGE\n\x05\x00\x00', 'input:2: binary field MESSAGE: the input ends inside its 64-bit length');
  await fails('MESSAGE\n\x05\x00\x00\x00\x00\x00\x00\x00abc', 'input:1: binary field MESSAGE: declares 5 bytes of data, but only 3 follow');
  await fails('MESSAGE\n\x03\x00\x00\x00\x00\x00\x00\x00abcd\n', 'input:1: binary field MESSAGE: 3 bytes of data are not followed by a newline (wrong length?)');
  await fails(Buffer.concat([Buffer.from('MESSAGE\n'), Buffer.alloc(8, 0xff), Buffer.from('x\n')]), /input:1: binary field MESSAGE: length 18446744073709551615 is not plausible/);
});

t.test('format detection: a first line that is a journal field', async (t) => {
  t.ok(looksLikeExport('__CURSOR=s=abc;i=1'));
  t.ok(looksLikeExport('__REALTIME_TIMESTAMP=1'));
  t.ok(looksLikeExport('MESSAGE=hello'));
  t.notOk(looksLikeExport('INFO: task docker:20744 blocked for more than 120 seconds.'));
  t.notOk(looksLikeExport('[  12.345] Out of memory: Killed process 1 (a)'));
  t.notOk(looksLikeExport('kernel: X=1'));
});
