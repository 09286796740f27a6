/**
 * The HTTP side of jobs (src/jobs.ts): `Prefer: respond-async` on a compute request, a job's
 * status as JSON, and its result in the forms of the synchronous answer.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { CurvatureTask } from '../core/index.ts';
import type { Job } from '../jobs.ts';
import { keyOwner } from '../plugins/auth.ts';
import { problemOf, type Problem } from './problem.ts';
import { MEDIA_TYPES, negotiate, sendResult, type Representation } from './representation.ts';

/** Whether a Prefer header (RFC 7240: comma-separated preferences, each a token with optional parameters) asks for respond-async. */
export function prefersAsync(prefer: string | string[] | undefined): boolean {
  const values = prefer === undefined ? [] : [prefer].flat();
  return values.some((v) => v.split(',').some((p) => p.split(';')[0].split('=')[0].trim().toLowerCase() === 'respond-async'));
}

/** Whose jobs a request sees: its key's digest where the service has keys, else nobody's in particular. */
export function ownerOf(req: FastifyRequest): string | undefined {
  return req.server.jobs.keyed ? keyOwner(req.headers.authorization) : undefined;
}

const iso = (ms: number | undefined): string | undefined => (ms === undefined ? undefined : new Date(ms).toISOString());

/** GET /jobs/{id}'s answer (schemas/jobs.ts JobSchema). */
export interface JobStatus {
  id: string;
  state: Job['state'];
  endpoint: string;
  progress: number;
  estimatedFlops: number;
  flopsBound: boolean;
  createdAt: string;
  startedAt?: string;
  finishedAt?: string;
  expiresAt?: string;
  result?: { href: string; bytes: number; mediaTypes: string[] };
  problem?: Problem;
}

export function jobStatus(job: Job, ttlMs: number): JobStatus {
  const status: JobStatus = {
    id: job.id,
    state: job.state,
    endpoint: job.endpoint,
    progress: job.progress,
    estimatedFlops: job.size.workBound.flops,
    flopsBound: job.size.iterative,
    createdAt: iso(job.createdAt)!,
  };
  if (job.startedAt !== undefined) status.startedAt = iso(job.startedAt);
  if (job.finishedAt !== undefined) {
    status.finishedAt = iso(job.finishedAt);
    status.expiresAt = iso(job.finishedAt + ttlMs);
  }
  if (job.state === 'done') status.result = { href: `/jobs/${job.id}/result`, bytes: job.resultBytes, mediaTypes: job.forms.map((f) => MEDIA_TYPES[f]) };
  if (job.state === 'failed' && job.problem) status.problem = problemOf(job.problem);
  return status;
}

/** Runs `task` as a job and answers 202 with its status and Location, or throws the synchronous request's refusal. */
export function submitJob(req: FastifyRequest, reply: FastifyReply, task: CurvatureTask, forms: readonly Representation[]): FastifyReply {
  const jobs = req.server.jobs;
  const job = jobs.submit(task, { owner: ownerOf(req), endpoint: `${req.method} ${req.routeOptions.url}`, forms });
  req.log.info({ job: job.id, endpoint: job.endpoint, estimatedFlops: job.size.workBound.flops }, 'job accepted');
  return reply.code(202).header('location', `/jobs/${job.id}`).header('preference-applied', 'respond-async').send(jobStatus(job, jobs.ttlMs));
}

/** Streams a done job's result in the form Accept asks for (negotiated as the synchronous answer is), holding it until the last byte. */
export function sendJobResult(req: FastifyRequest, reply: FastifyReply, job: Job): FastifyReply {
  const jobs = req.server.jobs;
  const { result, release } = jobs.openResult(job);
  try {
    const rep = negotiate(req.headers.accept, job.forms);
    reply.raw.once('close', release);
    return sendResult(reply, result, rep);
  } catch (err) {
    release();
    throw err;
  }
}
