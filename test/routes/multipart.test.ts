/**
 * Binary request bodies: multipart/form-data with the JSON request in a part 'request' and
 * inputs, targets and vector as .npy parts. The answers must equal the JSON path's, and every
 * malformed part must be refused with a 4xx that names it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildApp } from '../../src/app.ts';
import { assertClose, assertProblem, build, parseNpy, postParts, referenceCases, type Parts } from '../helpers/http.ts';
import { npyFile, npyOf } from '../helpers/npy.ts';

const cases = referenceCases();
const c0 = cases.find((c) => c.name === 'two-layer-logistic') ?? cases[0];
const { network, loss, inputs, targets } = c0.request;

test('exact Hessian, vector product and inverse from .npy inputs and targets match the reference cases', async (t) => {
  const app = await build(t);
  for (const c of cases) {
    const { inputs: x, targets: y, ...rest } = c.request;
    const arrays = { inputs: npyOf(x), targets: npyOf(y) };
    const h = await postParts(app, '/hessian', { request: { ...rest, method: 'exact' }, ...arrays }, 'application/x-npy');
    assert.equal(h.statusCode, 200, h.body);
    assertClose(parseNpy(h.rawPayload), c.expected.hessian, 1e-9, `${c.name}: exact Hessian`);
    const hv = await postParts(app, '/hessian/vector-product', { request: rest, ...arrays, vector: npyOf(c.vector) });
    assert.equal(hv.statusCode, 200, hv.body);
    assertClose({ data: (hv.json() as { product: number[] }).product, shape: [c.vector.length] }, c.expected.hessianVectorProduct, 1e-9, `${c.name}: H v`);
    const inv = await postParts(app, '/hessian/inverse', { request: { ...rest, damping: c.damping }, ...arrays }, 'application/x-npy');
    assert.equal(inv.statusCode, 200, inv.body);
    assertClose(parseNpy(inv.rawPayload), c.expected.inverseOuterProduct, 1e-8, `${c.name}: inverse`);
    assert.ok(Math.abs(Number(inv.headers['x-log-determinant']) - c.expected.logDeterminant) < 1e-8 * Math.max(1, Math.abs(c.expected.logDeterminant)));
  }
});

test('a multipart request answers byte for byte what the same JSON request answers, on every endpoint', async (t) => {
  const app = await build(t);
  const bodies: [string, Record<string, unknown>][] = [
    ['/jacobian', { network, inputs, wrt: 'parameters' }],
    ['/hessian', { network, inputs, targets, loss, method: 'outer-product' }],
    ['/hessian', { network, inputs, targets, loss, method: 'diagonal-approximation' }],
    ['/hessian/vector-product', { network, inputs, targets, loss, vector: c0.vector }],
    ['/hessian/inverse', { network, inputs, targets, loss, damping: c0.exactDamping, method: 'cholesky', hessian: 'exact' }],
  ];
  for (const [url, body] of bodies) {
    const viaJson = await app.inject({ method: 'POST', url, payload: body });
    assert.equal(viaJson.statusCode, 200, viaJson.body);
    const request = { ...body };
    const parts: Parts = {};
    for (const f of ['inputs', 'targets', 'vector']) {
      if (f in request) { parts[f] = npyOf(request[f] as number[][]); delete request[f]; }
    }
    const viaParts = await postParts(app, url, { request, ...parts });
    assert.equal(viaParts.statusCode, 200, viaParts.body);
    assert.equal(viaParts.body, viaJson.body, `${url}: same answer`);
  }
});

test('inputs may come as .npy while targets stay in the JSON part, and parts may come in any order', async (t) => {
  const app = await build(t);
  const viaJson = await app.inject({ method: 'POST', url: '/hessian', payload: { network, inputs, targets, loss } });
  const r = await postParts(app, '/hessian', { inputs: npyOf(inputs), request: { network, targets, loss } });
  assert.equal(r.statusCode, 200, r.body);
  assert.equal(r.body, viaJson.body);
});

test('float32 and big-endian .npy parts are read (float32 as the float32 values, widened)', async (t) => {
  const app = await build(t);
  const rounded = inputs.map((row) => row.map((v) => Math.fround(v)));
  const viaJson = await app.inject({ method: 'POST', url: '/hessian', payload: { network, inputs: rounded, targets, loss } });
  const shape = [inputs.length, inputs[0].length];
  const f4 = await postParts(app, '/hessian', { request: { network, targets, loss }, inputs: npyFile(shape, inputs.flat(), '<f4') });
  assert.equal(f4.statusCode, 200, f4.body);
  assert.equal(f4.body, viaJson.body);
  const be = await postParts(app, '/hessian', { request: { network, targets, loss }, inputs: npyFile(shape, inputs.flat(), '>f8') });
  const exact = await app.inject({ method: 'POST', url: '/hessian', payload: { network, inputs, targets, loss } });
  assert.equal(be.body, exact.body);
});

test('a .npy part that is not float64/float32, is in Fortran order, has the wrong dimensions or holds NaN is refused with 400 naming the part', async (t) => {
  const app = await build(t);
  const request = { network, targets, loss };
  const shape = [inputs.length, inputs[0].length];
  const bad: [Buffer, RegExp][] = [
    [npyFile(shape, inputs.flat(), '<i8'), /inputs: .*dtype '<i8'.*float64/],
    [npyFile(shape, inputs.flat(), '<f8', true), /inputs: .*Fortran .*C order/],
    [npyFile([inputs.flat().length], inputs.flat()), /inputs: .*1-D; inputs must be a 2-D array/],
    [npyFile([0, shape[1]], []), /no values/],
    [npyFile(shape, [Number.NaN, ...inputs.flat().slice(1)]), /inputs\[0\]\[0\] is NaN/],
    [npyFile(shape, inputs.flat()).subarray(0, -8), /has \d+ bytes of data but .* needs \d+/],
    [Buffer.concat([npyFile(shape, inputs.flat()), Buffer.alloc(8)]), /more data than/],
    [Buffer.from('0.5,1.0\n'), /does not start with the \.npy magic/],
    [Buffer.from([0x93, 0x4e, 0x55]), /ends inside its preamble/],
  ];
  for (const [file, detail] of bad) {
    assertProblem(await postParts(app, '/hessian', { request, inputs: file }), 400, 'INVALID_ARRAY_PART', detail);
  }
  const vector = npyFile([1, c0.vector.length], c0.vector);
  assertProblem(await postParts(app, '/hessian/vector-product', { request: { network, inputs, targets, loss }, vector }), 400, 'INVALID_ARRAY_PART', /vector must be a vector \(1-D/);
});

test('sizes that do not fit the network are refused with 422, as for JSON', async (t) => {
  const app = await build(t);
  const wide = inputs.map((row) => [...row, 0]);
  assertProblem(await postParts(app, '/hessian', { request: { network, targets, loss }, inputs: npyOf(wide) }), 422, 'SHAPE_MISMATCH', /inputs have \d+ columns/);
  assertProblem(await postParts(app, '/hessian', { request: { network, inputs, loss }, targets: npyOf(targets.slice(1)) }), 422, 'SHAPE_MISMATCH', /targets have \d+ rows but inputs have \d+/);
  assertProblem(
    await postParts(app, '/hessian/vector-product', { request: { network, inputs, targets, loss }, vector: npyOf([1, 2, 3]) }),
    422, 'SHAPE_MISMATCH', /vector has 3 entries/,
  );
});

test('a malformed multipart body is refused with 400 saying what is wrong', async (t) => {
  const app = await build(t);
  const arrays = { inputs: npyOf(inputs), targets: npyOf(targets) };
  assertProblem(await postParts(app, '/hessian', arrays), 400, 'MALFORMED_BODY', /no part 'request'/);
  assertProblem(await postParts(app, '/hessian', { request: '{"network": ', ...arrays }), 400, 'MALFORMED_BODY', /'request' part is not valid JSON/);
  assertProblem(await postParts(app, '/hessian', { request: { network, inputs, loss }, ...arrays }), 400, 'MALFORMED_BODY', /inputs is given twice/);
  assertProblem(await postParts(app, '/hessian', { request: { network, loss }, ...arrays, extra: npyOf(inputs) }), 400, 'MALFORMED_BODY', /a part 'extra'.*'request'.*'inputs', 'targets'/);
  assertProblem(await postParts(app, '/jacobian', { request: { network }, inputs: npyOf(inputs), targets: npyOf(targets) }), 400, 'MALFORMED_BODY', /part 'targets'; \/jacobian takes 'request' .* and 'inputs'/);
  // the JSON part goes through the route's schema: a missing or mistyped field is named
  assertProblem(await postParts(app, '/hessian', { request: { network }, ...arrays }), 400, 'INVALID_REQUEST', /loss/);
  assertProblem(await postParts(app, '/hessian', { request: { network, loss, method: 'newton' }, ...arrays }), 400, 'INVALID_REQUEST', /method/);
  const broken = await app.inject({ method: 'POST', url: '/hessian', payload: 'no boundary here', headers: { 'content-type': 'multipart/form-data; boundary=xyz' } });
  assert.equal(broken.statusCode, 400, broken.body);
});

test('a multipart body over BODY_LIMIT is refused with 413, before its array is allocated', async (t) => {
  const app = await build(t, { config: { bodyLimit: 4096 } });
  const big = Array.from({ length: 400 }, (_, i) => [i / 400, -i / 400, 0.1, 0.2]);
  const r = await postParts(app, '/hessian', { request: { network, loss }, inputs: npyOf(big), targets: npyOf(big.map(() => [0, 1])) });
  assertProblem(r, 413, 'PAYLOAD_TOO_LARGE', /BODY_LIMIT/);
  // a header that promises 10^9 rows is refused from its preamble alone
  const huge = npyFile([1e9, 4], []);
  const h = await postParts(app, '/hessian', { request: { network, targets, loss }, inputs: huge });
  assertProblem(h, 413, 'PAYLOAD_TOO_LARGE', /shape \(1000000000, 4\).*BODY_LIMIT/);
});

test('a real client uploads .npy parts over a socket and reads back a .npy Hessian', async (t) => {
  const app = await buildApp();
  t.after(() => app.close());
  const address = await app.listen({ host: '127.0.0.1', port: 0 });
  const form = new FormData();
  form.append('request', new Blob([JSON.stringify({ network, loss, method: 'exact' })], { type: 'application/json' }));
  form.append('inputs', new Blob([new Uint8Array(npyOf(inputs))]), 'inputs.npy');
  form.append('targets', new Blob([new Uint8Array(npyOf(targets))]), 'targets.npy');
  const r = await fetch(`${address}/hessian`, { method: 'POST', body: form, headers: { accept: 'application/x-npy' } });
  assert.equal(r.status, 200, await r.clone().text());
  assertClose(parseNpy(Buffer.from(await r.arrayBuffer())), c0.expected.hessian, 1e-9, 'exact Hessian over a socket');
});

test('the OpenAPI document offers multipart/form-data with .npy parts on the four computing endpoints', async (t) => {
  const app = await build(t);
  const doc = app.swagger() as { paths: Record<string, { post?: { requestBody?: { content: Record<string, { schema: { properties?: Record<string, { format?: string }> }; examples?: object }> } } }> };
  const expected: Record<string, string[]> = {
    '/jacobian': ['request', 'inputs'],
    '/hessian': ['request', 'inputs', 'targets', 'labels'],
    '/hessian/vector-product': ['request', 'inputs', 'targets', 'labels', 'vector'],
    '/hessian/inverse': ['request', 'inputs', 'targets', 'labels'],
  };
  for (const [path, parts] of Object.entries(expected)) {
    const content = doc.paths[path].post?.requestBody?.content;
    assert.ok(content?.['application/json']?.schema && content['application/json'].examples, `${path}: the JSON body and its examples stay`);
    const form = content?.['multipart/form-data']?.schema;
    assert.deepEqual(Object.keys(form?.properties ?? {}), parts, `${path}: multipart parts`);
    for (const p of parts.slice(1)) assert.equal(form?.properties?.[p].format, 'binary');
  }
});

test('over a socket, an upload over BODY_LIMIT gets its 413 problem, not a reset connection', async (t) => {
  const app = await buildApp({ config: { bodyLimit: 64 * 1024 } });
  t.after(() => app.close());
  const address = await app.listen({ host: '127.0.0.1', port: 0 });
  const big = Array.from({ length: 20_000 }, (_, i) => [i, -i, 0.5, 0.25]);
  const form = new FormData();
  form.append('request', new Blob([JSON.stringify({ network, targets, loss })], { type: 'application/json' }));
  form.append('inputs', new Blob([new Uint8Array(npyOf(big))]), 'inputs.npy');
  const r = await fetch(`${address}/hessian`, { method: 'POST', body: form });
  assert.equal(r.status, 413);
  const p = await r.json() as { code: string; detail: string };
  assert.equal(p.code, 'PAYLOAD_TOO_LARGE');
  assert.match(p.detail, /BODY_LIMIT/);
  // the connection still serves the next request
  const ok = await fetch(`${address}/hessian`, { method: 'POST', body: JSON.stringify({ network, inputs, targets, loss }), headers: { 'content-type': 'application/json' } });
  assert.equal(ok.status, 200);
});
