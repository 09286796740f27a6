/**
 * Tests against a real listening server, for what only sockets show: a large binary answer
 * streamed whole, and a client that goes away mid-answer.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import type { TestContext } from 'node:test';
import { buildApp } from '../../src/app.ts';
import { compute, principalArray } from '../../src/core/index.ts';
import { taskFromJson } from '../helpers/tasks.ts';
import { parseNpy, relativeError } from '../helpers/http.ts';
import { parseNpz } from '../helpers/npz.ts';
import { npzStream } from '../../src/http/npz.ts';
import { seededNormal } from '../helpers/random.ts';

/** A 20–80–5 tanh network on 8 data points: W = 80·21 + 5·81 = 2085 parameters. */
function largeProblem() {
  const g = seededNormal(7);
  const layer = (out: number, inp: number, activation: string) => ({
    weights: Array.from({ length: out }, () => Array.from({ length: inp }, () => g() / Math.sqrt(inp))),
    bias: Array.from({ length: out }, () => 0.1 * g()),
    activation,
  });
  const n = 8;
  return {
    network: { layers: [layer(80, 20, 'tanh'), layer(5, 80, 'identity')] },
    inputs: Array.from({ length: n }, () => Array.from({ length: 20 }, () => g())),
    targets: Array.from({ length: n }, () => Array.from({ length: 5 }, () => g())),
    loss: 'sum-of-squares',
  };
}
const W = 2085;

async function listen(t: TestContext): Promise<string> {
  const app = await buildApp();
  t.after(() => app.close());
  await app.listen({ host: '127.0.0.1', port: 0 });
  const { port } = app.server.address() as AddressInfo;
  return `http://127.0.0.1:${port}`;
}

function post(base: string, path: string, body: unknown, accept: string): Promise<Response> {
  return fetch(`${base}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', accept }, body: JSON.stringify(body) });
}

function hasNumpy(): boolean {
  return spawnSync('python3', ['-c', 'import numpy'], { stdio: 'ignore', timeout: 60_000 }).status === 0;
}

test(`a Hessian with W = ${W} streams whole as .npy over a socket, symmetric and equal to the JSON answer`, async (t) => {
  const base = await listen(t);
  const problem = largeProblem();
  const res = await post(base, '/hessian', problem, 'application/x-npy');
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('content-type'), 'application/x-npy');
  const body = Buffer.from(await res.arrayBuffer());
  assert.equal(Number(res.headers.get('content-length')), body.length);
  const h = parseNpy(body);
  assert.deepEqual(h.shape, [W, W]);
  let asym = 0;
  let scale = 1;
  for (let i = 0; i < W; i++) for (let j = 0; j < i; j++) {
    asym = Math.max(asym, Math.abs(h.data[i * W + j] - h.data[j * W + i]));
    scale = Math.max(scale, Math.abs(h.data[i * W + j]));
  }
  assert.ok(asym / scale <= 1e-12, `asymmetry ${asym}`);

  const direct = compute(taskFromJson('/hessian', { ...problem, method: 'exact' }));
  assert.ok(relativeError(h.data, principalArray(direct)!.data) <= 1e-12, 'equal to the core computed in-process');

  const json = await (await post(base, '/hessian', problem, 'application/json')).json() as { parameterCount: number; hessian: number[][] };
  assert.equal(json.parameterCount, W);
  assert.equal(json.hessian.length, W);
  assert.ok(relativeError(json.hessian.flat(), h.data) <= 1e-12, 'equal to the JSON answer');
});

test('a client that disconnects mid-answer does not harm the next request', async (t) => {
  const base = await listen(t);
  const problem = largeProblem();
  const received = await new Promise<number>((resolve, reject) => {
    const req = request(`${base}/hessian`, { method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/octet-stream' } }, (res) => {
      assert.equal(res.statusCode, 200);
      let got = 0;
      res.on('data', (chunk: Buffer) => {
        got += chunk.length;
        if (got > 1 << 20) {
          req.destroy();
          resolve(got);
        }
      });
      res.on('end', () => reject(new Error('the answer ended before the client disconnected')));
    });
    req.on('error', (e) => { if (!req.destroyed) reject(e); });
    req.end(JSON.stringify(problem));
  });
  assert.ok(received < W * W * 8, 'disconnected before the end');

  const health = await fetch(`${base}/health`);
  assert.equal(health.status, 200);
  const small = { ...problem, method: 'diagonal' };
  const res = await post(base, '/hessian', small, 'application/octet-stream');
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('x-array-shape'), String(W));
  assert.equal((await res.arrayBuffer()).byteLength, W * 8);
  const again = await post(base, '/hessian', problem, 'application/octet-stream');
  assert.equal(again.status, 200);
  assert.equal((await again.arrayBuffer()).byteLength, W * W * 8);
});

test('numpy.load reads our .npy answers as they are: a Hessian, a diagonal and a Jacobian', async (t) => {
  if (!hasNumpy()) {
    t.skip('python3 with numpy is not available');
    return;
  }
  const base = await listen(t);
  const problem = largeProblem();
  const dir = mkdtempSync(join(tmpdir(), 'curvature-npy-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const asks = [
    { file: 'hessian.npy', path: '/hessian', body: { ...problem, method: 'outer-product' }, shape: [W, W] },
    { file: 'diagonal.npy', path: '/hessian', body: { ...problem, method: 'diagonal' }, shape: [W] },
    { file: 'jacobian.npy', path: '/jacobian', body: { network: problem.network, inputs: problem.inputs }, shape: [8, 5, 20] },
  ];
  const ours: Record<string, Float64Array> = {};
  for (const a of asks) {
    const res = await post(base, a.path, a.body, 'application/x-npy');
    assert.equal(res.status, 200);
    const buf = Buffer.from(await res.arrayBuffer());
    writeFileSync(join(dir, a.file), buf);
    ours[a.file] = parseNpy(buf).data;
  }
  const script = [
    'import json, sys, numpy',
    'out = {}',
    'for f in sys.argv[2:]:',
    '    a = numpy.load(sys.argv[1] + "/" + f)',
    '    out[f] = {"shape": list(a.shape), "dtype": str(a.dtype), "c": bool(a.flags.c_contiguous), "sum": float(a.sum()), "first": float(a.flat[0]), "last": float(a.flat[-1])}',
    'print(json.dumps(out))',
  ].join('\n');
  const py = spawnSync('python3', ['-c', script, dir, ...asks.map((a) => a.file)], { encoding: 'utf8', timeout: 120_000 });
  assert.equal(py.status, 0, py.stderr);
  const seen = JSON.parse(py.stdout) as Record<string, { shape: number[]; dtype: string; c: boolean; sum: number; first: number; last: number }>;
  for (const a of asks) {
    const s = seen[a.file];
    const data = ours[a.file];
    assert.deepEqual(s.shape, a.shape, a.file);
    assert.equal(s.dtype, 'float64');
    assert.ok(s.c);
    assert.equal(s.first, data[0]);
    assert.equal(s.last, data[data.length - 1]);
    const sum = data.reduce((x, y) => x + y, 0);
    assert.ok(Math.abs(s.sum - sum) <= 1e-9 * Math.max(1, Math.abs(sum)), `${a.file} sum ${s.sum} vs ${sum}`);
  }
});

test('numpy.load opens our .npz answers as they are (KFAC factors, eigenpairs), and a ZIP64 one', async (t) => {
  if (!hasNumpy()) {
    t.skip('python3 with numpy is not available');
    return;
  }
  const base = await listen(t);
  const problem = largeProblem();
  const dir = mkdtempSync(join(tmpdir(), 'curvature-npz-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const expected: Record<string, Record<string, { shape: number[]; data: Float64Array }>> = {};
  for (const [file, path, body] of [
    ['kfac.npz', '/hessian/kfac', { ...problem, damping: 0.1 }],
    ['eigen.npz', '/hessian/eigen', { ...problem, count: 3, method: 'lanczos' }],
    ['blocks.npz', '/hessian', { ...problem, method: 'outer-product', structure: 'block-diagonal' }],
  ] as const) {
    const res = await post(base, path, body, 'application/x-npz');
    assert.equal(res.status, 200, await res.clone().text());
    const buf = Buffer.from(await res.arrayBuffer());
    assert.equal(Number(res.headers.get('content-length')), buf.length);
    writeFileSync(join(dir, file), buf);
    expected[file] = parseNpz(buf);
  }
  // ZIP64 records, as an answer past 4 GiB would have them, on a small file
  const members = [{ name: 'a', data: Float64Array.from([1, 2, 3, 4, 5, 6]), shape: [2, 3] }, { name: 'b', data: Float64Array.of(-0.5), shape: [1] }];
  const z = npzStream(members, true);
  const chunks: Buffer[] = [];
  for await (const c of z.stream) chunks.push(c as Buffer);
  const zip64 = Buffer.concat(chunks);
  assert.equal(zip64.length, z.length);
  writeFileSync(join(dir, 'zip64.npz'), zip64);
  expected['zip64.npz'] = parseNpz(zip64);
  const script = [
    'import json, sys, numpy',
    'out = {}',
    'for f in sys.argv[2:]:',
    '    z = numpy.load(sys.argv[1] + "/" + f)',
    '    out[f] = {k: {"shape": list(z[k].shape), "dtype": str(z[k].dtype), "sum": float(z[k].sum()), "first": float(z[k].flat[0])} for k in z.files}',
    'print(json.dumps(out))',
  ].join('\n');
  const files = Object.keys(expected);
  const py = spawnSync('python3', ['-c', script, dir, ...files], { encoding: 'utf8', timeout: 120_000 });
  assert.equal(py.status, 0, py.stderr);
  const seen = JSON.parse(py.stdout) as Record<string, Record<string, { shape: number[]; dtype: string; sum: number; first: number }>>;
  for (const f of files) {
    assert.deepEqual(Object.keys(seen[f]), Object.keys(expected[f]), `${f}: members`);
    for (const [k, a] of Object.entries(expected[f])) {
      const s = seen[f][k];
      assert.deepEqual(s.shape, a.shape, `${f} ${k}`);
      assert.equal(s.dtype, 'float64');
      assert.equal(s.first, a.data[0]);
      const sum = a.data.reduce((x, y) => x + y, 0);
      assert.ok(Math.abs(s.sum - sum) <= 1e-9 * Math.max(1, Math.abs(sum)), `${f} ${k} sum`);
    }
  }
});
