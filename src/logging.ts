/**
 * The service's pino options: JSON lines at LOG_LEVEL, with nothing secret in them. API keys in
 * the Authorization header are censored by path; a key someone put in the URL instead
 * (?api_key=..., ?token=..., ?key=...) would reach the logs with `req.url`, so every query value
 * is censored there. No endpoint of the service takes a query parameter, so nothing worth reading
 * is lost, and censoring every value (rather than names on a list) also covers the names nobody
 * thought of (?apikey, ?X-Amz-Signature, ?sig).
 */
import type { FastifyRequest } from 'fastify';

export const CENSOR = '[redacted]';

/** `url` with the value of every query parameter replaced by CENSOR: /hessian?api_key=[redacted]. */
export function redactQuery(url: string): string {
  const q = url.indexOf('?');
  if (q < 0) return url;
  const query = url.slice(q + 1).split('&').map((pair) => {
    const eq = pair.indexOf('=');
    return eq < 0 ? (pair === '' ? pair : `${pair}=${CENSOR}`) : `${pair.slice(0, eq)}=${CENSOR}`;
  });
  return `${url.slice(0, q)}?${query.join('&')}`;
}

/** Fastify's own request serializer, with the query censored. */
function request(req: FastifyRequest) {
  return {
    method: req.method,
    url: redactQuery(req.url),
    version: [req.headers?.['accept-version']].flat()[0],
    host: req.host,
    remoteAddress: req.ip,
    remotePort: req.socket ? req.socket.remotePort : undefined,
  };
}

/** Fastify's logger option for the service at `level`. */
export function loggerOptions(level: string) {
  return {
    level,
    // API keys never reach the logs, whichever serializer logs the headers.
    redact: { paths: ['req.headers.authorization', 'headers.authorization', 'request.headers.authorization'], censor: CENSOR },
    serializers: { req: request },
  };
}
