/**
 * The linear-algebra module: every matrix product of the core goes through `linalg()`.
 *
 * The backend is chosen once per process and per worker thread (each thread loads this module
 * afresh), from the environment:
 * - `CURVATURE_LINALG` = `auto` (default: OpenBLAS when its addon loads, else TypeScript, with
 *   the load error as the reason) | `openblas` (throws at import where the addon cannot load) |
 *   `typescript`.
 * - `CURVATURE_BLAS_THREADS`: OpenBLAS's thread count. Unset, OpenBLAS keeps its own default
 *   (`OPENBLAS_NUM_THREADS`, else every core). OpenBLAS has ONE thread pool per process, shared
 *   by all worker threads, and runs concurrent threaded calls one after another; measured on
 *   2 cores (n = 2000 dgemm): 2 workers × 1 thread = 83 GFLOP/s in aggregate, 2 workers ×
 *   2 threads = 81, 1 worker × 2 threads = 118 for a lone request vs 61 with 1 thread. So the
 *   default keeps all cores per call: same throughput under load, half the latency when idle.
 */
import type { LinalgBackend } from './types.ts';
import { typescriptBackend } from './typescript.ts';
import { coreTypeReason, openBlasAddon, openBlasBackend } from './openblas.ts';

export type { LinalgBackend } from './types.ts';
export { typescriptBackend } from './typescript.ts';
export { openBlasBackend } from './openblas.ts';

/** Which backend is active, why, and with how many BLAS threads (for the start-up log and GET /health). */
export interface LinalgInfo {
  readonly backend: LinalgBackend['name'];
  /** Threads one kernel call may use: OpenBLAS's (process-wide) count, or 1 for TypeScript. */
  readonly threads: number;
  /** Why this backend: the setting, and for a fallback the load error. */
  readonly reason: string;
  /** OpenBLAS's build string and kernel set, when the addon is loaded. */
  readonly openblas?: string;
}

export const LINALG_CHOICES = ['auto', 'openblas', 'typescript'] as const;
export type LinalgChoice = (typeof LINALG_CHOICES)[number];

type Env = Readonly<Record<string, string | undefined>>;

/**
 * Chooses a backend from `env` (see the module comment) and applies `CURVATURE_BLAS_THREADS`.
 * Throws on an unknown setting, and for `openblas` where the addon does not load.
 */
export function selectBackend(env: Env = process.env): { backend: LinalgBackend; reason: string } {
  const raw = (env.CURVATURE_LINALG ?? '').trim().toLowerCase() || 'auto';
  if (!(LINALG_CHOICES as readonly string[]).includes(raw)) {
    throw new Error(`CURVATURE_LINALG=${env.CURVATURE_LINALG} is not valid: use one of ${LINALG_CHOICES.join(', ')}`);
  }
  const choice = raw as LinalgChoice;
  if (choice === 'typescript') return { backend: typescriptBackend, reason: 'CURVATURE_LINALG=typescript' };
  let backend: LinalgBackend;
  try {
    backend = openBlasBackend();
  } catch (e) {
    if (choice === 'openblas') throw new Error(`CURVATURE_LINALG=openblas: ${(e as Error).message}`, { cause: e });
    return { backend: typescriptBackend, reason: `auto: fell back to TypeScript, since ${(e as Error).message}` };
  }
  const threads = env.CURVATURE_BLAS_THREADS?.trim();
  if (threads) setBlasThreads(parseThreads(threads));
  return { backend, reason: choice === 'auto' ? 'auto: the OpenBLAS addon loaded' : 'CURVATURE_LINALG=openblas' };
}

function parseThreads(raw: string): number {
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > 1024) {
    throw new Error(`CURVATURE_BLAS_THREADS=${raw} is not valid: expected an integer from 1 to 1024`);
  }
  return n;
}

/**
 * Sets OpenBLAS's thread count, process-wide (every worker thread shares it); a no-op for the
 * TypeScript backend, which is single-threaded. The worker pool sets it (src/pool.ts).
 */
export function setBlasThreads(n: number): void {
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`BLAS threads must be a positive integer, got ${n}`);
  let addon;
  try {
    addon = openBlasAddon();
  } catch {
    return;
  }
  if (addon.getNumThreads() !== n) addon.setNumThreads(n);
}

const selected = selectBackend();
let current: LinalgBackend = selected.backend;
let reason = selected.reason;

/** The backend in use. */
export function linalg(): LinalgBackend {
  return current;
}

/** Switches the backend (tests run the core on each; a worker thread wraps each kernel with its stop check). */
export function useBackend(backend: LinalgBackend): void {
  if (backend !== current) reason = `set by useBackend('${backend.name}')`;
  current = backend;
}

/**
 * Runs `fn` with `backend` as this thread's backend, then restores the one in use (the pool runs
 * its smallest tasks in the main thread on the TypeScript kernels this way, src/pool.ts).
 */
export function withBackend<T>(backend: LinalgBackend, fn: () => T): T {
  const before = current;
  current = backend;
  try {
    return fn();
  } finally {
    current = before;
  }
}

/** The active backend, its thread count and why it was chosen. */
export function linalgInfo(): LinalgInfo {
  if (current.name === 'typescript') return { backend: 'typescript', threads: 1, reason };
  const addon = openBlasAddon();
  return { backend: 'openblas', threads: addon.getNumThreads(), reason, openblas: `${addon.config()} (core ${addon.corename()}: ${coreTypeReason()})` };
}

/**
 * Makes the n × n row-major matrix `a` exactly symmetric by replacing each pair a[i][j], a[j][i]
 * with their mean (for results that are symmetric in exact arithmetic). Cost n²/2.
 */
export function symmetrizeByAveraging(n: number, a: Float64Array): void {
  for (let i = 0; i < n; i++) for (let j = 0; j < i; j++) {
    const v = 0.5 * (a[i * n + j] + a[j * n + i]);
    a[i * n + j] = v;
    a[j * n + i] = v;
  }
}

/** Doubles from which a new matrix has its pages faulted in at once (8 MiB; smaller ones come from the heap's touched pages as often as not). */
const POPULATE_FROM = 1 << 20;

/**
 * A new zeroed array of `length` doubles for a matrix about to be written whole (H, its inverse):
 * from 8 MiB on, its pages are faulted in at once by the backend (LinalgBackend.populate).
 */
export function newMatrix(length: number): Float64Array {
  const a = new Float64Array(length);
  if (length >= POPULATE_FROM) current.populate(a);
  return a;
}

/**
 * A working buffer reused for arrays of one kind, grown to the largest asked for: where each use
 * is consumed before the next is laid out (the block form's rows of one pair of layers by its
 * GEMMs, a tile by its scatter; a step of the R-operator's passes), one buffer serves them all,
 * with no fresh pages or garbage per use.
 */
export class Rows {
  private buffer = new Float64Array(0);
  /** `length` doubles, contents unspecified (whatever a previous use left): the caller writes every one it reads. */
  take(length: number): Float64Array {
    if (this.buffer.length < length) this.buffer = new Float64Array(length);
    return this.buffer.length === length ? this.buffer : this.buffer.subarray(0, length);
  }
}

/** Mirrors the lower triangle of the n × n row-major matrix `a` into its upper triangle (cost n²/2 moves; the backend's mirrorLower). */
export function symmetrizeFromLower(n: number, a: Float64Array, lda = n): void {
  current.mirrorLower(a, lda, 0, n, 0, n);
}
