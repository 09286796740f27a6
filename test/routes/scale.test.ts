/**
 * Curvature at scale through HTTP, against the PyTorch references of test/fixtures/scale: a
 * selection of layers, block-diagonal answers (JSON and .npz), row slabs, the trace, KFAC,
 * eigenpairs (Lanczos and dense) and inverse-vector products (CG, Cholesky, KFAC), with their
 * refusals.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { FastifyInstance } from 'fastify';
import { answer, assertClose, assertProblem, build, post, postParts } from '../helpers/http.ts';
import { flat, loadCases, relativeError } from '../helpers/cases.ts';
import { npyOf, parseNpy } from '../helpers/npy.ts';
import { parseNpz } from '../helpers/npz.ts';

interface ScaleCase {
  name: string;
  request: Record<string, unknown> & { network: { layers: { weights: number[][] }[] } };
  damping: number;
  exactDamping: number;
  vectors: number[][];
  expected: {
    parameterCount: number; hessian: number[][]; outerProduct: number[][]; trace: number;
    selections: { layers: number[]; parameterCount: number; hessian: number[][]; outerProduct: number[][]; trace: number }[];
    blocks: { layer: number; hessian: number[][]; outerProduct: number[][] }[];
    kfac: { layers: { layer: number; inputFactor: number[][]; outputFactor: number[][] }[]; logDeterminant: number; inverseVectorProducts: number[][] };
    eigen: Record<'exact' | 'outerProduct', { eigenvalues: number[] }>;
    inverseVectorProducts: { outerProduct: number[][]; exact: number[][] };
  };
}

const cases = loadCases<ScaleCase>('scale');
const TOL = 1e-10;
const close = (what: string, actual: ArrayLike<number>, expected: unknown, tol = TOL) => {
  const err = relativeError(actual, flat(expected));
  assert.ok(err <= tol, `${what}: relative error ${err} > ${tol}`);
};

async function npz(app: FastifyInstance, url: string, body: object) {
  const r = await app.inject({ method: 'POST', url, payload: body, headers: { accept: 'application/x-npz' } });
  assert.equal(r.statusCode, 200, r.body);
  assert.equal(r.headers['content-type'], 'application/x-npz');
  assert.equal(Number(r.headers['content-length']), r.rawPayload.length, 'Content-Length is exact');
  return { members: parseNpz(r.rawPayload), headers: r.headers };
}

for (const c of cases) {
  const W = c.expected.parameterCount;
  const e = c.expected;

  test(`${c.name}: parameters, block-diagonal structure, row slabs and the trace through HTTP`, async (t) => {
    const app = await build(t, { config: { workers: 0 } });
    for (const s of e.selections) {
      const h = await answer(app, '/hessian', { ...c.request, parameters: { layers: s.layers } }, 'npy', 'hessian');
      assert.equal(h.scalars.parameterCount, s.parameterCount);
      assertClose(h.array, s.hessian, TOL, `layers ${s.layers}: exact`);
      const d = await app.inject({ method: 'POST', url: '/hessian', payload: { ...c.request, method: 'diagonal', parameters: { layers: s.layers } }, headers: { accept: 'application/x-npy' } });
      assert.ok(Math.abs(Number(d.headers['x-trace']) - s.trace) <= TOL * Math.max(1, Math.abs(s.trace)), `layers ${s.layers}: X-Trace`);
    }
    const json = (await post(app, '/hessian', { ...c.request, method: 'diagonal' })).json();
    assert.ok(Math.abs(json.trace - e.trace) <= TOL * Math.max(1, Math.abs(e.trace)), 'trace in JSON');
    for (const [method, field] of [['exact', 'hessian'], ['outer-product', 'outerProduct']] as const) {
      const blocks = (await post(app, '/hessian', { ...c.request, method, structure: 'block-diagonal' })).json() as { blocks: { layer: number; hessian: number[][] }[] };
      assert.deepEqual(blocks.blocks.map((b) => b.layer), e.blocks.map((b) => b.layer));
      blocks.blocks.forEach((b, i) => close(`${method} block ${b.layer} (JSON)`, flat(b.hessian), e.blocks[i][field]));
      const z = await npz(app, '/hessian', { ...c.request, method, structure: 'block-diagonal' });
      assert.deepEqual(Object.keys(z.members), e.blocks.map((b) => `block_${b.layer}`));
      e.blocks.forEach((b) => close(`${method} block ${b.layer} (.npz)`, z.members[`block_${b.layer}`].data, b[field]));
      // slabs of rows, stacked, are the whole matrix
      const cuts = [0, Math.floor(W / 3), Math.floor(W / 2) + 1, W];
      const stacked: number[] = [];
      for (let i = 0; i + 1 < cuts.length; i++) {
        const slab = await app.inject({ method: 'POST', url: '/hessian', payload: { ...c.request, method, rows: [cuts[i], cuts[i + 1]] }, headers: { accept: 'application/octet-stream' } });
        assert.equal(slab.statusCode, 200, slab.body);
        assert.equal(slab.headers['x-array-shape'], `${cuts[i + 1] - cuts[i]},${W}`);
        assert.equal(slab.headers['x-row-start'], String(cuts[i]));
        const rows = new Float64Array(slab.rawPayload.buffer.slice(slab.rawPayload.byteOffset, slab.rawPayload.byteOffset + slab.rawPayload.length));
        for (const x of rows) stacked.push(x);
      }
      close(`${method} slabs stacked`, stacked, e[field]);
    }
  });

  test(`${c.name}: KFAC factors and log det, in JSON and .npz`, async (t) => {
    const app = await build(t, { config: { workers: 0 } });
    const body = { ...c.request, damping: c.damping };
    const json = (await post(app, '/hessian/kfac', body)).json() as { layers: { layer: number; inputFactor: number[][]; outputFactor: number[][] }[]; logDeterminant: number };
    json.layers.forEach((l, i) => {
      close(`A_${l.layer}`, flat(l.inputFactor), e.kfac.layers[i].inputFactor);
      close(`G_${l.layer}`, flat(l.outputFactor), e.kfac.layers[i].outputFactor);
    });
    assert.ok(Math.abs(json.logDeterminant - e.kfac.logDeterminant) <= TOL * Math.abs(e.kfac.logDeterminant));
    const z = await npz(app, '/hessian/kfac', body);
    assert.deepEqual(Object.keys(z.members), e.kfac.layers.flatMap((l) => [`A_${l.layer}`, `G_${l.layer}`]));
    e.kfac.layers.forEach((l) => close(`.npz G_${l.layer}`, z.members[`G_${l.layer}`].data, l.outputFactor));
    assert.ok(Math.abs(Number(z.headers['x-log-determinant']) - e.kfac.logDeterminant) <= TOL * Math.abs(e.kfac.logDeterminant));
  });

  test(`${c.name}: eigenpairs by Lanczos and dense, and inverse-vector products by CG, Cholesky and KFAC`, async (t) => {
    const app = await build(t, { config: { workers: 0 } });
    const all = e.eigen.exact.eigenvalues;
    const scale = Math.max(...all.map(Math.abs));
    for (const method of ['lanczos', 'dense']) {
      const r = (await post(app, '/hessian/eigen', { ...c.request, count: 2, which: 'largest', method, tolerance: 1e-10 })).json();
      assert.equal(r.method, method);
      r.eigenvalues.forEach((v: number, j: number) => assert.ok(Math.abs(v - all[all.length - 1 - j]) <= 1e-9 * scale, `${method} λ_${j}`));
      assert.deepEqual([r.eigenvectors.length, r.eigenvectors[0].length], [W, 2]);
      r.residuals.forEach((x: number) => assert.ok(x <= 1e-8 * scale));
    }
    const z = await npz(app, '/hessian/eigen', { ...c.request, count: 3, which: 'smallest' });
    assert.deepEqual(Object.keys(z.members), ['eigenvalues', 'eigenvectors', 'residuals']);
    assert.deepEqual(z.members.eigenvectors.shape, [W, 3]);
    close('smallest three (auto: dense)', z.members.eigenvalues.data, all.slice(0, 3));
    assert.equal(z.headers['x-method'], 'dense');

    const vectors = c.vectors;
    for (const [hessian, damping, want] of [
      ['outer-product', c.damping, e.inverseVectorProducts.outerProduct], ['exact', c.exactDamping, e.inverseVectorProducts.exact],
      ['kfac', c.damping, e.kfac.inverseVectorProducts],
    ] as const) {
      const runs = hessian === 'kfac' ? [['auto', 'none']] : [['cg', 'none'], ['cg', 'diagonal'], ['cg', 'kfac'], ['cholesky', 'none']];
      for (const [method, preconditioner] of runs) {
        const r = await app.inject({ method: 'POST', url: '/hessian/inverse-vector-product', payload: { ...c.request, damping, vectors, hessian, method, preconditioner, tolerance: 1e-12 }, headers: { accept: 'application/x-npy' } });
        assert.equal(r.statusCode, 200, r.body);
        const x = parseNpy(r.rawPayload);
        assert.deepEqual(x.shape, [vectors.length, W]);
        close(`${hessian} ${method} (${preconditioner})`, x.data, want, method === 'cg' ? 1e-9 : TOL);
        const residuals = String(r.headers['x-residuals']).split(',').map(Number);
        assert.equal(residuals.length, vectors.length);
        residuals.forEach((res) => assert.ok(res <= 1e-11, `${hessian} ${method}: residual ${res}`));
        assert.equal(String(r.headers['x-iterations']).split(',').length, vectors.length);
      }
    }
  });
}

test('the refusals of curvature at scale name what to change', async (t) => {
  const app = await build(t, { config: { workers: 0 } });
  const c = cases[0];
  const W = c.expected.parameterCount;
  const L = c.request.network.layers.length;
  assertProblem(await post(app, '/hessian', { ...c.request, parameters: { layers: [L] } }), 422, 'INVALID_SELECTION', new RegExp(`has ${L}, but the network has ${L} layers`));
  assertProblem(await post(app, '/hessian', { ...c.request, parameters: { layers: [0, -L] } }), 422, 'INVALID_SELECTION', /twice/);
  assertProblem(await post(app, '/hessian', { ...c.request, parameters: { layers: [0.5] } }), 400, 'INVALID_REQUEST', /parameters\.layers\[0\]: expected an integer/);
  assertProblem(await post(app, '/hessian', { ...c.request, rows: [5, 2] }), 422, 'SHAPE_MISMATCH', /rows is \[5, 2\]; give 0 ≤ start < end ≤ W/);
  assertProblem(await post(app, '/hessian', { ...c.request, rows: [0, W + 1] }), 422, 'SHAPE_MISMATCH', /rows/);
  assertProblem(await post(app, '/hessian', { ...c.request, rows: [1] }), 400, 'INVALID_REQUEST', /rows: expected two integers/);
  assertProblem(await post(app, '/hessian', { ...c.request, method: 'diagonal', structure: 'block-diagonal' }), 422, 'UNSUPPORTED_METHOD', /block-diagonal.*not 'diagonal'/);
  assertProblem(await post(app, '/hessian', { ...c.request, method: 'exact', structure: 'block-diagonal', rows: [0, 1] }), 422, 'UNSUPPORTED_METHOD', /rows/);
  const npy = await app.inject({ method: 'POST', url: '/hessian', payload: { ...c.request, structure: 'block-diagonal' }, headers: { accept: 'application/x-npy' } });
  assertProblem(npy, 406, 'NOT_ACCEPTABLE', /application\/json, application\/x-npz/);
  assertProblem(await app.inject({ method: 'POST', url: '/hessian/eigen', payload: c.request, headers: { accept: 'application/x-npy' } }), 406, 'NOT_ACCEPTABLE');
  assertProblem(await post(app, '/hessian/eigen', { ...c.request, count: W + 1 }), 422, 'INVALID_COUNT', new RegExp(`count is ${W + 1} but there are W = ${W}`));
  assertProblem(await post(app, '/hessian/eigen', { ...c.request, count: 2, method: 'lanczos', maxIterations: 3, tolerance: 1e-14 }), 422, 'NOT_CONVERGED', /Lanczos reached a relative residual of .* after 3 curvature-vector products/);
  assertProblem(await post(app, '/hessian/inverse-vector-product', { ...c.request, damping: 0.1, vectors: [[1, 2]] }), 422, 'SHAPE_MISMATCH', new RegExp(`vectors has 2 entries but the network has W = ${W}`));
  assertProblem(await post(app, '/hessian/inverse-vector-product', { ...c.request, damping: 1e-9, hessian: 'exact', method: 'cg', vectors: c.vectors }), 422, 'NOT_POSITIVE_DEFINITE', /conjugate gradients met a direction of curvature -/);
  assertProblem(await post(app, '/hessian/inverse-vector-product', { ...c.request, damping: 1e-9, hessian: 'exact', method: 'cholesky', vectors: c.vectors }), 422, 'NOT_POSITIVE_DEFINITE', /leading minor/);
  assertProblem(await post(app, '/hessian/inverse-vector-product', { ...c.request, damping: 0.1, vectors: c.vectors, method: 'cg', maxIterations: 2, tolerance: 1e-14 }), 422, 'NOT_CONVERGED', /conjugate gradients/);
  assertProblem(await post(app, '/hessian/inverse-vector-product', { ...c.request, vectors: c.vectors }), 400, 'INVALID_REQUEST', /damping/);
});

test('vectors may come as a .npy part; the dense methods are refused past the memory limit, naming the matrix-free ones', async (t) => {
  const app = await build(t, { config: { workers: 0, maxTaskBytes: 64 * 1024 } });
  const c = cases[0];
  const { inputs, ...request } = c.request as unknown as { inputs: number[][] } & Record<string, unknown>;
  const small = await build(t, { config: { workers: 0 } });
  const r = await postParts(small, '/hessian/inverse-vector-product', { request: { ...request, damping: c.damping, method: 'cholesky' }, inputs: npyOf(inputs), vectors: npyOf(c.vectors) }, 'application/x-npy');
  assert.equal(r.statusCode, 200, r.body);
  close('multipart vectors', parseNpy(r.rawPayload).data, c.expected.inverseVectorProducts.outerProduct);
  assertProblem(await post(app, '/hessian/eigen', { ...c.request, method: 'dense' }), 413, 'WORKING_SET_TOO_LARGE', /use method 'lanczos'/);
  assertProblem(await post(app, '/hessian/inverse-vector-product', { ...c.request, damping: 0.1, vectors: c.vectors, method: 'cholesky' }), 413, 'WORKING_SET_TOO_LARGE', /method 'cg'/);
});
