/** What every compute route does with its task: run it on the pool and send the answer in the form asked for. */
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { CurvatureTask } from '../task.ts';
import { disconnectSignal } from './disconnect.ts';
import { negotiate, sendResult } from './representation.ts';

export async function computeAndSend(req: FastifyRequest, reply: FastifyReply, task: CurvatureTask): Promise<FastifyReply> {
  // the form first: a 406 costs no computation
  const rep = negotiate(req.headers.accept);
  const result = await req.server.computePool.run(task, disconnectSignal(reply));
  return sendResult(reply, result, rep);
}
