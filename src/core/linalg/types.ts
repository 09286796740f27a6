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
   * Triangular solve in place (BLAS dtrsm), L the lower triangle of `a` with its diagonal (the
   * strict upper triangle is not read), B m × n: left: B ← op(L)⁻¹·B (L m × m); right:
   * B ← B·op(L)⁻¹ (L n × n), op(L) = L or Lᵀ. Cost m·n·m (left) or m·n·n (right) flops.
   */
  trsm(left: boolean, trans: boolean, m: number, n: number, a: Float64Array, lda: number, b: Float64Array, ldb: number): void;

  /**
   * Product with a symmetric matrix (BLAS dsymm), A referenced by its lower triangle: left:
   * C ← α·A·B + β·C (A m × m); right: C ← α·B·A + β·C (A n × n); B and C m × n. Cost 2·m·n·(m or n) flops.
   */
  symm(
    left: boolean, m: number, n: number, alpha: number, a: Float64Array, lda: number,
    b: Float64Array, ldb: number, beta: number, c: Float64Array, ldc: number,
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

  /**
   * Solve from a Cholesky factor (LAPACK dpotrs): given L in the lower triangle of `a` (from
   * `potrf`, A = L·Lᵀ, n × n; the strict upper triangle is not read), overwrites each of the
   * nrhs right-hand sides b_i with x_i = A⁻¹·b_i. B is ROW-major nrhs × n, one right-hand side
   * per ROW (row i at b[i·ldb], ldb ≥ n): the m vectors of length n a caller holds as an m × n
   * matrix, solved as they are (X = B·A⁻¹, which is LAPACK's column-major n × nrhs B exactly).
   * Returns LAPACK's info, 0: dpotrs checks nothing but its arguments, so a factor with a zero
   * on its diagonal gives infinities or NaN in X, not an error. Cost 2·n²·nrhs flops.
   */
  potrs(n: number, nrhs: number, a: Float64Array, lda: number, b: Float64Array, ldb: number): number;

  /**
   * Symmetric eigen-decomposition, all or some eigenpairs: A·z_j = λ_j·z_j for the n × n
   * symmetric A whose LOWER triangle (i ≥ j) `a` holds. The strict upper triangle is neither
   * read nor written; the lower triangle may be overwritten (used as workspace, as LAPACK does:
   * its contents afterwards are unspecified).
   *
   * - Which: the eigenpairs with indices lo ≤ j < hi (0-based, half-open, in ascending order of
   *   eigenvalue; 0 ≤ lo ≤ hi ≤ n): all is (0, n), the k largest (n − k, n), the k smallest
   *   (0, k). m = hi − lo of them.
   * - w: the m eigenvalues in ascending order in w[0..m), λ_lo first (w.length ≥ m).
   * - z: null for eigenvalues only, else the ROW-major n × m matrix (ldz ≥ m) whose COLUMN j,
   *   z[i·ldz + j] for i < n, is the unit eigenvector of w[j]; the columns are orthonormal. An
   *   eigenvector's sign is arbitrary (the two backends may differ), and within a repeated
   *   eigenvalue only the subspace is defined.
   * - Returns { info, m }: info 0 and m = hi − lo on success; info −2 (argument 2, `a`) and
   *   m = 0, with w and z untouched, when the lower triangle holds a NaN or an infinity;
   *   info > 0 when the solver failed to converge (m = 0 in TypeScript; w, z unspecified).
   *
   * LAPACK dsyevr (Householder tridiagonalisation dsytrd; eigenvalues only by dsterf; an index
   * range by bisection and inverse iteration, dstebz + dstein; back-transformation dormtr),
   * except that eigenvectors of more than n/4 pairs come from divide and conquer for all of
   * them (dsyevd), whose vectors are orthogonal to ~1e-15 where dsyevr's full-range MRRR gave
   * 4e-12..5e-11 at n = 2000 (addon.cc has the numbers). The TypeScript backend follows the
   * same plan (typescript-eigen.ts).
   *
   * Cost in flops: the reduction 4n³/3; eigenvalues only O(n²) more; m ≤ n/4 eigenvectors
   * 2n²·m (back-transformation) + O(n·m²); more than n/4 of them: divide and conquer on T, at
   * most 4n³/3 and less as it deflates, + 2n²·m. So the top 10 of n = 2000 cost about 4n³/3,
   * all pairs up to 14n³/3. Extra memory: O(n) for values only; n·m for m ≤ n/4 vectors; up
   * to about 2n² for the divide and conquer (LAPACK's dsyevd workspace is 1 + 6n + 2n²
   * doubles), plus an n × n scratch when a large subset, not all, is asked for.
   */
  syevr(
    n: number, a: Float64Array, lda: number, lo: number, hi: number,
    w: Float64Array, z: Float64Array | null, ldz: number,
  ): SyevrResult;

  /**
   * The block form's memory-bound moves (hessian.ts; the layouts below). No flops: each writes
   * every entry once (the own block's, twice), so the cost is the bytes of H they touch.
   *
   * A layer's own block from its packed product T, rows the packed pairs (i, p), p ≤ i, for
   * i0 ≤ i < i1, columns the packed pairs (j, q), q ≤ j < aug: H[θ(i,j)][θ(p,q)] +=
   * T[(i,p),(max(j,q),min(j,q))] and, for p < i, H[θ(p,j)][θ(i,q)] by the same value.
   */
  scatterOwnBlock(h: BlockTarget, l: BlockLayer, t: Float64Array, i0: number, i1: number): void;

  /**
   * A block between layers l > m from T of rows (a, p), a0 ≤ a < a0 + na, p < out_m, each of
   * nb · aug_m columns (b, q): H[θ_l(i,j)][θ_m(p,q)] += T[(a,p),(b,q)], (i, j) = (a, b) when
   * `aIsI` (the curvature term), (b, a) otherwise (the cross term, PRML 5.95); with a mirroring
   * target the transposed entry H[θ_m(p,q)][θ_l(i,j)] too.
   */
  scatterBlock(h: BlockTarget, l: BlockLayer, m: BlockLayer, t: Float64Array, a0: number, na: number, nb: number, aIsI: boolean): void;

  /**
   * a[j][i] = a[i][j] for r0 ≤ i < r1 and c0 ≤ j < min(c1, i): the lower part of those rows
   * mirrored into the upper triangle (r0 = c0 = 0, r1 = c1 = n: the whole n × n matrix), in tiles.
   */
  mirrorLower(a: Float64Array, lda: number, r0: number, r1: number, c0: number, c1: number): void;

  /**
   * A hint that the fresh array `a` is about to be written whole: the OpenBLAS backend faults in
   * its pages at once, on its threads (Linux MADV_POPULATE_WRITE), which for a W × W matrix
   * written in the block form's scattered order costs a fraction of the page faults it would
   * otherwise take one by one (W = 9580: 0.15–0.2 s against 0.7 s). Contents unchanged; the
   * TypeScript backend does nothing.
   */
  populate(a: Float64Array): void;

  /** Whether no entry of `a` is NaN or ±Infinity (the finiteness pass over every answer, finite.ts). Cost: a read of `a`. */
  allFinite(a: Float64Array): boolean;

  /*
   * The per-point rows the block form's GEMMs multiply (hessian.ts), for c points, point n's
   * row at n · (its length). Memory-bound, no flops counted: each output entry is written once.
   * `out` must not overlap the inputs.
   */

  /** Khatri–Rao rows: out[n][j·ny + q] = x[n][j]·y[n][q] (c × nx and c × ny into c × nx·ny). */
  khatriRao(x: Float64Array, nx: number, y: Float64Array, ny: number, c: number, out: Float64Array): void;

  /** Symmetric Khatri–Rao rows: out[n][j(j+1)/2 + q] = z[n][j]·z[n][q] for q ≤ j < nz. */
  symmetricKhatriRao(z: Float64Array, nz: number, c: number, out: Float64Array): void;

  /** Packed lower pairs of c symmetric r × r matrices: out[n][i(i+1)/2 + p] = x[n][i][p], p ≤ i. */
  packLower(x: Float64Array, r: number, c: number, out: Float64Array): void;

  /** Each of c r × q matrices transposed: out[n][j][i] = x[n][i][j]. */
  transposeEach(x: Float64Array, c: number, r: number, q: number, out: Float64Array): void;

  /** Each of c r × w matrices times diag(d_n) on the right, in place: x[n][i][j] *= d[n][j] (d is c × w). */
  scaleColumns(x: Float64Array, c: number, r: number, w: number, d: Float64Array): void;

  /**
   * A layer's columns of Jacobian rows (jacobian.ts jacobianRows): for c points of k rows each,
   * rows[(n·k + r)·width + θ_l(p, q)] = x[(n·k + r)·out + p] · z̃[n·aug + q] for p < out, q < aug
   * (θ_l as in BlockLayer, within the first `width` columns). Every entry of the layer's columns
   * in those rows is written once; the other columns are not touched.
   */
  layerRows(x: Float64Array, c: number, k: number, l: BlockLayer, z: Float64Array, rows: Float64Array, width: number): void;
}

/** What {@link LinalgBackend.syevr} returns: LAPACK's info and the number of eigenpairs found. */
export interface SyevrResult {
  readonly info: number;
  readonly m: number;
}

/**
 * Where a scatter writes: rows rowStart … rowEnd − 1 of H, row r at (r − rowStart)·stride,
 * column c at c − colOffset; with `mirror`, a block between two layers is written with its
 * transpose too (a slab of rows needs both).
 */
export interface BlockTarget {
  readonly data: Float64Array;
  readonly stride: number;
  readonly rowStart: number;
  readonly rowEnd: number;
  readonly colOffset: number;
  readonly mirror: boolean;
}

/**
 * A layer's parameters in H (network.ts Layer): θ[i][j] at offset + i·in + j for j < in, the
 * bias θ[i][in] at offset + out·in + i: aug = in + 1 with a bias, in without.
 */
export interface BlockLayer {
  readonly offset: number;
  readonly in: number;
  readonly out: number;
  readonly aug: number;
}
