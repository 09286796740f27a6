/** The JSON text of answers: both row writers (the addon's std::to_chars, JavaScript's String) give text that reads back to the same doubles. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { answerJson, JSON_CHUNK_ELEMENTS, jsonRowsScript, jsonRowWriter } from '../../src/http/json-text.ts';
import type { ComputeResult } from '../../src/core/index.ts';
import { seededRandom } from '../helpers/random.ts';
import { openBlasBackend } from '../../src/core/linalg/index.ts';

let nativeMissing: string | undefined;
try {
  openBlasBackend();
} catch (e) {
  nativeMissing = (e as Error).message;
}

/** Nested arrays of `data` to `shape`, for comparison with what JSON.parse gives. */
function nest(data: Float64Array, shape: readonly number[]): unknown {
  if (shape.length === 1) return Array.from(data);
  const inner = shape.slice(1).reduce((a, b) => a * b, 1);
  return Array.from({ length: shape[0] }, (_, i) => nest(data.subarray(i * inner, (i + 1) * inner), shape.slice(1)));
}

const r = seededRandom(7);
const special = [0, -0, 1, -1, 0.1, 1 / 3, 1e-7, 1.5e-7, 123456789012345680000, 1e21, 2.5e21, -1e-300, 5e-324, 2.2250738585072014e-308, 1.7976931348623157e308, 9007199254740992, 0.30000000000000004];
const random = (n: number) => Float64Array.from({ length: n }, (_, i) => (i < special.length ? special[i] : (r() - 0.5) * 10 ** Math.floor(r() * 40 - 20)));

const cases: [string, readonly number[]][] = [
  ['a vector', [17]], ['an empty vector', [0]], ['a long vector (several chunks)', [JSON_CHUNK_ELEMENTS * 2 + 5]],
  ['a matrix', [7, 5]], ['a tall matrix of one column', [JSON_CHUNK_ELEMENTS + 3, 1]], ['a Jacobian N × K × W', [4, 3, 6]],
  ['a 4-D array', [2, 3, 2, 2]], ['an N × 0 matrix', [3, 0]], ['a matrix of long rows', [3, JSON_CHUNK_ELEMENTS + 1]],
  // chunks of 93 rows of 700 that the addon formats in parts on its threads, the blocks' brackets falling inside and across the parts
  ['an N × K × W array of many chunks', [40, 30, 700]],
];

const writers = [['JavaScript', jsonRowsScript] as const, ...(nativeMissing === undefined ? [['native', jsonRowWriter()] as const] : [])];

for (const [what, shape] of cases) {
  test(`the JSON of ${what} reads back to the same doubles with each row writer`, (t) => {
    if (nativeMissing !== undefined) t.diagnostic(`native writer not tested: ${nativeMissing}`);
    const n = shape.reduce((a, b) => a * b, 1);
    const data = random(n);
    const result: ComputeResult = { fields: { parameterCount: 3, a: { data, shape }, label: 'x' } };
    const want = { parameterCount: 3, a: nest(data, shape), label: 'x' };
    for (const [name, write] of writers) {
      const text = Buffer.concat([...answerJson(result, write)]).toString();
      const back = JSON.parse(text) as { a: unknown };
      // deepEqual compares numbers with Object.is, so -0 would differ from 0: -0 is written 0 by design
      assert.deepEqual(back, JSON.parse(JSON.stringify(want)), `${name}: ${what}`);
    }
  });
}

test('the native writer writes the shortest text that reads back (as JavaScript does), and -0 as 0', (t) => {
  if (nativeMissing !== undefined) { t.skip(`native backend not loaded: ${nativeMissing}`); return; }
  const data = random(2000);
  const text = jsonRowWriter()(data, 2000, new Float64Array(0), 0, 1).toString();
  const numbers = text.slice(1, -1).split(',');
  numbers.forEach((s, i) => {
    const x = Object.is(data[i], -0) ? 0 : data[i];
    assert.ok(Object.is(Number(s), x), `entry ${i}: ${s} reads back as ${Number(s)}, not ${x}`);
    // shortest: no longer than String(x) but for the exponent's form (1e-07 against 1e-7)
    assert.ok(s.length <= String(x).length + 1, `entry ${i}: ${s} against ${String(x)}`);
  });
});
