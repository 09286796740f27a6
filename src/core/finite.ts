import { ServiceError } from '../errors.ts';

/**
 * Refuses a result with an Inf or NaN in it (422), so that no answer ever carries `null`s in
 * JSON or garbage in binary. Cost O(length).
 */
export function assertFinite(values: Float64Array | number, what: string): void {
  if (typeof values === 'number') {
    if (!Number.isFinite(values)) throw nonFinite(what, String(values));
    return;
  }
  for (let i = 0; i < values.length; i++) {
    if (!Number.isFinite(values[i])) throw nonFinite(what, `${values[i]} at flat index ${i}`);
  }
}

function nonFinite(what: string, where: string): ServiceError {
  return new ServiceError('NON_FINITE_RESULT', {
    detail: `the ${what} is not finite (${where}); the weights or inputs are too large for float64 arithmetic — rescale them`,
  });
}
