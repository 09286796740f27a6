/**
 * The nominal flops of one kernel call, from its sizes: the costs the kernels' doc comments give
 * (types.ts). One definition, used twice: the worker thread adds up each call's as a task runs
 * (its progress, src/worker.ts), and the core's work estimate counts the calls a method will make
 * in the same units before it runs (src/core/work.ts, WorkMeter).
 *
 * Nominal, not measured: syevr counts its reduction (4n³/3) and back-transformation (2n²·m), not
 * the iterations of its tridiagonal solver; the two backends count the same. A call on an empty
 * operand counts 0.
 */
import type { LinalgBackend } from './types.ts';

/** Flops by kernel, from the sizes that matter (m × n results, k the inner dimension, n the order). */
export const FLOPS = {
  /** C (m × n) += A (m × k) B (k × n). */
  gemm: (m: number, n: number, k: number): number => 2 * m * n * k,
  /** C (n × n, one triangle) += A (n × k) Aᵀ. */
  syrk: (n: number, k: number): number => n * n * k,
  /** B (m × n) := A⁻¹ B for a triangular A of order m (left; on the right, swap m and n). */
  trsm: (m: number, n: number): number => m * m * n,
  /** C (m × n) += A B for a symmetric A of order m (left; on the right, swap m and n). */
  symm: (m: number, n: number): number => 2 * m * m * n,
  potrf: (n: number): number => (n * n * n) / 3,
  potri: (n: number): number => (2 * n * n * n) / 3,
  potrs: (n: number, nrhs: number): number => 2 * n * n * nrhs,
  /** The reduction to tridiagonal form and, for `vectors` eigenvectors, the back-transformation. */
  syevr: (n: number, vectors: number): number => (4 * n * n * n) / 3 + 2 * n * n * vectors,
};

export type KernelName = Exclude<keyof LinalgBackend, 'name'>;

type FlopsOf = { readonly [K in KernelName]: (...args: Parameters<LinalgBackend[K]>) => number };

/** A kernel call's flops from the arguments it is called with. */
export const KERNEL_FLOPS: FlopsOf = {
  gemm: (_ta, _tb, m, n, k) => FLOPS.gemm(m, n, k),
  syrk: (_t, n, k) => FLOPS.syrk(n, k),
  trsm: (left, _t, m, n) => (left ? FLOPS.trsm(m, n) : FLOPS.trsm(n, m)),
  symm: (left, m, n) => (left ? FLOPS.symm(m, n) : FLOPS.symm(n, m)),
  potrf: (n) => FLOPS.potrf(n),
  potri: (n) => FLOPS.potri(n),
  potrs: (n, nrhs) => FLOPS.potrs(n, nrhs),
  syevr: (n, _a, _lda, lo, hi, _w, z) => FLOPS.syevr(n, z ? hi - lo : 0),
  // memory moves, no flops
  scatterOwnBlock: () => 0,
  scatterBlock: () => 0,
  mirrorLower: () => 0,
  populate: () => 0,
  allFinite: () => 0,
  khatriRao: () => 0,
  symmetricKhatriRao: () => 0,
  packLower: () => 0,
  transposeEach: () => 0,
  scaleColumns: () => 0,
  layerRows: () => 0,
};

/** The nominal flops of calling `kernel` with `args` (0 for a name that is no kernel). */
export function kernelFlops(kernel: string, args: readonly unknown[]): number {
  const f = (KERNEL_FLOPS as unknown as Record<string, ((...a: readonly unknown[]) => number) | undefined>)[kernel];
  return f ? Math.max(0, f(...args)) : 0;
}
