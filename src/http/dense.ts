/**
 * A request's arrays of numbers as they arrive from the edge: a row-major Float64Array and its
 * shape. The JSON parser (src/http/json.ts) makes one of every rectangular array of numbers, and a
 * .npy part (src/http/npy.ts) is read straight into one, so that JSON and multipart bodies reach
 * validation in the same form and no request ever becomes millions of boxed numbers.
 */
export class DenseArray {
  constructor(readonly shape: readonly number[], readonly data: Float64Array) {}

  get ndim(): number {
    return this.shape.length;
  }

  /** The entries as nested JS arrays (for small arrays only: lists of indices, say). */
  toNested(): unknown[] {
    const build = (dim: number, offset: number): unknown[] => {
      const n = this.shape[dim];
      if (dim === this.shape.length - 1) return Array.from(this.data.subarray(offset, offset + n));
      const stride = this.shape.slice(dim + 1).reduce((a, b) => a * b, 1);
      const out: unknown[] = new Array(n);
      for (let i = 0; i < n; i++) out[i] = build(dim + 1, offset + i * stride);
      return out;
    };
    return build(0, 0);
  }
}

/** A dense array from an array of numbers (tests and small literal arrays). */
export function denseOf(values: readonly number[], shape: readonly number[] = [values.length]): DenseArray {
  return new DenseArray(shape, Float64Array.from(values));
}
