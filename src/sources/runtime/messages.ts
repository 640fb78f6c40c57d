// The few protobuf messages the agent exchanges with containerd, decoded by hand from the wire format.
// A generic protobuf library (@grpc/proto-loader and protobufjs) cost +5 MB of resident memory to load
// the same two .proto files; the messages here are tiny and fixed. Field numbers follow proto/*.proto,
// and a test checks every schema below against those files.

export type ScalarType = 'string' | 'bool' | 'uint64';

export interface FieldSpec {
  readonly no: number;
  readonly type: ScalarType | MessageSpec;
  readonly repeated?: boolean;
}

export interface MessageSpec {
  /** The message's name in proto/*.proto. */
  readonly name: string;
  readonly fields: { readonly [name: string]: FieldSpec };
}

type ScalarValue<T> = T extends 'string' ? string : T extends 'bool' ? boolean : T extends 'uint64' ? bigint : never;
type FieldValue<F extends FieldSpec> = F['type'] extends MessageSpec
  ? F['repeated'] extends true
    ? Array<Decoded<F['type']>>
    : Decoded<F['type']>
  : F['repeated'] extends true
    ? Array<ScalarValue<F['type']>>
    : ScalarValue<F['type']>;
export type Decoded<M extends MessageSpec> = { [K in keyof M['fields']]: FieldValue<M['fields'][K]> };

function message<const F extends Record<string, FieldSpec>>(name: string, fields: F): { name: string; fields: F } {
  return { name, fields };
}

export const VersionResponse = message('VersionResponse', {
  version: { no: 1, type: 'string' },
  revision: { no: 2, type: 'string' },
});

export const RuntimeCondition = message('RuntimeCondition', {
  type: { no: 1, type: 'string' },
  status: { no: 2, type: 'bool' },
  reason: { no: 3, type: 'string' },
  message: { no: 4, type: 'string' },
});

export const RuntimeStatus = message('RuntimeStatus', {
  conditions: { no: 1, type: RuntimeCondition, repeated: true },
});

export const StatusResponse = message('StatusResponse', {
  status: { no: 1, type: RuntimeStatus },
});

export const Image = message('Image', {
  id: { no: 1, type: 'string' },
  size: { no: 4, type: 'uint64' },
});

export const ListImagesResponse = message('ListImagesResponse', {
  images: { no: 1, type: Image, repeated: true },
});

/** Every decoded message, for the test that compares them with proto/*.proto. */
export const DECODED_MESSAGES: readonly MessageSpec[] = [
  VersionResponse,
  RuntimeCondition,
  RuntimeStatus,
  StatusResponse,
  Image,
  ListImagesResponse,
];

/** Every request the agent sends has all fields at their defaults, which proto3 encodes as no bytes. */
export const EMPTY_REQUEST = Buffer.alloc(0);

export class WireError extends Error {
  override name = 'WireError';
}

const VARINT = 0;
const FIXED64 = 1;
const LENGTH_DELIMITED = 2;
const FIXED32 = 5;

class Reader {
  pos = 0;
  constructor(private readonly buf: Buffer, private readonly what: string) {}

  get done(): boolean {
    return this.pos >= this.buf.length;
  }

  varint(): bigint {
    let result = 0n;
    for (let shift = 0n; shift < 70n; shift += 7n) {
      if (this.pos >= this.buf.length) throw new WireError(`${this.what}: truncated varint at byte ${this.pos}`);
      const byte = this.buf[this.pos++] as number;
      result |= BigInt(byte & 0x7f) << shift;
      if ((byte & 0x80) === 0) return BigInt.asUintN(64, result);
    }
    throw new WireError(`${this.what}: varint longer than 10 bytes at byte ${this.pos}`);
  }

  bytes(): Buffer {
    const length = Number(this.varint());
    if (this.pos + length > this.buf.length) {
      throw new WireError(`${this.what}: field of ${length} bytes runs past the end of the ${this.buf.length}-byte message`);
    }
    const out = this.buf.subarray(this.pos, this.pos + length);
    this.pos += length;
    return out;
  }

  skip(wireType: number, fieldNo: number): void {
    switch (wireType) {
      case VARINT:
        this.varint();
        return;
      case FIXED64:
        this.advance(8);
        return;
      case LENGTH_DELIMITED:
        this.bytes();
        return;
      case FIXED32:
        this.advance(4);
        return;
      default:
        throw new WireError(`${this.what}: field ${fieldNo} has wire type ${wireType}, which proto3 does not use`);
    }
  }

  private advance(n: number): void {
    if (this.pos + n > this.buf.length) throw new WireError(`${this.what}: truncated fixed-size field at byte ${this.pos}`);
    this.pos += n;
  }
}

function defaultOf(spec: FieldSpec): unknown {
  if (spec.repeated) return [];
  if (typeof spec.type !== 'string') return decode(spec.type, EMPTY_REQUEST);
  return spec.type === 'string' ? '' : spec.type === 'bool' ? false : 0n;
}

/** Decodes `buf` as message `spec`; fields not in the spec are skipped, as protobuf requires. */
export function decode<M extends MessageSpec>(spec: M, buf: Buffer): Decoded<M> {
  const byNumber = new Map<number, [string, FieldSpec]>();
  const out: Record<string, unknown> = {};
  for (const [name, field] of Object.entries(spec.fields)) {
    byNumber.set(field.no, [name, field]);
    out[name] = defaultOf(field);
  }
  const reader = new Reader(buf, spec.name);
  while (!reader.done) {
    const tag = reader.varint();
    const fieldNo = Number(tag >> 3n);
    const wireType = Number(tag & 7n);
    const known = byNumber.get(fieldNo);
    if (!known) {
      reader.skip(wireType, fieldNo);
      continue;
    }
    const [name, field] = known;
    const expected = field.type === 'string' || typeof field.type !== 'string' ? LENGTH_DELIMITED : VARINT;
    if (wireType !== expected) {
      // Packed repeated scalars would arrive length-delimited; no field here is a repeated scalar.
      throw new WireError(`${spec.name}.${name} (field ${fieldNo}) arrived with wire type ${wireType}, expected ${expected}`);
    }
    let value: unknown;
    if (typeof field.type !== 'string') value = decode(field.type, reader.bytes());
    else if (field.type === 'string') value = reader.bytes().toString('utf8');
    else if (field.type === 'bool') value = reader.varint() !== 0n;
    else value = reader.varint();
    if (field.repeated) (out[name] as unknown[]).push(value);
    else out[name] = value;
  }
  return out as Decoded<M>;
}
