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
