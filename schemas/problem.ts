/**
 * Refusals in the OpenAPI document: the problem+json body (RFC 9457) and the shared error responses,
 * each defined once under components.responses with its headers and real examples (made by the
 * catalogue, src/errors.ts, from the parameters of a request that gets it), and referenced by every
 * operation that declares it. The codes each status may carry are listed from the catalogue.
 */
import { z } from 'zod';
import { CATALOGUE, ERROR_CODES, ServiceError } from '../src/errors.ts';
import { ALL_FORMS, MEDIA_TYPES } from '../src/http/representation.ts';
import { answerComponent } from './components.ts';

export const ProblemSchema = answerComponent('Problem', z
  .object({
    type: z.string().describe('A URI naming the kind of problem: `urn:curvature-service:problem:` and the code in lower case with hyphens.'),
    title: z.string().describe("The code's short title, the same for every refusal with that code."),
    status: z.number().int().min(400).max(599).describe('The HTTP status, repeated.'),
    detail: z.string().describe('What is wrong, in words a user can act on: which field, which sizes, how much memory and the limit.'),
    code: z.enum(ERROR_CODES).optional().describe('The catalogue code, e.g. SHAPE_MISMATCH (the README lists them all).'),
    instance: z.string().optional(),
  })
  .describe('application/problem+json (RFC 9457): the body of every refusal.'));

/** A header a refusal carries, documented once under components.headers. */
export interface HeaderDoc {
  readonly description: string;
  readonly type: 'string' | 'integer';
  readonly example?: string | number;
}

/** The headers of refusals (beside X-Request-Id, which every answer has). */
export const REFUSAL_HEADERS = {
  'Retry-After': {
    type: 'integer',
    description: 'With codes OVERLOADED and WORKER_FAILED: the seconds to wait before sending the request again (RFC 9110 §10.2.3). Absent with TIMEOUT, which the same request would meet again.',
    example: 1,
  },
  Allow: { type: 'string', description: 'The methods the path takes, comma-separated (RFC 9110 §10.2.1).', example: 'POST' },
  'WWW-Authenticate': {
    type: 'string',
    description: 'The scheme to authenticate with: `Bearer realm="curvature-service"`, with `error="invalid_token"` when a key was sent but is not valid.',
    example: 'Bearer realm="curvature-service"',
  },
} as const satisfies Record<string, HeaderDoc>;
export type RefusalHeader = keyof typeof REFUSAL_HEADERS;

/** A shared error response: components.responses[name]. */
export interface Refusal {
  readonly name: string;
  readonly status: number;
  readonly description: string;
  readonly headers: readonly RefusalHeader[];
  /** Named examples: real refusals, made by the catalogue. */
  readonly examples: Readonly<Record<string, ServiceError>>;
}

/** The status's codes, as a sentence for a description. */
function codes(status: number): string {
  const list = ERROR_CODES.filter((c) => CATALOGUE[c].status === status);
  return ` Codes: ${list.map((c) => `\`${c}\``).join(', ')}.`;
}

const refusal = (status: number, name: string, text: string, headers: readonly RefusalHeader[], examples: Refusal['examples']): Refusal =>
  ({ name, status, description: text + codes(status), headers, examples });

const ANSWER_TYPES = ALL_FORMS.map((f) => MEDIA_TYPES[f]);

/** Every shared refusal, by status. */
export const REFUSALS: Readonly<Record<number, Refusal>> = {
  400: refusal(400, 'BadRequest',
    'Malformed body: not JSON, a missing or mistyped field (named in detail by its path), a non-finite number; in a multipart body, a missing request part, an unknown part, or a .npy part that is not a float64/float32 C-order array of the right dimensions.',
    [], {
      mistypedField: new ServiceError('INVALID_REQUEST', { reason: 'issues', issues: ['inputs[0][1]: expected a number, received a string'], more: 0 }),
    }),
  401: refusal(401, 'Unauthorized',
    'The service runs with API keys (API_KEYS) and the request has no valid `Authorization: Bearer <key>` header; the answer carries `WWW-Authenticate: Bearer`.',
    ['WWW-Authenticate'], {
      missingKey: new ServiceError('UNAUTHORIZED', { reason: 'missing' }),
    }),
  404: refusal(404, 'NotFound', 'Any path that is no endpoint (the detail lists the endpoints).', [], {}),
  405: refusal(405, 'MethodNotAllowed', 'Any endpoint asked with a method it does not take; Allow lists the ones it does.', ['Allow'], {
    getHessian: new ServiceError('METHOD_NOT_ALLOWED', { method: 'GET', path: '/hessian', allow: ['POST'] }),
  }),
  406: refusal(406, 'NotAcceptable', `The Accept header asks for none of the answer's forms (${ANSWER_TYPES.join(', ')}; each operation lists its own).`, [], {
    csv: new ServiceError('NOT_ACCEPTABLE', { accept: 'text/csv', offered: ANSWER_TYPES }),
  }),
  408: refusal(408, 'RequestTimeout',
    'The body stopped arriving for BODY_TIMEOUT_MS, or the whole request took longer than RECEIVE_TIMEOUT_MS (its headers longer than HEADERS_TIMEOUT_MS); the connection is closed after this answer.',
    [], {
      bodyStalled: new ServiceError('REQUEST_TIMEOUT', { reason: 'bodyStalled', ms: 10_000, received: 65_536 }),
    }),
  413: refusal(413, 'PayloadTooLarge',
    'Over a size limit, refused before any work: the body over BODY_LIMIT, the answer over MAX_RESULT_BYTES, the computation over MAX_TASK_BYTES, N over MAX_POINTS, W over MAX_PARAMETERS, or a finite-difference Hessian over MAX_FINITE_DIFFERENCE_COST; detail names the sizes and a cheaper method.',
    [], {
      resultTooLarge: new ServiceError('RESULT_TOO_LARGE', {
        task: { endpoint: 'hessian', method: 'exact', n: 1000, d: 784, k: 10, w: 202_210 },
        bytes: 8 * 202_210 ** 2,
        limit: 4 * 1024 ** 3,
      }),
    }),
  415: refusal(415, 'UnsupportedMediaType', 'The request body is neither application/json nor multipart/form-data.', [], {
    textPlain: new ServiceError('UNSUPPORTED_MEDIA_TYPE', { contentType: 'text/plain' }),
  }),
  422: refusal(422, 'UnprocessableContent',
    'Well-formed but cannot be computed: sizes that do not fit, an unsupported loss/output pairing, targets outside their domain, a matrix that is not positive definite, an iteration that did not converge, a non-finite result.',
    [], {
      shapeMismatch: new ServiceError('SHAPE_MISMATCH', { reason: 'inputColumns', columns: 3, d: 2 }),
      notPositiveDefinite: ServiceError.fromCore({
        code: 'NOT_POSITIVE_DEFINITE',
        params: { source: 'cholesky', what: 'the Hessian', damping: 1e-9, minor: 4, smallestEigenvalue: -0.6644 },
      }),
    }),
  503: refusal(503, 'ServiceUnavailable',
    'Busy: every worker is computing and the queue (QUEUE_LIMIT) is full, or the service is shutting down (OVERLOADED, with Retry-After: send it again then); or the computation ran past REQUEST_TIMEOUT_MS and was stopped (TIMEOUT: a retry would meet the same limit); or its worker thread failed (WORKER_FAILED, with Retry-After: logged, the worker replaced).',
    ['Retry-After'], {
      overloaded: new ServiceError('OVERLOADED', { reason: 'busy', workers: 2, queueLimit: 8, retryAfter: 1 }),
      timeout: new ServiceError('TIMEOUT', { ms: 120_000 }),
      workerFailed: new ServiceError('WORKER_FAILED', { reason: 'crashed', message: 'Worker terminated due to reaching memory limit: JS heap out of memory', retryAfter: 1 }),
    }),
};

/** The Fastify form of each shared refusal (a route's `response` entry); src/plugins/swagger.ts writes it as a $ref. */
const ENTRIES = new Map<number, { readonly description: string; readonly content: { readonly 'application/problem+json': { readonly schema: typeof ProblemSchema } } }>();
const REFUSAL_OF = new WeakMap<object, Refusal>();
for (const r of Object.values(REFUSALS)) {
  const entry = { description: r.description, content: { 'application/problem+json': { schema: ProblemSchema } } } as const;
  ENTRIES.set(r.status, entry);
  REFUSAL_OF.set(entry, r);
}

/** The shared refusal a route's response entry is, if it is one. */
export function refusalOf(entry: unknown): Refusal | undefined {
  return typeof entry === 'object' && entry !== null ? REFUSAL_OF.get(entry) : undefined;
}

/** Response entries for a route: the shared refusals of these statuses. */
export function refusals<S extends number>(...statuses: S[]) {
  const out = {} as Record<S, NonNullable<ReturnType<typeof ENTRIES.get>>>;
  for (const s of statuses) {
    const e = ENTRIES.get(s);
    if (!e) throw new Error(`no shared refusal for status ${s}: add it to REFUSALS in schemas/problem.ts`);
    out[s] = e;
  }
  return out;
}

/** The refusals every compute endpoint documents. */
export function errorResponses() {
  return refusals(400, 401, 406, 408, 413, 415, 422, 503);
}
