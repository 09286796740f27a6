/**
 * Content negotiation and the three representations of a computed answer: JSON (default),
 * NumPy .npy and raw little-endian float64. Binary answers are streamed straight from the
 * result's Float64Array with an exact Content-Length; JSON of a large array is streamed as
 * text chunks, never built as one string.
 */
import { Readable } from 'node:stream';
import type { FastifyReply } from 'fastify';
import { ServiceError } from '../errors.ts';
import type { ArrayResult, ComputeResult } from '../task.ts';
import { float64Stream, npyHeader } from './npy.ts';

export const MEDIA_TYPES = {
  json: 'application/json',
  npy: 'application/x-npy',
  raw: 'application/octet-stream',
} as const;
export type Representation = keyof typeof MEDIA_TYPES;

const OFFERED = Object.keys(MEDIA_TYPES) as Representation[];

/**
 * The headers of a binary answer, one table: the answer sets them (sendResult), a refusal after
 * them removes them (src/http/problem.ts), and the OpenAPI document lists them (src/plugins/swagger.ts).
 */
export const ANSWER_HEADERS: readonly {
  readonly name: string;
  readonly type: 'string' | 'integer' | 'number';
  readonly description: string;
  value(result: ComputeResult): string | number | undefined;
}[] = [
  { name: 'X-Array-Shape', type: 'string', description: 'Binary answers: the shape of the array, comma-separated (e.g. 13,13).', value: (r) => r.array.shape.join(',') },
  { name: 'X-Array-Name', type: 'string', description: "Binary answers: the array's field name in the JSON answer (jacobian, hessian, diagonal, product, inverse).", value: (r) => r.name },
  { name: 'X-Parameter-Count', type: 'integer', description: 'Binary answers: W, where the JSON answer has parameterCount.', value: (r) => r.scalars.parameterCount },
  { name: 'X-Log-Determinant', type: 'number', description: 'Binary answers of /hessian/inverse: log det(H + αI).', value: (r) => r.scalars.logDeterminant },
];

/**
 * Picks the representation an Accept header asks for (RFC 9110 §12.5.1: media ranges with
 * q-values; the most specific range that matches a type gives its q). No header, or a range
 * like * / * or application/*, gives JSON. Refuses with 406 when nothing offered is acceptable.
 */
export function negotiate(accept: string | undefined): Representation {
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
  for (const rep of OFFERED) {
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
  if (best === undefined) throw new ServiceError('NOT_ACCEPTABLE', { accept, offered: OFFERED.map((r) => MEDIA_TYPES[r]) });
  return best;
}

/** Elements per JSON text chunk when streaming. */
const JSON_CHUNK_ELEMENTS = 1 << 15;

/** JSON text of a row-major array nested to its shape, in chunks of about JSON_CHUNK_ELEMENTS numbers. */
function* nestedJson(a: ArrayResult): Generator<string> {
  const { data, shape } = a;
  const row = shape[shape.length - 1];
  const rows = data.length / row;
  // strides[d] = rows per block of dimension d (over the leading dims only)
  const lead = shape.slice(0, -1);
  const blocks: number[] = [];
  let acc = 1;
  for (let d = lead.length - 1; d >= 0; d--) { acc *= lead[d]; blocks[d] = acc; }
  let buf = '';
  for (let r = 0; r < rows; r++) {
    let open = '';
    for (let d = 0; d < lead.length; d++) {
      if (r % blocks[d] === 0) open += '[';
    }
    if (r > 0) buf += ',';
    buf += open;
    buf += '[';
    const base = r * row;
    for (let j = 0; j < row; j++) {
      if (j > 0) buf += ',';
      buf += String(data[base + j]);
    }
    buf += ']';
    let close = '';
    for (let d = lead.length - 1; d >= 0; d--) {
      if ((r + 1) % blocks[d] === 0) close += ']';
    }
    buf += close;
    if (buf.length >= JSON_CHUNK_ELEMENTS * 20) { yield buf; buf = ''; }
  }
  if (buf.length > 0) yield buf;
}

/** The JSON answer's text as chunks: scalar fields first, then `outputs` (if any) and the principal array. */
function* answerJson(result: ComputeResult): Generator<string> {
  let head = '{';
  let first = true;
  for (const [k, v] of Object.entries(result.scalars)) {
    if (v === undefined) continue;
    head += `${first ? '' : ','}${JSON.stringify(k)}:${JSON.stringify(v)}`;
    first = false;
  }
  if (result.outputs) {
    yield `${head}${first ? '' : ','}"outputs":`;
    yield* nestedJson(result.outputs);
    head = '';
    first = false;
  }
  yield `${head}${first ? '' : ','}${JSON.stringify(result.name)}:`;
  yield* nestedJson(result.array);
  yield '}';
}

/** Sends `result` in the representation `rep`. The result must already be checked (finite). */
export function sendResult(reply: FastifyReply, result: ComputeResult, rep: Representation): FastifyReply {
  reply.header('vary', 'Accept');
  if (rep === 'json') {
    reply.type('application/json; charset=utf-8');
    const total = result.array.data.length + (result.outputs?.data.length ?? 0);
    if (total <= JSON_CHUNK_ELEMENTS) return reply.send([...answerJson(result)].join(''));
    return reply.send(Readable.from(answerJson(result), { objectMode: false }));
  }
  const { data, shape } = result.array;
  for (const h of ANSWER_HEADERS) {
    const v = h.value(result);
    if (v !== undefined) reply.header(h.name.toLowerCase(), String(v));
  }
  const prefix = rep === 'npy' ? npyHeader(shape) : undefined;
  reply.header('content-length', String((prefix?.length ?? 0) + data.byteLength));
  reply.type(MEDIA_TYPES[rep]);
  return reply.send(float64Stream(data, prefix));
}
