/**
 * Admission before a body is read, for the compute routes: only a cheap check is possible there
 * (the task's cost is known once the body is parsed and sized, src/pool.ts). A request is refused
 * with 503 and Retry-After at once, instead of reading up to BODY_LIMIT only to refuse it, when
 * nothing could be admitted now: the service shutting down, the cheap lane's backlog over its
 * limit, or the memory budget without room for the body. Otherwise the body's memory is held on
 * the budget (its Content-Length times what parsing makes of it; BODY_LIMIT's worth when the length
 * is not given) until its task is sized or the response ends.
 */
import fp from 'fastify-plugin';

/**
 * Bytes a body of n bytes takes while it is read, parsed and turned into a task: JSON text,
 * parsed arrays (about twice the text) and the Float64Arrays (deploy/deployment.yaml measured 6×
 * in all); a multipart body's .npy parts are read straight into Float64Arrays (2×).
 */
export const BODY_FACTOR = { json: 6, multipart: 2 } as const;

export const admissionPlugin = fp<{ readonly bodyLimit: number }>(async (app, opts) => {
  app.decorateRequest('bodyHold', undefined);
  app.addHook('onRequest', async (req, reply) => {
    const length = Number(req.headers['content-length']);
    const bytes = Number.isFinite(length) && length >= 0 ? Math.min(length, opts.bodyLimit) : opts.bodyLimit;
    const multipart = /^multipart\//i.test(String(req.headers['content-type'] ?? ''));
    const hold = req.server.computePool.admitRequest(bytes * (multipart ? BODY_FACTOR.multipart : BODY_FACTOR.json));
    req.bodyHold = hold;
    reply.raw.once('close', () => hold.release());
  });
  app.addHook('onResponse', async (req) => { req.bodyHold?.release(); });
}, { name: 'admission', dependencies: ['pool'] });
