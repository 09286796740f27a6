/** GET /jobs/{id}, GET /jobs/{id}/result, DELETE /jobs/{id} — requests sent with Prefer: respond-async. */
import type { FastifyPluginAsync } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { JobParamsSchema, JobSchema, jobResult } from '../schemas/jobs.ts';
import { refusals } from '../schemas/common.ts';
import { authPlugin } from '../src/plugins/auth.ts';
import { jobStatus, ownerOf, sendJobResult } from '../src/http/jobs.ts';

export interface JobRoutesOptions {
  readonly apiKeys: readonly string[];
}

/** The job routes, with the compute routes' API keys (a plugin of their own: no load shedding, no multipart bodies). */
export const jobRoutes: FastifyPluginAsync<JobRoutesOptions> = async (app, opts) => {
  await app.register(authPlugin, { apiKeys: opts.apiKeys });
  const r = app.withTypeProvider<ZodTypeProvider>();
  const jobs = app.jobs;

  r.get('/jobs/:id', {
    schema: {
      operationId: 'getJob',
      tags: ['jobs'],
      summary: 'A job’s state, progress and, once done, where its result is',
      description: 'Answered by the main thread at once, whatever the workers do. With API keys, a job is visible only to the key that made it (404 to any other).',
      params: JobParamsSchema,
      response: { 200: JobSchema, ...refusals(401, 404, 410) },
    },
  }, async (req) => jobStatus(jobs.observe(jobs.get(req.params.id, ownerOf(req))), jobs.ttlMs));

  r.get('/jobs/:id/result', {
    schema: {
      operationId: 'getJobResult',
      tags: ['jobs'],
      summary: 'A done job’s answer, in any form its request offers',
      description: 'The synchronous answer exactly (JSON, .npy, raw or .npz by Accept, with the same headers). A failed job answers the refusal the synchronous request would have got; ' +
        'a job still queued or running, or cancelled, 409.',
      params: JobParamsSchema,
      response: { 200: jobResult(), ...refusals(401, 404, 406, 409, 410, 422, 503) },
    },
  }, async (req, reply) => sendJobResult(req, reply, jobs.get(req.params.id, ownerOf(req))));

  r.delete('/jobs/:id', {
    schema: {
      operationId: 'cancelJob',
      tags: ['jobs'],
      summary: 'Cancel a job, or drop a finished one',
      description: 'A queued or running job is cancelled (200, its state cancelled): its worker stops at its next kernel call, as for a client that disconnects, and takes the next task. ' +
        'A finished job is dropped with its result (204), and its id answers 410 after that.',
      params: JobParamsSchema,
      response: {
        200: JobSchema,
        204: { description: 'The finished job and its result were dropped.', content: {} },
        ...refusals(401, 404, 410),
      },
    },
  }, async (req, reply) => {
    const job = jobs.get(req.params.id, ownerOf(req));
    if (jobs.cancel(job)) return reply.code(204).send();
    return jobStatus(job, jobs.ttlMs);
  });
};
