/**
 * The nominal flops of one kernel call, from its arguments alone: the costs the kernels' doc
 * comments give (types.ts). The worker thread adds them up as a task runs (its progress,
 * src/worker.ts), against the core's estimate of the task's total (src/core/flops.ts).
 *
 * Nominal, not measured: syevr counts its reduction (4n³/3) and back-transformation (2n²·m), not
 * the iterations of its tridiagonal solver; the two backends count the same. A call on an empty
 * operand counts 0.
 */
import type { LinalgBackend } from './types.ts';

export type KernelName = Exclude<keyof LinalgBackend, 'name'>;

type FlopsOf = { readonly [K in KernelName]: (...args: Parameters<LinalgBackend[K]>) => number };

export const KERNEL_FLOPS: FlopsOf = {
  gemm: (_ta, _tb, m, n, k) => 2 * m * n * k,
  syrk: (_t, n, k) => n * n * k,
  trsm: (left, _t, m, n) => (left ? m * m * n : m * n * n),
  symm: (left, m, n) => 2 * m * n * (left ? m : n),
  potrf: (n) => (n * n * n) / 3,
  potri: (n) => (2 * n * n * n) / 3,
  potrs: (n, nrhs) => 2 * n * n * nrhs,
  syevr: (n, _a, _lda, lo, hi, _w, z) => (4 * n * n * n) / 3 + (z ? 2 * n * n * (hi - lo) : 0),
};

/** The nominal flops of calling `kernel` with `args` (0 for a name that is no kernel). */
export function kernelFlops(kernel: string, args: readonly unknown[]): number {
  const f = (KERNEL_FLOPS as unknown as Record<string, ((...a: readonly unknown[]) => number) | undefined>)[kernel];
  return f ? Math.max(0, f(...args)) : 0;
}
