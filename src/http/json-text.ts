/**
 * The JSON text of an answer, in chunks: arrays nested to their shape, lists of objects field by
 * field. Formatting the numbers is where the time goes (V8's String(x): ≈ 250 ns a number, a
 * 601 × 601 Hessian ≈ 100 ms against ≈ 14 ms for its .npy), so where the native addon loads its
 * `jsonRows` writes the rows (std::to_chars, the shortest text that reads back to the same
 * double: ≈ 58 ns a number on one thread, ≈ 36–45 on two, for chunks of 2^16 numbers); else
 * JavaScript does, to the same numbers. Either way every number reads back exactly (round trip),
 * and −0 is written 0. The benchmark's exact Hessian (W = 2762, 7.6M numbers, 147 MB of text)
 * takes 0.74–0.95 s end to end as JSON against 0.27–0.37 s as .npy (curl, 2026-12-01).
 */
import { isArrayResult, type AnswerObject, type AnswerValue, type ArrayResult, type ComputeResult } from '../core/index.ts';
import { openBlasAddon } from '../core/linalg/openblas.ts';
import { warningText } from '../errors.ts';

/** Numbers per JSON text chunk when streaming (and the most an answer is written in one piece). */
export const JSON_CHUNK_ELEMENTS = 1 << 16;

const NO_BLOCKS = new Float64Array(0);
const COMMA = Buffer.from(',');

type RowWriter = (data: Float64Array, row: number, blocks: Float64Array, start: number, end: number) => Buffer;

/**
 * Rows start … end − 1 of a row-major array of rows of `row` numbers, nested to its shape
 * (blocks[d] = rows per block of leading dimension d, outermost first), by JavaScript.
 */
export function jsonRowsScript(data: Float64Array, row: number, blocks: Float64Array, start: number, end: number): Buffer {
  let buf = '';
  for (let r = start; r < end; r++) {
    if (r > 0) buf += ',';
    for (let d = 0; d < blocks.length; d++) if (r % blocks[d] === 0) buf += '[';
    buf += '[';
    const base = r * row;
    for (let j = 0; j < row; j++) {
      if (j > 0) buf += ',';
      buf += String(data[base + j]);
    }
    buf += ']';
    for (let d = blocks.length - 1; d >= 0; d--) if ((r + 1) % blocks[d] === 0) buf += ']';
  }
  return Buffer.from(buf);
}

let writer: RowWriter | undefined;

/** The addon's row writer where it loads, else JavaScript's (chosen once). */
export function jsonRowWriter(): RowWriter {
  if (!writer) {
    try {
      const addon = openBlasAddon() as unknown as { jsonRows?: RowWriter };
      writer = typeof addon.jsonRows === 'function' ? addon.jsonRows.bind(addon) : jsonRowsScript;
    } catch {
      writer = jsonRowsScript;
    }
  }
  return writer;
}

/** An array's JSON text in chunks of about JSON_CHUNK_ELEMENTS numbers (whole rows). */
function* nestedJson(a: ArrayResult, write: RowWriter): Generator<Buffer> {
  const { data, shape } = a;
  if (shape.length === 1) {
    // one row; a long one in pieces: "[a,b" ",c,d" ",e]"
    if (data.length === 0) { yield Buffer.from('[]'); return; }
    for (let j0 = 0; j0 < data.length; j0 += JSON_CHUNK_ELEMENTS) {
      const part = data.subarray(j0, Math.min(data.length, j0 + JSON_CHUNK_ELEMENTS));
      const text = write(part, part.length, NO_BLOCKS, 0, 1);
      const first = j0 === 0, last = j0 + JSON_CHUNK_ELEMENTS >= data.length;
      const inner = text.subarray(first ? 0 : 1, last ? text.length : text.length - 1);
      yield first ? inner : Buffer.concat([COMMA, inner]);
    }
    return;
  }
  const row = shape[shape.length - 1];
  const rows = row === 0 ? 0 : data.length / row;
  const lead = shape.slice(0, -1);
  const blocks = new Float64Array(lead.length);
  let acc = 1;
  for (let d = lead.length - 1; d >= 0; d--) { acc *= lead[d]; blocks[d] = acc; }
  if (rows === 0 || row === 0) {
    // an empty dimension: the brackets alone, as JSON.stringify writes them
    yield Buffer.from(JSON.stringify(emptyNested(shape)));
    return;
  }
  const step = Math.max(1, Math.floor(JSON_CHUNK_ELEMENTS / row));
  for (let r = 0; r < rows; r += step) yield write(data, row, blocks, r, Math.min(rows, r + step));
}

/** The nested empty arrays of a shape with a zero in it. */
function emptyNested(shape: readonly number[]): unknown[] {
  if (shape.length === 1 || shape[0] === 0) return [];
  return Array.from({ length: shape[0] }, () => emptyNested(shape.slice(1)));
}

function* valueJson(v: AnswerValue, write: RowWriter): Generator<Buffer> {
  if (isArrayResult(v)) { yield* nestedJson(v, write); return; }
  if (Array.isArray(v)) {
    yield Buffer.from('[');
    let first = true;
    for (const o of v as readonly AnswerObject[]) {
      if (!first) yield Buffer.from(',');
      first = false;
      yield* objectJson(o, write);
    }
    yield Buffer.from(']');
    return;
  }
  yield Buffer.from(JSON.stringify(v));
}

/** `o` as JSON text in chunks; `extra`: members already as JSON text ("name":value), appended. */
function* objectJson(o: AnswerObject, write: RowWriter, extra?: string): Generator<Buffer> {
  let first = true;
  for (const [k, v] of Object.entries(o)) {
    yield Buffer.from(`${first ? '{' : ','}${JSON.stringify(k)}:`);
    first = false;
    yield* valueJson(v, write);
  }
  if (extra !== undefined) { yield Buffer.from(`${first ? '{' : ','}${extra}`); first = false; }
  yield Buffer.from(first ? '{}' : '}');
}

/** The answer's warnings as a JSON member, or undefined. */
function warningsJson(result: ComputeResult): string | undefined {
  return result.warnings?.length ? `"warnings":${JSON.stringify(result.warnings.map(warningText))}` : undefined;
}

/**
 * The answer's JSON text in chunks (`write`: the row writer, by default the fastest that loads):
 * its fields, then its warnings' texts when it has any.
 */
export function answerJson(result: ComputeResult, write: RowWriter = jsonRowWriter()): Generator<Buffer> {
  return objectJson(result.fields, write, warningsJson(result));
}

/** Numbers an answer's JSON holds (its arrays' entries). */
export function jsonSize(result: ComputeResult): number {
  let n = 0;
  const count = (v: AnswerValue) => {
    if (isArrayResult(v)) n += v.data.length;
    else if (Array.isArray(v)) for (const o of v as readonly AnswerObject[]) for (const x of Object.values(o)) count(x);
  };
  for (const v of Object.values(result.fields)) count(v);
  return n;
}
