/**
 * Content negotiation and the three representations of a computed answer: JSON (default),
 * NumPy .npy and raw little-endian float64. Binary answers are streamed straight from the
 * result's Float64Array with an exact Content-Length; JSON of a large array is streamed as
 * text chunks (json-text.ts), never built as one string.
 */
import { pipeline, Readable, Transform } from 'node:stream';
import type { FastifyReply } from 'fastify';
import { ServiceError } from '../errors.ts';
import { isArrayResult, npzMembers, principalArray, type AnswerValue, type ArrayResult, type ComputeResult } from '../core/index.ts';
import { answerJson, JSON_CHUNK_ELEMENTS, jsonSize } from './json-text.ts';
import { CHUNK_BYTES, float64Stream, npyHeader } from './npy.ts';
import { npzStream } from './npz.ts';

export const MEDIA_TYPES = {
  json: 'application/json',
  npy: 'application/x-npy',
  raw: 'application/octet-stream',
  npz: 'application/x-npz',
} as const;
export type Representation = keyof typeof MEDIA_TYPES;

/** Every form, for answers with one principal array. */
export const ALL_FORMS = Object.keys(MEDIA_TYPES) as Representation[];
/** The forms of answers made of several arrays (eigenpairs, factors, blocks): no single .npy. */
export const MULTI_ARRAY_FORMS: readonly Representation[] = ['json', 'npz'];

/** Entries of a list field put in a header at most (a longer one is in the JSON and .npz answers only). */
const HEADER_LIST_MAX = 1000;

/** A field's value as a header: a number or string, or a short 1-D array comma-separated. */
function headerValue(v: AnswerValue | undefined): string | undefined {
  if (typeof v === 'number' || typeof v === 'string') return String(v);
  if (isArrayResult(v) && v.shape.length === 1 && v.data.length <= HEADER_LIST_MAX) return Array.from(v.data, String).join(',');
  return undefined;
}

/** A header of a binary answer. */
export interface AnswerHeader {
  readonly name: string;
  readonly type: 'string' | 'integer' | 'number';
  readonly description: string;
  /**
   * The JSON answer's field the header carries: the OpenAPI document lists the header on the answers
   * whose schema has that field. Absent for the two headers of the principal array, X-Array-Shape and
   * X-Array-Name (answers with a single-array form: .npy, raw).
   */
  readonly field?: string;
  value(result: ComputeResult): string | undefined;
}

/** A header that carries the scalar (or short list) field `field` of the JSON answer. */
const fieldHeader = (name: string, field: string, type: AnswerHeader['type'], description: string): AnswerHeader =>
  ({ name, field, type, description, value: (r) => headerValue(r.fields[field]) });

/**
 * The headers of a binary answer, one table: the answer sets them (sendResult), a refusal after
 * them removes them (src/http/problem.ts), and the OpenAPI document lists them (src/plugins/swagger.ts).
 */
export const ANSWER_HEADERS: readonly AnswerHeader[] = [
  { name: 'X-Array-Shape', type: 'string', description: 'Binary answers: the shape of the array, comma-separated (e.g. 13,13).', value: (r) => principalArray(r)?.shape.join(',') },
  { name: 'X-Array-Name', type: 'string', description: "Binary answers: the array's field name in the JSON answer (jacobian, hessian, diagonal, product, inverse, solutions).", value: (r) => (principalArray(r) ? r.principal : undefined) },
  fieldHeader('X-Parameter-Count', 'parameterCount', 'integer', 'Binary answers: W, where the JSON answer has parameterCount.'),
  fieldHeader('X-Log-Determinant', 'logDeterminant', 'number', 'Binary answers of /hessian/inverse (and /hessian/kfac with damping): log det(H + αI).'),
  fieldHeader('X-Trace', 'trace', 'number', "Binary answers of method 'diagonal': the trace of H, the sum of the exact diagonal."),
  fieldHeader('X-Row-Start', 'rowStart', 'integer', 'Binary answers of a slab of rows: its first row.'),
  fieldHeader('X-Row-End', 'rowEnd', 'integer', 'Binary answers of a slab of rows: one past its last row.'),
  fieldHeader('X-Method', 'method', 'string', 'Binary answers of /hessian/eigen and /hessian/inverse-vector-product: the method used (auto resolved).'),
  fieldHeader('X-Iterations', 'iterations', 'string', 'Binary answers of /hessian/eigen and /hessian/inverse-vector-product: curvature-vector products used (one per vector, comma-separated, for the latter).'),
  fieldHeader('X-Residuals', 'residuals', 'string', 'Binary answers of /hessian/eigen and /hessian/inverse-vector-product: the residuals reached, comma-separated (up to 1000 of them).'),
  { name: 'X-Warnings', field: 'warnings', type: 'string', description: "Binary answers with notes on how to read them: the codes, comma-separated (FINITE_DIFFERENCE_KINK); the JSON answer's warnings has their texts.", value: (r) => (r.warnings?.length ? r.warnings.map((w) => w.code).join(',') : undefined) },
];

/**
 * Picks the representation an Accept header asks for (RFC 9110 §12.5.1: media ranges with
 * q-values; the most specific range that matches a type gives its q). No header, or a range
 * like * / * or application/*, gives JSON. Refuses with 406 when nothing offered is acceptable.
 */
export function negotiate(accept: string | undefined, offered: readonly Representation[] = ALL_FORMS): Representation {
  if (accept === undefined || accept.trim() === '') return 'json';
  const ranges = accept.split(',').map((part) => {
    const [range, ...params] = part.split(';').map((s) => s.trim().toLowerCase());
    let q = 1;
    for (const p of params) {
      const m = /^q=([0-9.]+)$/.exec(p);
      if (m) q = Number(m[1]);
    }
    return { range, q: Number.isFinite(q) ? q : 0 };
  });
  // Highest q wins; at equal q a type named outright beats one matched by a wildcard
  // ("application/x-npy, */*" asks for .npy); then our order (JSON first).
  let best: Representation | undefined;
  let bestQ = 0;
  let bestSpecificity = -1;
  for (const rep of offered) {
    const type = MEDIA_TYPES[rep];
    const [major] = type.split('/');
    let q = -1;
    let specificity = -1;
    for (const r of ranges) {
      const s = r.range === type ? 2 : r.range === `${major}/*` ? 1 : r.range === '*/*' ? 0 : -1;
      if (s > specificity) { specificity = s; q = r.q; }
    }
    if (specificity >= 0 && q > 0 && (q > bestQ || (q === bestQ && specificity > bestSpecificity))) {
      best = rep;
      bestQ = q;
      bestSpecificity = specificity;
    }
  }
  if (best === undefined) throw new ServiceError('NOT_ACCEPTABLE', { accept, offered: offered.map((r) => MEDIA_TYPES[r]) });
  return best;
}

/** `stream`, with `onChunk` told the bytes of each chunk as the response takes it (for the stall watch of src/http/answer.ts). */
function counted(stream: Readable, onChunk: ((bytes: number) => void) | undefined): Readable {
  if (!onChunk) return stream;
  // a few chunks of buffer on each side: at the default 16 KiB the 1 MiB chunks of a binary answer
  // go through one at a time, a wait for the socket between each (a 734 MB .npy over loopback:
  // 1.9–2.5 GB/s with 4 MiB here, 1.3–1.5 with the default)
  const counter = new Transform({
    highWaterMark: 4 * CHUNK_BYTES,
    transform(chunk: Buffer | string, _enc, done) {
      onChunk(typeof chunk === 'string' ? Buffer.byteLength(chunk) : chunk.length);
      done(null, chunk);
    },
  });
  // the source ends (or is destroyed) with the counter: a response cut off stops the stream too
  return pipeline(stream, counter, () => undefined);
}

/**
 * Sends `result` in the representation `rep` (one the route offered). The result must already be
 * checked (finite). `onChunk`, when given, hears the bytes of each streamed chunk as the response
 * takes it (a short JSON answer, sent as one string, is not streamed).
 */
export function sendResult(reply: FastifyReply, result: ComputeResult, rep: Representation, onChunk?: (bytes: number) => void): FastifyReply {
  reply.header('vary', 'Accept');
  if (rep === 'json') {
    reply.type('application/json; charset=utf-8');
    if (jsonSize(result) <= JSON_CHUNK_ELEMENTS) return reply.send(Buffer.concat([...answerJson(result)]));
    return reply.send(counted(Readable.from(answerJson(result), { objectMode: false }), onChunk));
  }
  for (const h of ANSWER_HEADERS) {
    if (rep === 'npz' && (h.name === 'X-Array-Shape' || h.name === 'X-Array-Name')) continue;
    const v = h.value(result);
    if (v !== undefined) reply.header(h.name.toLowerCase(), v);
  }
  reply.type(MEDIA_TYPES[rep]);
  if (rep === 'npz') {
    const { stream, length } = npzStream(npzMembers(result).map((m) => ({ name: m.name, data: m.array.data, shape: m.array.shape })));
    reply.header('content-length', String(length));
    return reply.send(counted(stream, onChunk));
  }
  const principal = principalArray(result) as ArrayResult;
  const prefix = rep === 'npy' ? npyHeader(principal.shape) : undefined;
  reply.header('content-length', String((prefix?.length ?? 0) + principal.data.byteLength));
  return reply.send(counted(float64Stream(principal.data, prefix), onChunk));
}
