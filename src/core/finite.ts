import { CoreError } from './errors.ts';
import { linalg } from './linalg/index.ts';

/**
 * Refuses (NON_FINITE_RESULT) an array with NaN or ±Infinity in it, naming how many and the
 * first one by its index in `shape`, so that no answer ever carries `null`s in JSON or garbage in
 * binary. Cost O(length).
 */
export function assertFinite(name: string, data: Float64Array, shape: readonly number[]): void {
  // the backend's one pass (native: threaded), and the entry-by-entry search only when it fails
  if (linalg().allFinite(data)) return;
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
