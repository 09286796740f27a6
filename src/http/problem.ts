/**
 * The one error handler: every refusal becomes application/problem+json (RFC 9457) with a
 * catalogued code, and nothing a request sent can produce a 5xx.
 */
import { STATUS_CODES } from 'node:http';
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { hasZodFastifySchemaValidationErrors } from 'fastify-type-provider-zod';
import { ERROR_CATALOGUE, ServiceError, type ErrorCode } from '../errors.ts';

export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  code?: string;
}

function problemType(code: string): string {
  return `urn:curvature-service:problem:${code.toLowerCase().replace(/_/g, '-')}`;
}

function fromCatalogue(code: ErrorCode, detail: string): Problem {
  const e = ERROR_CATALOGUE[code];
  return { type: problemType(code), title: e.title, status: e.status, detail, code };
}

/** `/network/layers/0/weights` → `network.layers[0].weights`. */
function fieldPath(instancePath: string, context: string | undefined): string {
  const parts = instancePath.split('/').filter((p) => p !== '');
  let out = '';
  for (const p of parts) out += /^\d+$/.test(p) ? `[${p}]` : out === '' ? p : `.${p}`;
  return out === '' ? (context ?? 'body') : out;
}

/** Is this an error object carrying a catalogue code (a ServiceError, or one rebuilt after crossing a worker boundary)? */
function catalogued(err: unknown): err is { code: ErrorCode; message: string } {
  return typeof err === 'object' && err !== null && typeof (err as { code?: unknown }).code === 'string' &&
    Object.hasOwn(ERROR_CATALOGUE, (err as { code: string }).code);
}

/** Maps any error to a problem. `bodyLimit` is quoted in the 413 detail. */
export function toProblem(err: unknown, bodyLimit: number): Problem {
  if (err instanceof ServiceError) return fromCatalogue(err.code, err.detail);
  if (hasZodFastifySchemaValidationErrors(err)) {
    const ctx = (err as { validationContext?: string }).validationContext;
    const issues = err.validation.slice(0, 5).map((i) => `${fieldPath(i.instancePath, ctx)}: ${i.message}`);
    const more = err.validation.length > 5 ? ` (and ${err.validation.length - 5} more)` : '';
    return fromCatalogue('INVALID_REQUEST', `${issues.join('; ')}${more}`);
  }
  if (catalogued(err)) return fromCatalogue(err.code, err.message);
  const fe = err as Partial<FastifyError> & { message?: string };
  switch (fe.code) {
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return fromCatalogue('MALFORMED_BODY', `the body is not valid JSON: ${fe.message}`);
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return fromCatalogue('PAYLOAD_TOO_LARGE', `the request body is over the limit of ${bodyLimit} bytes (${(bodyLimit / 1048576).toFixed(1)} MiB, BODY_LIMIT); send fewer data points per request, or raise BODY_LIMIT`);
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return fromCatalogue('UNSUPPORTED_MEDIA_TYPE', `${fe.message}; send the body as JSON with Content-Type: application/json, or as multipart/form-data with the JSON in a part 'request' and arrays as .npy parts`);
  }
  if (err instanceof SyntaxError || (fe.statusCode === 400 && fe.code === undefined)) {
    return fromCatalogue('MALFORMED_BODY', `the body is not valid JSON: ${fe.message}`);
  }
  const status = fe.statusCode;
  if (typeof status === 'number' && status >= 400 && status < 500) {
    return { type: problemType(fe.code ?? `HTTP_${status}`), title: STATUS_CODES[status] ?? 'Bad request', status, detail: fe.message ?? '', code: fe.code };
  }
  if (status === 503) return fromCatalogue('OVERLOADED', fe.message ?? 'the service is closing or busy; retry shortly');
  return fromCatalogue('INTERNAL', 'an internal error occurred; it has been logged with the request id');
}

export function sendProblem(reply: FastifyReply, problem: Problem): FastifyReply {
  return reply.code(problem.status).type('application/problem+json; charset=utf-8').send(JSON.stringify(problem));
}

export function errorHandler(bodyLimit: number) {
  return (err: unknown, req: FastifyRequest, reply: FastifyReply): FastifyReply => {
    const problem = toProblem(err, bodyLimit);
    if (problem.status === 503) req.log.warn({ code: problem.code, detail: problem.detail }, 'request shed');
    else if (problem.status >= 500) req.log.error({ err }, 'request failed');
    else req.log.info({ code: problem.code, detail: problem.detail }, 'request refused');
    reply.removeHeader('content-length');
    for (const h of ['x-array-shape', 'x-array-name', 'x-parameter-count', 'x-log-determinant']) reply.removeHeader(h);
    const retryAfter = (err as { retryAfter?: unknown }).retryAfter;
    if (typeof retryAfter === 'number') reply.header('retry-after', String(retryAfter));
    return sendProblem(reply, problem);
  };
}
