import { CoreError } from './errors.ts';

/**
 * Refuses (NON_FINITE_RESULT) an array with NaN or ±Infinity in it, naming how many and the
 * first one by its index in `shape`, so that no answer ever carries `null`s in JSON or garbage in
 * binary. Cost O(length).
 */
export function assertFinite(name: string, data: Float64Array, shape: readonly number[]): void {
  // x·0 is 0 for every finite x and NaN for ±Infinity and NaN, so four running sums of it stay 0
  // exactly when every entry is finite: one pass with no branch per entry (W = 2762: 19 → 11 ms)
  let a0 = 0, a1 = 0, a2 = 0, a3 = 0;
  const end4 = data.length - (data.length % 4);
  for (let i = 0; i < end4; i += 4) {
    a0 += data[i] * 0;
    a1 += data[i + 1] * 0;
    a2 += data[i + 2] * 0;
    a3 += data[i + 3] * 0;
  }
  for (let i = end4; i < data.length; i++) a0 += data[i] * 0;
  if (a0 + a1 + a2 + a3 === 0) return;
  for (let i = 0; i < data.length; i++) {
    if (!Number.isFinite(data[i])) {
      let count = 0;
      for (let j = i; j < data.length; j++) if (!Number.isFinite(data[j])) count++;
      const index: number[] = new Array(shape.length);
      let rest = i;
      for (let s = shape.length - 1; s >= 0; s--) { index[s] = rest % shape[s]; rest = Math.floor(rest / shape[s]); }
      throw new CoreError('NON_FINITE_RESULT', { reason: 'entries', name, count, index, value: data[i] });
    }
  }
}
