/**
 * The one catalogue of refusals. Every error the service answers with has a code here, with its
 * HTTP status, a short title and a message template; `{name}` placeholders are filled from the
 * parameters given where the error is thrown. The compute core throws these too (it imports only
 * this file, nothing of HTTP), and one error handler turns them into application/problem+json.
 */
export const ERROR_CATALOGUE = {
  MALFORMED_BODY: { status: 400, title: 'Malformed request body', template: '{detail}' },
  INVALID_REQUEST: { status: 400, title: 'Invalid request', template: '{detail}' },
  INVALID_ARRAY_PART: { status: 400, title: 'Invalid .npy part', template: '{detail}' },
  UNAUTHORIZED: { status: 401, title: 'Unauthorized', template: '{detail}' },
  NOT_FOUND: { status: 404, title: 'Not found', template: '{detail}' },
  NOT_ACCEPTABLE: { status: 406, title: 'Not acceptable', template: '{detail}' },
  PAYLOAD_TOO_LARGE: { status: 413, title: 'Request too large', template: '{detail}' },
  RESULT_TOO_LARGE: { status: 413, title: 'Answer too large', template: '{detail}' },
  LIMIT_EXCEEDED: { status: 413, title: 'Request over a size limit', template: '{detail}' },
  UNSUPPORTED_MEDIA_TYPE: { status: 415, title: 'Unsupported media type', template: '{detail}' },
  SHAPE_MISMATCH: { status: 422, title: 'Sizes do not fit together', template: '{detail}' },
  UNKNOWN_ACTIVATION: {
    status: 422,
    title: 'Unknown activation',
    template: "layer {layer} has activation '{activation}'; use one of {known}",
  },
  SOFTMAX_NOT_AT_OUTPUT: {
    status: 422,
    title: 'Softmax only at the output',
    template: "layer {layer} of {layers} uses 'softmax'; softmax is supported on the output layer only",
  },
  UNSUPPORTED_PAIRING: {
    status: 422,
    title: 'Unsupported loss and output pairing',
    template: "loss '{loss}' with output activation '{activation}' is not supported; {hint}",
  },
  TARGET_OUT_OF_DOMAIN: { status: 422, title: 'Target outside its domain', template: '{detail}' },
  INVALID_DAMPING: { status: 422, title: 'Invalid damping', template: '{detail}' },
  UNSUPPORTED_METHOD: { status: 422, title: 'Unsupported method combination', template: '{detail}' },
  NOT_POSITIVE_DEFINITE: { status: 422, title: 'Matrix not positive definite', template: '{detail}' },
  NON_FINITE_RESULT: { status: 422, title: 'Result is not finite', template: '{detail}' },
  CLIENT_CLOSED: { status: 499, title: 'Client closed the request', template: '{detail}' },
  OVERLOADED: { status: 503, title: 'Service busy', template: '{detail}' },
  TIMEOUT: { status: 503, title: 'Computation timed out', template: '{detail}' },
  INTERNAL: { status: 500, title: 'Internal error', template: '{detail}' },
} as const satisfies Record<string, { status: number; title: string; template: string }>;

export type ErrorCode = keyof typeof ERROR_CATALOGUE;

/** A refusal with a catalogued code; `detail` is the filled template. */
export class ServiceError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly title: string;
  readonly params: Readonly<Record<string, unknown>>;

  constructor(code: ErrorCode, params: Record<string, unknown> = {}) {
    const entry = ERROR_CATALOGUE[code];
    super(fillTemplate(entry.template, params));
    this.name = 'ServiceError';
    this.code = code;
    this.status = entry.status;
    this.title = entry.title;
    this.params = params;
  }

  get detail(): string {
    return this.message;
  }
}

function fillTemplate(template: string, params: Record<string, unknown>): string {
  return template.replace(/\{(\w+)\}/g, (whole, key: string) =>
    key in params ? String(params[key]) : whole,
  );
}

/** Shorthand for the most common refusal: sizes that do not fit together. */
export function shapeError(detail: string): ServiceError {
  return new ServiceError('SHAPE_MISMATCH', { detail });
}
