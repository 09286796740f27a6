/** What every compute route does with its task: run it on the pool and send the answer in the form asked for. */
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { CurvatureTask } from '../core/index.ts';
import { disconnectSignal } from './disconnect.ts';
import { prefersAsync, submitJob } from './jobs.ts';
import { ALL_FORMS, negotiate, sendResult, type Representation } from './representation.ts';

/**
 * `forms`: the answer's forms on offer (every one, or JSON and .npz for answers of several arrays).
 * With `Prefer: respond-async` the task runs as a job (202), after the same checks.
 */
export async function computeAndSend(req: FastifyRequest, reply: FastifyReply, task: CurvatureTask, forms: readonly Representation[] = ALL_FORMS): Promise<FastifyReply> {
  // the form first: a 406 costs no computation (for a job too: its result comes in these forms)
  const rep = negotiate(req.headers.accept, forms);
  if (prefersAsync(req.headers.prefer)) return submitJob(req, reply, task, forms);
  const result = await req.server.computePool.run(task, disconnectSignal(reply));
  return sendResult(reply, result, rep);
}
