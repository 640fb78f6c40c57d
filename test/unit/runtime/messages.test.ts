// The hand-written protobuf decoding: in step with proto/*.proto, and correct on the wire-format corners
// (unknown fields of every wire type, defaults, multi-byte varints, truncation).
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import {
  DECODED_MESSAGES,
  decode,
  ListImagesResponse,
  StatusResponse,
  VersionResponse,
  WireError,
  type MessageSpec,
} from '../../../src/sources/runtime/messages';

const protoDir = join(__dirname, '../../../src/sources/runtime/proto');

interface ProtoField {
  repeated: boolean;
  type: string;
  no: number;
}

/** Messages of the .proto files as name → field name → field (the files have no nested messages). */
function protoMessages(): Map<string, Map<string, ProtoField>> {
  const out = new Map<string, Map<string, ProtoField>>();
  for (const file of readdirSync(protoDir).filter((f) => f.endsWith('.proto'))) {
    const text = readFileSync(join(protoDir, file), 'utf8').replace(/\/\/.*$/gm, '');
    for (const m of text.matchAll(/message\s+(\w+)\s*\{([^}]*)\}/g)) {
      const fields = new Map<string, ProtoField>();
      for (const f of (m[2] as string).matchAll(/(repeated\s+)?([\w.]+)\s+(\w+)\s*=\s*(\d+)\s*;/g)) {
        fields.set(f[3] as string, { repeated: f[1] !== undefined, type: f[2] as string, no: Number(f[4]) });
      }
      out.set(m[1] as string, fields);
    }
  }
  return out;
}

t.test('every decoded message and field is declared in proto/ with the same number, type and cardinality', async (t) => {
  const declared = protoMessages();
  for (const spec of DECODED_MESSAGES) {
    const fields = declared.get(spec.name);
    if (!fields) {
      t.fail(`${spec.name} is not declared in ${protoDir}`);
      continue;
    }
    t.same([...fields.keys()].sort(), Object.keys(spec.fields).sort(), `${spec.name}: the same fields`);
    for (const [name, field] of Object.entries(spec.fields)) {
      const type = typeof field.type === 'string' ? field.type : (field.type as MessageSpec).name;
      t.same(fields.get(name), { repeated: field.repeated === true, type, no: field.no }, `${spec.name}.${name}`);
    }
  }
});

/** Wire-format builders for hand-made messages. */
const varint = (n: bigint): number[] => {
  const out: number[] = [];
  do {
    let byte = Number(n & 0x7fn);
    n >>= 7n;
    if (n > 0n) byte |= 0x80;
    out.push(byte);
  } while (n > 0n);
  return out;
};
const tag = (no: number, wire: number): number[] => varint(BigInt((no << 3) | wire));
const bytesField = (no: number, content: Buffer | number[]): number[] => [
  ...tag(no, 2),
  ...varint(BigInt(content.length)),
  ...content,
];
const str = (no: number, s: string): number[] => bytesField(no, Buffer.from(s));

t.test('decodes strings, bools, nested and repeated messages', async (t) => {
  const condition = (type: string, status: boolean, reason = '') =>
    bytesField(1, [...str(1, type), ...tag(2, 0), status ? 1 : 0, ...(reason ? str(3, reason) : [])]);
  const buf = Buffer.from(bytesField(1, [...condition('RuntimeReady', true), ...condition('NetworkReady', false, 'NoCNI')]));
  t.same(decode(StatusResponse, buf), {
    status: {
      conditions: [
        { type: 'RuntimeReady', status: true, reason: '', message: '' },
        { type: 'NetworkReady', status: false, reason: 'NoCNI', message: '' },
      ],
    },
  });
});

t.test('absent fields take proto3 defaults', async (t) => {
  t.same(decode(VersionResponse, Buffer.alloc(0)), { version: '', revision: '' });
  t.same(decode(StatusResponse, Buffer.alloc(0)), { status: { conditions: [] } });
  t.same(decode(ListImagesResponse, Buffer.alloc(0)), { images: [] });
});

t.test('unknown fields of every wire type are skipped', async (t) => {
  const buf = Buffer.from([
    ...tag(9, 0), ...varint(300n), // varint
    ...tag(10, 1), 1, 2, 3, 4, 5, 6, 7, 8, // fixed64
    ...bytesField(11, Buffer.from('ignored')), // length-delimited (e.g. a map entry)
    ...tag(12, 5), 1, 2, 3, 4, // fixed32
    ...str(1, '1.7.0'),
  ]);
  t.same(decode(VersionResponse, buf), { version: '1.7.0', revision: '' });
});

t.test('uint64 beyond 2^53 and multi-byte UTF-8 survive', async (t) => {
  const big = 2n ** 63n + 5n;
  const image = [...str(1, 'sha256:é'), ...tag(4, 0), ...varint(big)];
  t.same(decode(ListImagesResponse, Buffer.from(bytesField(1, image))), { images: [{ id: 'sha256:é', size: big }] });
});

t.test('malformed input is a WireError naming the message', async (t) => {
  t.throws(() => decode(VersionResponse, Buffer.from([...tag(1, 2), 10, 65])), {
    name: 'WireError',
    message: /VersionResponse: field of 10 bytes runs past the end of the 3-byte message/,
  });
  t.throws(() => decode(VersionResponse, Buffer.from([0x80])), WireError, 'truncated varint');
  t.throws(() => decode(VersionResponse, Buffer.from(Array(11).fill(0xff))), /longer than 10 bytes/);
  t.throws(() => decode(VersionResponse, Buffer.from([...tag(1, 0), 1])), /VersionResponse.version \(field 1\) arrived with wire type 0/);
  t.throws(() => decode(VersionResponse, Buffer.from([...tag(7, 3)])), /field 7 has wire type 3/);
});
