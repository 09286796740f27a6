/**
 * The compute pool: runs `compute` in worker threads (piscina) so that no computation blocks the
 * event loop, with, in front of it, everything that keeps one machine safe for many callers:
 *
 * - size before work: every task is sized once, in the main thread (src/sizing.ts), before it is
 *   queued: its memory (the operation's footprint) and its cost in seconds (src/cost.ts, from
 *   the core's work estimate), and the figures go with it;
 * - admission by cost, in two lanes. A task whose estimate on the TypeScript kernels (at most, for
 *   iterative methods) is within CHEAP_TASK_MS is cheap: FAST_WORKERS threads of their own take
 *   only cheap tasks, on those kernels, so a cheap task never waits behind a heavy one (nor behind
 *   its OpenBLAS calls), and the WORKERS take either, oldest first. The smallest (INLINE_TASK_MS)
 *   are computed at once in the main thread. A heavy
 *   task is refused (503 OVERLOADED + Retry-After) when QUEUE_LIMIT heavy tasks already wait or
 *   when the estimated seconds queued and running ahead of it exceed what it may wait
 *   (REQUEST_TIMEOUT_MS); a cheap one when its lane's backlog exceeds CHEAP_QUEUE_WAIT_FACTOR ×
 *   CHEAP_TASK_MS. Retry-After is the estimated time until it would be admitted, 0 under half a
 *   second;
 * - the memory budget (src/budget.ts): a task holds its whole footprint from admission; when it
 *   ends, its answer stays held until the caller has sent it (`release` of the returned hold); a
 *   task that does not fit is refused with 503 and the time until enough is estimated to be free;
 * - cancellation: a task whose caller went away, or that ran past REQUEST_TIMEOUT_MS, is stopped:
 *   a queued one leaves the queue; a running one is asked to stop through a flag it shares with
 *   its worker (src/worker.ts), which ends it at the next kernel call and keeps the worker warm;
 *   only a task that does not stop within STOP_GRACE_MS has its worker terminated (and replaced);
 * - worker faults: a worker that fails to start or dies while computing (EMFILE while it loads its
 *   modules, an exit, an uncaught error) is logged, its task answered 503 WORKER_FAILED with
 *   Retry-After, and the pool starts workers again (in the lane that lost one), backing off while
 *   they keep failing; the process never exits on it (piscina's 'error' event is handled);
 * - counters for GET /health and /metrics: workers, busy, queued and their estimated seconds,
 *   memory held, tasks by outcome, failed workers, the estimates' accuracy.
 *
 * OpenBLAS keeps one thread pool per process, shared by all workers; unless CURVATURE_BLAS_THREADS
 * is set, every kernel call may use every core (see blasThreadsFor).
 */
import { availableParallelism } from 'node:os';
import { Piscina } from 'piscina';
import { compute, resultArrays, taskBuffers, taskFootprint, type ComputeResult, type CurvatureTask, type TaskFootprint } from './core/index.ts';
import { DEFAULT_CONFIG, type Config } from './config.ts';
import { MemoryBudget, type Hold } from './budget.ts';
import { COST_RATES, costEstimate, type CostEstimate } from './cost.ts';
import { asServiceError, ServiceError } from './errors.ts';
import { checkTaskSize } from './sizing.ts';
import { linalgInfo, setBlasThreads, typescriptBackend, withBackend } from './core/linalg/index.ts';
import { markStarted, STARTED, STOP, stopFlags } from './stop-flags.ts';
// types only: the worker module must not load in the main thread (it lowers its thread's priority)
import type { WorkerMessage, WorkerReply, WorkerTask } from './worker.ts';

export type Lane = 'cheap' | 'heavy';

/** How a task ended: computed, refused by the core (4xx), timed out, its caller gone, stopped by a shutdown, or failed. */
export type TaskOutcome = 'completed' | 'refused' | 'timedOut' | 'aborted' | 'stopped' | 'failed';

export interface PoolStats {
  /** Worker threads (0: computing in the main thread). */
  readonly workers: number;
  /** Worker threads of the cheap lane (FAST_WORKERS), besides `workers`. */
  readonly fastWorkers: number;
  /** Workers (of both kinds) running a task now. */
  readonly busyWorkers: number;
  /** Tasks waiting for a worker. */
  readonly queued: number;
  /** Cheap tasks among them. */
  readonly queuedCheap: number;
  /** The estimated seconds of the tasks waiting. */
  readonly queuedSeconds: number;
  /** The estimated seconds the running tasks still need. */
  readonly runningSeconds: number;
  /** Most heavy tasks that may wait; past it, 503. */
  readonly queueLimit: number;
  /** Tasks estimated at most this many ms are cheap. */
  readonly cheapTaskMs: number;
  /** OpenBLAS threads per kernel call (process-wide). */
  readonly blasThreads: number;
  readonly completedTasks: number;
  /** Tasks aborted because the caller disconnected. */
  readonly abortedTasks: number;
  /** Tasks aborted after REQUEST_TIMEOUT_MS. */
  readonly timedOutTasks: number;
  /** Requests refused with 503 for want of room (workers, queue, backlog or memory). */
  readonly rejectedTasks: number;
  /** Workers terminated (and replaced) because a stopped task did not end within the grace period. */
  readonly terminatedWorkers: number;
  /** Workers that failed: did not start, or died while computing (each logged; replaced). */
  readonly failedWorkers: number;
  /** The memory budget and what is held against it, in bytes. */
  readonly memory: {
    readonly budgetBytes: number;
    readonly usedBytes: number;
    readonly bodyBytes: number;
    readonly taskBytes: number;
    readonly answerBytes: number;
    readonly answersInTransit: number;
  };
}

/** What the pool tells its observer (the metrics) about each task that ran or was refused. */
export type PoolEvent =
  | { readonly type: 'shed'; readonly lane: Lane | 'request'; readonly reason: string }
  | { readonly type: 'end'; readonly lane: Lane; readonly endpoint: string; readonly outcome: TaskOutcome; readonly seconds: number; readonly estimatedSeconds: number };

/** A computed answer and its bytes held against the memory budget until the caller releases them (the last byte sent). */
export interface PoolAnswer {
  readonly result: ComputeResult;
  readonly hold: Hold;
}

/** Where the pool reports worker faults: the app's pino logger, or any logger of that shape. */
export interface PoolLog {
  error(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
}

export interface PoolOptions {
  /** Default: warnings on the process (process.emitWarning). */
  readonly log?: PoolLog;
  /** The worker module; default src/worker.ts (worker.js in dist/). Tests give a module around it that fails on demand. */
  readonly workerFile?: string;
}

const warningLog: PoolLog = {
  error: (obj, msg) => process.emitWarning(`${msg} ${JSON.stringify(obj, (_key, v: unknown) => (v instanceof Error ? v.message : v))}`),
  info: () => {},
};

export interface ComputePool {
  /**
   * Sizes, admits and runs a task; `signal` aborts it (the caller disconnected). `flags` (from
   * stopFlags()), when given, are the task's own: the caller reads from them whether it started
   * and its progress (a job's status).
   */
  run(task: CurvatureTask, signal?: AbortSignal, flags?: Int32Array): Promise<PoolAnswer>;
  /**
   * Throws the refusal `run` would give this task now (its size, or 503 OVERLOADED for want of a
   * worker, queue room, time or memory), holding nothing: a job is refused this way instead of
   * answered 202 (src/jobs.ts), and run, called in the same tick, admits it again.
   */
  admit(task: CurvatureTask): void;
  /**
   * The check possible before a request's body is read: throws the 503 (OVERLOADED, with
   * retryAfter) when nothing could be admitted now (shutting down, the cheap lane full, the
   * memory budget without room for the body), else holds `bodyBytes` for the body until the
   * returned hold is released (the task sized, or the request over).
   */
  admitRequest(bodyBytes: number): Hold;
  /** The memory budget the pool admits against (answers in transit are held on it). */
  readonly budget: MemoryBudget;
  /** The cost estimate of a task on the backend in use (or on `backend`'s kernels). */
  estimate(size: TaskFootprint, backend?: 'openblas' | 'typescript'): CostEstimate;
  stats(): PoolStats;
  /** True once the workers are up, false again once the pool is closing. */
  ready(): boolean;
  /** Whether the pool is closing (shutdown). */
  closing(): boolean;
  /** Takes no new task (503 OVERLOADED, shutting down) while those in flight finish: the start of a shutdown. */
  beginShutdown(): void;
  /** Calls `listener` on every task's end and every refusal for want of room. */
  observe(listener: (event: PoolEvent) => void): void;
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

export type PoolConfig = Pick<Config, 'workers' | 'queueLimit' | 'requestTimeoutMs' | 'maxResultBytes' | 'maxTaskBytes' | 'maxPoints' | 'maxParameters' | 'maxFiniteDifferenceCost'>
  & Partial<Pick<Config, 'memoryBudgetBytes' | 'cheapTaskMs' | 'fastWorkers' | 'inlineTaskMs' | 'costScale'>>;

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

/** A cheap task may wait for its lane at most this many times CHEAP_TASK_MS (at least a second); past it, 503. */
const CHEAP_QUEUE_WAIT_FACTOR = 20;
/** Most cheap tasks that may wait, whatever their estimates (their bodies are in memory). */
const CHEAP_QUEUE_MAX = 4096;
/**
 * The rate at which answers in transit are assumed to leave, for Retry-After: well under loopback's
 * 1.1–1.9 GB/s (README's bench), since clients read over networks and some not at all (those are
 * cut after ANSWER_STALL_MS). A memory refusal says at least 1 s.
 */
const TRANSIT_BYTES_PER_SECOND = 50e6;

/** Retry-After in whole seconds from an estimate: 0 under half a second (a cheap backlog clears in milliseconds), at most an hour. */
export function retryAfterSeconds(seconds: number): number {
  if (!(seconds >= 0.5)) return 0;
  return Math.min(3600, Math.ceil(seconds));
}

/** Why a task was aborted, kept on the controller's reason so the rejection can be told apart. */
class TaskAborted extends Error {
  constructor(readonly why: 'client' | 'timeout' | 'closing' | 'noWorker', readonly detail = '') {
    super(why);
  }
}

/** The worker faults in a row (no task or ping succeeding between them) after which, with no worker of a lane alive, tasks waiting for one are answered at once. */
const NO_WORKER_FAULTS = 3;
/** The first wait before starting workers again after a fault, doubling per fault in a row up to HEAL_MAX_MS. */
const HEAL_FIRST_MS = 100;
const HEAL_MAX_MS = 5000;
/** Retry-After of a 503 WORKER_FAILED, in seconds. */
const NO_WORKER_RETRY_S = 1;

type Slot = 'general' | 'fast';

interface Entry {
  readonly task: CurvatureTask;
  readonly size: TaskFootprint;
  readonly cost: CostEstimate;
  readonly lane: Lane;
  readonly hold: Hold;
  readonly controller: AbortController;
  /** Its stop, start and progress flags (stop-flags.ts), shared with its worker. */
  readonly flags: Int32Array;
  startedAt?: number;
  slot?: Slot;
  /** Settles the run: the worker's result or its error. */
  settle(outcome: { ok: ComputeResult } | { err: unknown }): void;
}

/** Admission, lanes, the memory budget and the counters, shared by the threaded and the in-thread pools. */
abstract class BasePool implements ComputePool {
  protected completed = 0;
  protected aborted = 0;
  protected timedOut = 0;
  protected rejected = 0;
  protected terminated = 0;
  protected failed = 0;
  protected isClosing = false;
  readonly budget: MemoryBudget;
  private readonly queue: Entry[] = [];
  private readonly running = new Set<Entry>();
  private readonly busy: Record<Slot, number> = { general: 0, fast: 0 };
  private readonly idleWaiters: (() => void)[] = [];
  private readonly listeners: ((e: PoolEvent) => void)[] = [];
  /** The tasks admitted and not yet settled, for stopAll and close. */
  private readonly controllers = new Set<AbortController>();
  protected readonly cheapTaskMs: number;
  private readonly costScale: number;
  /**
   * Tasks estimated (at most) within this many seconds are computed at once in the main thread, on
   * the TypeScript kernels, instead of on a worker (INLINE_TASK_MS; the threaded pool only: the
   * in-thread one runs every task there anyway). A sub-millisecond computation costs less than the
   * two thread hand-offs it would need, each a wake-up that on a busy machine waits for a time
   * slice: measured with 64 connections of tiny requests, twice the throughput (2,600–3,200
   * against 1,200–1,600 a second). The TypeScript kernels, since an OpenBLAS call would wait for
   * a worker's threaded call to end (the addon serialises them) with the event loop blocked; the
   * event loop is held no longer than parsing such a request's body takes.
   */
  protected inlineSeconds = 0;

  constructor(protected readonly config: PoolConfig, protected readonly workers: number, protected readonly fastWorkers: number, protected readonly blasThreads: number) {
    this.budget = new MemoryBudget(config.memoryBudgetBytes ?? DEFAULT_CONFIG.memoryBudgetBytes);
    this.cheapTaskMs = config.cheapTaskMs ?? DEFAULT_CONFIG.cheapTaskMs;
    this.costScale = config.costScale ?? DEFAULT_CONFIG.costScale;
  }

  /** Runs the task on a worker of this slot (the pool keeps at most as many on each as it has), with its flags. */
  protected abstract execute(task: CurvatureTask, size: TaskFootprint, slot: Slot, signal: AbortSignal, flags: Int32Array): Promise<ComputeResult>;
  protected abstract endWorkers(): Promise<void>;
  abstract ready(): boolean;

  /** Worker slots of each kind: general ones (at least one: the main thread when WORKERS=0) and the cheap lane's own. */
  private slots(slot: Slot): number {
    return slot === 'general' ? Math.max(1, this.workers) : this.fastWorkers;
  }

  estimate(size: TaskFootprint, backend: 'openblas' | 'typescript' = linalgInfo().backend): CostEstimate {
    return costEstimate(size.work, size.workBound, size.fixedWork, COST_RATES[backend], this.costScale);
  }

  observe(listener: (event: PoolEvent) => void): void {
    this.listeners.push(listener);
  }

  private emit(event: PoolEvent): void {
    for (const l of this.listeners) l(event);
  }

  closing(): boolean {
    return this.isClosing;
  }

  beginShutdown(): void {
    this.isClosing = true;
  }

  /** Seconds the running tasks of one slot kind still need, by their estimates. */
  private remaining(slot?: Slot): number[] {
    const now = performance.now();
    const out: number[] = [];
    for (const e of this.running) if (!slot || e.slot === slot) out.push(Math.max(0, e.cost.seconds - (now - (e.startedAt ?? now)) / 1000));
    return out;
  }

  /** Estimated seconds until a heavy task admitted now would start: the general workers' remaining work and everything queued, shared among them. */
  private heavyWait(): number {
    const general = this.slots('general');
    if (this.busy.general < general && this.queue.length === 0) return 0;
    let s = 0;
    for (const r of this.remaining('general')) s += r;
    for (const e of this.queue) if (e.lane === 'heavy' || this.fastWorkers === 0) s += e.cost.seconds;
    return s / general;
  }

  /** Estimated seconds until a cheap task admitted now would start. */
  private cheapWait(): number {
    if (this.fastWorkers === 0) return this.heavyWait();
    if (this.busy.fast < this.fastWorkers && !this.queue.some((e) => e.lane === 'cheap')) return 0;
    if (this.busy.general < this.slots('general')) return 0;
    let s = 0;
    for (const r of this.remaining('fast')) s += r;
    for (const e of this.queue) if (e.lane === 'cheap') s += e.cost.seconds;
    return s / this.fastWorkers;
  }

  /** The longest a cheap task may wait for its lane. */
  private cheapWaitLimit(): number {
    return Math.max(1, (CHEAP_QUEUE_WAIT_FACTOR * this.cheapTaskMs) / 1000);
  }

  /** Estimated seconds until `bytes` more fit the budget: running tasks ending (keeping their answers), answers leaving. */
  private memoryWait(bytes: number): number {
    const need = this.budget.used() + bytes - this.budget.limit;
    if (need <= 0) return 0;
    const now = performance.now();
    const ends = [...this.running].map((e) => ({ at: Math.max(0, e.cost.seconds - (now - (e.startedAt ?? now)) / 1000), frees: e.hold.bytes - e.size.answerBytes }));
    ends.sort((a, b) => a.at - b.at);
    let freed = 0;
    for (const e of ends) {
      freed += e.frees;
      if (freed >= need) return e.at;
    }
    const last = ends.length ? ends[ends.length - 1].at : 0;
    return last + (need - freed) / TRANSIT_BYTES_PER_SECOND;
  }

  private shed(lane: Lane | 'request', err: ServiceError): never {
    this.rejected++;
    this.emit({ type: 'shed', lane, reason: (err.params as { reason: string }).reason });
    throw err;
  }

  admitRequest(bodyBytes: number): Hold {
    if (this.isClosing) throw new ServiceError('OVERLOADED', { reason: 'shuttingDown', retryAfter: 1 });
    const wait = this.cheapWait();
    if (wait > this.cheapWaitLimit()) {
      this.shed('request', new ServiceError('OVERLOADED', { reason: 'backlog', lane: 'cheap', seconds: wait, limitSeconds: this.cheapWaitLimit(), retryAfter: retryAfterSeconds(wait - this.cheapWaitLimit()) }));
    }
    const hold = this.budget.tryHold('body', bodyBytes);
    if (!hold) {
      this.shed('request', new ServiceError('OVERLOADED', {
        reason: 'memory', what: 'body', bytes: bodyBytes, used: this.budget.used(), limit: this.budget.limit, retryAfter: Math.max(1, retryAfterSeconds(this.memoryWait(bodyBytes))),
      }));
    }
    return hold;
  }

  /** Admits a sized task (or throws its 503) and holds its footprint. */
  private admitTask(size: TaskFootprint, lane: Lane): Hold {
    if (this.isClosing) throw new ServiceError('OVERLOADED', { reason: 'shuttingDown', retryAfter: 1 });
    if (lane === 'heavy') {
      const general = this.slots('general');
      const waiting = this.queue.filter((e) => e.lane === 'heavy').length;
      if (this.busy.general >= general && waiting >= this.config.queueLimit) {
        let soonest = Infinity;
        for (const r of this.remaining('general')) soonest = Math.min(soonest, r);
        this.shed(lane, new ServiceError('OVERLOADED', { reason: 'busy', workers: general, queueLimit: this.config.queueLimit, retryAfter: retryAfterSeconds(Number.isFinite(soonest) ? Math.max(soonest, 1) : 1) }));
      }
      const wait = this.heavyWait();
      const limit = this.config.requestTimeoutMs / 1000;
      if (limit > 0 && wait > limit) {
        this.shed(lane, new ServiceError('OVERLOADED', { reason: 'backlog', lane, seconds: wait, limitSeconds: limit, retryAfter: retryAfterSeconds(wait - limit) }));
      }
    } else {
      const wait = this.cheapWait();
      const cheapQueued = this.queue.filter((e) => e.lane === 'cheap').length;
      if (wait > this.cheapWaitLimit() || cheapQueued >= CHEAP_QUEUE_MAX) {
        this.shed(lane, new ServiceError('OVERLOADED', { reason: 'backlog', lane, seconds: wait, limitSeconds: this.cheapWaitLimit(), retryAfter: retryAfterSeconds(wait - this.cheapWaitLimit()) }));
      }
    }
    const hold = this.budget.tryHold('task', size.totalBytes);
    if (!hold) {
      this.shed(lane, new ServiceError('OVERLOADED', {
        reason: 'memory', what: 'task', bytes: size.totalBytes, used: this.budget.used(), limit: this.budget.limit, retryAfter: Math.max(1, retryAfterSeconds(this.memoryWait(size.totalBytes))),
      }));
    }
    return hold;
  }

  /** A task's footprint, sized and checked against the limits, its cost estimate and its lane. */
  private sized(task: CurvatureTask): { size: TaskFootprint; cost: CostEstimate; lane: Lane } {
    const size = taskFootprint(task);
    checkTaskSize(size, this.config);
    if (size.totalBytes > this.budget.limit) {
      throw new ServiceError('WORKING_SET_TOO_LARGE', { task: size.summary, bytes: size.totalBytes, answerBytes: size.answerBytes, limit: this.budget.limit, variable: 'MEMORY_BUDGET_BYTES' });
    }
    // Cheap tasks run on the TypeScript kernels (in the main thread, or on the cheap lane's workers,
    // where no heavy task's OpenBLAS call can hold them up): cheap is judged at those kernels' rates.
    const onTypescript = this.estimate(size, 'typescript');
    const lane: Lane = onTypescript.boundSeconds * 1000 <= this.cheapTaskMs ? 'cheap' : 'heavy';
    return { size, cost: lane === 'cheap' ? onTypescript : this.estimate(size), lane };
  }

  admit(task: CurvatureTask): void {
    const { size, lane } = this.sized(task);
    this.admitTask(size, lane).release();
  }

  async run(task: CurvatureTask, signal?: AbortSignal, flags: Int32Array = stopFlags()): Promise<PoolAnswer> {
    const { size, cost, lane } = this.sized(task);
    const hold = this.admitTask(size, lane);
    if (lane === 'cheap' && cost.boundSeconds <= this.inlineSeconds && !signal?.aborted) return this.runInline(task, cost, hold, flags);
    const controller = new AbortController();
    const onAbort = () => controller.abort(new TaskAborted('client'));
    if (signal?.aborted) onAbort();
    signal?.addEventListener('abort', onAbort, { once: true });
    const timeout = this.config.requestTimeoutMs;
    const timer = timeout > 0 ? setTimeout(() => controller.abort(new TaskAborted('timeout')), timeout) : undefined;
    timer?.unref();
    this.controllers.add(controller);
    let entry!: Entry;
    const settled = new Promise<ComputeResult>((resolve, reject) => {
      entry = { task, size, cost, lane, hold, controller, flags, settle: (o) => ('ok' in o ? resolve(o.ok) : reject(o.err)) };
    });
    // a queued task leaves the queue when it is aborted; a running one is stopped by execute
    const dequeue = () => {
      const i = this.queue.indexOf(entry);
      if (i >= 0) { this.queue.splice(i, 1); entry.settle({ err: controller.signal.reason }); }
    };
    controller.signal.addEventListener('abort', dequeue, { once: true });
    this.queue.push(entry);
    this.pump();
    let outcome: TaskOutcome = 'failed';
    try {
      const result = await settled;
      this.completed++;
      outcome = 'completed';
      return answered(result, hold);
    } catch (err) {
      hold.release();
      const why = controller.signal.aborted ? (controller.signal.reason as TaskAborted).why : undefined;
      if (why === 'timeout') {
        this.timedOut++;
        outcome = 'timedOut';
        throw new ServiceError('TIMEOUT', { ms: timeout, task: size.summary, seconds: cost.seconds, driver: cost.driver });
      }
      if (why === 'client') {
        this.aborted++;
        outcome = 'aborted';
        throw new ServiceError('CLIENT_CLOSED', {});
      }
      if (why === 'closing') {
        outcome = 'stopped';
        throw new ServiceError('OVERLOADED', { reason: 'stopped', retryAfter: 1 });
      }
      if (why === 'noWorker') throw new ServiceError('WORKER_FAILED', { reason: 'noWorker', message: (controller.signal.reason as TaskAborted).detail, retryAfter: NO_WORKER_RETRY_S });
      const known = asServiceError(err);
      if (known && known.status < 500) outcome = 'refused';
      throw known ?? err;
    } finally {
      controller.signal.removeEventListener('abort', dequeue);
      this.controllers.delete(controller);
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      const startedAt = entry.startedAt;
      this.emit({ type: 'end', lane, endpoint: task.endpoint, outcome, seconds: startedAt === undefined ? 0 : (performance.now() - startedAt) / 1000, estimatedSeconds: cost.seconds });
      if (this.controllers.size === 0) for (const w of this.idleWaiters.splice(0)) w();
    }
  }

  /** Computes a task at once in this thread (see inlineSeconds); its errors as run's. */
  private runInline(task: CurvatureTask, cost: CostEstimate, hold: Hold, flags: Int32Array): PoolAnswer {
    const started = performance.now();
    markStarted(flags);
    let outcome: TaskOutcome = 'failed';
    try {
      const result = withBackend(typescriptBackend, () => compute(task));
      this.completed++;
      outcome = 'completed';
      return answered(result, hold);
    } catch (err) {
      hold.release();
      const known = asServiceError(err);
      if (known && known.status < 500) outcome = 'refused';
      throw known ?? err;
    } finally {
      this.emit({ type: 'end', lane: 'cheap', endpoint: task.endpoint, outcome, seconds: (performance.now() - started) / 1000, estimatedSeconds: cost.seconds });
    }
  }

  /** Starts queued tasks on free workers: the cheap lane's own workers take the oldest cheap task; the general ones the oldest task. */
  private pump(): void {
    while (this.busy.fast < this.fastWorkers) {
      const i = this.queue.findIndex((e) => e.lane === 'cheap');
      if (i < 0) break;
      this.start(this.queue.splice(i, 1)[0], 'fast');
    }
    while (this.busy.general < this.slots('general') && this.queue.length > 0) this.start(this.queue.shift()!, 'general');
  }

  private start(entry: Entry, slot: Slot): void {
    entry.slot = slot;
    entry.startedAt = performance.now();
    this.busy[slot]++;
    this.running.add(entry);
    const done = (o: { ok: ComputeResult } | { err: unknown }) => {
      this.running.delete(entry);
      this.busy[slot]--;
      entry.settle(o);
      this.pump();
    };
    this.execute(entry.task, entry.size, slot, entry.controller.signal, entry.flags).then((ok) => done({ ok }), (err: unknown) => done({ err }));
  }

  stats(): PoolStats {
    let queuedSeconds = 0;
    for (const e of this.queue) queuedSeconds += e.cost.seconds;
    let runningSeconds = 0;
    for (const r of this.remaining()) runningSeconds += r;
    const b = this.budget;
    return {
      workers: this.workers,
      fastWorkers: this.fastWorkers,
      busyWorkers: this.busy.general + this.busy.fast,
      queued: this.queue.length,
      queuedCheap: this.queue.filter((e) => e.lane === 'cheap').length,
      queuedSeconds,
      runningSeconds,
      queueLimit: this.config.queueLimit,
      cheapTaskMs: this.cheapTaskMs,
      blasThreads: this.blasThreads,
      completedTasks: this.completed,
      abortedTasks: this.aborted,
      timedOutTasks: this.timedOut,
      rejectedTasks: this.rejected,
      terminatedWorkers: this.terminated,
      failedWorkers: this.failed,
      memory: {
        budgetBytes: b.limit, usedBytes: b.used(), bodyBytes: b.used('body'), taskBytes: b.used('task'), answerBytes: b.used('answer'), answersInTransit: b.count('answer'),
      },
    };
  }

  async close(): Promise<void> {
    this.isClosing = true;
    if (this.controllers.size > 0) await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
    await this.endWorkers();
  }

  async destroy(): Promise<void> {
    this.isClosing = true;
    await this.endWorkers();
  }

  stopAll(): number {
    this.isClosing = true;
    const n = this.controllers.size;
    for (const c of this.controllers) c.abort(new TaskAborted('closing'));
    return n;
  }

  /**
   * Answers 503 WORKER_FAILED the tasks that wait for a worker of `slot`, none of which is alive:
   * those handed to it, and, for the general workers, the queued ones no other lane takes (every
   * one when the cheap lane has no worker alive either, `alsoCheap`).
   */
  protected failWaiting(slot: Slot, why: string, alsoCheap: boolean): void {
    for (const e of this.running) if (e.slot === slot) e.controller.abort(new TaskAborted('noWorker', why));
    if (slot !== 'general') return;
    for (const e of [...this.queue]) if (e.lane === 'heavy' || alsoCheap || this.fastWorkers === 0) e.controller.abort(new TaskAborted('noWorker', why));
  }
}

/** An exception a worker caught in the core, rethrown here with the worker's stack (a bug: 500 INTERNAL). */
class WorkerBug extends Error {
  constructor(failed: { name: string; message: string; stack?: string }) {
    super(failed.message);
    this.name = failed.name;
    if (failed.stack) this.stack = failed.stack;
  }
}

/** Turns a worker's reply into a result, or rethrows its refusal as the same catalogued error. */
/** A computed answer: its hold on the memory budget becomes the answer's bytes, held until they are sent. */
function answered(result: ComputeResult, hold: Hold): PoolAnswer {
  let bytes = 0;
  for (const a of resultArrays(result)) bytes += a.data.byteLength;
  hold.become('answer', bytes);
  return { result, hold };
}

function unwrap(reply: WorkerReply): ComputeResult {
  if ('error' in reply) throw ServiceError.fromCore(reply.error);
  // the pool asked it to stop, and answers the caller itself (run's catch)
  if ('stopped' in reply) throw new Error('stopped at the pool\'s request');
  if ('warm' in reply) throw new Error('a warm-up reply to a task');
  if ('failed' in reply) throw new WorkerBug(reply.failed);
  if ('pong' in reply) throw new Error('a ping answered a task');
  return reply.ok;
}

const noop = (): void => {};

/** One piscina (a lane's threads) and its fault state. */
interface LaneWorkers {
  readonly slot: Slot;
  readonly piscina: Piscina;
  readonly threads: number;
  /** Faults since the last task or ping one of its workers finished: the back-off, and whether to give up on waiting tasks. */
  faultsInARow: number;
  healTimer: NodeJS.Timeout | undefined;
  /** The ping that has piscina start a worker, while one is pending. */
  kick: AbortController | undefined;
}

class ThreadPool extends BasePool {
  private readonly pools: Record<Slot, LaneWorkers | undefined>;
  private readonly log: PoolLog;
  private warm = false;

  constructor(config: PoolConfig, options: PoolOptions = {}) {
    const blas = blasThreadsFor();
    const fast = config.fastWorkers ?? DEFAULT_CONFIG.fastWorkers;
    super(config, config.workers, fast, blas);
    this.log = options.log ?? warningLog;
    setBlasThreads(blas);
    const lane = (threads: number, slot: Slot): LaneWorkers => {
      const l: LaneWorkers = { slot, piscina: piscina(threads, slot), threads, faultsInARow: 0, healTimer: undefined, kick: undefined };
      // A worker that fails with no task on it (most often while loading its modules: EMFILE when the
      // process is out of descriptors) is reported here; unheard, this event would end the process.
      l.piscina.on('error', (err: unknown) => this.fault(l, err, undefined));
      return l;
    };
    const piscina = (threads: number, slot: Slot) => new Piscina({
      filename: options.workerFile ?? workerFile(),
      minThreads: threads,
      maxThreads: threads,
      // admission and queueing are ours (BasePool): piscina never holds more tasks than threads
      maxQueue: Infinity,
      idleTimeout: Infinity,
      // one task per worker at a time: a worker computes, it never interleaves
      concurrentTasksPerWorker: 1,
      // an idle worker waits for its next task on Atomics.waitAsync, its event loop running: the
      // full collection it schedules after a large task (src/worker.ts) runs once the answer has
      // gone, not before it (piscina's default, a blocking Atomics.wait, would hold it back to the next task)
      atomics: 'async',
      env: { ...process.env, CURVATURE_BLAS_THREADS: String(blas), CURVATURE_WORKER_LANE: slot },
    });
    this.pools = { general: lane(config.workers, 'general'), fast: fast > 0 ? lane(fast, 'fast') : undefined };
    this.inlineSeconds = (config.inlineTaskMs ?? DEFAULT_CONFIG.inlineTaskMs) / 1000;
    // Ready once every worker has loaded its module (the core, the BLAS addon): one warm-up each.
    const warmups: Promise<unknown>[] = [];
    for (const slot of ['general', 'fast'] as const) {
      const p = this.pools[slot];
      for (let i = 0; p && i < p.threads; i++) warmups.push(p.piscina.run({ warmup: true }));
    }
    Promise.all(warmups).then(() => { this.warm = true; }, () => { this.warm = true; });
  }

  ready(): boolean {
    return this.warm && !this.isClosing;
  }

  /**
   * A worker of `lane` failed: while computing a task (`task` set: the caller gets 503
   * WORKER_FAILED) or with none. Logged; piscina has dropped the worker, and starts another at once
   * only the first time; heal starts them again after a back-off. With none of the lane's workers
   * alive after NO_WORKER_FAULTS faults in a row, the tasks waiting for one are answered 503 at once
   * rather than at REQUEST_TIMEOUT_MS.
   */
  private fault(lane: LaneWorkers, err: unknown, task: CurvatureTask | undefined): void {
    this.failed++;
    lane.faultsInARow++;
    const alive = lane.piscina.threads.length;
    const e = err as { message?: string; code?: string };
    this.log.error({ err, code: e.code, endpoint: task?.endpoint, lane: lane.slot, workersAlive: alive, workers: lane.threads, faultsInARow: lane.faultsInARow },
      task ? 'a worker failed while computing; the request is answered 503 WORKER_FAILED and the worker replaced' : 'a worker failed to start; starting workers again');
    if (this.isClosing) return;
    if (alive === 0 && lane.faultsInARow >= NO_WORKER_FAULTS) {
      const other = lane.slot === 'general' ? this.pools.fast : this.pools.general;
      this.failWaiting(lane.slot, String(e.message ?? err), !other || other.piscina.threads.length === 0);
    }
    this.scheduleHeal(lane);
  }

  private scheduleHeal(lane: LaneWorkers): void {
    if (lane.healTimer !== undefined || this.isClosing) return;
    const delay = Math.min(HEAL_MAX_MS, HEAL_FIRST_MS * 2 ** Math.min(16, lane.faultsInARow - 1));
    lane.healTimer = setTimeout(() => { lane.healTimer = undefined; this.heal(lane); }, delay);
    lane.healTimer.unref();
  }

  /**
   * Has piscina start a worker where one is needed: when none of the lane's is alive, or tasks wait
   * while fewer than its threads are (with some alive and nothing waiting, piscina starts more
   * itself once tasks queue). piscina has no call for that but a task, so the pool sends a ping; a
   * new ping replaces one still waiting.
   */
  private heal(lane: LaneWorkers): void {
    if (this.isClosing) return;
    const alive = lane.piscina.threads.length;
    if (alive >= lane.threads || (alive > 0 && lane.piscina.queueSize === 0)) return;
    lane.kick?.abort();
    const kick = new AbortController();
    lane.kick = kick;
    const ping: WorkerMessage = { ping: true };
    lane.piscina.run(ping, { signal: kick.signal }).then(() => {
      if (lane.kick === kick) lane.kick = undefined;
      this.recovered(lane);
    }, noop);
  }

  /** A worker of `lane` finished a task or a ping: the faults in a row are over. */
  private recovered(lane: LaneWorkers): void {
    if (lane.faultsInARow === 0) return;
    this.log.info({ lane: lane.slot, workersAlive: lane.piscina.threads.length, workers: lane.threads, faultsInARow: lane.faultsInARow }, 'a worker started again after a fault');
    lane.faultsInARow = 0;
  }

  protected async execute(task: CurvatureTask, size: TaskFootprint, slot: Slot, signal: AbortSignal, flags: Int32Array): Promise<ComputeResult> {
    const lane = this.pools[slot]!;
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
      const message: WorkerTask = { task, totalBytes: size.totalBytes, expectedFlops: size.workBound.flops, flags };
      let reply: WorkerReply;
      try {
        // the task's buffers move to the worker (the edge built them for it alone)
        reply = await lane.piscina.run(message, { signal: hard.signal, transferList: taskBuffers(task) }) as WorkerReply;
      } catch (err) {
        // aborted: run's catch answers (TIMEOUT, CLIENT_CLOSED, ...); otherwise the worker failed under this task
        if (signal.aborted) throw err;
        this.fault(lane, err, task);
        throw new ServiceError('WORKER_FAILED', { reason: 'crashed', message: (err as Error).message ?? String(err), retryAfter: NO_WORKER_RETRY_S });
      }
      this.recovered(lane);
      return unwrap(reply);
    } finally {
      clearTimeout(grace);
      signal.removeEventListener('abort', stop);
    }
  }

  protected async endWorkers(): Promise<void> {
    for (const l of [this.pools.general, this.pools.fast]) {
      if (!l) continue;
      clearTimeout(l.healTimer);
      l.kick?.abort();
    }
    await Promise.all([this.pools.general, this.pools.fast].map((l) => (l ? this.endPiscina(l.piscina) : undefined)));
  }

  private async endPiscina(piscina: Piscina): Promise<void> {
    // A worker terminated by an abort may report its exit only after the pool is destroyed, and
    // piscina then starts a replacement to keep minThreads, which would keep the process alive:
    // with minThreads 0 nothing is started again.
    (piscina.options as { minThreads: number }).minThreads = 0;
    // piscina waits for each worker's 'exit'; a worker that is never heard from again must not hold
    // the shutdown forever, so the wait is bounded (the process exits after close in any case).
    let timer: NodeJS.Timeout | undefined;
    const bounded = new Promise<'timeout'>((resolve) => { timer = setTimeout(() => resolve('timeout'), DESTROY_WAIT_MS); });
    const outcome = await Promise.race([piscina.destroy().then(() => 'done' as const), bounded]);
    clearTimeout(timer);
    if (outcome === 'timeout') process.emitWarning(`compute pool: workers did not exit within ${DESTROY_WAIT_MS} ms of destroy; continuing`);
  }
}

/** Computes in the main thread, one task at a time: no cancellation once started (WORKERS=0, or tests with their own runner). */
class InlinePool extends BasePool {
  constructor(config: PoolConfig, private readonly runner: (task: CurvatureTask) => Promise<ComputeResult>) {
    super(config, 0, 0, blasThreadsFor());
  }

  ready(): boolean {
    return !this.isClosing;
  }

  protected async execute(task: CurvatureTask, _size: TaskFootprint, _slot: Slot, signal: AbortSignal, flags: Int32Array): Promise<ComputeResult> {
    signal.throwIfAborted();
    // started at once, and no progress until it is done: this thread computes
    markStarted(flags);
    return this.runner(task);
  }

  protected async endWorkers(): Promise<void> {}
}

/** A pool of `config.workers` threads (and `config.fastWorkers` for the cheap lane), or the main thread when that is 0 (or `runner` is given). */
export function createPool(config: PoolConfig, runner?: (task: CurvatureTask) => Promise<ComputeResult>, options: PoolOptions = {}): ComputePool {
  if (runner) return new InlinePool(config, runner);
  if (config.workers === 0) return new InlinePool(config, async (task) => compute(task));
  return new ThreadPool(config, options);
}
