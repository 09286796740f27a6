/**
 * A worker thread of the compute pool (src/pool.ts): runs `compute` on a task and moves the
 * answer's Float64Arrays back to the main thread (transferred, not copied). A catalogued refusal
 * comes back as a plain { error } value, so its code survives the thread boundary.
 */
import { Piscina } from 'piscina';
import { compute, type ComputeResult, type ComputeTask } from './compute.ts';
import { ServiceError } from './errors.ts';

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
