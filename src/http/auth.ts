/**
 * Optional API keys: when API_KEYS is set, every request except GET /health, the OpenAPI document
 * and Swagger UI needs `Authorization: Bearer <key>`, else 401 problem+json with
 * `WWW-Authenticate: Bearer`. Keys are compared as SHA-256 digests with timingSafeEqual, against
 * every configured key without stopping early, so neither a key's content nor its length leaks
 * through timing. Keys are never logged (the logger redacts the Authorization header).
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ServiceError } from '../errors.ts';

/** Paths open without a key: health checks, the API document and its browser. */
export function isOpenPath(url: string): boolean {
  const path = url.split('?')[0];
  return path === '/health' || path === '/openapi.json' || path === '/docs' || path.startsWith('/docs/');
}

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

/** Installs the onRequest check when `keys` is not empty. */
export function registerApiKeys(app: FastifyInstance, keys: readonly string[]): void {
  if (keys.length === 0) return;
  const matches = keyChecker(keys);
  app.addHook('onRequest', async (req: FastifyRequest, reply: FastifyReply) => {
    if (req.method === 'OPTIONS' || isOpenPath(req.url)) return;
    const header = req.headers.authorization;
    const m = typeof header === 'string' ? /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header) : null;
    reply.header('www-authenticate', 'Bearer realm="curvature-service"');
    if (!m) {
      throw new ServiceError('UNAUTHORIZED', {
        detail: header === undefined
          ? 'this endpoint needs an API key: send Authorization: Bearer <key>'
          : 'the Authorization header is not of the form "Bearer <key>"',
      });
    }
    if (!matches(m[1])) {
      reply.header('www-authenticate', 'Bearer realm="curvature-service", error="invalid_token"');
      throw new ServiceError('UNAUTHORIZED', { detail: 'the API key is not valid for this service' });
    }
    reply.removeHeader('www-authenticate');
  });
}
