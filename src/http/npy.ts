/**
 * Binary forms of a float64 array: the NumPy .npy format 1.0 and raw little-endian float64, both
 * written as a stream of Buffer views over the array's own memory (no copy on little-endian hosts),
 * with their exact byte length known before the first byte is sent.
 */
import { endianness } from 'node:os';
import { Readable } from 'node:stream';

const MAGIC = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 0x01, 0x00]); // \x93NUMPY, version 1.0

/**
 * The .npy preamble for a C-order '<f8' array of this shape: magic, version, a little-endian
 * uint16 header length, then the header dict padded with spaces and ended by '\n' so that the
 * whole preamble is a multiple of 64 bytes.
 */
export function npyHeader(shape: readonly number[]): Buffer {
  const dims = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  const dict = `{'descr': '<f8', 'fortran_order': False, 'shape': ${dims}, }`;
  const unpadded = MAGIC.length + 2 + dict.length + 1;
  const total = Math.ceil(unpadded / 64) * 64;
  const headerLength = total - MAGIC.length - 2;
  if (headerLength > 0xffff) throw new Error(`npy header of ${headerLength} bytes does not fit format 1.0`);
  const out = Buffer.alloc(total, 0x20);
  MAGIC.copy(out, 0);
  out.writeUInt16LE(headerLength, MAGIC.length);
  out.write(dict, MAGIC.length + 2, 'latin1');
  out[total - 1] = 0x0a;
  return out;
}

/** Bytes per chunk of a streamed array: large enough to amortise, small enough to keep backpressure meaningful. */
export const CHUNK_BYTES = 1 << 20;

const LITTLE_ENDIAN_HOST = endianness() === 'LE';

/**
 * A readable stream of `prefix` (if any) followed by the array's bytes in little-endian order.
 * Each chunk is a view over `data`'s memory; the stream pulls one chunk per `read` call, so a
 * slow client holds back the producer (backpressure) and a closed socket stops it.
 */
export function float64Stream(data: Float64Array, prefix?: Buffer): Readable {
  let offset = 0;
  let pending: Buffer | undefined = prefix;
  const end = data.byteLength;
  return new Readable({
    highWaterMark: CHUNK_BYTES,
    read() {
      if (pending !== undefined) {
        const first = pending;
        pending = undefined;
        if (!this.push(first)) return;
      }
      while (offset < end) {
        const n = Math.min(CHUNK_BYTES, end - offset);
        let chunk = Buffer.from(data.buffer, data.byteOffset + offset, n);
        if (!LITTLE_ENDIAN_HOST) chunk = Buffer.from(chunk).swap64();
        offset += n;
        if (!this.push(chunk)) return;
      }
      this.push(null);
    },
  });
}

/** Reads a .npy buffer of '<f8' data (C order) back into its shape and values; used by the tests and clients. */
export function parseNpy(buf: Buffer): { shape: number[]; data: Float64Array } {
  if (buf.subarray(0, 6).toString('latin1') !== '\x93NUMPY') throw new Error('not a .npy file');
  const major = buf[6];
  const headerLength = major === 1 ? buf.readUInt16LE(8) : buf.readUInt32LE(8);
  const start = major === 1 ? 10 : 12;
  const header = buf.subarray(start, start + headerLength).toString('latin1');
  if (!header.includes("'descr': '<f8'") || !header.includes("'fortran_order': False")) throw new Error(`unexpected .npy header ${header}`);
  const m = /'shape': \(([^)]*)\)/.exec(header);
  if (!m) throw new Error(`no shape in .npy header ${header}`);
  const shape = m[1].split(',').map((s) => s.trim()).filter((s) => s !== '').map(Number);
  const bytes = buf.subarray(start + headerLength);
  const data = new Float64Array(bytes.length / 8);
  for (let i = 0; i < data.length; i++) data[i] = bytes.readDoubleLE(i * 8);
  return { shape, data };
}

/** Element types a request part may use: float64 or float32, either byte order. */
const READABLE_DESCR: Readonly<Record<string, { bytes: 4 | 8; little: boolean }>> = {
  '<f8': { bytes: 8, little: true },
  '>f8': { bytes: 8, little: false },
  '<f4': { bytes: 4, little: true },
  '>f4': { bytes: 4, little: false },
};

/** What a request part's .npy preamble says, once checked. */
export interface NpyHeader {
  readonly descr: string;
  readonly shape: readonly number[];
  /** Bytes of magic, version, length and header dict: where the data starts. */
  readonly preambleBytes: number;
  /** Bytes of data the shape and dtype promise. */
  readonly dataBytes: number;
}

/** How a reader refuses: `invalid` (the part is not an acceptable .npy array) or `tooLarge` (over the byte limit). */
export type NpyRefusal = (kind: 'invalid' | 'tooLarge', detail: string) => Error;

const formatShape = (shape: readonly number[]): string => (shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`);

/**
 * Parses and checks a .npy preamble (format 1.0, 2.0 or 3.0) for a request array of `ndim`
 * dimensions: float64 or float32, C order, no empty dimension, at most `maxBytes` of data.
 * Returns undefined while `head` is too short to hold the whole preamble.
 */
export function readNpyHeader(head: Buffer, field: string, ndim: number, maxBytes: number, refuse: NpyRefusal): NpyHeader | undefined {
  const what = `${field}: the .npy part`;
  if (head.length >= 6 && head.subarray(0, 6).toString('latin1') !== '\x93NUMPY') {
    throw refuse('invalid', `${what} does not start with the .npy magic \\x93NUMPY; send the bytes numpy.save writes, or give ${field} as JSON in the request part`);
  }
  if (head.length < 12) return undefined;
  const major = head[6];
  if (major < 1 || major > 3) throw refuse('invalid', `${what} is .npy format ${major}.${head[7]}; formats 1.0 to 3.0 are read`);
  const start = major === 1 ? 10 : 12;
  const headerLength = major === 1 ? head.readUInt16LE(8) : head.readUInt32LE(8);
  if (headerLength > 1 << 16) throw refuse('invalid', `${what} has a header of ${headerLength} bytes; a .npy header of an array is a few dozen`);
  if (head.length < start + headerLength) return undefined;
  const dict = head.subarray(start, start + headerLength).toString(major === 3 ? 'utf8' : 'latin1');
  const descr = /'descr'\s*:\s*'([^']*)'/.exec(dict)?.[1];
  const fortran = /'fortran_order'\s*:\s*(True|False)/.exec(dict)?.[1];
  const shapeText = /'shape'\s*:\s*\(([^)]*)\)/.exec(dict)?.[1];
  if (descr === undefined || fortran === undefined || shapeText === undefined) {
    throw refuse('invalid', `${what} has a header numpy would not write (${dict.trim()}); structured dtypes are not read`);
  }
  const type = READABLE_DESCR[descr];
  if (!type) {
    throw refuse('invalid', `${what} has dtype '${descr}'; send float64 ('<f8') or float32 ('<f4'), e.g. numpy.save(f, x.astype(numpy.float64))`);
  }
  if (fortran === 'True') {
    throw refuse('invalid', `${what} is in Fortran (column-major) order; send it in C order, e.g. numpy.save(f, numpy.ascontiguousarray(x))`);
  }
  const dims = shapeText.split(',').map((s) => s.trim()).filter((s) => s !== '');
  if (!dims.every((d) => /^\d+$/.test(d))) throw refuse('invalid', `${what} has shape (${shapeText}), which is not a tuple of sizes`);
  const shape = dims.map(Number);
  if (shape.length !== ndim) {
    const want = ndim === 1 ? 'a vector (1-D, shape (W,))' : `a ${ndim}-D array (shape (N, ${field === 'targets' ? 'K' : 'D'}))`;
    throw refuse('invalid', `${what} has shape ${formatShape(shape)}, ${shape.length}-D; ${field} must be ${want}`);
  }
  if (shape.some((d) => d === 0)) throw refuse('invalid', `${what} has shape ${formatShape(shape)}, which holds no values; give at least one ${ndim === 1 ? 'entry' : 'data point'}`);
  const count = shape.reduce((a, b) => a * b, 1);
  const dataBytes = count * type.bytes;
  if (!Number.isSafeInteger(dataBytes) || count * 8 > maxBytes) {
    throw refuse('tooLarge', `${what} has shape ${formatShape(shape)}, ${(count * 8 / 1048576).toFixed(1)} MiB as float64; the limit is ${(maxBytes / 1048576).toFixed(1)} MiB (BODY_LIMIT)`);
  }
  return { descr, shape, preambleBytes: start + headerLength, dataBytes };
}

/**
 * Receives a .npy request part chunk by chunk into one Float64Array of its final size, without
 * an intermediate nested array or a whole-part Buffer: '<f8' bytes land directly in the array's
 * memory; float32 and big-endian data are converted once at the end. `finish` checks that the
 * data is exactly as long as the header promises and that every value is finite.
 */
export class NpyReceiver {
  private head: Buffer = Buffer.alloc(0);
  private header: NpyHeader | undefined;
  private target: Float64Array | undefined;
  private bytes: Uint8Array | undefined;
  private offset = 0;

  constructor(
    private readonly field: string,
    private readonly ndim: number,
    private readonly maxBytes: number,
    private readonly refuse: NpyRefusal,
  ) {}

  push(chunk: Buffer): void {
    if (this.header === undefined) {
      this.head = this.head.length === 0 ? chunk : Buffer.concat([this.head, chunk]);
      const header = readNpyHeader(this.head, this.field, this.ndim, this.maxBytes, this.refuse);
      if (header === undefined) return;
      this.header = header;
      const count = header.dataBytes / READABLE_DESCR[header.descr].bytes;
      if (header.descr === '<f8' && LITTLE_ENDIAN_HOST) {
        this.target = new Float64Array(count);
        this.bytes = new Uint8Array(this.target.buffer);
      } else {
        this.bytes = new Uint8Array(header.dataBytes);
      }
      const rest = this.head.subarray(header.preambleBytes);
      this.head = Buffer.alloc(0);
      this.write(rest);
      return;
    }
    this.write(chunk);
  }

  private write(chunk: Uint8Array): void {
    const bytes = this.bytes as Uint8Array;
    if (this.offset + chunk.length > bytes.length) {
      throw this.refuse('invalid', `${this.field}: the .npy part has more data than its header's shape ${formatShape((this.header as NpyHeader).shape)} of '${(this.header as NpyHeader).descr}' holds (${bytes.length} bytes)`);
    }
    bytes.set(chunk, this.offset);
    this.offset += chunk.length;
  }

  /** The array, row-major, with its shape. */
  finish(): { shape: number[]; data: Float64Array } {
    const header = this.header;
    if (header === undefined) {
      throw this.refuse('invalid', `${this.field}: the .npy part ends inside its preamble (${this.head.length} bytes); send the whole file numpy.save writes`);
    }
    const bytes = this.bytes as Uint8Array;
    if (this.offset !== bytes.length) {
      throw this.refuse('invalid', `${this.field}: the .npy part has ${this.offset} bytes of data but its header's shape ${formatShape(header.shape)} of '${header.descr}' needs ${bytes.length}`);
    }
    let data = this.target;
    if (data === undefined) {
      const type = READABLE_DESCR[header.descr];
      const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      data = new Float64Array(bytes.length / type.bytes);
      if (type.bytes === 8) for (let i = 0; i < data.length; i++) data[i] = view.getFloat64(i * 8, type.little);
      else for (let i = 0; i < data.length; i++) data[i] = view.getFloat32(i * 4, type.little);
    }
    for (let i = 0; i < data.length; i++) {
      if (!Number.isFinite(data[i])) {
        const cols = header.shape.length === 2 ? header.shape[1] : 0;
        const at = cols ? `[${Math.floor(i / cols)}][${i % cols}]` : `[${i}]`;
        throw this.refuse('invalid', `${this.field}${at} is ${data[i]} in the .npy part; every value must be a finite number`);
      }
    }
    return { shape: [...header.shape], data };
  }
}
