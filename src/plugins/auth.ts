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

/** The key of an `Authorization: Bearer <key>` header, if it is one. */
export function bearerToken(header: string | undefined): string | undefined {
  const m = typeof header === 'string' ? /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header) : null;
  return m?.[1];
}

/**
 * Who a request's jobs belong to: the SHA-256 digest (hex) of its key, which the auth hook has
 * already checked; the key itself is never kept.
 */
export function keyOwner(header: string | undefined): string | undefined {
  const token = bearerToken(header);
  return token === undefined ? undefined : digest(token).toString('hex');
}

export const authPlugin = fp<{ readonly apiKeys: readonly string[] }>(async (app, opts) => {
  if (opts.apiKeys.length === 0) return;
  const matches = keyChecker(opts.apiKeys);
  app.addHook('onRequest', async (req, reply) => {
    const header = req.headers.authorization;
    const token = bearerToken(header);
    reply.header('www-authenticate', 'Bearer realm="curvature-service"');
    if (token === undefined) throw new ServiceError('UNAUTHORIZED', { reason: header === undefined ? 'missing' : 'malformed' });
    if (!matches(token)) {
      reply.header('www-authenticate', 'Bearer realm="curvature-service", error="invalid_token"');
      throw new ServiceError('UNAUTHORIZED', { reason: 'invalid' });
    }
    reply.removeHeader('www-authenticate');
  });
}, { name: 'auth' });
