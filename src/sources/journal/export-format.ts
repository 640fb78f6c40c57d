// Reads journald's Journal Export Format (`journalctl -o export`, systemd-journal-remote's input) as a
// stream: entries are runs of fields ended by an empty line; a field is `NAME=value\n`, or, when the
// value is not plain text, `NAME\n`, its length as a 64-bit little-endian integer, the bytes and `\n`.
// Mistakes are reported with the input's name and line.
import { constants } from 'node:buffer';
import { AgentError } from '../../errors';
import { FIELD_NAME } from './reader';

export interface ExportEntry {
  /** The input line (1-based) where the entry starts. */
  line: number;
  /** Field values as text (invalid UTF-8 replaced); a field may repeat, as in the journal. */
  fields: Map<string, string[]>;
}

const NEWLINE = 0x0a;
const EQUALS = 0x3d;

/** Whether the first line of an input is an export-format field (`NAME=value`), not a log line. */
export function looksLikeExport(firstLine: string): boolean {
  return /^[A-Z0-9_]+=/.test(firstLine);
}

export async function* readExport(chunks: AsyncIterable<Buffer>, name: string): AsyncGenerator<ExportEntry> {
  const source = chunks[Symbol.asyncIterator]();
  let buf: Buffer = Buffer.alloc(0);
  let pos = 0;
  let line = 1;
  let eof = false;
  const fail = (at: number, what: string): never => {
    throw new AgentError('INPUT_INVALID', `${name}:${at}: ${what}`);
  };
  /** Makes at least `n` unread bytes available; false when the input ends first. */
  const ensure = async (n: number): Promise<boolean> => {
    while (buf.length - pos < n) {
      if (eof) return false;
      const next = await source.next();
      if (next.done) {
        eof = true;
        return false;
      }
      buf = pos === buf.length ? next.value : Buffer.concat([buf.subarray(pos), next.value]);
      pos = 0;
    }
    return true;
  };
  const consume = (n: number): void => {
    for (let i = buf.indexOf(NEWLINE, pos); i >= 0 && i < pos + n; i = buf.indexOf(NEWLINE, i + 1)) line++;
    pos += n;
  };

  let entry: ExportEntry | undefined;
  for (;;) {
    // The next line: up to a newline, or what is left at the end of the input.
    let scanned = 0;
    let nl: number;
    for (;;) {
      nl = buf.indexOf(NEWLINE, pos + scanned);
      if (nl >= 0) break;
      scanned = buf.length - pos;
      if (!(await ensure(scanned + 1))) break;
    }
    if (nl < 0 && pos === buf.length) break;
    // Every field ends with a newline: a last line without one means the stream was cut off.
    if (nl < 0) fail(line, 'the input ends inside a field (its last line has no newline): is the export stream complete?');
    const end = nl;
    if (end === pos) {
      consume(1);
      if (entry) yield entry;
      entry = undefined;
      continue;
    }
    entry ??= { line, fields: new Map() };
    const eq = buf.subarray(pos, end).indexOf(EQUALS);
    const nameEnd = eq >= 0 ? pos + eq : end;
    const field = buf.toString('latin1', pos, nameEnd);
    if (!FIELD_NAME.test(field)) {
      fail(
        line,
        `expected a journal field (NAME=value, or NAME and a binary value) but got ${JSON.stringify(buf.toString('utf8', pos, Math.min(end, pos + 60)))}: ` +
          'field names use only A-Z, 0-9 and _ (input whose first line is NAME=value is read as journalctl -o export output)',
      );
    }
    let value: string;
    if (nameEnd < end) {
      value = buf.toString('utf8', nameEnd + 1, end);
      consume(end - pos + 1);
    } else {
      const at = line;
      const header = end - pos + 1;
      if (!(await ensure(header + 8))) fail(at, `binary field ${field}: the input ends inside its 64-bit length`);
      const length = buf.readBigUInt64LE(pos + header);
      // Longer than any string V8 holds: a wrong length, which would otherwise buffer the whole input first.
      if (length > BigInt(constants.MAX_STRING_LENGTH)) fail(at, `binary field ${field}: length ${length} is not plausible (is it a 64-bit little-endian number?)`);
      const size = Number(length);
      if (!(await ensure(header + 8 + size + 1))) {
        const left = buf.length - pos - header - 8;
        fail(at, `binary field ${field}: declares ${size} bytes of data, ${left < size ? `but only ${left} follow` : 'but no newline follows them'}`);
      }
      const dataStart = pos + header + 8;
      if (buf[dataStart + size] !== NEWLINE) fail(at, `binary field ${field}: ${size} bytes of data are not followed by a newline (wrong length?)`);
      value = buf.toString('utf8', dataStart, dataStart + size);
      consume(header + 8 + size + 1);
    }
    const values = entry.fields.get(field);
    if (values) values.push(value);
    else entry.fields.set(field, [value]);
  }
  if (entry) yield entry;
}
