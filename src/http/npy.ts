/**
 * Binary forms of a float64 array: the NumPy .npy format 1.0 and raw little-endian float64, both
 * written as a stream of Buffer views over the array's own memory (no copy on little-endian hosts),
 * with their exact byte length known before the first byte is sent.
 */
import { endianness } from 'node:os';
import { Readable } from 'node:stream';
import { ServiceError, type EdgeErrorParams } from '../errors.ts';
import { DenseArray } from './dense.ts';

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

/** Element types a request part may use: float64 or float32, either byte order. */
const READABLE_DESCR: Readonly<Record<string, { bytes: 4 | 8; little: boolean }>> = {
  '<f8': { bytes: 8, little: true },
  '>f8': { bytes: 8, little: false },
  '<f4': { bytes: 4, little: true },
  '>f4': { bytes: 4, little: false },
};

type NpyRefusal = EdgeErrorParams['INVALID_ARRAY_PART'];
type WithoutField<T> = T extends unknown ? Omit<T, 'field'> : never;

/** What a request part's .npy preamble says, once checked. */
export interface NpyHeader {
  readonly descr: string;
  readonly shape: readonly number[];
  /** Bytes of magic, version, length and header dict: where the data starts. */
  readonly preambleBytes: number;
  /** Bytes of data the shape and dtype promise. */
  readonly dataBytes: number;
}


/**
 * Parses and checks a .npy preamble (format 1.0, 2.0 or 3.0) for a request array of `ndim`
 * dimensions: float64 or float32, C order, no empty dimension, at most `maxBytes` of data.
 * Returns undefined while `head` is too short to hold the whole preamble.
 */
export function readNpyHeader(head: Buffer, field: string, ndim: number, maxBytes: number): NpyHeader | undefined {
  const invalid = (params: WithoutField<NpyRefusal>) => new ServiceError('INVALID_ARRAY_PART', { ...params, field } as NpyRefusal);
  if (head.length >= 6 && head.subarray(0, 6).toString('latin1') !== '\x93NUMPY') throw invalid({ reason: 'magic' });
  if (head.length < 12) return undefined;
  const major = head[6];
  if (major < 1 || major > 3) throw invalid({ reason: 'format', major, minor: head[7] });
  const start = major === 1 ? 10 : 12;
  const headerLength = major === 1 ? head.readUInt16LE(8) : head.readUInt32LE(8);
  if (headerLength > 1 << 16) throw invalid({ reason: 'headerLength', bytes: headerLength });
  if (head.length < start + headerLength) return undefined;
  const dict = head.subarray(start, start + headerLength).toString(major === 3 ? 'utf8' : 'latin1');
  const descr = /'descr'\s*:\s*'([^']*)'/.exec(dict)?.[1];
  const fortran = /'fortran_order'\s*:\s*(True|False)/.exec(dict)?.[1];
  const shapeText = /'shape'\s*:\s*\(([^)]*)\)/.exec(dict)?.[1];
  if (descr === undefined || fortran === undefined || shapeText === undefined) throw invalid({ reason: 'header', header: dict.trim() });
  const type = READABLE_DESCR[descr];
  if (!type) throw invalid({ reason: 'dtype', descr });
  if (fortran === 'True') throw invalid({ reason: 'fortran' });
  const dims = shapeText.split(',').map((s) => s.trim()).filter((s) => s !== '');
  if (!dims.every((d) => /^\d+$/.test(d))) throw invalid({ reason: 'shapeText', text: shapeText });
  const shape = dims.map(Number);
  if (shape.length !== ndim) throw invalid({ reason: 'dimensions', shape, ndim });
  if (shape.some((d) => d === 0)) throw invalid({ reason: 'empty', shape, ndim });
  const count = shape.reduce((a, b) => a * b, 1);
  const dataBytes = count * type.bytes;
  if (!Number.isSafeInteger(dataBytes) || count * 8 > maxBytes) throw new ServiceError('PAYLOAD_TOO_LARGE', { reason: 'npy', field, shape, limit: maxBytes });
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
  ) {}

  push(chunk: Buffer): void {
    if (this.header === undefined) {
      this.head = this.head.length === 0 ? chunk : Buffer.concat([this.head, chunk]);
      const header = readNpyHeader(this.head, this.field, this.ndim, this.maxBytes);
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
      const { shape, descr } = this.header as NpyHeader;
      throw new ServiceError('INVALID_ARRAY_PART', { reason: 'tooMuchData', field: this.field, shape, descr, bytes: bytes.length });
    }
    bytes.set(chunk, this.offset);
    this.offset += chunk.length;
  }

  /** The array, row-major, with its shape. */
  finish(): DenseArray {
    const header = this.header;
    const field = this.field;
    if (header === undefined) throw new ServiceError('INVALID_ARRAY_PART', { reason: 'truncatedPreamble', field, bytes: this.head.length });
    const bytes = this.bytes as Uint8Array;
    if (this.offset !== bytes.length) {
      throw new ServiceError('INVALID_ARRAY_PART', { reason: 'truncatedData', field, bytes: this.offset, need: bytes.length, shape: header.shape, descr: header.descr });
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
        const index = cols ? [Math.floor(i / cols), i % cols] : [i];
        throw new ServiceError('INVALID_ARRAY_PART', { reason: 'notFinite', field, index, value: data[i] });
      }
    }
    return new DenseArray([...header.shape], data);
  }
}
