/** The README's tour runs: its curl request, sent to the app, gives the answer the README prints. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { build } from '../helpers/http.ts';

const README = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');

test("the README's curl example gives the numbers its comment shows", async (t) => {
  const block = /curl -s http:\/\/127\.0\.0\.1:3000(\/\S+) -H 'content-type: application\/json' -d '([\s\S]*?)'\n# (\{.*\})/.exec(README);
  assert.ok(block, 'the curl example, its body and its answer comment are in the README');
  const [, path, body, shown] = block;
  const app = await build(t, { config: { workers: 0 } });
  const r = await app.inject({ method: 'POST', url: path, payload: JSON.parse(body) as object });
  assert.equal(r.statusCode, 200, r.body);
  const answer = r.json() as { parameterCount: number; diagonal: number[]; trace: number };
  // the comment elides the middle of the diagonal: "[a,b, … ,c]"
  const m = /"parameterCount":(\d+),"diagonal":\[([^,]+),([^,]+), … ,([^\]]+)\],"trace":([^}]+)\}/.exec(shown);
  assert.ok(m, `the comment's form: ${shown}`);
  assert.equal(answer.parameterCount, Number(m[1]));
  const [first, second, last, trace] = [m[2], m[3], m[4], m[5]].map(Number);
  const close = (a: number, b: number) => Math.abs(a - b) <= 1e-12 * Math.max(1, Math.abs(b));
  assert.ok(close(answer.diagonal[0], first) && close(answer.diagonal[1], second) && close(answer.diagonal.at(-1)!, last), `${answer.diagonal.join(',')} against ${shown}`);
  assert.ok(close(answer.trace, trace), `trace ${answer.trace} against ${trace}`);
});
