/**
 * Smoke test of `npm run bench`'s scale group (scripts/bench/scale.ts, issue 12) at a toy size,
 * nothing timed: the network size, the .npy and multipart bodies as the service reads
 * them, then the whole group as the bench runs it — a real service process per row on a real
 * socket (`node --import tsx src/server.ts`, so a stale dist/ does not matter), and, where the
 * peers' Python (PyTorch 2 with torch.func, scipy: .peers/ from scripts/bench/peers-setup.sh) is
 * there, every PyTorch task in its own process, each agreeing with the service within the bench's
 * own limits (SCALE_AGREE). Without that Python the peers are skipped with a diagnostic (CI has no
 * .peers/); the service side always runs.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  EIGEN_COUNT, PEER_TASKS, SCALE_ROWS, SCALE_SIZES, makeScaleProblem, marginalPerProduct, multipartBody, npyFloat64, npyInt64,
  runScaleGroup, scalePeerPython, scaleTables, scaleVerdicts, type ScaleServiceRow,
} from '../../scripts/bench/scale.ts';
import { findPeerPython, peerEnv } from '../../scripts/bench/sweep.ts';
import { readNpyHeader } from '../../src/http/npy.ts';
import { build } from '../helpers/http.ts';

test("the scale group's network is the issue's MNIST-sized one and its data are seeded", () => {
  const p = makeScaleProblem(SCALE_SIZES, 3);
  assert.equal(p.w, 101_770);
  assert.deepEqual(p.layers.map((l) => l.activation), ['tanh', 'identity']);
  assert.equal(p.inputs.length, 3 * 784);
  const q = makeScaleProblem([4, 3, 2], 50, 7);
  assert.deepEqual(q, makeScaleProblem([4, 3, 2], 50, 7), 'the same numbers every run');
  assert.equal(q.w, 3 * 5 + 2 * 4);
  assert.ok(q.labels.every((y) => Number.isInteger(y) && y >= 0 && y < 2));
  assert.ok(new Set(q.labels).size === 2, 'both classes occur');
  assert.ok(q.vector.every((v) => Math.abs(v) <= 1));
});

test('the .npy writers give headers the service reads: float64 and int64 labels', () => {
  const f = npyFloat64([2, 3], new Float64Array([1, 2, 3, 4, 5, 6]));
  const hf = readNpyHeader(f, 'inputs', 2, 1e9)!;
  assert.equal(hf.descr, '<f8');
  assert.deepEqual(hf.shape, [2, 3]);
  assert.equal(f.length - hf.preambleBytes, 48);
  assert.equal(f.readDoubleLE(hf.preambleBytes + 8 * 5), 6);
  const i = npyInt64(new Int32Array([0, 2, 1]));
  const hi = readNpyHeader(i, 'labels', 1, 1e9, true)!;
  assert.equal(hi.descr, '<i8');
  assert.deepEqual(hi.shape, [3]);
  assert.equal(i.readBigInt64LE(hi.preambleBytes + 8), 2n);
  assert.equal(hi.preambleBytes % 64, 0, 'the preamble keeps numpy\'s 64-byte alignment');
});

test('a multipart body of the scale group is answered like the same request in JSON', async (t) => {
  const app = await build(t);
  const p = makeScaleProblem([5, 4, 3], 9, 3);
  const json = { network: { layers: p.layers }, loss: 'softmax-cross-entropy', reduction: 'sum' };
  const { body, contentType } = multipartBody(json, { inputs: npyFloat64([p.n, 5], p.inputs), labels: npyInt64(p.labels), vector: npyFloat64([p.w], p.vector) });
  const viaMultipart = await app.inject({ method: 'POST', url: '/hessian/vector-product', payload: body, headers: { 'content-type': contentType } });
  assert.equal(viaMultipart.statusCode, 200, viaMultipart.body);
  const rows = (a: Float64Array, d: number) => Array.from({ length: a.length / d }, (_, i) => Array.from(a.subarray(i * d, (i + 1) * d)));
  const viaJson = await app.inject({
    method: 'POST', url: '/hessian/vector-product',
    payload: { ...json, inputs: rows(p.inputs, 5), labels: Array.from(p.labels), vector: Array.from(p.vector) },
  });
  assert.equal(viaJson.statusCode, 200, viaJson.body);
  assert.deepEqual(JSON.parse(viaMultipart.body), JSON.parse(viaJson.body));
});

test('the per-product cost inside a run is (run − one-product request) / (products − 1)', () => {
  const row = {
    spec: { id: 'cg' }, main: { seconds: [3.1, 2.1], firstByte: [], products: 11, peakRss: 0 }, baseline: { seconds: [0.6, 0.1], firstByte: [], peakRss: 0 },
  } as unknown as ScaleServiceRow;
  const [best, worst] = marginalPerProduct(row)!;
  assert.ok(Math.abs(best - 0.2) < 1e-12 && Math.abs(worst - 0.25) < 1e-12, `${best}, ${worst}`);
  assert.equal(marginalPerProduct({ ...row, main: { ...row.main!, products: 1 } }), undefined, 'one product: nothing to take out');
});

test('the scale group runs end to end at a toy size and, where PyTorch 2 is installed, every peer agrees with the service', async (t) => {
  const found = findPeerPython();
  const scalePy = scalePeerPython('python' in found ? found.python : undefined, peerEnv(1));
  if ('missing' in scalePy) t.diagnostic(`the PyTorch peers are not exercised: ${'missing' in found ? found.missing : scalePy.missing}`);
  const dir = mkdtempSync(join(tmpdir(), 'bench-scale-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const logged: string[] = [];
  // W = 7·11 + 4·8 = 109: above Lanczos' basis of 40, so the eigen row restarts as at full size
  const { result, problem } = await runScaleGroup({
    sizes: [10, 7, 4], n: 25, rows: SCALE_ROWS, dir, repeat: 1, repeatSeconds: 5, serviceEnv: {},
    serverArgs: ['--import', 'tsx', 'src/server.ts'], timeoutSeconds: 120, python: 'python' in scalePy ? scalePy.python : undefined,
    peerEnv: peerEnv(1), threads: 1, peerWallSeconds: 180, peerConcurrency: 4, log: (s) => logged.push(s),
  });
  assert.equal(problem.w, 109);
  assert.deepEqual(result.service.map((s) => s.spec.id), [...SCALE_ROWS]);
  for (const s of result.service) {
    assert.equal(s.error, undefined, `${s.spec.id}: ${s.error}`);
    assert.equal(s.main!.seconds.length, 1);
    assert.ok(s.main!.peakRss > 0 && s.idleRss! > 0, `${s.spec.id}: VmHWM read`);
    if (s.spec.id !== 'kfac' && s.spec.id !== 'hvp') assert.ok(s.main!.products! > (s.spec.id === 'eigen' ? EIGEN_COUNT : 1), `${s.spec.id}: ${s.main!.products} products`);
  }
  const eigen = result.service.find((s) => s.spec.id === 'eigen')!;
  assert.ok(marginalPerProduct(eigen), 'the eigen row has its one-product baseline');
  const tables = scaleTables(result, problem).join('\n');
  for (const h of ['### Time to the answer', '### Curvature-vector products', '### Peak memory']) assert.ok(tables.includes(h), h);
  const verdicts = scaleVerdicts(result, problem);
  assert.equal(verdicts.length, 4);
  // at the toy W, 8·W² is 95 kB, far below the process itself: only the form of the verdict is checked here
  assert.match(verdicts[2], /^(PASS|MISS) nothing W²: the largest service peak \d+ MB/);
  assert.match(verdicts[3], /^(PASS|MISS) O\(N·\(D \+ Σout\) \+ k·W\): .* eigen [\d.]+x, cg [\d.]+x, cg-kfac [\d.]+x, kfac [\d.]+x, hvp [\d.]+x$/);
  if ('missing' in scalePy) {
    assert.deepEqual(result.peers, {});
    assert.match(verdicts[0], /^n\/a/);
    return;
  }
  const tasks = SCALE_ROWS.flatMap((r) => PEER_TASKS[r]);
  for (const task of tasks) {
    const r = result.peers[task]!;
    assert.equal(r.error, undefined, `${task}: ${r.error}`);
    assert.ok(r.seconds!.length >= 1 && r.peakRss! > 0, `${task}: timed and measured`);
  }
  for (const task of ['power1', 'power5', 'eigsh', 'cg', 'cg-kfac'] as const) {
    const per = result.peers[task]!.perProductSeconds;
    assert.ok(per?.length === result.peers[task]!.seconds!.length && per.every((x) => x > 0), `${task}: per product ${per}`);
  }
  for (const task of tasks) assert.ok(result.peers[task]!.peakRss! >= result.peers[task]!.loadedRss!, `${task}: the peak is at least the loaded footprint`);
  assert.equal(result.checks.length, 6, result.checks.map((c) => c.what).join('; '));
  for (const c of result.checks) assert.ok(c.ok, `${c.what}: ${c.value} > ${c.limit}`);
  // the power iteration stops at its own 1e-3 on the Rayleigh quotient's change: near, not equal
  assert.ok(result.peers.power1!.eigenvalueDiff! < 0.05, `power iteration's λ₁ vs the service's: ${result.peers.power1!.eigenvalueDiff}`);
  assert.ok(result.peers.eigsh!.vectorDiff! < 1e-8, `eigenvectors: 1 − |cos| = ${result.peers.eigsh!.vectorDiff}`);
  assert.match(verdicts[0], /^(PASS|MISS) /);
  assert.match(verdicts[1], /^(PASS|MISS) /);
});
