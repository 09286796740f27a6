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
