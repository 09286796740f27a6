/**
 * Optional API keys for the compute routes (registered inside them, so GET /health, the OpenAPI
 * document and Swagger UI stay open): when API_KEYS is set, a request needs
 * `Authorization: Bearer <key>`, else 401 problem+json with `WWW-Authenticate: Bearer`. Keys are
 * compared as SHA-256 digests with timingSafeEqual, against every configured key without stopping
 * early, so neither a key's content nor its length leaks through timing. Keys are never logged
 * (the logger redacts the Authorization header).
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import fp from 'fastify-plugin';
import { ServiceError } from '../errors.ts';

const digest = (s: string): Buffer => createHash('sha256').update(s, 'utf8').digest();

/** A checker for `keys`: true when `token` is one of them. */
export function keyChecker(keys: readonly string[]): (token: string) => boolean {
  const digests = keys.map(digest);
  return (token) => {
    const d = digest(token);
    let ok = false;
    for (const k of digests) ok = timingSafeEqual(d, k) || ok;
    return ok;
  };
}

export const authPlugin = fp<{ readonly apiKeys: readonly string[] }>(async (app, opts) => {
  if (opts.apiKeys.length === 0) return;
  const matches = keyChecker(opts.apiKeys);
  app.addHook('onRequest', async (req, reply) => {
    const header = req.headers.authorization;
    const m = typeof header === 'string' ? /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header) : null;
    reply.header('www-authenticate', 'Bearer realm="curvature-service"');
    if (!m) throw new ServiceError('UNAUTHORIZED', { reason: header === undefined ? 'missing' : 'malformed' });
    if (!matches(m[1])) {
      reply.header('www-authenticate', 'Bearer realm="curvature-service", error="invalid_token"');
      throw new ServiceError('UNAUTHORIZED', { reason: 'invalid' });
    }
    reply.removeHeader('www-authenticate');
  });
}, { name: 'auth' });
