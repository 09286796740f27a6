/**
 * Every refusal as application/problem+json (RFC 9457) with a catalogued code: the core's typed
 * errors, the edge's ServiceErrors, zod's validation issues and Fastify's own 4xx. Nothing a
 * request sent can produce a 5xx.
 */
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { hasZodFastifySchemaValidationErrors } from 'fastify-type-provider-zod';
import { asServiceError, CATALOGUE, ServiceError, type ErrorCode } from '../errors.ts';
import { ANSWER_HEADERS } from './representation.ts';

declare module 'fastify' {
  interface FastifyReply {
    /** The catalogue code of the refusal this reply sends, for /metrics' refusal counter (src/plugins/metrics.ts). */
    problemCode?: string;
  }
}

export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  code: ErrorCode;
}

/** Validation issues quoted in a 400's detail; the rest are counted. */
const ISSUES_SHOWN = 5;

function problemType(code: string): string {
  return `urn:curvature-service:problem:${code.toLowerCase().replace(/_/g, '-')}`;
}

/** The problem+json body of a refusal (also the OpenAPI document's examples of refusals). */
export function problemOf(err: ServiceError): Problem {
  return { type: problemType(err.code), title: CATALOGUE[err.code].title, status: err.status, detail: err.detail, code: err.code };
}

/** The problem+json text of a refusal. */
export function problemBody(err: ServiceError): string {
  return JSON.stringify(problemOf(err));
}

/** `/network/layers/0/weights` → `network.layers[0].weights`. */
function fieldPath(instancePath: string, context: string | undefined): string {
  const parts = instancePath.split('/').filter((p) => p !== '');
  let out = '';
  for (const p of parts) out += /^\d+$/.test(p) ? `[${p}]` : out === '' ? p : `.${p}`;
  return out === '' ? (context ?? 'body') : out;
}

/**
 * Any error as the catalogued refusal it is (500 INTERNAL for what is not a refusal); `bodyLimit` is
 * quoted in a 413, `contentType` (the request's) in a 415.
 */
export function toServiceError(err: unknown, bodyLimit: number, contentType?: string): ServiceError {
  const known = asServiceError(err);
  if (known) return known;
  if (hasZodFastifySchemaValidationErrors(err)) {
    const ctx = (err as { validationContext?: string }).validationContext;
    const issues = err.validation.slice(0, ISSUES_SHOWN).map((i) => `${fieldPath(i.instancePath, ctx)}: ${i.message}`);
    return new ServiceError('INVALID_REQUEST', { reason: 'issues', issues, more: Math.max(0, err.validation.length - ISSUES_SHOWN) });
  }
  const fe = err as Partial<FastifyError> & { message?: string };
  const message = fe.message ?? '';
  if (fe.code === 'FST_ERR_CTP_BODY_TOO_LARGE') return new ServiceError('PAYLOAD_TOO_LARGE', { reason: 'body', limit: bodyLimit });
  // Fastify's message is only "Unsupported Media Type": name the type the request sent
  if (fe.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') return new ServiceError('UNSUPPORTED_MEDIA_TYPE', { contentType: contentType ?? message.replace(/^Unsupported Media Type:\s*/, '') });
  const status = fe.statusCode;
  if (typeof status === 'number' && status >= 400 && status < 500) {
    if (status === 413) return new ServiceError('PAYLOAD_TOO_LARGE', { reason: 'body', limit: bodyLimit });
    if (status === 415) return new ServiceError('UNSUPPORTED_MEDIA_TYPE', { contentType: message });
    return new ServiceError('MALFORMED_BODY', { reason: 'framing', message });
  }
  if (err instanceof SyntaxError) return new ServiceError('MALFORMED_BODY', { reason: 'framing', message });
  if (status === 503) return new ServiceError('OVERLOADED', { reason: 'shuttingDown', retryAfter: 1 });
  return new ServiceError('INTERNAL', {});
}

export function sendProblem(reply: FastifyReply, err: ServiceError): FastifyReply {
  const retryAfter = err.retryAfter;
  if (retryAfter !== undefined) reply.header('retry-after', String(retryAfter));
  const allow = err.allow;
  if (allow !== undefined) reply.header('allow', allow.join(', '));
  // counted by code in /metrics (src/plugins/metrics.ts)
  reply.problemCode = err.code;
  return reply.code(err.status).type('application/problem+json; charset=utf-8').send(problemBody(err));
}

/** The app's error handler; `bodyLimit` is quoted in the 413 of a body over it. */
export function errorHandler(bodyLimit: number) {
  return (err: unknown, req: FastifyRequest, reply: FastifyReply): FastifyReply => {
    const e = toServiceError(err, bodyLimit, req.headers['content-type']);
    if (e.status === 503) req.log.warn({ code: e.code, detail: e.detail }, 'request shed');
    else if (e.status >= 500) req.log.error({ err }, 'request failed');
    else req.log.info({ code: e.code, detail: e.detail }, 'request refused');
    reply.removeHeader('content-length');
    for (const h of ANSWER_HEADERS) reply.removeHeader(h.name.toLowerCase());
    return sendProblem(reply, e);
  };
}
