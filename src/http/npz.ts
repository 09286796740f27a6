/**
 * NumPy .npz answers: an uncompressed (stored) zip whose members are .npy files, which
 * `numpy.load(io.BytesIO(body))` opens as it is. Streamed with an exact Content-Length known
 * before the first byte: every member's size is known up front; each member's CRC-32 is computed
 * as its bytes go out (zlib.crc32) and written in a data descriptor after it (flag bit 3) and in
 * the central directory at the end. ZIP64 records are used where a size or offset passes 4 GiB.
 */
import { endianness } from 'node:os';
import { crc32 } from 'node:zlib';
import { Readable } from 'node:stream';
import { CHUNK_BYTES, npyHeader } from './npy.ts';

/** A member: its name inside the zip (without .npy) and its array. */
export interface NpzMember {
  readonly name: string;
  readonly data: Float64Array;
  readonly shape: readonly number[];
}

const LOCAL = 0x04034b50, DESCRIPTOR = 0x08074b50, CENTRAL = 0x02014b50, END = 0x06054b50, END64 = 0x06064b50, LOCATOR64 = 0x07064b50;
const MAX32 = 0xffffffff;
const BIG_ENDIAN_HOST = endianness() === 'BE';
/** Flags: sizes and CRC in a data descriptor (bit 3), UTF-8 names (bit 11). */
const FLAGS = 0x0808;
/** 1980-01-01 00:00 in DOS time and date: a fixed time, so the same answer gives the same bytes. */
const DOS_TIME = 0, DOS_DATE = (0 << 9) | (1 << 5) | 1;

interface Planned {
  readonly name: Buffer;
  readonly header: Buffer;
  readonly data: Float64Array;
  readonly size: number;
  readonly offset: number;
  readonly zip64: boolean;
}

/** Where every member goes, and the total length of the file. */
function plan(members: readonly NpzMember[], forceZip64: boolean): { planned: Planned[]; centralOffset: number; centralSize: number; zip64: boolean; total: number } {
  let offset = 0;
  const planned: Planned[] = [];
  for (const m of members) {
    const name = Buffer.from(`${m.name}.npy`, 'utf8');
    const header = npyHeader(m.shape);
    const size = header.length + m.data.byteLength;
    const zip64 = forceZip64 || size >= MAX32 || offset >= MAX32;
    planned.push({ name, header, data: m.data, size, offset, zip64 });
    offset += 30 + name.length + (zip64 ? 20 : 0) + size + (zip64 ? 24 : 16);
  }
  const centralOffset = offset;
  let centralSize = 0;
  for (const p of planned) centralSize += 46 + p.name.length + (p.zip64 ? 28 : 0);
  const zip64 = forceZip64 || planned.some((p) => p.zip64) || centralOffset >= MAX32 || planned.length >= 0xffff;
  const total = centralOffset + centralSize + (zip64 ? 56 + 20 : 0) + 22;
  return { planned, centralOffset, centralSize, zip64, total };
}

function localHeader(p: Planned): Buffer {
  const b = Buffer.alloc(30 + p.name.length + (p.zip64 ? 20 : 0));
  b.writeUInt32LE(LOCAL, 0);
  b.writeUInt16LE(p.zip64 ? 45 : 20, 4);
  b.writeUInt16LE(FLAGS, 6);
  b.writeUInt16LE(0, 8); // stored
  b.writeUInt16LE(DOS_TIME, 10);
  b.writeUInt16LE(DOS_DATE, 12);
  b.writeUInt32LE(0, 14); // CRC in the descriptor
  b.writeUInt32LE(p.zip64 ? MAX32 : p.size, 18);
  b.writeUInt32LE(p.zip64 ? MAX32 : p.size, 22);
  b.writeUInt16LE(p.name.length, 26);
  b.writeUInt16LE(p.zip64 ? 20 : 0, 28);
  p.name.copy(b, 30);
  if (p.zip64) {
    const e = 30 + p.name.length;
    b.writeUInt16LE(0x0001, e);
    b.writeUInt16LE(16, e + 2);
    b.writeBigUInt64LE(BigInt(p.size), e + 4);
    b.writeBigUInt64LE(BigInt(p.size), e + 12);
  }
  return b;
}

function descriptor(p: Planned, crc: number): Buffer {
  const b = Buffer.alloc(p.zip64 ? 24 : 16);
  b.writeUInt32LE(DESCRIPTOR, 0);
  b.writeUInt32LE(crc >>> 0, 4);
  if (p.zip64) {
    b.writeBigUInt64LE(BigInt(p.size), 8);
    b.writeBigUInt64LE(BigInt(p.size), 16);
  } else {
    b.writeUInt32LE(p.size, 8);
    b.writeUInt32LE(p.size, 12);
  }
  return b;
}

function centralEntry(p: Planned, crc: number): Buffer {
  const b = Buffer.alloc(46 + p.name.length + (p.zip64 ? 28 : 0));
  b.writeUInt32LE(CENTRAL, 0);
  b.writeUInt16LE(p.zip64 ? 45 : 20, 4); // made by (MS-DOS / any)
  b.writeUInt16LE(p.zip64 ? 45 : 20, 6);
  b.writeUInt16LE(FLAGS, 8);
  b.writeUInt16LE(0, 10);
  b.writeUInt16LE(DOS_TIME, 12);
  b.writeUInt16LE(DOS_DATE, 14);
  b.writeUInt32LE(crc >>> 0, 16);
  b.writeUInt32LE(p.zip64 ? MAX32 : p.size, 20);
  b.writeUInt32LE(p.zip64 ? MAX32 : p.size, 24);
  b.writeUInt16LE(p.name.length, 28);
  b.writeUInt16LE(p.zip64 ? 28 : 0, 30);
  b.writeUInt16LE(0, 32); // comment
  b.writeUInt16LE(0, 34); // disk
  b.writeUInt16LE(0, 36); // internal attributes
  b.writeUInt32LE(0, 38); // external attributes
  b.writeUInt32LE(p.zip64 ? MAX32 : p.offset, 42);
  p.name.copy(b, 46);
  if (p.zip64) {
    const e = 46 + p.name.length;
    b.writeUInt16LE(0x0001, e);
    b.writeUInt16LE(24, e + 2);
    b.writeBigUInt64LE(BigInt(p.size), e + 4);
    b.writeBigUInt64LE(BigInt(p.size), e + 12);
    b.writeBigUInt64LE(BigInt(p.offset), e + 20);
  }
  return b;
}

function end(count: number, centralOffset: number, centralSize: number, zip64: boolean): Buffer {
  const parts: Buffer[] = [];
  if (zip64) {
    const r = Buffer.alloc(56);
    r.writeUInt32LE(END64, 0);
    r.writeBigUInt64LE(44n, 4);
    r.writeUInt16LE(45, 12);
    r.writeUInt16LE(45, 14);
    r.writeUInt32LE(0, 16);
    r.writeUInt32LE(0, 20);
    r.writeBigUInt64LE(BigInt(count), 24);
    r.writeBigUInt64LE(BigInt(count), 32);
    r.writeBigUInt64LE(BigInt(centralSize), 40);
    r.writeBigUInt64LE(BigInt(centralOffset), 48);
    const l = Buffer.alloc(20);
    l.writeUInt32LE(LOCATOR64, 0);
    l.writeUInt32LE(0, 4);
    l.writeBigUInt64LE(BigInt(centralOffset + centralSize), 8);
    l.writeUInt32LE(1, 16);
    parts.push(r, l);
  }
  const e = Buffer.alloc(22);
  e.writeUInt32LE(END, 0);
  e.writeUInt16LE(zip64 ? 0xffff : count, 8);
  e.writeUInt16LE(zip64 ? 0xffff : count, 10);
  e.writeUInt32LE(zip64 ? MAX32 : centralSize, 12);
  e.writeUInt32LE(zip64 ? MAX32 : centralOffset, 16);
  parts.push(e);
  return Buffer.concat(parts);
}

/**
 * The .npz of `members` as a stream and its exact byte length. Each member's data is sent as
 * views over its Float64Array (little-endian hosts), pulled one chunk per read, so a slow client
 * holds back the producer. `forceZip64` writes ZIP64 records even for small files (tests).
 */
export function npzStream(members: readonly NpzMember[], forceZip64 = false): { stream: Readable; length: number } {
  const { planned, centralOffset, centralSize, zip64, total } = plan(members, forceZip64);
  const crcs: number[] = [];
  function* chunks(): Generator<Buffer> {
    for (const p of planned) {
      yield localHeader(p);
      let crc = crc32(p.header);
      yield p.header;
      const bytes = p.data.byteLength;
      for (let o = 0; o < bytes; o += CHUNK_BYTES) {
        let chunk = Buffer.from(p.data.buffer, p.data.byteOffset + o, Math.min(CHUNK_BYTES, bytes - o));
        if (BIG_ENDIAN_HOST) chunk = Buffer.from(chunk).swap64();
        crc = crc32(chunk, crc);
        yield chunk;
      }
      crcs.push(crc);
      yield descriptor(p, crc);
    }
    yield Buffer.concat(planned.map((p, i) => centralEntry(p, crcs[i])));
    yield end(planned.length, centralOffset, centralSize, zip64);
  }
  return { stream: Readable.from(chunks(), { objectMode: false, highWaterMark: CHUNK_BYTES }), length: total };
}
