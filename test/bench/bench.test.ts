/**
 * Smoke test of `npm run bench`'s pieces at toy sizes (nothing here is timed): the workloads'
 * sizes and flop models, their request bodies through the app as .npy, and — where Debian's
 * python3 imports torch — the PyTorch side agreeing with those answers to 1e-8; the sweep's
 * shapes and floor models, and its peers (scripts/bench/peers.py, in .peers/ or Debian's python3,
 * whichever is there) agreeing with the service to 1e-13 on a toy network of depth 6. Peers that
 * are not installed are skipped with a diagnostic, never failed: CI machines have no .peers/.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DAMPING, SIZES, SWEEP, WORKLOADS, blasEnv, floorFlops, flops, makeNetwork, makeProblem, parameterCount, relativeDifference, request, shapeLabel, shapeParameterCount, type Kind } from '../../scripts/bench/workloads.ts';
import { PEERS_SCRIPT, SWEEP_AGREE, findPeerPython, peerEnv } from '../../scripts/bench/sweep.ts';
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

test("the sweep has the issue's shapes and spans N·K ≪ W to N·K ≫ W, depths 2–5, W 10²–10⁴, K 1–100", () => {
  const byId = new Map(SWEEP.map((s) => [s.id, s]));
  const w = (id: string) => shapeParameterCount(byId.get(id)!.sizes);
  assert.equal(w('benchmark'), 2762);
  assert.equal(w('wide'), 9580);
  assert.equal(w('small'), 601);
  assert.equal(w('one-input'), 2896);
  assert.deepEqual(byId.get('deep4')!.sizes, [20, 30, 30, 30, 5]);
  assert.equal(byId.get('narrow200')!.sizes.length - 1, 201);
  assert.equal(byId.get('narrow1000')!.sizes.length - 1, 1001);
  assert.equal(shapeLabel(byId.get('narrow200')!.sizes), '1-(1×200)-1');
  assert.equal(shapeLabel([32, 64, 10]), '32-64-10');
  assert.equal(new Set(SWEEP.map((s) => s.id)).size, SWEEP.length, 'ids are unique');
  const depths = new Set(SWEEP.map((s) => s.sizes.length - 1));
  for (const d of [2, 3, 4, 5]) assert.ok(depths.has(d), `depth ${d}`);
  const ws = SWEEP.map((s) => shapeParameterCount(s.sizes));
  assert.ok(Math.min(...ws) <= 150 && Math.max(...ws) >= 9500);
  const ks = SWEEP.map((s) => s.sizes[s.sizes.length - 1]);
  assert.ok(ks.includes(1) && ks.includes(100));
  const ratios = SWEEP.map((s, i) => (s.n * ks[i]) / ws[i]);
  assert.ok(Math.min(...ratios) < 0.1 && Math.max(...ratios) > 10, 'N·K/W from below 0.1 to above 10');
  // two layers: the very numbers of makeProblem, so the issue-4 table and the sweep share a network
  assert.deepEqual(makeNetwork([3, 4, 2], 5, 7), makeProblem(3, 4, 2, 5, 7));
  assert.equal(makeNetwork([2, 3, 3, 1], 4).layers.map((l) => l.activation).join(), 'tanh,tanh,identity');
});

test("the sweep's floor models count the block form's GEMMs", () => {
  // 2 → 3 → 2: W_1 = 9, W_2 = 8; own blocks 2N·P(3)·P(3) + 2N·P(2)·P(4) = 2N·(36 + 30); lower 2N·72;
  // cross 2N·(2·3)·(2 + 1), the adjacent layer's (S = diag(h′): one product per unit of layer 1)
  const n = 5;
  const own = 2 * n * (6 * 6 + 3 * 10), lower = 2 * n * 8 * 9, cross = 2 * n * 6 * 3;
  assert.deepEqual(floorFlops('exact', [2, 3, 2], n), { flops: own + lower + cross, model: 'blocks' });
  const outer = floorFlops('outer-product', [2, 3, 2], n);
  assert.equal(outer.flops, Math.min(own + lower, n * 2 * 17 * 18));
  for (const s of SWEEP) assert.equal(floorFlops('outer-product', s.sizes, s.n).model, 'blocks', s.id);
  // three layers 1 → 2 → 2 → 1: the cross term of layers (2, 0) has S dense, 2N·(1·2)·W_0
  const deep = floorFlops('exact', [1, 2, 2, 1], n).flops - floorFlops('outer-product', [1, 2, 2, 1], n).flops;
  assert.equal(deep, 2 * n * (2 * 2 * (1 + 1) + 1 * 2 * (2 + 1) + 1 * 2 * 4));
});

test("the sweep's peers agree with the service to 1e-13 at a toy size, where they are installed", async (t) => {
  const found = findPeerPython();
  if ('missing' in found) {
    t.diagnostic(`no Python for the peers (${found.missing}): skipped`);
    return;
  }
  if (!found.peers.length) {
    t.diagnostic(`${found.python} has neither torch nor jax: skipped`);
    return;
  }
  for (const p of ['torch', 'jax'] as const) if (!found.peers.includes(p)) t.diagnostic(`${found.python} has no ${p}: that peer is not exercised`);
  const app = await build(t);
  // depth 6 with a run of four identical 4 → 4 layers (JAX's lax.scan path); N = 8, so the one pilot is the real size
  const p = makeNetwork([3, 4, 4, 4, 4, 4, 2], 8, 3);
  const W = parameterCount(p);
  const dir = mkdtempSync(join(tmpdir(), 'bench-peers-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const bodyFile = join(dir, 'body.json');
  writeFileSync(bodyFile, JSON.stringify(request('exact', p).body));
  const runs: Promise<void>[] = [];
  for (const method of ['exact', 'outer-product'] as const) {
    const { path, body } = request(method, p);
    const r = await app.inject({ method: 'POST', url: path, payload: body, headers: { accept: 'application/x-npy' } });
    assert.equal(r.statusCode, 200, r.body);
    const npy = join(dir, `${method}.npy`);
    writeFileSync(npy, r.rawPayload);
    for (const peer of found.peers) {
      const spec = join(dir, `${peer}-${method}.json`);
      writeFileSync(spec, JSON.stringify({ problem: bodyFile, peer, method, service: npy, repeats: 1, budget: 60, memory: 2e9 }));
      // the peer processes run side by side (each mostly imports torch or jax)
      runs.push(new Promise((resolve, reject) => {
        execFile(found.python, [PEERS_SCRIPT, 'run', spec], { env: peerEnv(1), encoding: 'utf8', timeout: 120_000 }, (err, stdout, stderr) => {
          try {
            assert.equal(err, null, `${peer} ${method}: ${stderr}`);
            const out = JSON.parse(stdout.trim().split('\n').pop()!) as { seconds?: number; relDiff?: number; skipped?: string };
            assert.equal(out.skipped, undefined);
            assert.ok(out.seconds! >= 0, `${peer} ${method}: timed`);
            assert.ok(out.relDiff! <= SWEEP_AGREE, `${peer} ${method} (W = ${W}): service and peer differ by ${out.relDiff}`);
            resolve();
          } catch (e) {
            reject(e as Error);
          }
        });
      }));
    }
  }
  await Promise.all(runs);
});
