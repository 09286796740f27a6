/**
 * The pool's real worker module (src/worker.ts) with faults injected on demand, for the pool's
 * fault tests: a real worker thread that fails as real ones do.
 *
 * - While the file named by FAULTY_WORKER_FAIL_FILE exists, loading this module throws (a worker
 *   that cannot start, as with EMFILE while it loads its modules).
 * - A /jacobian task whose first input is CRASH_EXIT exits the thread (process.exit in a worker);
 *   one whose first input is CRASH_THROW throws from a timer, an uncaught error in the thread;
 *   one whose first input is CORE_BUG reaches the real worker without its network (a bug in the core).
 */
import { existsSync } from 'node:fs';
// this module is itself a worker module, loaded only in the pool's worker threads (workerFile), never in the main thread
// eslint-disable-next-line @typescript-eslint/no-restricted-imports
import run, { type WorkerMessage, type WorkerReply } from '../../src/worker.ts';

export const CRASH_EXIT = 666;
export const CRASH_THROW = 667;
/** The real worker is handed this task without its network: the core throws a TypeError, a bug. */
export const CORE_BUG = 668;

const failFile = process.env.FAULTY_WORKER_FAIL_FILE;
if (failFile && existsSync(failFile)) throw new Error(`injected start failure (${failFile} exists)`);

export default function faulty(message: WorkerMessage): WorkerReply | Promise<WorkerReply> {
  if ('task' in message && message.task.endpoint === 'jacobian') {
    const first = message.task.inputs.data[0];
    if (first === CRASH_EXIT) process.exit(7);
    if (first === CRASH_THROW) {
      setTimeout(() => { throw new Error('injected crash in the worker'); }, 10);
      return new Promise<WorkerReply>(() => {});
    }
    if (first === CORE_BUG) return run({ ...message, task: { ...message.task, network: undefined as never } });
  }
  return run(message);
}
