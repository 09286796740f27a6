/**
 * The one catalogue of refusals. Every error the service answers with has a code here, with its
 * HTTP status, a short title and the message made from its parameters, so that every text a user
 * reads is written in this file. The compute core throws its own typed errors (src/core/errors.ts:
 * a code and parameters, nothing of HTTP); the edge throws ServiceError; the worker pool rebuilds a
 * worker's refusal from its code and parameters; one error handler (src/http/problem.ts) turns
 * them all into application/problem+json.
 */
import { CoreError, type CoreErrorCode, type CoreErrorData, type CoreErrorParams, type CoreWarning, type CoreWarningCode, type CoreWarningParams } from './core/errors.ts';
import type { TaskSummary } from './core/index.ts';

/** The parts a .npy part's refusal can name. */
type Npy = { readonly field: string };
/** How a shape is written in a message: (3,) or (2, 3). */
const shapeText = (shape: readonly number[]): string => (shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`);

/** Every code the edge throws, with its parameters. */
export interface EdgeErrorParams {
  readonly MALFORMED_BODY:
    | { readonly reason: 'empty' }
    | { readonly reason: 'json'; readonly message: string; readonly part?: string }
    | { readonly reason: 'tooDeep'; readonly path: string; readonly depth: number }
    | { readonly reason: 'multipart'; readonly message: string }
    | { readonly reason: 'framing'; readonly message: string }
    | { readonly reason: 'protoPart'; readonly parts: readonly string[] }
    | { readonly reason: 'unknownPart'; readonly part: string; readonly url: string; readonly parts: readonly string[] }
    | { readonly reason: 'namelessPart'; readonly parts: readonly string[] }
    | { readonly reason: 'noBoundary' }
    | { readonly reason: 'boundary'; readonly boundary: string }
    | { readonly reason: 'duplicatePart'; readonly part: string }
    | { readonly reason: 'noRequestPart'; readonly parts: readonly string[] }
    | { readonly reason: 'givenTwice'; readonly field: string };
  readonly INVALID_REQUEST:
    | { readonly reason: 'issues'; readonly issues: readonly string[]; readonly more: number }
    | { readonly reason: 'wrongType'; readonly path: string; readonly expected: string; readonly got: string }
    | { readonly reason: 'notFinite'; readonly path: string; readonly text: string };
  readonly INVALID_ARRAY_PART:
    | (Npy & { readonly reason: 'magic' })
    | (Npy & { readonly reason: 'format'; readonly major: number; readonly minor: number })
    | (Npy & { readonly reason: 'headerLength'; readonly bytes: number })
    | (Npy & { readonly reason: 'header'; readonly header: string })
    | (Npy & { readonly reason: 'dtype'; readonly descr: string; readonly integers: boolean })
    | (Npy & { readonly reason: 'fortran' })
    | (Npy & { readonly reason: 'shapeText'; readonly text: string })
    | (Npy & { readonly reason: 'dimensions'; readonly shape: readonly number[]; readonly ndim: number })
    | (Npy & { readonly reason: 'empty'; readonly shape: readonly number[]; readonly ndim: number })
    | (Npy & { readonly reason: 'tooMuchData'; readonly shape: readonly number[]; readonly descr: string; readonly bytes: number })
    | (Npy & { readonly reason: 'truncatedPreamble'; readonly bytes: number })
    | (Npy & { readonly reason: 'truncatedData'; readonly bytes: number; readonly need: number; readonly shape: readonly number[]; readonly descr: string })
    | (Npy & { readonly reason: 'notFinite'; readonly index: readonly number[]; readonly value: number });
  readonly MALFORMED_HTTP: { readonly reason: string; readonly message: string };
  readonly UNAUTHORIZED: { readonly reason: 'missing' | 'malformed' | 'invalid' };
  readonly NOT_FOUND: { readonly method: string; readonly path: string; readonly endpoints: readonly string[] };
  readonly METHOD_NOT_ALLOWED: { readonly method: string; readonly path: string; readonly allow: readonly string[] };
  readonly NOT_ACCEPTABLE: { readonly accept: string; readonly offered: readonly string[] };
  readonly REQUEST_TIMEOUT:
    | { readonly reason: 'bodyStalled'; readonly ms: number; readonly received: number }
    | { readonly reason: 'receive'; readonly ms: number }
    | { readonly reason: 'headers'; readonly ms: number };
  readonly PAYLOAD_TOO_LARGE:
    | { readonly reason: 'body'; readonly limit: number; readonly bytes?: number }
    | { readonly reason: 'parts'; readonly limit: number }
    | { readonly reason: 'part'; readonly limit: number }
    | { readonly reason: 'tooManyParts'; readonly parts: readonly string[] }
    | { readonly reason: 'npy'; readonly field: string; readonly shape: readonly number[]; readonly limit: number };
  readonly RESULT_TOO_LARGE: { readonly task: TaskSummary; readonly bytes: number; readonly limit: number };
  readonly WORKING_SET_TOO_LARGE: {
    readonly task: TaskSummary; readonly bytes: number; readonly answerBytes: number; readonly limit: number;
    /** The limit's variable: MAX_TASK_BYTES (default) or the memory budget. */
    readonly variable?: 'MAX_TASK_BYTES' | 'MEMORY_BUDGET_BYTES';
  };
  readonly LIMIT_EXCEEDED:
    | { readonly reason: 'parameters'; readonly w: number; readonly limit: number }
    | { readonly reason: 'points'; readonly n: number; readonly limit: number }
    | { readonly reason: 'finiteDifference'; readonly n: number; readonly w: number; readonly limit: number }
    | { readonly reason: 'arrayLength'; readonly path: string; readonly limit: number }
    | { readonly reason: 'values'; readonly path: string; readonly limit: number };
  readonly UNSUPPORTED_MEDIA_TYPE: { readonly contentType: string };
  readonly HEADERS_TOO_LARGE: { readonly limit: number };
  readonly CLIENT_CLOSED: Readonly<Record<string, never>>;
  readonly OVERLOADED:
    | { readonly reason: 'busy'; readonly workers: number; readonly queueLimit: number; readonly retryAfter: number }
    | { readonly reason: 'backlog'; readonly lane: 'cheap' | 'heavy'; readonly seconds: number; readonly limitSeconds: number; readonly retryAfter: number }
    | { readonly reason: 'memory'; readonly what: 'body' | 'task'; readonly bytes: number; readonly used: number; readonly limit: number; readonly retryAfter: number }
    | { readonly reason: 'shuttingDown'; readonly retryAfter: number }
    | { readonly reason: 'stopped'; readonly retryAfter: number };
  /** The task and its cost estimate (src/cost.ts), when the pool knows them: the detail then names what makes it long. */
  readonly TIMEOUT: { readonly ms: number; readonly task?: TaskSummary; readonly seconds?: number; readonly driver?: 'points' | 'depth' | 'size' };
  readonly WORKER_FAILED: { readonly reason: 'crashed' | 'noWorker'; readonly message: string; readonly retryAfter: number };
  readonly INTERNAL: Readonly<Record<string, never>>;
}

export type ErrorParams = CoreErrorParams & EdgeErrorParams;
export type ErrorCode = keyof ErrorParams;

interface Entry<P> {
  readonly status: number;
  readonly title: string;
  message(params: P): string;
}

const fmt = (x: number): string => x.toLocaleString('en-US');
const quoted = (names: readonly string[]): string => names.map((n) => `'${n}'`).join(', ');
const MIB = 1024 ** 2;
const mib = (b: number): string => `${(b / MIB).toFixed(1)} MiB`;
/** At most this much of what a client sent is echoed back in a message. */
const ECHO = 200;
const echo = (s: string): string => (s.length <= ECHO ? s : `${s.slice(0, ECHO)}… (${fmt(s.length)} characters)`);

/** "in about 3 s", or "at once" under a second (Retry-After: 0). */
const retryIn = (s: number): string => (s >= 1 ? `retry in about ${s} s` : 'retry at once');
/** 0.25 s, 14.2 s, 3 min. */
function seconds(s: number): string {
  if (s >= 120) return `${Math.round(s / 60)} min`;
  if (s >= 10) return `${Math.round(s)} s`;
  return `${s.toPrecision(2)} s`;
}

/**
 * What each refusal of Node's HTTP parser (llhttp, seen in a 'clientError') means for the sender:
 * by llhttp's own words where one code covers several faults (the order of Content-Length and
 * Transfer-Encoding decides which of the two is blamed), else by its HPE_ code. The parser's words
 * follow in parentheses.
 */
const BARE_LF = 'a line ends in a bare LF (or CR); every line of the request line and headers, and the empty line after them, ends in CRLF (\\r\\n)';
const CL_AND_TE = 'the request has both Content-Length and Transfer-Encoding; send one of them (RFC 9112 §6.3), Content-Length for a body of known size';
const HTTP_PARSER_REASONS: Readonly<Record<string, string>> = {
  'Expected CRLF after version': BARE_LF,
  'Missing expected CR after header value': BARE_LF,
  'Missing expected LF after header value': BARE_LF,
  'Missing expected CR after response line': BARE_LF,
  "Transfer-Encoding can't be present with Content-Length": CL_AND_TE,
  "Content-Length can't be present with Transfer-Encoding": CL_AND_TE,
  'Duplicate Content-Length': 'Content-Length is given twice; give the body\'s size once',
  'Invalid header value char': 'a header value holds a control character; percent-encode or leave out such bytes',
  'Invalid header field char': 'a header name holds a character not allowed in a token, or the empty line after the headers is a bare LF, not CRLF',
};
const HTTP_PARSER_CODES: Readonly<Record<string, string>> = {
  HPE_INVALID_METHOD: 'the request line does not start with a method (POST, GET, ...); send METHOD /path HTTP/1.1',
  HPE_INVALID_URL: 'the request target is not a path (/hessian) or a URL; percent-encode spaces and control characters',
  HPE_INVALID_VERSION: 'the request line does not end in HTTP/1.1 or HTTP/1.0',
  HPE_INVALID_CONSTANT: 'the request line is not METHOD /path HTTP/1.1 (a space in the path must be percent-encoded as %20)',
  HPE_LF_EXPECTED: BARE_LF,
  HPE_CR_EXPECTED: BARE_LF,
  HPE_UNEXPECTED_CONTENT_LENGTH: CL_AND_TE,
  HPE_INVALID_CONTENT_LENGTH: 'Content-Length is not one decimal number; give the body\'s size in bytes, once',
  HPE_INVALID_TRANSFER_ENCODING: 'Transfer-Encoding is not chunked; send chunked, or the body with a Content-Length',
  HPE_INVALID_CHUNK_SIZE: 'a chunk of the chunked body does not start with its size in hexadecimal and CRLF',
  HPE_CHUNK_EXTENSIONS_OVERFLOW: 'a chunk size line carries extensions over 16 KiB; send chunks without extensions',
  HPE_INVALID_HEADER_TOKEN: 'a header line is not Name: value (a name of letters, digits and -, then a colon)',
  HPE_INVALID_EOF_STATE: 'the connection ended in the middle of the request',
  NO_HOST: 'an HTTP/1.1 request needs a Host header (RFC 9112 §3.2); send Host: <the service\'s host and port>',
};

/** The smallest positive normal float64, 2^−1022 (checkDamping's bound). */
const MIN_NORMAL = 2 ** -1022;

/** 333 GB (310 GiB); small sizes in MiB. */
export function bytes(b: number): string {
  const GB = 1e9, GIB = 1024 ** 3;
  if (b >= GIB) return `${b >= 100 * GB ? Math.round(b / GB) : (b / GB).toPrecision(3)} GB (${(b / GIB).toFixed(b >= 100 * GIB ? 0 : 2)} GiB)`;
  if (b >= MIB) return mib(b);
  return `${b} bytes`;
}

/** What a task computes, for a refusal: "the exact Hessian for W = 13 parameters". */
function subject(t: TaskSummary): string {
  switch (t.endpoint) {
    case 'jacobian':
      return t.method === 'parameters'
        ? `the Jacobian with respect to parameters, N × K × W = ${fmt(t.n)} × ${fmt(t.k)} × ${fmt(t.w)}`
        : `the Jacobian with respect to inputs, N × K × D = ${fmt(t.n)} × ${fmt(t.k)} × ${fmt(t.d)}`;
    case 'hessian':
      if (t.method === 'diagonal' || t.method === 'diagonal-approximation') return `the Hessian diagonal by method '${t.method}' for W = ${fmt(t.w)} parameters`;
      if (t.method === 'finite-difference') return `the finite-difference Hessian for W = ${fmt(t.w)} parameters`;
      return `the ${t.method} Hessian for W = ${fmt(t.w)} parameters`;
    case 'hessian-vector-product':
      return `the Hessian-vector product for W = ${fmt(t.w)} parameters`;
    case 'hessian-inverse':
      return `the inverse by method '${t.method}' for W = ${fmt(t.w)} parameters`;
    case 'hessian-kfac':
      return `the Kronecker factors for W = ${fmt(t.w)} parameters`;
    case 'hessian-eigen':
      return `the eigenpairs by method '${t.method}' for W = ${fmt(t.w)} parameters`;
    case 'hessian-inverse-vector-product':
      return `the inverse-vector products by method '${t.method}' for W = ${fmt(t.w)} parameters`;
  }
}

/** Advice for a task whose cost does not shrink with N: what to change in the network instead. */
function notThePoints(t: TaskSummary): string {
  const layers = t.layers === undefined ? 'the network' : `the network's ${fmt(t.layers)} layers`;
  const pairs = t.layers === undefined ? '' : ` (${fmt((t.layers * (t.layers + 1)) / 2)} pairs of layers)`;
  const hessianLike = t.endpoint !== 'jacobian';
  return `fewer data points will not help (N = ${fmt(t.n)}): the cost is in ${layers}${hessianLike ? pairs : ''}; ` +
    (hessianLike
      ? "select the layers you need with parameters: {layers: [...]}, use structure 'block-diagonal' or method 'diagonal' (no pairs of layers), or send a shallower network"
      : 'send a shallower network');
}

/** A cheaper way to the same end, for a refusal over a size; `perPoint` false where the size does not grow with N (fewer data points would not help). */
function alternative(t: TaskSummary, perPoint = true): string {
  const advice = alternativeByEndpoint(t);
  return !perPoint && advice.startsWith('send fewer') ? notThePoints(t) : advice;
}

function alternativeByEndpoint(t: TaskSummary): string {
  switch (t.endpoint) {
    case 'jacobian':
      return 'send fewer data points per request';
    case 'hessian':
      return t.method === 'diagonal' || t.method === 'diagonal-approximation'
        ? 'send fewer data points per request'
        : "use method 'diagonal' or 'diagonal-approximation', structure 'block-diagonal', parameters: {layers: [...]} for some layers, rows for a slab, " +
          'or POST /hessian/vector-product, /hessian/eigen or /hessian/kfac, which need no W × W';
    case 'hessian-kfac':
      return 'send fewer data points per request';
    case 'hessian-eigen':
      return t.method === 'dense' ? "use method 'lanczos', which needs O(W) memory per vector" : 'ask for fewer eigenpairs, or send fewer data points per request';
    case 'hessian-inverse-vector-product':
      return t.method === 'cholesky' ? "use method 'cg' (conjugate gradients, O(W) memory) or hessian 'kfac'" : 'send fewer vectors or data points per request';
    case 'hessian-vector-product':
      return 'send fewer data points per request and add the products';
    case 'hessian-inverse':
      return "use POST /hessian with method 'diagonal' for a diagonal preconditioner, or POST /hessian/vector-product with an iterative solver (conjugate gradients), which need O(W) memory";
  }
}

export const CATALOGUE: { readonly [C in ErrorCode]: Entry<ErrorParams[C]> } = {
  MALFORMED_BODY: {
    status: 400,
    title: 'Malformed request body',
    message: (p) => {
      switch (p.reason) {
        case 'empty': return 'the body is empty; send the request as a JSON object';
        case 'json': return p.part === undefined ? `the body is not valid JSON: ${p.message}` : `the '${p.part}' part is not valid JSON: ${p.message}`;
        case 'tooDeep': return `the body nests arrays or objects ${p.depth} deep at ${p.path}; no field of a request nests that deep`;
        case 'multipart': return `the multipart/form-data body could not be read: ${p.message}`;
        case 'framing': return `the request could not be read: ${echo(p.message)}`;
        case 'protoPart': return `a multipart part is named after a prototype property; use the names ${p.parts.join(', ')}`;
        case 'namelessPart': return `a part of the multipart body has no name; give each part a Content-Disposition: form-data; name="..." header, with the names ${quoted(p.parts)}`;
        case 'noBoundary': return 'the Content-Type multipart/form-data has no boundary parameter; let the HTTP client build the body and its Content-Type together (requests\' files=, curl -F, FormData)';
        case 'boundary': return `no part of the multipart body starts with the boundary its Content-Type names (boundary=${echo(p.boundary)}): each part must begin with a line --${echo(p.boundary)} and the body end with --${echo(p.boundary)}--; ` +
          "let the HTTP client build the body and its Content-Type together (requests' files=, curl -F, FormData)";
        case 'unknownPart': return `the multipart body has a part '${echo(p.part)}'; ${p.url} takes ${p.parts.length > 1 ? `'request' (the JSON request) and ${quoted(p.parts.slice(1))} as .npy files` : "'request' (the JSON request)"}`;
        case 'duplicatePart': return `the multipart body has two parts named '${echo(p.part)}'; send each part once`;
        case 'noRequestPart': return `the multipart body has no part 'request'; send the JSON request (network, loss, ...) in a part named 'request'${p.parts.length ? `, with ${quoted(p.parts)} in it or as .npy parts` : ''}`;
        case 'givenTwice': return `${p.field} is given twice, in the 'request' part and as a .npy part; send it once`;
      }
    },
  },
  INVALID_REQUEST: {
    status: 400,
    title: 'Invalid request',
    message: (p) => {
      switch (p.reason) {
        case 'issues': return `${p.issues.join('; ')}${p.more > 0 ? ` (and ${p.more} more)` : ''}`;
        case 'wrongType': return `${p.path}: expected ${p.expected}, received ${p.got}`;
        case 'notFinite': return `${p.path}: ${echo(p.text)} is not a finite float64 number; every value must be finite`;
      }
    },
  },
  INVALID_ARRAY_PART: {
    status: 400,
    title: 'Invalid .npy part',
    message: (p) => {
      const what = `${p.field}: the .npy part`;
      switch (p.reason) {
        case 'magic': return `${what} does not start with the .npy magic \\x93NUMPY; send the bytes numpy.save writes, or give ${p.field} as JSON in the request part`;
        case 'format': return `${what} is .npy format ${p.major}.${p.minor}; formats 1.0 to 3.0 are read`;
        case 'headerLength': return `${what} has a header of ${p.bytes} bytes; a .npy header of an array is a few dozen`;
        case 'header': return `${what} has a header numpy would not write (${echo(p.header)}); structured dtypes are not read`;
        case 'dtype': return p.integers
          ? `${what} has dtype '${echo(p.descr)}'; send integers ('<i8' or '<i4'), e.g. numpy.save(f, y.astype(numpy.int64))`
          : `${what} has dtype '${echo(p.descr)}'; send float64 ('<f8') or float32 ('<f4'), e.g. numpy.save(f, x.astype(numpy.float64))`;
        case 'fortran': return `${what} is in Fortran (column-major) order; send it in C order, e.g. numpy.save(f, numpy.ascontiguousarray(x))`;
        case 'shapeText': return `${what} has shape (${echo(p.text)}), which is not a tuple of sizes`;
        case 'dimensions': {
          const want = p.ndim === 1 ? (p.field === 'labels' ? 'a 1-D array of N class indices (shape (N,))' : 'a vector (1-D, shape (W,))')
            : `a ${p.ndim}-D array (shape ${p.field === 'vectors' ? '(m, W)' : `(N, ${p.field === 'targets' ? 'K' : 'D'})`})`;
          return `${what} has shape ${shapeText(p.shape)}, ${p.shape.length}-D; ${p.field} must be ${want}`;
        }
        case 'empty': return `${what} has shape ${shapeText(p.shape)}, which holds no values; give at least one ${p.ndim === 1 ? 'entry' : 'data point'}`;
        case 'tooMuchData': return `${what} has more data than its header's shape ${shapeText(p.shape)} of '${p.descr}' holds (${p.bytes} bytes)`;
        case 'truncatedPreamble': return `${what} ends inside its preamble (${p.bytes} bytes); send the whole file numpy.save writes`;
        case 'truncatedData': return `${what} has ${p.bytes} bytes of data but its header's shape ${shapeText(p.shape)} of '${p.descr}' needs ${p.need}`;
        case 'notFinite': return `${p.field}${p.index.map((i) => `[${i}]`).join('')} is ${p.value} in the .npy part; every value must be a finite number`;
      }
    },
  },
  MALFORMED_HTTP: {
    status: 400,
    title: 'Malformed HTTP request',
    message: (p) => `the request is not valid HTTP/1.1: ${HTTP_PARSER_REASONS[p.message] ?? HTTP_PARSER_CODES[p.reason] ?? 'Node\'s HTTP parser refused it'} (${echo(p.message)}, ${echo(p.reason)})`,
  },
  UNAUTHORIZED: {
    status: 401,
    title: 'Unauthorized',
    message: (p) => ({
      missing: 'this endpoint needs an API key: send Authorization: Bearer <key>',
      malformed: 'the Authorization header is not of the form "Bearer <key>"',
      invalid: 'the API key is not valid for this service',
    })[p.reason],
  },
  NOT_FOUND: {
    status: 404,
    title: 'Not found',
    message: (p) => `no endpoint ${p.method} ${echo(p.path)}; the endpoints are ${p.endpoints.join(', ')}`,
  },
  METHOD_NOT_ALLOWED: {
    status: 405,
    title: 'Method not allowed',
    message: (p) => `${echo(p.path)} does not take ${echo(p.method)}; it takes ${p.allow.join(', ')}`,
  },
  NOT_ACCEPTABLE: {
    status: 406,
    title: 'Not acceptable',
    message: (p) => `Accept: ${echo(p.accept)} matches none of the answer's forms; ask for ${p.offered.join(', ')}`,
  },
  REQUEST_TIMEOUT: {
    status: 408,
    title: 'Request timeout',
    message: (p) => {
      switch (p.reason) {
        case 'bodyStalled': return `no byte of the request body arrived for ${fmt(p.ms)} ms (BODY_TIMEOUT_MS) after ${fmt(p.received)} bytes; the body was cut off: send it without pauses, or raise BODY_TIMEOUT_MS`;
        case 'receive': return `the request was not received in full within ${fmt(p.ms)} ms (RECEIVE_TIMEOUT_MS); send a smaller body (or .npy parts, a quarter of the JSON's bytes), or raise RECEIVE_TIMEOUT_MS`;
        case 'headers': return `the request's headers were not received in full within ${fmt(p.ms)} ms (HEADERS_TIMEOUT_MS); send the request line and headers at once`;
      }
    },
  },
  PAYLOAD_TOO_LARGE: {
    status: 413,
    title: 'Request too large',
    message: (p) => {
      const limit = `the limit for a whole request body is ${p.reason === 'tooManyParts' ? 0 : p.limit} bytes`;
      const advice = 'send fewer data points per request, or raise BODY_LIMIT';
      switch (p.reason) {
        case 'body': return p.bytes === undefined
          ? `the request body is over the limit of ${p.limit} bytes (${mib(p.limit)}, BODY_LIMIT); ${advice}`
          : `the request body is ${p.bytes} bytes (${mib(p.bytes)}); ${limit} (${mib(p.limit)}, BODY_LIMIT); ${advice}`;
        case 'parts': return `the multipart body's parts hold more than ${p.limit} bytes; ${limit} (${mib(p.limit)}, BODY_LIMIT); ${advice}`;
        case 'part': return `a part of the multipart body is over the limit; ${limit} (${mib(p.limit)}, BODY_LIMIT); ${advice}`;
        case 'tooManyParts': return `the multipart body has too many parts; send at most ${p.parts.length}: 'request' (the JSON request) and ${quoted(p.parts.slice(1))} (.npy)`;
        case 'npy': {
          const count = p.shape.reduce((a, b) => a * b, 1);
          return `${p.field}: the .npy part has shape ${shapeText(p.shape)}, ${mib(count * 8)} as float64; the limit is ${mib(p.limit)} (BODY_LIMIT)`;
        }
      }
    },
  },
  RESULT_TOO_LARGE: {
    status: 413,
    title: 'Answer too large',
    message: (p) => `${subject(p.task)} needs ${bytes(p.bytes)}; this service allows ${bytes(p.limit)} per answer (MAX_RESULT_BYTES); ${alternative(p.task, p.task.n > 1)}`,
  },
  WORKING_SET_TOO_LARGE: {
    status: 413,
    title: 'Computation needs too much memory',
    message: (p) => `${subject(p.task)} with N = ${fmt(p.task.n)} data points needs ${bytes(p.bytes)} of memory while computing (answer ${bytes(p.answerBytes)}); ` +
      (p.variable === 'MEMORY_BUDGET_BYTES'
        ? `this service's memory budget for everything in flight is ${bytes(p.limit)} (MEMORY_BUDGET_BYTES); `
        : `this service allows ${bytes(p.limit)} per computation (MAX_TASK_BYTES); `) +
      alternative(p.task, p.task.n > 1),
  },
  LIMIT_EXCEEDED: {
    status: 413,
    title: 'Request over a size limit',
    message: (p) => {
      switch (p.reason) {
        case 'parameters': return `the network has W = ${fmt(p.w)} parameters; this service allows at most ${fmt(p.limit)} (MAX_PARAMETERS)`;
        case 'points': return `the request has N = ${fmt(p.n)} data points; this service allows at most ${fmt(p.limit)} (MAX_POINTS) per request; ` +
          'split the data into several requests and add the answers (every Hessian here is a sum over data points)';
        case 'finiteDifference': {
          const cost = p.n * p.w * p.w;
          return `the finite-difference Hessian costs 2W gradient passes over N points, N·W² = ${fmt(p.n)} × ${fmt(p.w)}² = ${cost.toExponential(2)}; ` +
            `this service allows ${p.limit.toExponential(2)} (MAX_FINITE_DIFFERENCE_COST); use method 'exact', which gives the same matrix without truncation error at a fraction of the cost`;
        }
        case 'arrayLength': return `${p.path} has more than ${fmt(p.limit)} entries; no list or object of a request (other than an array of numbers) may be that long`;
        case 'values': return `the body holds more than ${fmt(p.limit)} values outside arrays of numbers (at ${p.path}); a request's lists and objects are small: send data as arrays of numbers`;
      }
    },
  },
  UNSUPPORTED_MEDIA_TYPE: {
    status: 415,
    title: 'Unsupported media type',
    message: (p) => `Unsupported Media Type: ${echo(p.contentType)}; send the body as JSON with Content-Type: application/json, or as multipart/form-data with the JSON in a part 'request' and arrays as .npy parts`,
  },
  HEADERS_TOO_LARGE: {
    status: 431,
    title: 'Request header fields too large',
    message: (p) => `the request's headers are over ${fmt(p.limit)} bytes (Node's --max-http-header-size); send fewer or shorter headers (a long Cookie or Authorization header is the usual cause)`,
  },
  SHAPE_MISMATCH: {
    status: 422,
    title: 'Sizes do not fit together',
    message: (p) => {
      switch (p.reason) {
        case 'noLayers': return 'network.layers is empty; give at least one layer';
        case 'emptyBias': return `network.layers[${p.layer}].bias is empty; a layer needs at least one output`;
        case 'emptyWeights': return `network.layers[${p.layer}].weights[0] is empty; a layer needs at least one input`;
        case 'weightRows': return `network.layers[${p.layer}].weights has ${p.rows} rows but bias has ${p.out} entries; W must be out × in with one row per bias entry`;
        case 'layerChain': return `network.layers[${p.layer}].weights has ${p.columns} columns but layer ${p.layer - 1} has ${p.previousOut} outputs; a layer's input size must equal the previous layer's output size`;
        case 'ragged': return `${p.field}[${p.row}] has ${p.length} entries but ${p.field}[0] has ${p.first}; every row must have the same length`;
        case 'noData': return `${p.field} is empty; give at least one data point`;
        case 'inputColumns': return `inputs have ${p.columns} columns but the first layer takes ${p.d} inputs; inputs must be N × ${p.d}`;
        case 'targetColumns': return `targets have ${p.columns} columns but the last layer has ${p.k} outputs; targets must be N × ${p.k}`;
        case 'targetRows': return `targets have ${p.rows} rows but inputs have ${p.n}; give one target row per input row`;
        case 'vectorLength': return `${p.field} has ${p.length} entries but the network has W = ${p.w} parameters; give one entry per parameter, in the API's parameter order`;
        case 'labelCount': return `labels has ${p.count} entries but inputs have ${p.n} rows; give one label per data point`;
        case 'rows': return `rows is [${p.start}, ${p.end}]; give 0 ≤ start < end ≤ W = ${p.w} (the slab of rows start … end − 1)`;
      }
    },
  },
  UNKNOWN_ACTIVATION: {
    status: 422,
    title: 'Unknown activation',
    message: (p) => `layer ${p.layer} has activation '${echo(p.activation)}'; use one of ${quoted(p.known)}`,
  },
  SOFTMAX_NOT_AT_OUTPUT: {
    status: 422,
    title: 'Softmax only at the output',
    message: (p) => `layer ${p.layer} of ${p.layers} uses 'softmax'; softmax is supported on the output layer only`,
  },
  UNSUPPORTED_PAIRING: {
    status: 422,
    title: 'Unsupported loss and output pairing',
    message: (p) => `loss '${p.loss}' with output activation '${p.activation}' is not supported; '${p.loss}' needs ${p.needs.length === 1 ? 'a' : 'one of'} ${quoted(p.needs)} output layer` +
      (p.losses.length ? `; with '${p.activation}' outputs use ${quoted(p.losses)}` : ''),
  },
  TARGET_OUT_OF_DOMAIN: {
    status: 422,
    title: 'Target outside its domain',
    message: (p) => {
      switch (p.reason) {
        case 'probability': return `targets[${p.row}][${p.column}] = ${p.value}; cross-entropy targets must lie in [0, 1]`;
        case 'negative': return `targets[${p.row}][${p.column}] = ${p.value}; softmax-cross-entropy targets must be non-negative`;
        case 'rowSum': return `targets[${p.row}] sums to ${p.sum}; softmax-cross-entropy targets must be probabilities summing to 1 in each row`;
        case 'label': return `labels[${p.row}] = ${p.value}; a label must be an integer class index from 0 to ${p.k - 1} (K = ${p.k} outputs)`;
        case 'labelsLoss': return `labels are class indices for loss 'softmax-cross-entropy'; with loss '${p.loss}' send targets (rows of K values)`;
      }
    },
  },
  INVALID_DAMPING: {
    status: 422,
    title: 'Invalid damping',
    message: (p) => (p.reason === 'subnormal'
      ? `damping is ${p.damping}, a subnormal number (below ${MIN_NORMAL.toPrecision(5)}, the smallest normal float64): 1/damping overflows and adding it to the Hessian changes nothing; ` +
        'give a damping that is meaningful next to the Hessian\'s entries, e.g. 1e-8 × its largest diagonal entry'
      : `damping is ${p.damping}; it must be a finite number greater than 0 (the inverse is of H + damping·I)`),
  },
  INVALID_SELECTION: {
    status: 422,
    title: 'Invalid parameter selection',
    message: (p) => p.reason === 'range'
      ? `parameters.layers has ${p.index}, but the network has ${p.layers} layers; give indices from 0 to ${p.layers - 1}, or from −${p.layers} to −1 counting from the end`
      : `parameters.layers names layer ${p.index} twice (counting negative indices from the end of ${p.layers} layers); name each layer once`,
  },
  UNSUPPORTED_METHOD: {
    status: 422,
    title: 'Unsupported method combination',
    message: (p) => {
      switch (p.reason) {
        case 'woodburyExact': return "method 'woodbury' inverts the outer-product Hessian only (PRML 5.89); use method 'cholesky' with hessian 'exact'";
        case 'structureMethod': return `structure 'block-diagonal' is for methods 'exact' and 'outer-product', not '${p.method}'`;
        case 'rowsMethod': return `rows are slabs of the dense 'exact' and 'outer-product' Hessians, not of method '${p.method}'`;
        case 'rowsStructure': return "rows are slabs of the full Hessian; with structure 'block-diagonal' leave rows out";
      }
    },
  },
  NOT_POSITIVE_DEFINITE: {
    status: 422,
    title: 'Matrix not positive definite',
    message: (p) => {
      const advice = 'use a larger damping, or the outer-product Hessian, which is positive semi-definite';
      switch (p.source) {
        case 'cholesky': {
          const hint = p.smallestEigenvalue === undefined ? ''
            : `; the smallest eigenvalue of ${p.what} is ${p.smallestEigenvalue.toPrecision(4)}, so a damping above ${(-p.smallestEigenvalue).toPrecision(4)} makes it positive definite`;
          return `${p.what} plus damping·I (damping = ${p.damping}) is not positive definite (its leading minor of order ${p.minor} is not positive)${hint}; ${advice}`;
        }
        case 'cg':
          return `${p.what} plus damping·I (damping = ${p.damping}) is not positive definite: conjugate gradients met a direction of curvature ${p.curvature.toPrecision(4)} ` +
            `(pᵀ(H + αI)p / pᵀp), so a damping above ${(p.damping - p.curvature).toPrecision(4)} may be needed; ${advice}`;
        case 'kfac':
          return `${p.what} plus damping·I (damping = ${p.damping}) is not positive definite: a product of its factors' eigenvalues is ${p.smallestEigenvalue.toPrecision(4)}; use a larger damping`;
      }
    },
  },
  NON_FINITE_RESULT: {
    status: 422,
    title: 'Result is not finite',
    message: (p) => {
      switch (p.reason) {
        case 'entries': return `${p.name} has ${p.count} non-finite entr${p.count === 1 ? 'y' : 'ies'}, the first ${p.name}${p.index.map((x) => `[${x}]`).join('')} = ${p.value}; ` +
          'the activations or the error overflow in float64 — scale the inputs or weights down';
        case 'logDeterminant': return `logDeterminant is ${p.value}; the matrix is numerically singular or overflows — use a larger damping`;
        case 'woodbury': return 'the Woodbury update lost positive definiteness (the outer-product terms are not finite); check the weights and inputs for extreme values';
        case 'eigen': return `the symmetric eigensolver failed (LAPACK info ${p.info}): the matrix holds non-finite entries or did not converge; scale the inputs or weights down`;
      }
    },
  },
  NOT_CONVERGED: {
    status: 422,
    title: 'Did not converge',
    message: (p) => `${p.method === 'lanczos' ? 'Lanczos' : 'conjugate gradients'} reached a relative residual of ${p.residual.toExponential(2)} ` +
      `after ${fmt(p.iterations)} curvature-vector products (maxIterations), not the ${p.tolerance.toExponential(2)} asked for; ` +
      (p.method === 'lanczos'
        ? "raise maxIterations or tolerance, ask for fewer eigenpairs, or use method 'dense' where W allows"
        : "raise maxIterations or tolerance, a larger damping converges faster, or use method 'cholesky' where W allows"),
  },
  INVALID_COUNT: {
    status: 422,
    title: 'Too many eigenpairs',
    message: (p) => `count is ${fmt(p.count)} but there are W = ${fmt(p.w)} parameters; ask for at most ${fmt(p.w)}`,
  },
  CLIENT_CLOSED: { status: 499, title: 'Client closed the request', message: () => 'the client closed the connection; the computation was aborted' },
  OVERLOADED: {
    status: 503,
    title: 'Service busy',
    message: (p) => {
      switch (p.reason) {
        case 'busy': return `all ${p.workers} workers are busy and ${p.queueLimit} requests are waiting (QUEUE_LIMIT); ${retryIn(p.retryAfter)}`;
        case 'backlog': return p.lane === 'cheap'
          ? `the small requests queued ahead of this one need an estimated ${seconds(p.seconds)}, more than a small request may wait (${seconds(p.limitSeconds)}); ${retryIn(p.retryAfter)}`
          : `the computations queued and running ahead of this one need an estimated ${seconds(p.seconds)} of the workers, more than it may wait (REQUEST_TIMEOUT_MS, ${seconds(p.limitSeconds)}); ${retryIn(p.retryAfter)}`;
        case 'memory': return `${p.what === 'body' ? 'reading this request body takes' : 'this computation needs'} ${bytes(p.bytes)}, but ${bytes(p.used)} of the memory budget of ${bytes(p.limit)} ` +
          `(MEMORY_BUDGET_BYTES) is held by the computations, bodies and answers in transit of other requests; ${retryIn(p.retryAfter)}`;
        case 'shuttingDown': return 'the service is shutting down; retry on another instance';
        case 'stopped': return 'the service is shutting down and stopped this computation at the end of its grace period (SHUTDOWN_GRACE_MS); retry on another instance';
      }
    },
  },
  TIMEOUT: {
    status: 503,
    title: 'Computation timed out',
    message: (p) => {
      const head = `the computation ran past the limit of ${p.ms} ms (REQUEST_TIMEOUT_MS) and was stopped`;
      const cheaper = "use a cheaper method ('diagonal', 'diagonal-approximation', or POST /hessian/vector-product)";
      if (!p.task || p.seconds === undefined || p.driver === undefined) return `${head}; send fewer data points per request, or ${cheaper}`;
      const est = `; it was estimated at ${seconds(p.seconds)}`;
      switch (p.driver) {
        case 'points': return `${head}${est}, most of it growing with the N = ${fmt(p.task.n)} data points; ` +
          `send fewer data points per request and add the answers (every gradient and Hessian here is a sum over data points), or ${cheaper}`;
        case 'depth': return `${head}${est}, whatever N; ${notThePoints(p.task)}; or raise REQUEST_TIMEOUT_MS`;
        case 'size': return `${head}${est}, most of it in ${subject(p.task)} whatever N; ${alternative(p.task, false)}; or raise REQUEST_TIMEOUT_MS`;
      }
    },
  },
  WORKER_FAILED: {
    status: 503,
    title: 'Worker failed',
    message: (p) => (p.reason === 'crashed'
      ? `the worker thread given this request failed (${echo(p.message)}); it has been logged and the worker replaced: retry in about ${p.retryAfter} s`
      : `no worker thread could be started (${echo(p.message)}); it has been logged and the service keeps trying: retry in about ${p.retryAfter} s`),
  },
  INTERNAL: { status: 500, title: 'Internal error', message: () => 'an internal error occurred; it has been logged with the request id' },
};

/**
 * The texts of the core's warnings: notes on an answer that is still given (in its JSON
 * `warnings`; binary answers name the codes in X-Warnings). One per code.
 */
export const WARNINGS: { readonly [C in CoreWarningCode]: (p: CoreWarningParams[C]) => string } = {
  FINITE_DIFFERENCE_KINK: (p) => `${fmt(p.count)} of the W = ${fmt(p.w)} columns (and rows, the matrix being symmetrised) of this finite-difference Hessian ` +
    `(${p.count > p.columns.length ? `the first ${p.columns.length}: ` : ''}${p.columns.length === 1 ? 'column' : 'columns'} ${p.columns.join(', ')}) ` +
    `difference gradients across the kink of '${p.activation}' at 0: a pre-activation changes sign between w ± εe_i (ε = ${p.step.toExponential()}), where ${p.activation}′ jumps, ` +
    `so those entries are about the jump over 2ε (up to ${fmt(1 / (2 * p.step))} times it) and mean nothing; ${p.activation} has no second derivative there. ` +
    "Method 'exact' gives the Hessian of the side the pre-activation is on (the second derivative 0 almost everywhere, as PyTorch's autograd does)",
};

/** A core warning's text. */
export function warningText(w: CoreWarning): string {
  return (WARNINGS[w.code] as (p: unknown) => string)(w.params);
}

/** Every code, in the catalogue's order (the OpenAPI document's enum of ProblemSchema.code). */
export const ERROR_CODES = Object.keys(CATALOGUE) as ErrorCode[];

/** A refusal with a catalogued code; `detail` is its message. */
export class ServiceError<C extends ErrorCode = ErrorCode> extends Error {
  readonly status: number;
  readonly title: string;

  constructor(readonly code: C, readonly params: ErrorParams[C]) {
    // each entry's message takes its own code's parameters (the catalogue's type says so)
    const entry = (CATALOGUE as Record<string, Entry<unknown>>)[code];
    super(entry.message(params));
    this.name = 'ServiceError';
    this.status = entry.status;
    this.title = entry.title;
  }

  get detail(): string {
    return this.message;
  }

  /** Seconds a client should wait before retrying (503 OVERLOADED), or undefined. */
  get retryAfter(): number | undefined {
    const p = this.params as { retryAfter?: unknown };
    return typeof p.retryAfter === 'number' ? p.retryAfter : undefined;
  }

  /** The methods a 405 allows, for its Allow header. */
  get allow(): readonly string[] | undefined {
    return this.code === 'METHOD_NOT_ALLOWED' ? (this.params as ErrorParams['METHOD_NOT_ALLOWED']).allow : undefined;
  }

  /** A core refusal, thrown in this thread or sent by a worker as plain data, in its HTTP form. */
  static fromCore(err: CoreError | CoreErrorData): ServiceError<CoreErrorCode> {
    const { code, params } = err instanceof CoreError ? err.data() : err;
    // code and params belong together (CoreErrorData); spelling that out to the compiler is a union too large for it
    return Reflect.construct(ServiceError, [code, params]) as ServiceError<CoreErrorCode>;
  }
}

/** A ServiceError for any catalogued refusal (a core error is given its HTTP form); undefined for anything else. */
export function asServiceError(err: unknown): ServiceError | undefined {
  if (err instanceof ServiceError) return err;
  if (err instanceof CoreError) return ServiceError.fromCore(err);
  return undefined;
}
