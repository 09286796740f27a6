/**
 * Smoke test of `npm run bench`'s pieces at toy sizes (nothing here is timed): the workloads'
 * sizes and flop models, their request bodies through the app as .npy, and — where Debian's
 * python3 imports torch — the PyTorch side agreeing with those answers to 1e-8.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DAMPING, SIZES, WORKLOADS, blasEnv, flops, makeProblem, parameterCount, relativeDifference, request, type Kind } from '../../scripts/bench/workloads.ts';
import { answer, build } from '../helpers/http.ts';

const TORCH_SCRIPT = fileURLToPath(new URL('../../scripts/bench/torch_bench.py', import.meta.url));
const PYTHON = '/usr/bin/python3';
const KINDS: Kind[] = ['exact', 'outer-product', 'cholesky', 'woodbury'];

test("the benchmark's networks have the issue's sizes and its flop models add up", () => {
  const small = makeProblem(SIZES.small.d, SIZES.small.m, SIZES.small.k, 3);
  const large = makeProblem(SIZES.large.d, SIZES.large.m, SIZES.large.k, 3);
  assert.equal(parameterCount(small), 2762);
  assert.ok(Math.abs(parameterCount(large) - 9600) < 100, `W = ${parameterCount(large)} ≈ 9600`);
  const p = makeProblem(2, 3, 2, 5);
  const [w1, w2] = [3 * 3, 2 * 4];
  const W = w1 + w2;
  assert.equal(flops('exact', p), 2 * 5 * W * W);
  assert.equal(flops('outer-product', p), 2 * 5 * (w1 * w1 + w2 * w2 + w1 * w2));
  assert.equal(flops('cholesky', p), flops('outer-product', p) + W ** 3);
  assert.equal(flops('woodbury', p), 4 * 5 * 2 * W * W);
  assert.deepEqual(makeProblem(2, 3, 2, 5, 9), makeProblem(2, 3, 2, 5, 9), 'seeded: every run sends the same numbers');
  assert.equal(relativeDifference([1, 2, 3], [1, 2, 3]), 0);
  assert.equal(relativeDifference([0.5], [0.25]), 0.25);
  assert.equal(relativeDifference([4], [2]), 1);
  assert.equal(relativeDifference([NaN], [1]), Infinity);
  assert.ok(WORKLOADS.every((w) => KINDS.includes(w.kind) && KINDS.includes(w.torchKind ?? w.kind)));
});

test("the benchmark's requests succeed as .npy at a toy size and, where torch is importable, agree with PyTorch", async (t) => {
  const app = await build(t);
  const p = makeProblem(3, 4, 2, 6, 5);
  const W = parameterCount(p);
  const dir = mkdtempSync(join(tmpdir(), 'bench-smoke-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const tasks = [];
  for (const kind of KINDS) {
    const { path, body } = request(kind, p);
    const r = await app.inject({ method: 'POST', url: path, payload: body, headers: { accept: 'application/x-npy' } });
    assert.equal(r.statusCode, 200, r.body);
    const a = await answer(app, path, body, 'npy', kind === 'cholesky' || kind === 'woodbury' ? 'inverse' : 'hessian');
    assert.deepEqual(a.array.shape, [W, W]);
    const npy = join(dir, `${kind}.npy`);
    writeFileSync(npy, r.rawPayload);
    tasks.push({ id: kind, problem: 'toy', kind: kind === 'woodbury' ? 'cholesky' : kind, serviceNpy: npy, logDeterminant: a.scalars.logDeterminant ?? null });
  }
  if (!existsSync(PYTHON) || spawnSync(PYTHON, ['-c', 'import torch, numpy'], { timeout: 120_000 }).status !== 0) {
    t.diagnostic(`no ${PYTHON} with torch: the PyTorch side is not exercised`);
    return;
  }
  writeFileSync(join(dir, 'toy.json'), JSON.stringify(request('exact', p).body));
  writeFileSync(join(dir, 'manifest.json'), JSON.stringify({ damping: DAMPING, problems: { toy: join(dir, 'toy.json') }, tasks }));
  const run = spawnSync(PYTHON, [TORCH_SCRIPT, join(dir, 'manifest.json'), join(dir, 'torch.json')], { env: blasEnv(), encoding: 'utf8', timeout: 300_000 });
  assert.equal(run.status, 0, run.stderr);
  const out = JSON.parse(readFileSync(join(dir, 'torch.json'), 'utf8')) as { tasks: Record<string, { seconds: number; relDiff: number; logDetDiff?: number }> };
  for (const kind of KINDS) {
    const r = out.tasks[kind];
    assert.ok(r.seconds >= 0, `${kind}: timed`);
    assert.ok(r.relDiff <= 1e-8, `${kind}: service and PyTorch differ by ${r.relDiff}`);
    if (kind === 'cholesky' || kind === 'woodbury') assert.ok(r.logDetDiff! <= 1e-8, `${kind}: log det differs by ${r.logDetDiff}`);
  }
});
