/**
 * The compute pool: runs `compute` in worker threads (piscina) so that no computation blocks the
 * event loop, with, in front of it, everything that keeps one machine safe for many callers:
 *
 * - size before work: every task is sized once, in the main thread (src/sizing.ts), before it is
 *   queued, and the figure goes with it to the worker;
 * - load shedding: at most `workers + queueLimit` tasks in flight, past that 503 + Retry-After;
 * - cancellation: a task whose caller went away, or that ran past REQUEST_TIMEOUT_MS, is stopped:
 *   a queued one leaves the queue; a running one is asked to stop through a flag it shares with
 *   its worker (src/worker.ts), which ends it at the next kernel call and keeps the worker warm;
 *   only a task that does not stop within STOP_GRACE_MS has its worker terminated (and replaced);
 * - counters for GET /health: workers, busy, queued, completed, aborted, timed out, shed.
 *
 * OpenBLAS keeps one thread pool per process, shared by all workers; unless CURVATURE_BLAS_THREADS
 * is set, every kernel call may use every core (see blasThreadsFor).
 */
import { availableParallelism } from 'node:os';
import { Piscina } from 'piscina';
import { compute, taskBuffers, taskFootprint, type ComputeResult, type CurvatureTask, type TaskFootprint } from './core/index.ts';
import type { Config } from './config.ts';
import { asServiceError, ServiceError } from './errors.ts';
import { checkTaskSize } from './sizing.ts';
import { setBlasThreads } from './core/linalg/index.ts';
import { markStarted, STARTED, STOP, stopFlags } from './stop-flags.ts';
// types only: the worker module must not load in the main thread (it lowers its thread's priority)
import type { WorkerReply, WorkerTask } from './worker.ts';

export interface PoolStats {
  /** Worker threads (0: computing in the main thread). */
  readonly workers: number;
  /** Workers running a task now. */
  readonly busyWorkers: number;
  /** Tasks waiting for a worker. */
  readonly queued: number;
  /** Most tasks that may wait; past it, 503. */
  readonly queueLimit: number;
  /** OpenBLAS threads per kernel call (process-wide). */
  readonly blasThreads: number;
  readonly completedTasks: number;
  /** Tasks aborted because the caller disconnected. */
  readonly abortedTasks: number;
  /** Tasks aborted after REQUEST_TIMEOUT_MS. */
  readonly timedOutTasks: number;
  /** Requests refused with 503 because the queue was full. */
  readonly rejectedTasks: number;
  /** Workers terminated (and replaced) because a stopped task did not end within the grace period. */
  readonly terminatedWorkers: number;
}

export interface ComputePool {
  /**
   * Sizes, admits and runs a task; `signal` aborts it (the caller disconnected). `flags` (from
   * stopFlags()), when given, are the task's own: the caller reads from them whether it started
   * and its progress (a job's status).
   */
  run(task: CurvatureTask, signal?: AbortSignal, flags?: Int32Array): Promise<ComputeResult>;
  /** Throws the 503 (OVERLOADED, with retryAfter) that `run` would give now for want of room. */
  admit(): void;
  stats(): PoolStats;
  /** Stops taking tasks, waits for those in flight, then ends the workers. */
  close(): Promise<void>;
  /** Ends the workers now, aborting whatever runs. */
  destroy(): Promise<void>;
  /**
   * Stops every task queued or running (the end of a shutdown's grace period): each caller gets
   * a 503 OVERLOADED saying the service is shutting down, with Retry-After, and no new task is
   * admitted. Returns how many tasks it stopped.
   */
  stopAll(): number;
}

type PoolConfig = Pick<Config, 'workers' | 'queueLimit' | 'requestTimeoutMs' | 'maxResultBytes' | 'maxTaskBytes' | 'maxPoints' | 'maxParameters' | 'maxFiniteDifferenceCost'>;

/** The worker module beside this one: worker.ts under tsx (tests, dev), worker.js in dist/. */
function workerFile(): string {
  const ext = new URL(import.meta.url).pathname.endsWith('.ts') ? '.ts' : '.js';
  return new URL(`./worker${ext}`, import.meta.url).href;
}

/**
 * BLAS threads per kernel call: CURVATURE_BLAS_THREADS, else every core. OpenBLAS runs concurrent
 * threaded calls one after another on its one process-wide thread pool, so all cores per call
 * loses nothing under load (2 workers × 2 threads: 81 GFLOP/s in aggregate against 83 for
 * 2 × 1) and halves a lone request's kernel time (118 against 61 GFLOP/s); with the idle
 * threads' spinning cut short (linalg/openblas.ts) they do not take the JavaScript's cores.
 */
export function blasThreadsFor(env: Readonly<Record<string, string | undefined>> = process.env): number {
  const set = Number(env.CURVATURE_BLAS_THREADS);
  if (Number.isInteger(set) && set >= 1) return set;
  return availableParallelism();
}

/**
 * How long a running task that was asked to stop may take to end by itself before its worker is
 * terminated. It ends at its next kernel call, which comes within milliseconds in the core's
 * chunked loops; a native call already running cannot be interrupted either way.
 */
export const STOP_GRACE_MS = 2000;

/** How long closing the pool waits for the worker threads to exit. */
const DESTROY_WAIT_MS = 5000;


/** Why a task was aborted, kept on the controller's reason so the rejection can be told apart. */
class TaskAborted extends Error {
  constructor(readonly why: 'client' | 'timeout' | 'closing') {
    super(why);
  }
}

/** Counters and admission shared by the threaded and the in-thread pools. */
abstract class BasePool implements ComputePool {
  protected inFlight = 0;
  protected completed = 0;
  protected aborted = 0;
  protected timedOut = 0;
  protected rejected = 0;
  protected terminated = 0;
  protected closing = false;
  /** Mean task time in ms (exponentially weighted), for Retry-After. */
  private meanMs = 1000;
  private readonly idleWaiters: (() => void)[] = [];
  /** The controllers of the tasks in flight, for stopAll. */
  private readonly controllers = new Set<AbortController>();

  constructor(protected readonly config: PoolConfig, protected readonly workers: number, protected readonly blasThreads: number) {}

  protected abstract execute(task: CurvatureTask, size: TaskFootprint, signal: AbortSignal, flags: Int32Array): Promise<ComputeResult>;
  protected abstract running(): number;
  protected abstract endWorkers(): Promise<void>;

  async run(task: CurvatureTask, signal?: AbortSignal, flags: Int32Array = stopFlags()): Promise<ComputeResult> {
    const size = taskFootprint(task);
    checkTaskSize(size, this.config);
    this.admit();
    const controller = new AbortController();
    const onAbort = () => controller.abort(new TaskAborted('client'));
    if (signal?.aborted) onAbort();
    signal?.addEventListener('abort', onAbort, { once: true });
    const timeout = this.config.requestTimeoutMs;
    const timer = timeout > 0 ? setTimeout(() => controller.abort(new TaskAborted('timeout')), timeout) : undefined;
    timer?.unref();
    this.controllers.add(controller);
    this.inFlight++;
    const started = performance.now();
    try {
      const result = await this.execute(task, size, controller.signal, flags);
      this.completed++;
      this.meanMs = 0.8 * this.meanMs + 0.2 * (performance.now() - started);
      return result;
    } catch (err) {
      const why = controller.signal.aborted ? (controller.signal.reason as TaskAborted).why : undefined;
      if (why === 'timeout') {
        this.timedOut++;
        throw new ServiceError('TIMEOUT', { ms: timeout });
      }
      if (why === 'client') {
        this.aborted++;
        throw new ServiceError('CLIENT_CLOSED', {});
      }
      if (why === 'closing') throw new ServiceError('OVERLOADED', { reason: 'stopped', retryAfter: 1 });
      throw asServiceError(err) ?? err;
    } finally {
      this.controllers.delete(controller);
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      this.inFlight--;
      if (this.inFlight === 0) for (const w of this.idleWaiters.splice(0)) w();
    }
  }

  admit(): void {
    if (this.closing) throw new ServiceError('OVERLOADED', { reason: 'shuttingDown', retryAfter: 1 });
    const capacity = Math.max(1, this.workers) + this.config.queueLimit;
    if (this.inFlight >= capacity) {
      this.rejected++;
      const retryAfter = Math.min(60, Math.max(1, Math.ceil((this.meanMs * (this.config.queueLimit + 1)) / Math.max(1, this.workers) / 1000)));
      throw new ServiceError('OVERLOADED', { reason: 'busy', workers: this.workers, queueLimit: this.config.queueLimit, retryAfter });
    }
  }

  stats(): PoolStats {
    const busy = Math.min(this.running(), this.inFlight);
    return {
      workers: this.workers,
      busyWorkers: busy,
      queued: Math.max(0, this.inFlight - busy),
      queueLimit: this.config.queueLimit,
      blasThreads: this.blasThreads,
      completedTasks: this.completed,
      abortedTasks: this.aborted,
      timedOutTasks: this.timedOut,
      rejectedTasks: this.rejected,
      terminatedWorkers: this.terminated,
    };
  }

  async close(): Promise<void> {
    this.closing = true;
    if (this.inFlight > 0) await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
    await this.endWorkers();
  }

  async destroy(): Promise<void> {
    this.closing = true;
    await this.endWorkers();
  }

  stopAll(): number {
    this.closing = true;
    const n = this.controllers.size;
    for (const c of this.controllers) c.abort(new TaskAborted('closing'));
    return n;
  }
}

/** Turns a worker's reply into a result, or rethrows its refusal as the same catalogued error. */
function unwrap(reply: WorkerReply): ComputeResult {
  if ('error' in reply) throw ServiceError.fromCore(reply.error);
  // the pool asked it to stop, and answers the caller itself (run's catch)
  if ('stopped' in reply) throw new Error('stopped at the pool\'s request');
  return reply.ok;
}

class ThreadPool extends BasePool {
  private readonly piscina: Piscina;

  constructor(config: PoolConfig) {
    const blas = blasThreadsFor();
    super(config, config.workers, blas);
    setBlasThreads(blas);
    this.piscina = new Piscina({
      filename: workerFile(),
      minThreads: config.workers,
      maxThreads: config.workers,
      // admission is ours (BasePool.run); piscina's own queue never refuses
      maxQueue: Infinity,
      idleTimeout: Infinity,
      // one task per worker at a time: a worker computes, it never interleaves
      concurrentTasksPerWorker: 1,
      env: { ...process.env, CURVATURE_BLAS_THREADS: String(blas) },
    });
  }

  protected async execute(task: CurvatureTask, size: TaskFootprint, signal: AbortSignal, flags: Int32Array): Promise<ComputeResult> {
    // piscina's own abort: dequeues a waiting task, terminates the worker of a running one
    const hard = new AbortController();
    let grace: NodeJS.Timeout | undefined;
    const stop = () => {
      Atomics.store(flags, STOP, 1);
      if (Atomics.load(flags, STARTED) === 0) hard.abort(signal.reason);
      else {
        grace = setTimeout(() => { this.terminated++; hard.abort(signal.reason); }, STOP_GRACE_MS);
        grace.unref();
      }
    };
    if (signal.aborted) stop();
    signal.addEventListener('abort', stop, { once: true });
    try {
      const message: WorkerTask = { task, totalBytes: size.totalBytes, expectedFlops: size.kernelFlops.flops, flags };
      // the task's buffers move to the worker (the edge built them for it alone)
      return unwrap(await this.piscina.run(message, { signal: hard.signal, transferList: taskBuffers(task) }) as WorkerReply);
    } finally {
      clearTimeout(grace);
      signal.removeEventListener('abort', stop);
    }
  }

  protected running(): number {
    return Math.max(0, this.inFlight - this.piscina.queueSize);
  }

  protected async endWorkers(): Promise<void> {
    // A worker terminated by an abort may report its exit only after the pool is destroyed, and
    // piscina then starts a replacement to keep minThreads, which would keep the process alive:
    // with minThreads 0 nothing is started again.
    (this.piscina.options as { minThreads: number }).minThreads = 0;
    // piscina waits for each worker's 'exit'; a worker that is never heard from again must not hold
    // the shutdown forever, so the wait is bounded (the process exits after close in any case).
    let timer: NodeJS.Timeout | undefined;
    const bounded = new Promise<'timeout'>((resolve) => { timer = setTimeout(() => resolve('timeout'), DESTROY_WAIT_MS); });
    const outcome = await Promise.race([this.piscina.destroy().then(() => 'done' as const), bounded]);
    clearTimeout(timer);
    if (outcome === 'timeout') process.emitWarning(`compute pool: workers did not exit within ${DESTROY_WAIT_MS} ms of destroy; continuing`);
  }
}

/** Computes in the main thread: no cancellation once started (WORKERS=0, or tests with their own runner). */
class InlinePool extends BasePool {
  constructor(config: PoolConfig, private readonly runner: (task: CurvatureTask) => Promise<ComputeResult>) {
    super(config, 0, blasThreadsFor());
  }

  protected async execute(task: CurvatureTask, _size: TaskFootprint, signal: AbortSignal, flags: Int32Array): Promise<ComputeResult> {
    signal.throwIfAborted();
    // started at once, and no progress until it is done: this thread computes
    markStarted(flags);
    return this.runner(task);
  }

  protected running(): number {
    return Math.min(1, this.inFlight);
  }

  protected async endWorkers(): Promise<void> {}
}

/** A pool of `config.workers` threads, or the main thread when that is 0 (or `runner` is given). */
export function createPool(config: PoolConfig, runner?: (task: CurvatureTask) => Promise<ComputeResult>): ComputePool {
  if (runner) return new InlinePool(config, runner);
  if (config.workers === 0) return new InlinePool(config, async (task) => compute(task));
  return new ThreadPool(config);
}
