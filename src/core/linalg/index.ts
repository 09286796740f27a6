/**
 * The linear-algebra module: every matrix product of the core goes through `linalg()`.
 * The backend is chosen once per process (and per worker thread): `CURVATURE_LINALG`
 * = `typescript` | `openblas` | `auto` (default: OpenBLAS when its addon loads).
 */
import type { LinalgBackend } from './types.ts';
import { typescriptBackend } from './typescript.ts';

export type { LinalgBackend } from './types.ts';
export { typescriptBackend } from './typescript.ts';

let current: LinalgBackend = typescriptBackend;

/** The backend in use. */
export function linalg(): LinalgBackend {
  return current;
}

/** Switches the backend (tests run the core on each). */
export function useBackend(backend: LinalgBackend): void {
  current = backend;
}

/** Mirrors the lower triangle of the n × n row-major matrix `a` into its upper triangle. Cost n²/2. */
export function symmetrizeFromLower(n: number, a: Float64Array, lda = n): void {
  for (let i = 0; i < n; i++) for (let j = 0; j < i; j++) a[j * lda + i] = a[i * lda + j];
}
