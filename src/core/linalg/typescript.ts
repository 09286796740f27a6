/**
 * Pure TypeScript kernels behind {@link LinalgBackend}: a cache-blocked, packed GEMM with a 4 × 4
 * register micro-kernel (the Goto/BLIS layout), and recursive blocked SYRK, Cholesky (POTRF),
 * Cholesky inverse (POTRI) and Cholesky solve (POTRS) whose work is almost all in that GEMM.
 * The symmetric eigensolver (SYEVR) is in typescript-eigen.ts. Row-major throughout.
 */
import type { LinalgBackend } from './types.ts';
import { syevr as symmetricEigen } from './typescript-eigen.ts';
import { allFinite, khatriRao, layerRows, mirrorLower, packLower, scaleColumns, scatterBlock, scatterOwnBlock, symmetricKhatriRao, transposeEach } from './typescript-scatter.ts';

const MR = 4;
const NR = 4;
const KC = 256;
const MC = 64;
const NC = 1024;
/** Below this order the recursive factorisations switch to plain loops. */
const SMALL = 48;

const packA = new Float64Array(MC * KC);
const packB = new Float64Array(KC * NC);

/**
 * The product with k = n = 1, C[i][0] ← α·op(A)[i][0]·op(B)[0][0] + β·C[i][0]: a scaled column,
 * one loop. The packed kernel pads it to 4 × 4 micro-tiles and the addon's dgemm pays its set-up
 * for it: a 3810 × 1 × 1 product took 160 µs and 12–20 µs that way, 7–10 µs here (2026-12-01). The
 * columns form of a deep network of width 1 makes two of them per layer and batch of directions.
 */
export function scaledColumn(transA: boolean, m: number, alpha: number, a: Float64Array, lda: number, b0: number, beta: number, c: Float64Array, ldc: number): void {
  const s = alpha * b0;
  const step = transA ? 1 : lda; // op(A) is m × 1: A itself, or the 1 × m row Aᵀ
  if (beta === 0) for (let i = 0; i < m; i++) c[i * ldc] = s * a[i * step];
  else for (let i = 0; i < m; i++) c[i * ldc] = beta * c[i * ldc] + s * a[i * step];
}

/** C ← α·op(A)·op(B) + β·C. Cost 2mnk. */
function gemm(
  transA: boolean, transB: boolean, m: number, n: number, k: number,
  alpha: number, a: Float64Array, lda: number,
  b: Float64Array, ldb: number,
  beta: number, c: Float64Array, ldc: number,
): void {
  if (m === 0 || n === 0) return;
  if (n === 1 && k === 1 && alpha !== 0) {
    scaledColumn(transA, m, alpha, a, lda, b[0], beta, c, ldc);
    return;
  }
  if (beta !== 1) {
    for (let i = 0; i < m; i++) {
      const row = i * ldc;
      if (beta === 0) c.fill(0, row, row + n);
      else for (let j = 0; j < n; j++) c[row + j] *= beta;
    }
  }
  if (alpha === 0 || k === 0) return;
  for (let jc = 0; jc < n; jc += NC) {
    const nc = Math.min(NC, n - jc);
    for (let pc = 0; pc < k; pc += KC) {
      const kc = Math.min(KC, k - pc);
      packPanelB(transB, b, ldb, pc, jc, kc, nc, packB);
      for (let ic = 0; ic < m; ic += MC) {
        const mc = Math.min(MC, m - ic);
        packPanelA(transA, a, lda, ic, pc, mc, kc, alpha, packA);
        macroKernel(mc, nc, kc, packA, packB, c, ldc, ic, jc);
      }
    }
  }
}

/** Packs op(B)[pc:pc+kc, jc:jc+nc] into strips of NR columns, zero-padded: strip s, row p at (s·kc + p)·NR. */
function packPanelB(
  trans: boolean, b: Float64Array, ldb: number, pc: number, jc: number, kc: number, nc: number, out: Float64Array,
): void {
  const strips = Math.ceil(nc / NR);
  for (let s = 0; s < strips; s++) {
    const j0 = jc + s * NR;
    const w = Math.min(NR, jc + nc - j0);
    let o = s * kc * NR;
    for (let p = 0; p < kc; p++, o += NR) {
      const pp = pc + p;
      for (let q = 0; q < NR; q++) {
        out[o + q] = q < w ? (trans ? b[(j0 + q) * ldb + pp] : b[pp * ldb + j0 + q]) : 0;
      }
    }
  }
}

/** Packs α·op(A)[ic:ic+mc, pc:pc+kc] into strips of MR rows, zero-padded: strip s, column p at (s·kc + p)·MR. */
function packPanelA(
  trans: boolean, a: Float64Array, lda: number, ic: number, pc: number, mc: number, kc: number, alpha: number,
  out: Float64Array,
): void {
  const strips = Math.ceil(mc / MR);
  for (let s = 0; s < strips; s++) {
    const i0 = ic + s * MR;
    const h = Math.min(MR, ic + mc - i0);
    let o = s * kc * MR;
    for (let p = 0; p < kc; p++, o += MR) {
      const pp = pc + p;
      for (let r = 0; r < MR; r++) {
        out[o + r] = r < h ? alpha * (trans ? a[pp * lda + i0 + r] : a[(i0 + r) * lda + pp]) : 0;
      }
    }
  }
}

function macroKernel(
  mc: number, nc: number, kc: number, pa: Float64Array, pb: Float64Array,
  c: Float64Array, ldc: number, ic: number, jc: number,
): void {
  const aStrips = Math.ceil(mc / MR);
  const bStrips = Math.ceil(nc / NR);
  for (let sb = 0; sb < bStrips; sb++) {
    const j0 = jc + sb * NR;
    const w = Math.min(NR, jc + nc - j0);
    const bo = sb * kc * NR;
    for (let sa = 0; sa < aStrips; sa++) {
      const i0 = ic + sa * MR;
      const h = Math.min(MR, ic + mc - i0);
      let ao = sa * kc * MR;
      let bp = bo;
      let c00 = 0, c01 = 0, c02 = 0, c03 = 0;
      let c10 = 0, c11 = 0, c12 = 0, c13 = 0;
      let c20 = 0, c21 = 0, c22 = 0, c23 = 0;
      let c30 = 0, c31 = 0, c32 = 0, c33 = 0;
      for (let p = 0; p < kc; p++, ao += MR, bp += NR) {
        const a0 = pa[ao], a1 = pa[ao + 1], a2 = pa[ao + 2], a3 = pa[ao + 3];
        const b0 = pb[bp], b1 = pb[bp + 1], b2 = pb[bp + 2], b3 = pb[bp + 3];
        c00 += a0 * b0; c01 += a0 * b1; c02 += a0 * b2; c03 += a0 * b3;
        c10 += a1 * b0; c11 += a1 * b1; c12 += a1 * b2; c13 += a1 * b3;
        c20 += a2 * b0; c21 += a2 * b1; c22 += a2 * b2; c23 += a2 * b3;
        c30 += a3 * b0; c31 += a3 * b1; c32 += a3 * b2; c33 += a3 * b3;
      }
      if (h === MR && w === NR) {
        let o = i0 * ldc + j0;
        c[o] += c00; c[o + 1] += c01; c[o + 2] += c02; c[o + 3] += c03; o += ldc;
        c[o] += c10; c[o + 1] += c11; c[o + 2] += c12; c[o + 3] += c13; o += ldc;
        c[o] += c20; c[o + 1] += c21; c[o + 2] += c22; c[o + 3] += c23; o += ldc;
        c[o] += c30; c[o + 1] += c31; c[o + 2] += c32; c[o + 3] += c33;
      } else {
        const t = [c00, c01, c02, c03, c10, c11, c12, c13, c20, c21, c22, c23, c30, c31, c32, c33];
        for (let r = 0; r < h; r++) for (let q = 0; q < w; q++) c[(i0 + r) * ldc + j0 + q] += t[r * 4 + q];
      }
    }
  }
}

/**
 * Lower triangle of C ← α·op(A)·op(A)ᵀ + β·C, by recursive halving: the off-diagonal block is
 * one GEMM, the two diagonal blocks recurse. Cost n²k.
 */
function syrk(
  trans: boolean, n: number, k: number, alpha: number, a: Float64Array, lda: number,
  beta: number, c: Float64Array, ldc: number,
): void {
  if (n === 0) return;
  if (n <= SMALL && trans) {
    // Aᵀ·A with A k × n: by the packed gemm into a local n × n, then its lower triangle. Twice the
    // flops, but dot products down A's columns read it with stride lda, k times over (a 10,000 × 101
    // stack: 1.2 GFLOP/s that way, the gemm 5–6)
    const full = new Float64Array(n * n);
    gemm(true, false, n, n, k, alpha, a, lda, a, lda, 0, full, n);
    for (let i = 0; i < n; i++) {
      for (let j = 0; j <= i; j++) {
        const o = i * ldc + j;
        c[o] = beta === 0 ? full[i * n + j] : full[i * n + j] + beta * c[o];
      }
    }
    return;
  }
  if (n <= SMALL) {
    for (let i = 0; i < n; i++) {
      const ri = i * lda;
      for (let j = 0; j <= i; j++) {
        let s = 0;
        const rj = j * lda;
        for (let p = 0; p < k; p++) s += a[ri + p] * a[rj + p];
        const o = i * ldc + j;
        c[o] = beta === 0 ? alpha * s : alpha * s + beta * c[o];
      }
    }
    return;
  }
  const n1 = n >> 1;
  const n2 = n - n1;
  // rows n1.. of op(A) start at: trans ? column n1 : row n1
  const a2 = trans ? a.subarray(n1) : a.subarray(n1 * lda);
  syrk(trans, n1, k, alpha, a, lda, beta, c, ldc);
  // C21 (n2 × n1) ← α·op(A)2·op(A)1ᵀ + β·C21
  gemm(trans, !trans, n2, n1, k, alpha, a2, lda, a, lda, beta, c.subarray(n1 * ldc), ldc);
  syrk(trans, n2, k, alpha, a2, lda, beta, c.subarray(n1 * ldc + n1), ldc);
}

/** X·Lᵀ = B solved in place (B ← B·L⁻ᵀ), L n × n lower, B m × n. Recursive on n; cost mn². */
function trsmRightLowerTrans(m: number, n: number, l: Float64Array, ldl: number, b: Float64Array, ldb: number): void {
  if (n <= SMALL) {
    for (let r = 0; r < m; r++) {
      const row = r * ldb;
      for (let j = 0; j < n; j++) {
        let s = b[row + j];
        const lj = j * ldl;
        for (let p = 0; p < j; p++) s -= l[lj + p] * b[row + p];
        b[row + j] = s / l[lj + j];
      }
    }
    return;
  }
  const n1 = n >> 1;
  const n2 = n - n1;
  trsmRightLowerTrans(m, n1, l, ldl, b, ldb);
  // B2 ← B2 − X1·L21ᵀ, L21 is n2 × n1 at row n1
  gemm(false, true, m, n2, n1, -1, b, ldb, l.subarray(n1 * ldl), ldl, 1, b.subarray(n1), ldb);
  trsmRightLowerTrans(m, n2, l.subarray(n1 * ldl + n1), ldl, b.subarray(n1), ldb);
}

/** X·L = B solved in place (B ← B·L⁻¹), L n × n lower, B m × n. Recursive on n; cost mn². */
function trsmRightLower(m: number, n: number, l: Float64Array, ldl: number, b: Float64Array, ldb: number): void {
  if (n <= SMALL) {
    // x_j = (b_j − Σ_{p>j} x_p·L[p][j]) / L[j][j], last column first; row j of L subtracted at once
    for (let r = 0; r < m; r++) {
      const row = r * ldb;
      for (let j = n - 1; j >= 0; j--) {
        const lj = j * ldl;
        const x = b[row + j] / l[lj + j];
        b[row + j] = x;
        for (let p = 0; p < j; p++) b[row + p] -= x * l[lj + p];
      }
    }
    return;
  }
  const n1 = n >> 1;
  const n2 = n - n1;
  // [X1 X2]·[L11 0; L21 L22] = [B1 B2]: X2 from L22 first, then B1 ← B1 − X2·L21, then X1
  trsmRightLower(m, n2, l.subarray(n1 * ldl + n1), ldl, b.subarray(n1), ldb);
  gemm(false, false, m, n1, n2, -1, b.subarray(n1), ldb, l.subarray(n1 * ldl), ldl, 1, b, ldb);
  trsmRightLower(m, n1, l, ldl, b, ldb);
}

/** Cholesky A = L·Lᵀ in place (lower). Recursive: L11, L21 = A21·L11⁻ᵀ, A22 −= L21·L21ᵀ, L22. */
function potrf(n: number, a: Float64Array, lda: number): number {
  if (n <= SMALL) {
    for (let j = 0; j < n; j++) {
      const rj = j * lda;
      let d = a[rj + j];
      for (let p = 0; p < j; p++) d -= a[rj + p] * a[rj + p];
      if (!(d > 0)) return j + 1;
      d = Math.sqrt(d);
      a[rj + j] = d;
      for (let i = j + 1; i < n; i++) {
        const ri = i * lda;
        let s = a[ri + j];
        for (let p = 0; p < j; p++) s -= a[ri + p] * a[rj + p];
        a[ri + j] = s / d;
      }
    }
    return 0;
  }
  const n1 = n >> 1;
  const n2 = n - n1;
  const info1 = potrf(n1, a, lda);
  if (info1 !== 0) return info1;
  const a21 = a.subarray(n1 * lda);
  trsmRightLowerTrans(n2, n1, a, lda, a21, lda);
  const a22 = a.subarray(n1 * lda + n1);
  syrk(false, n2, n1, -1, a21, lda, 1, a22, lda);
  const info2 = potrf(n2, a22, lda);
  return info2 === 0 ? 0 : info2 + n1;
}

/** Copies the lower triangle of an n × n block into a fresh dense matrix with zeros above. */
function lowerToDense(n: number, a: Float64Array, lda: number): Float64Array {
  const t = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j <= i; j++) t[i * n + j] = a[i * lda + j];
  return t;
}

/**
 * Inverse of a lower-triangular L in place (lower). Recursive:
 * [L11 0; L21 L22]⁻¹ = [L11⁻¹ 0; −L22⁻¹·L21·L11⁻¹  L22⁻¹].
 */
function trtriLower(n: number, a: Float64Array, lda: number): number {
  if (n <= SMALL) {
    for (let j = 0; j < n; j++) if (a[j * lda + j] === 0) return j + 1;
    // column by column: X[j][j] = 1/L[j][j]; X[i][j] = −(Σ_{p=j}^{i−1} L[i][p]·X[p][j]) / L[i][i]
    for (let j = 0; j < n; j++) {
      a[j * lda + j] = 1 / a[j * lda + j];
      for (let i = j + 1; i < n; i++) {
        let s = 0;
        const ri = i * lda;
        for (let p = j; p < i; p++) s += a[ri + p] * a[p * lda + j];
        // a[ri + j] still holds L[i][j] until written; it was used in the sum above (p = j)
        a[ri + j] = -s / a[ri + i];
      }
    }
    // The loop above reads L[i][i] after the diagonal of rows < i were inverted, but row i's
    // diagonal is inverted only when j reaches i, so a[ri + i] is still L[i][i] there.
    return 0;
  }
  const n1 = n >> 1;
  const n2 = n - n1;
  const info1 = trtriLower(n1, a, lda);
  if (info1 !== 0) return info1;
  const a22 = a.subarray(n1 * lda + n1);
  const info2 = trtriLower(n2, a22, lda);
  if (info2 !== 0) return info2 + n1;
  const x11 = lowerToDense(n1, a, lda);
  const x22 = lowerToDense(n2, a22, lda);
  const a21 = a.subarray(n1 * lda);
  const t = new Float64Array(n2 * n1);
  gemm(false, false, n2, n1, n1, 1, a21, lda, x11, n1, 0, t, n1); // L21·X11
  gemm(false, false, n2, n1, n2, -1, x22, n2, t, n1, 0, a21, lda); // −X22·(L21·X11)
  return 0;
}

/** Lower triangle of Xᵀ·X for lower-triangular X, in place (LAPACK dlauum). */
function lauumLower(n: number, a: Float64Array, lda: number): void {
  if (n <= SMALL) {
    // row i of the result, j ≤ i: Σ_{p ≥ i} X[p][i]·X[p][j]. Going i = 0, 1, … overwrites row i
    // only after its last use: the sums of later rows i' > i read rows p ≥ i' alone.
    for (let i = 0; i < n; i++) {
      for (let j = 0; j <= i; j++) {
        let s = 0;
        for (let p = i; p < n; p++) s += a[p * lda + i] * a[p * lda + j];
        a[i * lda + j] = s;
      }
    }
    return;
  }
  const n1 = n >> 1;
  const n2 = n - n1;
  const a21 = a.subarray(n1 * lda);
  const a22 = a.subarray(n1 * lda + n1);
  lauumLower(n1, a, lda);
  syrk(true, n1, n2, 1, a21, lda, 1, a, lda); // += X21ᵀ·X21
  const x22 = lowerToDense(n2, a22, lda);
  const t = new Float64Array(n2 * n1);
  gemm(true, false, n2, n1, n2, 1, x22, n2, a21, lda, 0, t, n1); // X22ᵀ·X21
  for (let i = 0; i < n2; i++) for (let j = 0; j < n1; j++) a21[i * lda + j] = t[i * n1 + j];
  lauumLower(n2, a22, lda);
}

/** A⁻¹ from its Cholesky factor: L⁻¹ by TRTRI, then L⁻ᵀ·L⁻¹ by LAUUM (LAPACK dpotri). */
function potri(n: number, a: Float64Array, lda: number): number {
  const info = trtriLower(n, a, lda);
  if (info !== 0) return info;
  lauumLower(n, a, lda);
  return 0;
}

/**
 * A·xᵢ = bᵢ for the rows bᵢ of B (nrhs × n) from A = L·Lᵀ: X = B·A⁻¹ = (B·L⁻ᵀ)·L⁻¹, two
 * triangular solves from the right (LAPACK dpotrs on the transposed layout). Cost 2n²·nrhs.
 */
function potrs(n: number, nrhs: number, a: Float64Array, lda: number, b: Float64Array, ldb: number): number {
  if (n === 0 || nrhs === 0) return 0;
  trsmRightLowerTrans(nrhs, n, a, lda, b, ldb);
  trsmRightLower(nrhs, n, a, lda, b, ldb);
  return 0;
}

/** The m × n matrix b (ld ldb) transposed into a fresh n × m array. */
function transposed(m: number, n: number, b: Float64Array, ldb: number): Float64Array {
  const t = new Float64Array(n * m);
  for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) t[j * m + i] = b[i * ldb + j];
  return t;
}

/**
 * B ← op(L)⁻¹·B or B·op(L)⁻¹ (dtrsm, lower, non-unit). The right side is solved by the recursive
 * kernels above; the left side as the right side of the transpose: (L⁻¹B)ᵀ = BᵀL⁻ᵀ.
 */
function trsm(left: boolean, trans: boolean, m: number, n: number, a: Float64Array, lda: number, b: Float64Array, ldb: number): void {
  if (m === 0 || n === 0) return;
  if (!left) {
    if (trans) trsmRightLowerTrans(m, n, a, lda, b, ldb);
    else trsmRightLower(m, n, a, lda, b, ldb);
    return;
  }
  const t = transposed(m, n, b, ldb); // n × m
  if (trans) trsmRightLower(n, m, a, lda, t, m); // (Lᵀ)⁻¹B = (BᵀL⁻¹)ᵀ
  else trsmRightLowerTrans(n, m, a, lda, t, m); // L⁻¹B = (BᵀL⁻ᵀ)ᵀ
  for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) b[i * ldb + j] = t[j * m + i];
}

/** C ← α·A·B + β·C or α·B·A + β·C with A symmetric from its lower triangle (dsymm): the full A once, then the GEMM. */
function symm(
  left: boolean, m: number, n: number, alpha: number, a: Float64Array, lda: number,
  b: Float64Array, ldb: number, beta: number, c: Float64Array, ldc: number,
): void {
  const order = left ? m : n;
  const full = new Float64Array(order * order);
  for (let i = 0; i < order; i++) for (let j = 0; j <= i; j++) {
    const v = a[i * lda + j];
    full[i * order + j] = v;
    full[j * order + i] = v;
  }
  if (left) gemm(false, false, m, n, m, alpha, full, order, b, ldb, beta, c, ldc);
  else gemm(false, false, m, n, n, alpha, b, ldb, full, order, beta, c, ldc);
}

export const typescriptBackend: LinalgBackend = {
  name: 'typescript',
  gemm,
  syrk,
  trsm,
  symm,
  potrf,
  potri,
  potrs,
  syevr: (n, a, lda, lo, hi, w, z, ldz) => symmetricEigen(gemm, n, a, lda, lo, hi, w, z, ldz),
  scatterOwnBlock,
  scatterBlock,
  mirrorLower,
  populate: () => undefined,
  allFinite,
  khatriRao,
  symmetricKhatriRao,
  packLower,
  transposeEach,
  scaleColumns,
  layerRows,
};
