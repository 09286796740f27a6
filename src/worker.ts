/**
 * A worker thread of the compute pool (src/pool.ts): runs `compute` on a task and moves the
 * answer's Float64Arrays back to the main thread (transferred, not copied). A catalogued refusal
 * comes back as a plain { error } value, so its code survives the thread boundary.
 */
import { readlinkSync } from 'node:fs';
import { getPriority, setPriority } from 'node:os';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { Piscina } from 'piscina';
import { compute, type ComputeResult, type ComputeTask } from './compute.ts';
import { ServiceError } from './errors.ts';
import { taskSize } from './limits.ts';

// A worker that just built a large answer holds its scratch (chunks of up to 64 MiB, the forward
// pass) as garbage until its next task, since an idle worker allocates nothing that would start a
// collection; a full collection after each large task gives that memory back at once.
setFlagsFromString('--expose-gc');
const collectGarbage = runInNewContext('gc') as () => void;
const LARGE_TASK_BYTES = 32 * 1024 * 1024;

// Workers compute at a lower scheduling priority (Linux nice + 10, this thread only) than the main
// thread, so that with every core busy computing, the event loop still gets the CPU at once when a
// request arrives: GET /health and admission answer in milliseconds. Elsewhere this is a no-op.
try {
  const tid = Number(readlinkSync('/proc/thread-self').split('/').pop());
  if (Number.isInteger(tid) && tid > 0) setPriority(tid, Math.min(19, getPriority(tid) + 10));
} catch {
  // not Linux, or not allowed: keep the default priority
}

export type WorkerReply =
  | { readonly ok: ComputeResult }
  | { readonly error: { readonly code: string; readonly message: string } };

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

export default function run(task: ComputeTask): WorkerReply {
  let result: ComputeResult;
  try {
    result = compute(task);
  } catch (err) {
    if (err instanceof ServiceError) return { error: { code: err.code, message: err.detail } };
    throw err;
  } finally {
    if (taskSize(task).totalBytes > LARGE_TASK_BYTES) collectGarbage();
  }
  // Each buffer once (a transfer list must not repeat one); shared memory cannot be transferred.
  const buffers = new Set<ArrayBuffer>();
  for (const a of [result.array, result.outputs]) {
    if (a && a.data.buffer instanceof ArrayBuffer) buffers.add(a.data.buffer);
  }
  // piscina's typings key the interface by its own unique symbols; the getters above use the same ones
  const movable = new MovableReply({ ok: result }, [...buffers]) as unknown as Parameters<typeof Piscina.move>[0];
  return Piscina.move(movable) as unknown as WorkerReply;
}
