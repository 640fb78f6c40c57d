// A gzipped tar archive built in memory: POSIX ustar headers, directories and regular files only, owned by
// root. That is all the support bundle needs. The `tar` package (7.5, its `create` alone, bundled and
// minified as the agent is) adds 90 kB to the bundle the daemon keeps in its heap, for features
// (extraction, streams, links, pax, sparse files) the bundle never uses; this writer and the whole
// `bundle` command add 10 kB (dist/node-health-agent.js 1,216,757 -> 1,226,339 bytes).
import { gzipSync } from 'node:zlib';

const BLOCK = 512;

function field(buf: Buffer, offset: number, length: number, value: string): void {
  buf.write(value, offset, length, 'utf8');
}

/** An octal number field: digits padded to length-1, then NUL. */
function octal(buf: Buffer, offset: number, length: number, value: number): void {
  field(buf, offset, length, `${value.toString(8).padStart(length - 1, '0')}\0`);
}

/** ustar keeps names up to 100 bytes, or 255 split at a "/" into a prefix (155) and a name (100). */
function splitName(path: string): { name: string; prefix: string } {
  if (Buffer.byteLength(path) <= 100) return { name: path, prefix: '' };
  for (let i = path.lastIndexOf('/', path.length - 2); i > 0; i = path.lastIndexOf('/', i - 1)) {
    const prefix = path.slice(0, i);
    const name = path.slice(i + 1);
    if (Buffer.byteLength(prefix) <= 155 && Buffer.byteLength(name) <= 100) return { name, prefix };
  }
  throw new Error(`tar: the path ${path} is too long for a ustar header`);
}

export class TarWriter {
  private readonly blocks: Buffer[] = [];
  private readonly dirs = new Set<string>();

  constructor(private readonly mtime: Date) {}

  /** Adds a regular file; its parent directories are added first (once). */
  file(path: string, data: string | Buffer, mode = 0o644): void {
    this.parents(path);
    const body = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
    this.blocks.push(this.header(path, body.length, mode, '0'), body);
    const pad = (BLOCK - (body.length % BLOCK)) % BLOCK;
    if (pad > 0) this.blocks.push(Buffer.alloc(pad));
  }

  /** The archive so far, closed by two empty blocks, gzipped. */
  finish(): Buffer {
    return gzipSync(Buffer.concat([...this.blocks, Buffer.alloc(2 * BLOCK)]), { level: 9 });
  }

  private parents(path: string): void {
    const parts = path.split('/');
    for (let i = 1; i < parts.length; i++) {
      const dir = `${parts.slice(0, i).join('/')}/`;
      if (this.dirs.has(dir)) continue;
      this.dirs.add(dir);
      this.blocks.push(this.header(dir, 0, 0o755, '5'));
    }
  }

  private header(path: string, size: number, mode: number, type: '0' | '5'): Buffer {
    if (path.startsWith('/') || path.split('/').includes('..')) throw new Error(`tar: ${path} must be a relative path inside the archive`);
    const h = Buffer.alloc(BLOCK);
    const { name, prefix } = splitName(path);
    field(h, 0, 100, name);
    octal(h, 100, 8, mode);
    octal(h, 108, 8, 0); // uid
    octal(h, 116, 8, 0); // gid
    octal(h, 124, 12, size);
    octal(h, 136, 12, Math.floor(this.mtime.getTime() / 1000));
    field(h, 148, 8, '        '); // checksum: spaces while it is computed
    field(h, 156, 1, type);
    field(h, 257, 6, 'ustar\0');
    field(h, 263, 2, '00');
    field(h, 265, 32, 'root');
    field(h, 297, 32, 'root');
    field(h, 345, 155, prefix);
    let sum = 0;
    for (const byte of h) sum += byte;
    field(h, 148, 8, `${sum.toString(8).padStart(6, '0')}\0 `);
    return h;
  }
}
