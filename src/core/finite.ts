import { ServiceError } from '../errors.ts';

/**
 * Refuses (422) an array with NaN or ±Infinity in it, naming how many and the first one by its
 * index in `shape`, so that no answer ever carries `null`s in JSON or garbage in binary.
 * Cost O(length).
 */
export function assertFinite(name: string, data: Float64Array, shape: readonly number[]): void {
  for (let i = 0; i < data.length; i++) {
    if (!Number.isFinite(data[i])) {
      let count = 0;
      for (let j = i; j < data.length; j++) if (!Number.isFinite(data[j])) count++;
      const idx: number[] = [];
      let rest = i;
      for (let s = shape.length - 1; s >= 0; s--) { idx.unshift(rest % shape[s]); rest = Math.floor(rest / shape[s]); }
      throw new ServiceError('NON_FINITE_RESULT', {
        detail: `${name} has ${count} non-finite entr${count === 1 ? 'y' : 'ies'}, the first ${name}${idx.map((x) => `[${x}]`).join('')} = ${data[i]}; ` +
          'the activations or the error overflow in float64 — scale the inputs or weights down',
      });
    }
  }
}
