/**
 * The one small kernel interface the compute core multiplies matrices through.
 *
 * All matrices are row-major `Float64Array`s with an explicit leading dimension (the distance
 * between rows); a sub-matrix is passed as a `subarray` view. Callers check shapes once at the
 * edge; kernels trust them (BLAS style). Two implementations exist: pure TypeScript
 * (`typescript.ts`) and OpenBLAS/LAPACK through an N-API addon (`native/`). Both must pass the
 * same tests.
 */
export interface LinalgBackend {
  readonly name: 'typescript' | 'openblas';

  /**
   * General product: C ← α·op(A)·op(B) + β·C, with op(X) = X or Xᵀ.
   * op(A) is m × k, op(B) is k × n, C is m × n. Cost 2·m·n·k flops.
   * With β = 0, C is overwritten (its previous contents, even NaN, are ignored).
   */
  gemm(
    transA: boolean, transB: boolean, m: number, n: number, k: number,
    alpha: number, a: Float64Array, lda: number,
    b: Float64Array, ldb: number,
    beta: number, c: Float64Array, ldc: number,
  ): void;

  /**
   * Symmetric rank-k update of the LOWER triangle (i ≥ j) of the n × n matrix C:
   * trans = false: C ← α·A·Aᵀ + β·C with A n × k; trans = true: C ← α·Aᵀ·A + β·C with A k × n.
   * The strict upper triangle of C is not touched. Cost n²·k flops.
   */
  syrk(
    trans: boolean, n: number, k: number,
    alpha: number, a: Float64Array, lda: number,
    beta: number, c: Float64Array, ldc: number,
  ): void;

  /**
   * Cholesky factorisation in place: the lower triangle of the symmetric positive definite A
   * (n × n) is overwritten by L with A = L·Lᵀ; the strict upper triangle is not touched.
   * Returns 0 on success, or i > 0 when the leading minor of order i is not positive definite
   * (LAPACK dpotrf's `info`). Cost n³/3 flops.
   */
  potrf(n: number, a: Float64Array, lda: number): number;

  /**
   * Inverse from a Cholesky factor in place: given L in the lower triangle (from `potrf`),
   * overwrites the lower triangle with that of A⁻¹ = L⁻ᵀ·L⁻¹ (LAPACK dpotri). The strict upper
   * triangle is not touched. Returns 0, or i > 0 when L[i-1][i-1] is zero. Cost 2n³/3 flops.
   */
  potri(n: number, a: Float64Array, lda: number): number;
}
