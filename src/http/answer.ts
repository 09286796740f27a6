/** What every compute route does with its task: run it on the pool and send the answer in the form asked for. */
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { CurvatureTask } from '../core/index.ts';
import { disconnectSignal } from './disconnect.ts';
import { ALL_FORMS, negotiate, sendResult, type Representation } from './representation.ts';

/** `forms`: the answer's forms on offer (every one, or JSON and .npz for answers of several arrays). */
export async function computeAndSend(req: FastifyRequest, reply: FastifyReply, task: CurvatureTask, forms: readonly Representation[] = ALL_FORMS): Promise<FastifyReply> {
  // the form first: a 406 costs no computation
  const rep = negotiate(req.headers.accept, forms);
  const result = await req.server.computePool.run(task, disconnectSignal(reply));
  return sendResult(reply, result, rep);
}
