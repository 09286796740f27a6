/** Jobs: the status of GET /jobs/{id}, the 202 of a compute request sent with Prefer: respond-async, and the result's forms. */
import { z } from 'zod';
import { JOB_STATES } from '../src/jobs.ts';
import { MEDIA_TYPES } from '../src/http/representation.ts';
import { everyForm } from './common.ts';
import { answerComponent } from './components.ts';
import { HessianResponseSchema, InverseResponseSchema, VectorProductResponseSchema } from './hessian.ts';
import { JacobianResponseSchema } from './jacobian.ts';
import { ProblemSchema } from './problem.ts';
import { EigenResponseSchema, InverseVectorProductResponseSchema, KfacResponseSchema } from './scale.ts';

const time = (what: string) => z.string().describe(`${what}, ISO 8601 in UTC (e.g. 2026-12-01T10:00:00.000Z).`);

export const JobSchema = answerComponent('Job', z.object({
  id: z.string().describe('The job id: 128 random bits, base64url (22 characters). Anyone who has it can read the job, unless the service has API keys (then only the key that made it).'),
  state: z.enum(JOB_STATES).describe(
    "'queued' (waiting for a worker), 'running', 'done' (the result is at result.href), 'failed' (problem holds the refusal the synchronous request would have got), " +
    "'cancelled' (by DELETE /jobs/{id}, or the service shutting down).",
  ),
  endpoint: z.string().describe("The request the job runs, e.g. 'POST /hessian'."),
  progress: z.number().min(0).max(1).describe(
    'The share of the work done, from 0 to 1, never decreasing; 1 exactly when done. The worker adds up the nominal flops of every kernel call ' +
    '(a GEMM of m × n × k is 2mnk) against the service’s estimate of the task’s total before it ran (estimatedFlops), which is exact for the direct methods; ' +
    'for Lanczos and CG (flopsBound) the estimate is their bound, every product up to maxIterations, and progress jumps to 1 when they converge sooner. ' +
    'A single long factorisation or eigen-decomposition moves it only when it ends.',
  ),
  estimatedFlops: z.number().min(0).describe('The nominal flops of the task’s kernel calls, estimated from its sizes before it ran: what progress is measured against.'),
  flopsBound: z.boolean().describe('Whether estimatedFlops is an iterative method’s bound (at maxIterations) rather than its exact count.'),
  createdAt: time('When the request was taken'),
  startedAt: time('When a worker took it').optional(),
  finishedAt: time('When it was done, failed or cancelled').optional(),
  expiresAt: time('When the finished job is dropped (JOB_RESULT_TTL_MS after it finished; sooner if newer results need the room of JOB_RESULT_BYTES); then 410').optional(),
  result: z.object({
    href: z.string().describe('Where the result is: GET it, with Accept as for the synchronous answer.'),
    bytes: z.number().int().min(0).describe('Bytes of its arrays (the .npy or raw body, less a header of 128 bytes or so).'),
    mediaTypes: z.array(z.string()).describe('The forms it comes in: those of the synchronous answer.'),
  }).optional().describe("With state 'done'."),
  problem: ProblemSchema.optional().describe("With state 'failed': the refusal the synchronous request would have got (also the answer to GET result.href)."),
}).describe('A job: a compute request sent with `Prefer: respond-async`, its state and progress, and where its result is.'));

/** The Prefer header of the compute endpoints (RFC 7240). */
export const PreferHeaderSchema = z.looseObject({
  prefer: z.string().optional().describe(
    '`respond-async`: run the request as a job. It is checked and sized as a synchronous request (a refusal comes at once, the same), ' +
    'then answered 202 with `Location: /jobs/{id}`; other preferences are ignored.',
  ),
});

/** The 202 of a compute endpoint (docs/api-conventions.md: a response with its headers). */
export function jobAccepted() {
  return {
    description: 'With `Prefer: respond-async`: the request passed every check of a synchronous one and runs as a job. Poll GET Location for its state and progress; ' +
      'its result is at GET Location/result once done, in the forms this answer offers.',
    headers: {
      Location: { description: 'The job: /jobs/{id}.', schema: { type: 'string' } },
      'Preference-Applied': { description: '`respond-async` (RFC 7240).', schema: { type: 'string' } },
    },
    content: { [MEDIA_TYPES.json]: { schema: JobSchema } },
  };
}

export const JobResultAnswerSchema = answerComponent('JobResultAnswer', z.union([
  JacobianResponseSchema, HessianResponseSchema, VectorProductResponseSchema, InverseResponseSchema, KfacResponseSchema, EigenResponseSchema, InverseVectorProductResponseSchema,
]).describe('The answer of the job’s request, exactly as the synchronous request would have had it.'));

export const JobParamsSchema = z.object({
  id: z.string().max(100).describe('The job id, from the Location of the 202 (22 characters; a path parameter longer than 100 is refused by the router, as any unknown id, 404).'),
});

/** GET /jobs/{id}/result's 200: any form of the job's answer. */
export function jobResult() {
  return {
    description: 'The job’s answer, byte for byte the synchronous answer: JSON by default, or with Accept the forms its endpoint offers ' +
      `(\`${MEDIA_TYPES.npy}\` and \`${MEDIA_TYPES.raw}\` for answers with one principal array, \`${MEDIA_TYPES.npz}\`), with the same headers. ` +
      'Streamed with an exact Content-Length; it may be fetched again, in any form, until the job expires.',
    content: everyForm(JobResultAnswerSchema),
  };
}
