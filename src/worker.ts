/**
 * A worker thread of the compute pool (src/pool.ts): runs `compute` on a task and moves the
 * answer's Float64Arrays back to the main thread (transferred, not copied). A catalogued refusal
 * comes back as a plain { error } value, so its code survives the thread boundary.
 *
 * Cancellation is cooperative first: every task comes with a shared flag that the main thread
 * raises when the caller goes away or the time limit passes, and this thread checks it before
 * every linear-algebra kernel call, which is where all heavy work of the core goes (chunked, so the
 * calls come often). The task then ends at once and the worker stays warm for the next one; the
 * pool terminates the thread only if it does not stop within a grace period.
 */
import { readlinkSync } from 'node:fs';
import { getPriority, setPriority } from 'node:os';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { isMainThread } from 'node:worker_threads';
import { Piscina } from 'piscina';
import { compute, CoreError, resultArrays, type ComputeResult, type CoreErrorData, type CurvatureTask } from './core/index.ts';
import { KERNEL_FLOPS, type KernelName } from './core/linalg/flops.ts';
import { linalg, typescriptBackend, useBackend } from './core/linalg/index.ts';
import type { LinalgBackend } from './core/linalg/types.ts';
import { markStarted, PROGRESS, PROGRESS_SCALE, STOP } from './stop-flags.ts';

// A worker that just built a large answer holds its scratch (chunks of up to 64 MiB, the forward
// pass) as garbage until its next task, since an idle worker allocates nothing that would start a
// collection; a full collection after each large task gives that memory back at once. It runs
// once the reply has gone (setImmediate: piscina posts a task's value as the function returns), so
// the answer does not wait for it (9–27 ms at the benchmark shape, W = 2762).
setFlagsFromString('--expose-gc');
const collectGarbage = runInNewContext('gc') as () => void;
const LARGE_TASK_BYTES = 32 * 1024 * 1024;

// Workers compute at a lower scheduling priority (Linux nice + 10, this thread only) than the main
// thread, so that with every core busy computing, the event loop still gets the CPU at once when a
// request arrives: GET /health and admission answer in milliseconds. Elsewhere this is a no-op.
// The cheap lane's workers (CURVATURE_WORKER_LANE=fast, src/pool.ts) keep the default priority:
// each of their tasks is estimated within CHEAP_TASK_MS, so they take a core from the event loop
// for milliseconds at most, and on a machine shared with other processes a lowered priority would
// make every cheap request wait for those processes' time slices.
// Never in the main thread, should this module be loaded there (the event loop would then be the
// one starved: seen as a 15 s start and 50 s answers on a loaded machine).
try {
  const tid = Number(readlinkSync('/proc/thread-self').split('/').pop());
  if (!isMainThread && Number.isInteger(tid) && tid > 0) setPriority(tid, Math.min(19, getPriority(tid) + (process.env.CURVATURE_WORKER_LANE === 'fast' ? 0 : 10)));
} catch {
  // not Linux, or not allowed: keep the default priority
}

/** What the pool sends a worker: the task (its buffers transferred), its size, and its flags shared with the main thread. */
export interface WorkerTask {
  readonly task: CurvatureTask;
  /** The pool's estimate of the task's peak memory (src/sizing.ts). */
  readonly totalBytes: number;
  /** The core's estimate of the nominal flops of its kernel calls (TaskFootprint.workBound.flops, src/core/work.ts), for its progress. */
  readonly expectedFlops: number;
  /** From stopFlags(): [STOP] raised by the main thread, [STARTED] and [PROGRESS] by this one. */
  readonly flags: Int32Array;
}

/** Thrown out of a kernel call once the running task's STOP flag is up. */
class Stopped extends Error {}

/** The flags of the task running now, if any. */
let running: Int32Array | undefined;
/** The running task's kernel flops so far, and the estimate of its total. */
let done = 0;
let expected = 1;

function checkStop(): void {
  if (running !== undefined && Atomics.load(running, STOP) !== 0) throw new Stopped('stopped at the pool\'s request');
}

/** Counts a kernel call's nominal flops into the running task's progress (its share of the estimate, for a job's status). */
function addProgress(flops: number): void {
  if (running === undefined) return;
  done += flops;
  Atomics.store(running, PROGRESS, Math.min(PROGRESS_SCALE, Math.floor((done / expected) * PROGRESS_SCALE)));
}

/**
 * The core's backend with, around each of its kernel calls (whichever kernels it has), the stop
 * check before and the progress after: the call's nominal flops (linalg/flops.ts).
 */
function stoppable(kernels: LinalgBackend): LinalgBackend {
  const wrapped: Record<string, unknown> = { name: kernels.name };
  for (const [key, value] of Object.entries(kernels)) {
    if (typeof value !== 'function') continue;
    const kernel = value as (...args: unknown[]) => unknown;
    const flops = (KERNEL_FLOPS as unknown as Record<string, ((...a: unknown[]) => number) | undefined>)[key as KernelName];
    wrapped[key] = (...args: unknown[]) => {
      checkStop();
      const out = kernel(...args);
      if (flops) addProgress(flops(...args));
      return out;
    };
  }
  return wrapped as unknown as LinalgBackend;
}
// The cheap lane's workers compute on the TypeScript kernels: an OpenBLAS call there would wait
// for a heavy worker's threaded call to end (the addon lets one run at a time), which can be tens
// of milliseconds; the pool sizes cheap tasks at the TypeScript kernels' rates (src/pool.ts).
useBackend(stoppable(process.env.CURVATURE_WORKER_LANE === 'fast' ? typescriptBackend : linalg()));

/**
 * A message to the pool's worker: a task, the warm-up each worker gets first (readiness), or a ping
 * the pool sends to have piscina start a worker after a fault (src/pool.ts).
 */
export type WorkerMessage = WorkerTask | WorkerWarmup | { readonly ping: true };

/**
 * A worker's answer: the result, a core refusal as its code and parameters, the note that it
 * stopped when asked, a bug (an exception the core did not mean: 500, with its stack), or a ping's
 * answer. Every outcome of a task is a reply, so that a rejected piscina.run means the worker
 * itself failed (it did not start, crashed or exited): a 503 the pool recovers from.
 */
export type WorkerReply =
  | { readonly ok: ComputeResult }
  | { readonly error: CoreErrorData }
  | { readonly stopped: true }
  | { readonly warm: true }
  | { readonly failed: { readonly name: string; readonly message: string; readonly stack?: string } }
  | { readonly pong: true };

/** The pool's first message to each worker: load everything, answer at once (the pool is ready when all have). */
export interface WorkerWarmup {
  readonly warmup: true;
}

/** A reply whose buffers piscina transfers: the Transferable interface of Piscina.move. */
class MovableReply {
  readonly #value: WorkerReply;
  readonly #buffers: ArrayBuffer[];

  constructor(value: WorkerReply, buffers: ArrayBuffer[]) {
    this.#value = value;
    this.#buffers = buffers;
  }

  get [Piscina.transferableSymbol](): ArrayBuffer[] {
    return this.#buffers;
  }

  get [Piscina.valueSymbol](): WorkerReply {
    return this.#value;
  }
}

export default function run(message: WorkerMessage): WorkerReply {
  if ('warmup' in message) return { warm: true };
  if ('ping' in message) return { pong: true };
  const { task, totalBytes, expectedFlops, flags } = message;
  let result: ComputeResult;
  markStarted(flags);
  running = flags;
  done = 0;
  expected = Math.max(1, expectedFlops);
  try {
    checkStop();
    result = compute(task);
  } catch (err) {
    if (err instanceof CoreError) return { error: err.data() };
    // the pool has already answered the caller (TIMEOUT or CLIENT_CLOSED) and ignores this reply
    if (err instanceof Stopped) return { stopped: true };
    const e = err instanceof Error ? err : new Error(String(err));
    return { failed: { name: e.name, message: e.message, stack: e.stack } };
  } finally {
    running = undefined;
    if (totalBytes > LARGE_TASK_BYTES) setImmediate(collectGarbage);
  }
  // Each buffer once (a transfer list must not repeat one); shared memory cannot be transferred.
  const buffers = new Set<ArrayBuffer>();
  for (const a of resultArrays(result)) if (a.data.buffer instanceof ArrayBuffer) buffers.add(a.data.buffer);
  // piscina's typings key the interface by its own unique symbols; the getters above use the same ones
  const movable = new MovableReply({ ok: result }, [...buffers]) as unknown as Parameters<typeof Piscina.move>[0];
  return Piscina.move(movable) as unknown as WorkerReply;
}
