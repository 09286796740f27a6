/**
 * Jobs: a compute request sent with `Prefer: respond-async` runs on the same pool as a synchronous
 * one, after the same sizing and admission, while its caller polls GET /jobs/{id} for its state and
 * progress and fetches its answer from GET /jobs/{id}/result.
 *
 * - A job is the pool's task with flags of its own (src/stop-flags.ts): STARTED tells queued from
 *   running, PROGRESS the share of the core's estimate of its kernel flops done so far
 *   (TaskFootprint.workBound.flops: src/core/work.ts), and DELETE raises STOP through the pool's abort, as a client that
 *   disconnects does, so a running job's worker is freed within the same bound.
 * - Its result (or the refusal the synchronous request would have got) is kept for
 *   JOB_RESULT_TTL_MS after it finishes. Results are held against one account, `keptBytes` against
 *   JOB_RESULT_BYTES (keep and release below are its only writers): a result that does not fit
 *   drops the oldest kept ones first, and a request whose answer alone is over the bound is
 *   refused (413) before it runs. A result being streamed stays counted until its last byte has
 *   left, even once dropped. The same bytes stay held on the service's memory budget (src/budget.ts)
 *   as the pool's answer hold, from the computation's end until the result is released, so kept
 *   results count against the memory that admits new requests. A dropped job leaves a tombstone, so that its id answers 410 Gone
 *   rather than 404, for a while (TOMBSTONES of them, the oldest forgotten first).
 * - Ids are 128 random bits (crypto), base64url. With API keys, a job belongs to the key that made
 *   it (its SHA-256 digest; the key itself is never kept) and is 404 to every other.
 *
 * Jobs live in this process's memory: a restart loses them (docs/deployment.md).
 */
import { randomBytes } from 'node:crypto';
import { checkTask, resultArrays, taskFootprint, type ComputeResult, type CurvatureTask, type TaskFootprint } from './core/index.ts';
import type { Hold } from './budget.ts';
import type { Config } from './config.ts';
import { asServiceError, ServiceError } from './errors.ts';
import type { ComputePool } from './pool.ts';
import type { Representation } from './http/representation.ts';
import { checkTaskSize } from './sizing.ts';
import { progressOf, startedAt, stopFlags } from './stop-flags.ts';

export const JOB_STATES = ['queued', 'running', 'done', 'failed', 'cancelled'] as const;
export type JobState = (typeof JOB_STATES)[number];

/** Most finished jobs kept at once (their results are bounded by bytes, their refusals by this count); the oldest are dropped first. */
export const MAX_FINISHED_JOBS = 10_000;
/** Ids of dropped jobs remembered for their 410 (then 404). */
export const TOMBSTONES = 10_000;
/** Progress shown while a job runs: at most this, so that 1 means done. */
const RUNNING_PROGRESS_MAX = 0.999;

export type JobsConfig = Pick<Config, 'jobResultTtlMs' | 'jobResultBytes' | 'maxResultBytes' | 'maxTaskBytes' | 'maxPoints' | 'maxParameters' | 'maxFiniteDifferenceCost'>;

/** What a job was made from, beyond its task. */
export interface JobRequest {
  /** The key's digest when the service has API keys, else undefined (anyone may see it). */
  readonly owner: string | undefined;
  /** The request, e.g. 'POST /hessian'. */
  readonly endpoint: string;
  /** The forms its answer comes in: those the synchronous answer offers. */
  readonly forms: readonly Representation[];
}

export interface Job extends JobRequest {
  readonly id: string;
  readonly size: TaskFootprint;
  readonly createdAt: number;
  state: JobState;
  /** The largest progress shown, so that it never goes back. */
  progress: number;
  startedAt?: number;
  finishedAt?: number;
  result?: ComputeResult;
  /** Bytes of the result's arrays. */
  resultBytes: number;
  /** The result's bytes on the service's memory budget (src/budget.ts), from the pool's answer until it is dropped. */
  hold?: Hold;
  /** The refusal of a failed job. */
  problem?: ServiceError;
  /** Streams of the result in flight. */
  readers: number;
  /** Dropped while streamed: its bytes are released when the last reader ends. */
  dropped: boolean;
  readonly flags: Int32Array;
  readonly controller: AbortController;
  expiry?: NodeJS.Timeout;
}

interface Tombstone {
  readonly owner: string | undefined;
  readonly reason: 'expired' | 'evicted' | 'deleted';
}

/** A new job id: 128 bits from the system's CSPRNG, 22 characters of base64url. */
export function newJobId(): string {
  return randomBytes(16).toString('base64url');
}

export class JobStore {
  private readonly jobs = new Map<string, Job>();
  private readonly tombstones = new Map<string, Tombstone>();
  /** Finished jobs in the order they finished (the oldest dropped first). */
  private readonly finished = new Set<Job>();
  private keptBytes = 0;
  private closing = false;

  /**
   * `keyed`: the service has API keys, and a job belongs to the key that made it (JobRequest.owner).
   */
  constructor(private readonly pool: ComputePool, private readonly config: JobsConfig, readonly keyed = false) {}

  /** How long a finished job is kept (JOB_RESULT_TTL_MS). */
  get ttlMs(): number {
    return this.config.jobResultTtlMs;
  }

  /**
   * Sizes, checks, admits and starts a job, or throws the refusal the synchronous request would
   * get: the sizing and admission pool.run makes first (made here so that a refusal comes instead
   * of the 202; run makes them again, in microseconds), and the core's checks on the data its
   * worker would make before any work (checkTask); or a 413 when its answer alone is over
   * JOB_RESULT_BYTES.
   */
  submit(task: CurvatureTask, request: JobRequest): Job {
    if (this.closing) throw new ServiceError('OVERLOADED', { reason: 'shuttingDown', retryAfter: 1 });
    const size = taskFootprint(task);
    checkTaskSize(size, this.config);
    if (size.answerBytes > this.config.jobResultBytes) {
      throw new ServiceError('LIMIT_EXCEEDED', { reason: 'jobResult', task: size.summary, bytes: size.answerBytes, limit: this.config.jobResultBytes });
    }
    this.pool.admit(task);
    // what the worker would refuse before any work (the network, the data, the method), refused now
    try {
      checkTask(task);
    } catch (err) {
      throw asServiceError(err) ?? err;
    }
    const job: Job = {
      ...request, id: newJobId(), size, createdAt: Date.now(), state: 'queued', progress: 0, resultBytes: 0, readers: 0, dropped: false,
      flags: stopFlags(), controller: new AbortController(),
    };
    this.jobs.set(job.id, job);
    this.pool.run(task, job.controller.signal, job.flags).then(
      ({ result, hold }) => this.finish(job, 'done', result, undefined, hold),
      (err: unknown) => this.finish(job, job.controller.signal.aborted ? 'cancelled' : 'failed', undefined, err),
    );
    return job;
  }

  /** The caller's job, or 404 (unknown, or another key's) / 410 (dropped). */
  get(id: string, owner: string | undefined): Job {
    const job = this.jobs.get(id);
    if (job && job.owner === owner) {
      this.observe(job);
      if (job.state !== 'queued' && job.state !== 'running' && job.finishedAt !== undefined && Date.now() - job.finishedAt >= this.config.jobResultTtlMs) {
        this.drop(job, 'expired');
      } else {
        return job;
      }
    }
    const gone = this.tombstones.get(id);
    if (gone && gone.owner === owner) {
      if (gone.reason === 'expired') throw new ServiceError('JOB_GONE', { id, reason: 'expired', ttlMs: this.config.jobResultTtlMs });
      if (gone.reason === 'evicted') throw new ServiceError('JOB_GONE', { id, reason: 'evicted', limit: this.config.jobResultBytes });
      throw new ServiceError('JOB_GONE', { id, reason: 'deleted' });
    }
    throw new ServiceError('JOB_NOT_FOUND', { id });
  }

  /**
   * DELETE: a queued or running job is cancelled (its worker stops at its next kernel call, as for
   * a client that went away) and stays visible as 'cancelled'; a finished one is dropped with its
   * result. Returns whether it was dropped.
   */
  cancel(job: Job): boolean {
    if (job.state === 'queued' || job.state === 'running') {
      job.controller.abort();
      // the pool's rejection follows within the stop bound; the state says so already
      this.settle(job, 'cancelled');
      return false;
    }
    this.drop(job, 'deleted');
    return true;
  }

  /**
   * The result of a done job for one stream of it: `release` when the stream has ended (its last
   * byte, or the connection cut). A failed job throws its refusal; a job not done, JOB_NOT_DONE.
   */
  openResult(job: Job): { result: ComputeResult; release: () => void } {
    if (job.state === 'failed' && job.problem) throw job.problem;
    if (job.state !== 'done' || !job.result) {
      throw new ServiceError('JOB_NOT_DONE', { id: job.id, state: job.state === 'done' || job.state === 'failed' ? 'running' : job.state, progress: job.progress });
    }
    job.readers++;
    let released = false;
    return {
      result: job.result,
      release: () => {
        if (released) return;
        released = true;
        job.readers--;
        if (job.dropped && job.readers === 0) this.release(job);
      },
    };
  }

  /** Brings a job's state and progress up to date from its flags. */
  observe(job: Job): Job {
    if (job.state === 'queued' || job.state === 'running') {
      const started = startedAt(job.flags);
      if (started !== undefined) {
        job.state = 'running';
        job.startedAt = started;
        job.progress = Math.max(job.progress, Math.min(RUNNING_PROGRESS_MAX, progressOf(job.flags)));
      }
    }
    return job;
  }

  /** Stops every job queued or running (the app is closing); no new one is taken. */
  close(): void {
    this.closing = true;
    for (const job of this.jobs.values()) if (job.state === 'queued' || job.state === 'running') this.cancel(job);
    for (const job of this.jobs.values()) clearTimeout(job.expiry);
  }

  /** Counts, for tests and logs: jobs queued or running, finished ones kept, their results' bytes. */
  stats(): { active: number; finished: number; keptBytes: number; limit: number } {
    let active = 0;
    for (const j of this.jobs.values()) if (j.state === 'queued' || j.state === 'running') active++;
    return { active, finished: this.finished.size, keptBytes: this.keptBytes, limit: this.config.jobResultBytes };
  }

  /** The pool's answer for a job: its result, its refusal, or the end of a cancelled one. */
  private finish(job: Job, state: 'done' | 'failed' | 'cancelled', result?: ComputeResult, err?: unknown, hold?: Hold): void {
    this.observe(job);
    if (job.state === 'cancelled' || job.dropped) { // settled when DELETE came, or dropped (closing): nobody will read the result
      hold?.release();
      return;
    }
    if (state === 'done' && result && hold) {
      job.progress = 1;
      this.keep(job, result, hold);
    } else if (state === 'failed') {
      job.problem = asServiceError(err) ?? new ServiceError('INTERNAL', {});
    }
    this.settle(job, state);
  }

  /** A job's end: its time, and its place among the finished (dropped after the TTL, or when too many). */
  private settle(job: Job, state: 'done' | 'failed' | 'cancelled'): void {
    job.state = state;
    job.finishedAt = Date.now();
    this.finished.add(job);
    job.expiry = setTimeout(() => { if (this.jobs.get(job.id) === job) this.drop(job, 'expired'); }, this.config.jobResultTtlMs);
    job.expiry.unref();
    for (const oldest of this.finished) {
      if (this.finished.size <= MAX_FINISHED_JOBS) break;
      this.drop(oldest, 'evicted');
    }
  }

  /**
   * Keeps a result: its bytes against JOB_RESULT_BYTES, dropping the oldest kept results first
   * until it fits (a result already computed is kept even when streams of dropped ones still hold
   * the room: those are released as they end), with `hold`, the pool's hold of the answer on the
   * memory budget, until release.
   */
  private keep(job: Job, result: ComputeResult, hold: Hold): void {
    let bytes = 0;
    for (const a of resultArrays(result)) bytes += a.data.byteLength;
    for (const oldest of this.finished) {
      if (this.keptBytes + bytes <= this.config.jobResultBytes) break;
      if (oldest.result) this.drop(oldest, 'evicted');
    }
    job.result = result;
    job.hold = hold;
    job.resultBytes = bytes;
    this.keptBytes += bytes;
  }

  /** Gives a result's bytes back to the account. */
  private release(job: Job): void {
    this.keptBytes -= job.resultBytes;
    job.resultBytes = 0;
    job.result = undefined;
    job.hold?.release();
    job.hold = undefined;
  }

  /** Forgets a job, leaving its tombstone; its result's bytes go back once no stream holds them. */
  private drop(job: Job, reason: Tombstone['reason']): void {
    clearTimeout(job.expiry);
    this.jobs.delete(job.id);
    this.finished.delete(job);
    if (job.state === 'queued' || job.state === 'running') job.controller.abort();
    job.dropped = true;
    if (job.readers === 0) this.release(job);
    this.tombstones.set(job.id, { owner: job.owner, reason });
    for (const id of this.tombstones.keys()) {
      if (this.tombstones.size <= TOMBSTONES) break;
      this.tombstones.delete(id);
    }
  }
}
