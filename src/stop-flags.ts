/**
 * The flags a running task shares with the main thread (src/pool.ts sets STOP, src/worker.ts sets
 * STARTED and checks STOP before every kernel call). A module of its own because the worker
 * module may only be loaded in a worker: it lowers its thread's priority when it loads.
 */

/** Raised by the main thread: the caller went away or the time limit passed. */
export const STOP = 0;
/** Raised by the worker when it takes the task from the queue. */
export const STARTED = 1;

/** A fresh pair of flags, both down, in shared memory (structured clone passes it by reference). */
export function stopFlags(): Int32Array {
  return new Int32Array(new SharedArrayBuffer(2 * Int32Array.BYTES_PER_ELEMENT));
}
