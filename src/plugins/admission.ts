/**
 * Load shedding before a body is read, for the compute routes: a full pool answers 503 with
 * Retry-After at once instead of parsing up to BODY_LIMIT of JSON only to refuse it (the pool
 * checks again when the task is queued).
 */
import fp from 'fastify-plugin';

export const admissionPlugin = fp(async (app) => {
  app.addHook('onRequest', async (req) => {
    req.server.computePool.admit();
  });
}, { name: 'admission', dependencies: ['pool'] });
