/**
 * The flags a running task shares with the main thread (src/pool.ts sets STOP, src/worker.ts sets
 * STARTED and PROGRESS and checks STOP before every kernel call). A module of its own because the
 * worker module may only be loaded in a worker: it lowers its thread's priority when it loads.
 */

/** Raised by the main thread: the caller went away or the time limit passed. */
export const STOP = 0;
/** Raised by the worker when it takes the task from the queue. */
export const STARTED = 1;
/**
 * Written by the worker after each kernel call: the nominal flops of the calls so far against the
 * core's estimate of the task's total (TaskFootprint.workBound.flops), in units of 1 / PROGRESS_SCALE,
 * at most PROGRESS_SCALE. It only grows.
 */
export const PROGRESS = 2;
export const PROGRESS_SCALE = 1_000_000_000;

/** Bytes of the flags (three Int32), then (at STARTED_AT_BYTE) the time the worker took the task, a Float64 of ms since the epoch. */
const STARTED_AT_BYTE = 16;

/** A fresh set of flags, all down, in shared memory (structured clone passes it by reference). */
export function stopFlags(): Int32Array {
  return new Int32Array(new SharedArrayBuffer(STARTED_AT_BYTE + Float64Array.BYTES_PER_ELEMENT), 0, 3);
}

/** Raises STARTED, after writing the time (Date.now()): a thread that sees STARTED sees the time too (Atomics.store orders it). */
export function markStarted(flags: Int32Array): void {
  if (flags.buffer.byteLength >= STARTED_AT_BYTE + 8) new Float64Array(flags.buffer, STARTED_AT_BYTE, 1)[0] = Date.now();
  Atomics.store(flags, STARTED, 1);
}

/** When the task was taken by its worker (ms since the epoch), or undefined while it waits. */
export function startedAt(flags: Int32Array): number | undefined {
  if (Atomics.load(flags, STARTED) === 0 || flags.buffer.byteLength < STARTED_AT_BYTE + 8) return undefined;
  return new Float64Array(flags.buffer, STARTED_AT_BYTE, 1)[0];
}

/** The share of the estimated work done, in [0, 1], as the worker last wrote it. */
export function progressOf(flags: Int32Array): number {
  return Math.min(1, Math.max(0, Atomics.load(flags, PROGRESS) / PROGRESS_SCALE));
}
