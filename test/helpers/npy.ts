/** Reads a .npy answer ('<f8', C order, format 1.0–3.0) back into its shape and values, as numpy.load would. */
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

/** A .npy file of `values` (row-major) with any header fields, as numpy would write it. */
export function npyFile(shape: number[], values: number[], descr = '<f8', fortran = false): Buffer {
  const dims = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  const dict = `{'descr': '${descr}', 'fortran_order': ${fortran ? 'True' : 'False'}, 'shape': ${dims}, }`;
  const total = Math.ceil((10 + dict.length + 1) / 64) * 64;
  const head = Buffer.alloc(total, 0x20);
  Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]).copy(head);
  head.writeUInt16LE(total - 10, 8);
  head.write(dict, 10, 'latin1');
  head[total - 1] = 0x0a;
  const size = Number(descr.slice(2));
  const little = descr[0] === '<';
  const data = Buffer.alloc(values.length * size);
  values.forEach((v, i) => {
    if (descr.endsWith('f8')) {
      if (little) data.writeDoubleLE(v, i * 8); else data.writeDoubleBE(v, i * 8);
    } else if (descr.endsWith('f4')) {
      if (little) data.writeFloatLE(v, i * 4); else data.writeFloatBE(v, i * 4);
    }
    else if (descr === '<i8') data.writeBigInt64LE(BigInt(Math.round(v)), i * 8);
    else if (descr === '<i4') data.writeInt32LE(Math.round(v), i * 4);
  });
  return Buffer.concat([head, data]);
}

/** The standard .npy of a nested matrix or vector: '<f8', C order. */
export function npyOf(x: number[][] | number[]): Buffer {
  const rows = x as unknown[];
  return Array.isArray(rows[0])
    ? npyFile([rows.length, (rows[0] as number[]).length], (x as number[][]).flat())
    : npyFile([rows.length], x as number[]);
}

