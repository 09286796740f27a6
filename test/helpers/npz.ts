/**
 * A reader of .npz files written by any zip tool, from the format's specification (PKWARE
 * APPNOTE): the end of central directory (and its ZIP64 records), each member's central entry and
 * local header, CRC-32 checked; each member parsed as .npy. Independent of src/http/npz.ts.
 */
import { crc32 } from 'node:zlib';
import { parseNpy } from './npy.ts';

export function parseNpz(buf: Buffer): Record<string, { shape: number[]; data: Float64Array }> {
  let eocd = buf.length - 22;
  while (eocd >= 0 && buf.readUInt32LE(eocd) !== 0x06054b50) eocd--;
  if (eocd < 0) throw new Error('no end of central directory');
  let count = buf.readUInt16LE(eocd + 10);
  let cdSize = buf.readUInt32LE(eocd + 12);
  let cdOffset = buf.readUInt32LE(eocd + 16);
  if (cdOffset === 0xffffffff || count === 0xffff) {
    const locator = eocd - 20;
    if (buf.readUInt32LE(locator) !== 0x07064b50) throw new Error('no ZIP64 locator');
    const rec = Number(buf.readBigUInt64LE(locator + 8));
    if (buf.readUInt32LE(rec) !== 0x06064b50) throw new Error('no ZIP64 end record');
    count = Number(buf.readBigUInt64LE(rec + 32));
    cdSize = Number(buf.readBigUInt64LE(rec + 40));
    cdOffset = Number(buf.readBigUInt64LE(rec + 48));
  }
  const out: Record<string, { shape: number[]; data: Float64Array }> = {};
  let p = cdOffset;
  for (let i = 0; i < count; i++) {
    if (buf.readUInt32LE(p) !== 0x02014b50) throw new Error(`central entry ${i}: bad signature`);
    const method = buf.readUInt16LE(p + 10);
    const crc = buf.readUInt32LE(p + 16);
    let size = buf.readUInt32LE(p + 24);
    const nameLen = buf.readUInt16LE(p + 28), extraLen = buf.readUInt16LE(p + 30), commentLen = buf.readUInt16LE(p + 32);
    let offset = buf.readUInt32LE(p + 42);
    const name = buf.toString('utf8', p + 46, p + 46 + nameLen);
    let e = p + 46 + nameLen;
    const end = e + extraLen;
    while (e < end) {
      const id = buf.readUInt16LE(e), len = buf.readUInt16LE(e + 2);
      if (id === 1) {
        let q = e + 4;
        if (size === 0xffffffff) { size = Number(buf.readBigUInt64LE(q)); q += 8; } // uncompressed
        if (buf.readUInt32LE(p + 20) === 0xffffffff) q += 8; // compressed
        if (offset === 0xffffffff) offset = Number(buf.readBigUInt64LE(q));
      }
      e += 4 + len;
    }
    if (method !== 0) throw new Error(`${name}: compressed (method ${method})`);
    if (buf.readUInt32LE(offset) !== 0x04034b50) throw new Error(`${name}: bad local header`);
    const start = offset + 30 + buf.readUInt16LE(offset + 26) + buf.readUInt16LE(offset + 28);
    const data = buf.subarray(start, start + size);
    if ((crc32(data) >>> 0) !== crc) throw new Error(`${name}: CRC-32 mismatch`);
    out[name.replace(/\.npy$/, '')] = parseNpy(Buffer.from(data));
    p = end + commentLen;
  }
  if (p !== cdOffset + cdSize) throw new Error('central directory size mismatch');
  return out;
}
