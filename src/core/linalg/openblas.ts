/**
 * The OpenBLAS/LAPACK backend: the optional addon `curvature-openblas` (`native/`, built by
 * node-gyp at `npm install` where libopenblas-dev and liblapacke-dev are present). The addon is
 * context-aware, so each worker thread loads its own instance. Its kernels take exactly the
 * arguments of {@link LinalgBackend}; they check argument types and buffer lengths, not shapes.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { isMainThread } from 'node:worker_threads';
import type { LinalgBackend, SyevrResult } from './types.ts';
import { scaledColumn } from './typescript.ts';

/**
 * What the addon exports (native/index.d.ts; repeated here since the package may be absent). The
 * kernels whose arguments are the backend's own take them from LinalgBackend.
 */
export interface OpenBlasAddon extends Pick<LinalgBackend, 'allFinite' | 'khatriRao' | 'symmetricKhatriRao' | 'packLower' | 'transposeEach' | 'scaleColumns'> {
  dgemm(
    transA: boolean, transB: boolean, m: number, n: number, k: number,
    alpha: number, a: Float64Array, lda: number, b: Float64Array, ldb: number,
    beta: number, c: Float64Array, ldc: number,
  ): void;
  dsyrk(
    trans: boolean, n: number, k: number, alpha: number, a: Float64Array, lda: number,
    beta: number, c: Float64Array, ldc: number,
  ): void;
  dtrsm(left: boolean, trans: boolean, m: number, n: number, a: Float64Array, lda: number, b: Float64Array, ldb: number): void;
  dsymm(
    left: boolean, m: number, n: number, alpha: number, a: Float64Array, lda: number, b: Float64Array, ldb: number,
    beta: number, c: Float64Array, ldc: number,
  ): void;
  dpotrf(n: number, a: Float64Array, lda: number): number;
  dpotri(n: number, a: Float64Array, lda: number): number;
  dpotrs(n: number, nrhs: number, a: Float64Array, lda: number, b: Float64Array, ldb: number): number;
  dsyevr(
    n: number, a: Float64Array, lda: number, lo: number, hi: number,
    w: Float64Array, z: Float64Array | null, ldz: number,
  ): SyevrResult;
  /** Process-wide: one OpenBLAS thread pool serves every worker thread. */
  setNumThreads(n: number): void;
  getNumThreads(): number;
  /** e.g. "OpenBLAS 0.3.21 NO_LAPACKE DYNAMIC_ARCH NO_AFFINITY Haswell MAX_THREADS=64". */
  config(): string;
  corename(): string;
  scatterOwnBlock(
    data: Float64Array, stride: number, rowStart: number, rowEnd: number, colOffset: number,
    offset: number, inputs: number, outputs: number, bias: boolean, t: Float64Array, i0: number, i1: number,
  ): void;
  scatterBlock(
    data: Float64Array, stride: number, rowStart: number, rowEnd: number, colOffset: number, mirror: boolean,
    lOffset: number, lIn: number, lOut: number, lBias: boolean, mOffset: number, mIn: number, mOut: number, mBias: boolean,
    t: Float64Array, a0: number, na: number, nb: number, aIsI: boolean,
  ): void;
  mirrorLower(a: Float64Array, lda: number, r0: number, r1: number, c0: number, c1: number): void;
  populate(a: Float64Array, threads: number): number;
  layerRows(x: Float64Array, c: number, k: number, offset: number, inputs: number, outputs: number, bias: boolean, z: Float64Array, rows: Float64Array, width: number): void;
}

export const ADDON_PACKAGE = 'curvature-openblas';

/**
 * The kernel set for OpenBLAS to use on this CPU, from the flags Linux reports (only features
 * the kernel has enabled are listed): SkylakeX where AVX-512 (F, BW, DQ, VL) is there, Haswell
 * where AVX2 and FMA are, else none (OpenBLAS's own choice). DYNAMIC_ARCH builds pick their
 * kernels from the CPU's model number, and one older than the CPU falls back to Prescott, its
 * SSE3 kernels: OpenBLAS 0.3.21 (Debian 12) on a Xeon of model 207 ran dgemm at 21 GFLOP/s that
 * way, against 150 with SkylakeX (n = 1500, 2 threads, 2026-12-01).
 */
export function suggestedCoreType(cpuinfo?: string): string | undefined {
  let text = cpuinfo;
  if (text === undefined) {
    try {
      text = readFileSync('/proc/cpuinfo', 'utf8');
    } catch {
      return undefined;
    }
  }
  const line = /^flags\s*:(.*)$/m.exec(text)?.[1];
  if (!line) return undefined;
  const flags = new Set(line.trim().split(/\s+/));
  if (['avx512f', 'avx512bw', 'avx512dq', 'avx512vl'].every((f) => flags.has(f))) return 'SkylakeX';
  if (flags.has('avx2') && flags.has('fma')) return 'Haswell';
  return undefined;
}

/** OPENBLAS_CORETYPE as the service set it (undefined when the operator's or OpenBLAS's own choice stands). */
let coreTypeSet: string | undefined;

/** Why OpenBLAS runs the kernels it does, for linalgInfo. */
export function coreTypeReason(): string {
  return coreTypeSet ? `OPENBLAS_CORETYPE=${coreTypeSet}, set by the service from the CPU's flags` : process.env.OPENBLAS_CORETYPE ? `OPENBLAS_CORETYPE=${process.env.OPENBLAS_CORETYPE}, set by the environment` : "OpenBLAS's own choice";
}

let loaded: { addon: OpenBlasAddon } | { error: Error } | undefined;

/** The addon, loaded once per thread; throws the load error (every time) where it cannot load. */
export function openBlasAddon(): OpenBlasAddon {
  if (loaded === undefined) {
    // OpenBLAS's idle threads spin for 2^28 cycles after each call by default and take the cores
    // the JavaScript between kernel calls needs (measured: W ≈ 9600 outer product 3.7 s spinning,
    // 1.4 s without). It reads this when the library loads, which happens in the main thread
    // first (the app asks for linalgInfo at start-up); a worker's process.env is its own copy.
    if (isMainThread) {
      process.env.OPENBLAS_THREAD_TIMEOUT ??= '4';
      // The kernels: where the operator has not chosen, the ones this CPU's flags allow (see suggestedCoreType).
      if (process.env.OPENBLAS_CORETYPE === undefined) {
        coreTypeSet = suggestedCoreType();
        if (coreTypeSet) process.env.OPENBLAS_CORETYPE = coreTypeSet;
      }
    }
    try {
      loaded = { addon: createRequire(import.meta.url)(ADDON_PACKAGE) as OpenBlasAddon };
    } catch (e) {
      const why = e instanceof Error ? e.message.split('\n')[0] : String(e);
      loaded = {
        error: new Error(
          `the OpenBLAS addon (${ADDON_PACKAGE}, native/) does not load: ${why}. ` +
            'Install libopenblas-dev and liblapacke-dev, then run `npm rebuild curvature-openblas`.',
        ),
      };
    }
  }
  if ('error' in loaded) throw loaded.error;
  return loaded.addon;
}

/**
 * Whether a product is a long scaled column (k = n = 1, m ≥ 64), cheaper in JavaScript than a call
 * into the addon (typescript.ts scaledColumn), with operands that lie inside their arrays as the
 * addon's checks require; any other product, a malformed one included, goes to the addon.
 */
function isScaledColumn(transA: boolean, m: number, n: number, k: number, alpha: number, a: Float64Array, lda: number, b: Float64Array, ldb: number, c: Float64Array, ldc: number): boolean {
  if (n !== 1 || k !== 1 || m < 64 || alpha === 0 || typeof transA !== 'boolean') return false;
  if (!(a instanceof Float64Array && b instanceof Float64Array && c instanceof Float64Array) || b.length < 1 || ldb < 1 || ldc < 1) return false;
  return lda >= (transA ? m : 1) && (m - 1) * (transA ? 1 : lda) < a.length && (m - 1) * ldc < c.length;
}

/** The backend over the addon; throws where the addon cannot load. */
export function openBlasBackend(): LinalgBackend {
  const x = openBlasAddon();
  return {
    name: 'openblas',
    gemm: (transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc) =>
      (isScaledColumn(transA, m, n, k, alpha, a, lda, b, ldb, c, ldc)
        ? scaledColumn(transA, m, alpha, a, lda, b[0], beta, c, ldc)
        : x.dgemm(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)),
    syrk: (trans, n, k, alpha, a, lda, beta, c, ldc) => x.dsyrk(trans, n, k, alpha, a, lda, beta, c, ldc),
    trsm: (left, trans, m, n, a, lda, b, ldb) => x.dtrsm(left, trans, m, n, a, lda, b, ldb),
    symm: (left, m, n, alpha, a, lda, b, ldb, beta, c, ldc) => x.dsymm(left, m, n, alpha, a, lda, b, ldb, beta, c, ldc),
    potrf: (n, a, lda) => x.dpotrf(n, a, lda),
    potri: (n, a, lda) => x.dpotri(n, a, lda),
    potrs: (n, nrhs, a, lda, b, ldb) => x.dpotrs(n, nrhs, a, lda, b, ldb),
    syevr: (n, a, lda, lo, hi, w, z, ldz) => x.dsyevr(n, a, lda, lo, hi, w, z, ldz),
    scatterOwnBlock: (h, l, t, i0, i1) => x.scatterOwnBlock(h.data, h.stride, h.rowStart, h.rowEnd, h.colOffset, l.offset, l.in, l.out, l.aug > l.in, t, i0, i1),
    scatterBlock: (h, l, m, t, a0, na, nb, aIsI) =>
      x.scatterBlock(h.data, h.stride, h.rowStart, h.rowEnd, h.colOffset, h.mirror, l.offset, l.in, l.out, l.aug > l.in, m.offset, m.in, m.out, m.aug > m.in, t, a0, na, nb, aIsI),
    mirrorLower: (a, lda, r0, r1, c0, c1) => x.mirrorLower(a, lda, r0, r1, c0, c1),
    populate: (a) => void x.populate(a, x.getNumThreads()),
    allFinite: (a) => x.allFinite(a),
    khatriRao: (a, na, b, nb, c, out) => x.khatriRao(a, na, b, nb, c, out),
    symmetricKhatriRao: (z, nz, c, out) => x.symmetricKhatriRao(z, nz, c, out),
    packLower: (a, r, c, out) => x.packLower(a, r, c, out),
    transposeEach: (a, c, r, q, out) => x.transposeEach(a, c, r, q, out),
    scaleColumns: (a, c, r, w, d) => x.scaleColumns(a, c, r, w, d),
    layerRows: (a, c, k, l, z, rows, width) => x.layerRows(a, c, k, l.offset, l.in, l.out, l.aug > l.in, z, rows, width),
  };
}
