/**
 * What every compute route does with its task: run it on the pool and send the answer in the
 * form asked for, its bytes held against the memory budget (src/budget.ts) until the last of them
 * has left or the connection is gone. A client that stops reading is cut off: when none of the
 * answer's bytes have left for ANSWER_STALL_MS, the connection is destroyed and its bytes freed.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Hold } from '../budget.ts';
import type { CurvatureTask } from '../core/index.ts';
import { disconnectSignal } from './disconnect.ts';
import { ALL_FORMS, negotiate, sendResult, type Representation } from './representation.ts';

/** `forms`: the answer's forms on offer (every one, or JSON and .npz for answers of several arrays). */
export async function computeAndSend(req: FastifyRequest, reply: FastifyReply, task: CurvatureTask, forms: readonly Representation[] = ALL_FORMS): Promise<FastifyReply> {
  // the form first: a 406 costs no computation
  const rep = negotiate(req.headers.accept, forms);
  // the task's footprint, held from its admission, counts its inputs: the body's holding ends here
  req.bodyHold?.release();
  const { result, hold } = await req.server.computePool.run(task, disconnectSignal(reply));
  return sendResult(reply, result, rep, watchAnswer(req, reply, hold));
}

/**
 * Releases `hold` when the response has finished or its connection closed, and cuts the
 * connection when no byte has left for the stall limit. Returns the callback that hears the
 * streamed bytes.
 */
function watchAnswer(req: FastifyRequest, reply: FastifyReply, hold: Hold): (bytes: number) => void {
  const res = reply.raw;
  const { stallMs } = req.server.answers;
  let sent = 0;
  let seen = -1;
  let movedAt = performance.now();
  let timer: NodeJS.Timeout | undefined;
  const release = () => {
    clearInterval(timer);
    hold.release();
  };
  res.once('finish', release);
  res.once('close', release);
  if (stallMs > 0) {
    timer = setInterval(() => {
      if (res.writableFinished || res.destroyed) { release(); return; }
      if (sent !== seen) { seen = sent; movedAt = performance.now(); return; }
      if (performance.now() - movedAt < stallMs) return;
      req.server.answers.stalled++;
      req.log.warn({ sentBytes: sent, heldBytes: hold.bytes, stallMs }, 'answer stalled: the client read nothing for ANSWER_STALL_MS; connection cut');
      release();
      res.destroy();
    }, Math.max(20, Math.min(1000, stallMs / 4)));
    timer.unref();
  }
  return (bytes) => { sent += bytes; };
}
