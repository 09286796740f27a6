/** The native kernels. Matrices are row-major Float64Arrays (views honour their byteOffset). */
export interface CurvatureOpenBlas {
  /** C ← α·op(A)·op(B) + β·C (cblas_dgemm, row-major). */
  dgemm(
    transA: boolean, transB: boolean, m: number, n: number, k: number,
    alpha: number, a: Float64Array, lda: number, b: Float64Array, ldb: number,
    beta: number, c: Float64Array, ldc: number,
  ): void;
  /** Lower triangle of C ← α·op(A)·op(A)ᵀ + β·C (cblas_dsyrk, row-major, lower). */
  dsyrk(
    trans: boolean, n: number, k: number, alpha: number, a: Float64Array, lda: number,
    beta: number, c: Float64Array, ldc: number,
  ): void;
  /** B ← op(L)⁻¹·B (left) or B·op(L)⁻¹ (right), L the lower triangle of A, non-unit (cblas_dtrsm, row-major). */
  dtrsm(left: boolean, trans: boolean, m: number, n: number, a: Float64Array, lda: number, b: Float64Array, ldb: number): void;
  /** C ← α·A·B + β·C (left) or α·B·A + β·C (right), A symmetric, lower triangle referenced (cblas_dsymm, row-major). */
  dsymm(
    left: boolean, m: number, n: number, alpha: number, a: Float64Array, lda: number, b: Float64Array, ldb: number,
    beta: number, c: Float64Array, ldc: number,
  ): void;
  /** Cholesky of the lower triangle in place (dpotrf); returns LAPACK's info. */
  dpotrf(n: number, a: Float64Array, lda: number): number;
  /** Inverse from the lower Cholesky factor in place (dpotri); returns LAPACK's info. */
  dpotri(n: number, a: Float64Array, lda: number): number;
  /**
   * Solves A·X = B from the lower Cholesky factor in `a` (dpotrs). B is row-major nrhs × n (one
   * right-hand side per row, ldb ≥ n), overwritten by X; returns LAPACK's info.
   */
  dpotrs(n: number, nrhs: number, a: Float64Array, lda: number, b: Float64Array, ldb: number): number;
  /**
   * Eigenpairs lo..hi−1 (0-based, ascending) of the symmetric matrix whose lower triangle `a`
   * holds (dsyevr; eigenvectors of more than n/4 pairs by dsyevd; the lower triangle may be
   * overwritten). w gets m = hi − lo eigenvalues; z (null: values only) the row-major n × m
   * eigenvectors as columns, ldz ≥ m. A NaN or infinity in the triangle gives info −2 and
   * writes nothing.
   */
  dsyevr(
    n: number, a: Float64Array, lda: number, lo: number, hi: number,
    w: Float64Array, z: Float64Array | null, ldz: number,
  ): { info: number; m: number };
  /** OpenBLAS's thread count; process-wide, shared by every worker thread. */
  setNumThreads(n: number): void;
  getNumThreads(): number;
  /** e.g. "OpenBLAS 0.3.21 DYNAMIC_ARCH NO_AFFINITY Haswell MAX_THREADS=64". */
  config(): string;
  /** The CPU kernel set OpenBLAS chose, e.g. "Haswell". */
  corename(): string;
  /**
   * JSON text of rows rowStart … rowEnd − 1 of a row-major array of rows of `rowLength` numbers,
   * nested to its shape: `blocks[d]` rows per block of each leading dimension, outermost first
   * ("," before every row but row 0, "[" per block a row opens, "]" per block it closes).
   * Numbers in their shortest round-trip form (std::to_chars), −0 as 0.
   */
  jsonRows(data: Float64Array, rowLength: number, blocks: Float64Array, rowStart: number, rowEnd: number): Buffer;
}
declare const addon: CurvatureOpenBlas;
export = addon;
