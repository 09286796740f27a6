/**
 * Request ids: a caller's X-Request-Id is kept when it is a sane token, so that logs can be joined
 * across services; otherwise a fresh UUID. Every answer carries it back.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import fp from 'fastify-plugin';

const REQUEST_ID = /^[\w.:@/+=-]{1,128}$/;

/** Fastify's genReqId option. */
export function requestId(req: IncomingMessage): string {
  const given = req.headers['x-request-id'];
  return typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID();
}

export const requestIdPlugin = fp(async (app) => {
  app.addHook('onRequest', async (req, reply) => {
    reply.header('x-request-id', req.id);
  });
}, { name: 'request-id' });
