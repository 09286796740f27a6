/**
 * Request bodies: JSON by the service's own parser (src/http/json.ts: arrays of numbers dense,
 * bounded work, the event loop free while a large body is read) and nothing else at the root;
 * multipart bodies belong to the compute routes (src/plugins/multipart.ts). Fastify's text/plain
 * parser would turn a 415 into a confusing 400, so it goes.
 */
import fp from 'fastify-plugin';
import { parseJsonBody } from '../http/json.ts';

export const jsonBodyPlugin = fp(async (app) => {
  app.removeContentTypeParser(['application/json', 'text/plain']);
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, async (_req: unknown, body: Buffer) => parseJsonBody(body));
}, { name: 'json-body' });
