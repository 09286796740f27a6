/**
 * The refusals and notes issue 14's hostile-client campaign found unhelpful, each with the text it
 * gives now: a subnormal damping, byte order marks, a nameless multipart part, a wrong or missing
 * boundary, a 406 to a huge Accept header, and finite differences across a relu kink.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { assertProblem, build, multipart, parseNpy, postParts } from '../helpers/http.ts';
import { npyOf } from '../helpers/npy.ts';

const network = { layers: [
  { weights: [[0.1, -0.2], [0.3, 0.4], [0.5, -0.6]], bias: [0, 0.1, -0.1], activation: 'tanh' },
  { weights: [[0.2, -0.1, 0.3]], bias: [0.05], activation: 'identity' },
] };
const good = { network, inputs: [[0.5, -1], [1.5, 0.2]], targets: [[0.3], [-0.2]], loss: 'sum-of-squares' };

test('a subnormal damping (1e-320) is refused as too small for float64, by either inverse method, not blamed on overflowing activations', async (t) => {
  const app = await build(t, { config: { workers: 0 } });
  for (const method of ['woodbury', 'cholesky']) {
    const r = await app.inject({ method: 'POST', url: '/hessian/inverse', payload: { ...good, damping: 1e-320, method } });
    assertProblem(r, 422, 'INVALID_DAMPING', /^damping is 1e-320, a subnormal number \(below 2\.2251e-308, the smallest normal float64\): 1\/damping overflows/);
    assert.doesNotMatch(r.json().detail, /activations|overflow in float64/);
  }
  // and on the endpoints that take a damping too
  const kfac = await app.inject({ method: 'POST', url: '/hessian/kfac', payload: { ...good, damping: 5e-324 } });
  assertProblem(kfac, 422, 'INVALID_DAMPING', /subnormal/);
  const ivp = await app.inject({ method: 'POST', url: '/hessian/inverse-vector-product', payload: { ...good, damping: 1e-310, vectors: [new Array(13).fill(1)] } });
  assertProblem(ivp, 422, 'INVALID_DAMPING', /subnormal/);
  // the smallest normal number is a damping (a useless one, but finite): no refusal
  const normal = await app.inject({ method: 'POST', url: '/hessian/inverse', payload: { ...good, damping: 2 ** -1022, method: 'cholesky', hessian: 'exact' } });
  assert.notEqual(normal.json().code, 'INVALID_DAMPING', normal.body);
});

test('a UTF-8 byte order mark before the JSON, in the body or a multipart part, is read as RFC 8259 allows; a UTF-16 one or a stray one is refused saying so', async (t) => {
  const app = await build(t, { config: { workers: 0 } });
  const plain = await app.inject({ method: 'POST', url: '/hessian', payload: good });
  assert.equal(plain.statusCode, 200);
  const bomBody = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(JSON.stringify(good))]);
  const withBom = await app.inject({ method: 'POST', url: '/hessian', payload: bomBody, headers: { 'content-type': 'application/json' } });
  assert.equal(withBom.statusCode, 200, withBom.body);
  assert.equal(withBom.body, plain.body);
  const { inputs, targets, ...rest } = good;
  const part = await postParts(app, '/hessian', { request: `\ufeff${JSON.stringify(rest)}`, inputs: npyOf(inputs), targets: npyOf(targets) });
  assert.equal(part.statusCode, 200, part.body);
  assert.equal(part.body, plain.body);

  const utf16 = Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(JSON.stringify(good), 'utf16le')]);
  assertProblem(await app.inject({ method: 'POST', url: '/hessian', payload: utf16, headers: { 'content-type': 'application/json' } }),
    400, 'MALFORMED_BODY', /^the body is not valid JSON: the JSON is UTF-16 \(it starts with the byte order mark FF FE\); send it as UTF-8/);
  const twice = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf, 0xef, 0xbb, 0xbf]), Buffer.from(JSON.stringify(good))]);
  assertProblem(await app.inject({ method: 'POST', url: '/hessian', payload: twice, headers: { 'content-type': 'application/json' } }),
    400, 'MALFORMED_BODY', /a UTF-8 byte order mark \(EF BB BF\) at position 3 \(line 1, column 4\); one may come at the very start of the JSON, nowhere else/);
  const inPart = await postParts(app, '/hessian', { request: `{"network": \ufeff${JSON.stringify(network)}, "loss": "sum-of-squares"}`, inputs: npyOf(inputs), targets: npyOf(targets) });
  assertProblem(inPart, 400, 'MALFORMED_BODY', /^the 'request' part is not valid JSON: a UTF-8 byte order mark \(EF BB BF\) at position 12/);
});

/** A multipart body written by hand, for what FormData would never write. */
function handMade(boundary: string, parts: { headers: string; body: string | Buffer }[]): Buffer {
  return Buffer.concat([...parts.flatMap((p) => [Buffer.from(`--${boundary}\r\n${p.headers}\r\n\r\n`), Buffer.from(p.body), Buffer.from('\r\n')]), Buffer.from(`--${boundary}--\r\n`)]);
}

test('a nameless multipart part, a body whose boundary is not the Content-Type\'s, and a Content-Type without boundary get texts that say so', async (t) => {
  const app = await build(t, { config: { workers: 0 } });
  const { inputs, ...rest } = good;
  const B = 'RealBoundary1';
  const nameless = handMade(B, [
    { headers: 'Content-Disposition: form-data\r\nContent-Type: application/json', body: JSON.stringify(rest) },
    { headers: 'Content-Disposition: form-data; name="inputs"; filename="inputs.npy"', body: npyOf(inputs) },
  ]);
  const r1 = await app.inject({ method: 'POST', url: '/hessian', payload: nameless, headers: { 'content-type': `multipart/form-data; boundary=${B}` } });
  assertProblem(r1, 400, 'MALFORMED_BODY', /^a part of the multipart body has no name; give each part a Content-Disposition: form-data; name="\.\.\." header, with the names 'request', 'inputs', 'targets', 'labels'$/);
  assert.doesNotMatch(r1.body, /undefined|Cannot read/);

  const { payload, contentType } = await multipart({ request: rest, inputs: npyOf(inputs) });
  const wrong = await app.inject({ method: 'POST', url: '/hessian', payload, headers: { 'content-type': 'multipart/form-data; boundary=NotTheOneInTheBody' } });
  assertProblem(wrong, 400, 'MALFORMED_BODY', /^no part of the multipart body starts with the boundary its Content-Type names \(boundary=NotTheOneInTheBody\): each part must begin with a line --NotTheOneInTheBody and the body end with --NotTheOneInTheBody--/);
  const quoted = await app.inject({ method: 'POST', url: '/hessian', payload, headers: { 'content-type': 'multipart/form-data; boundary="quoted one"' } });
  assertProblem(quoted, 400, 'MALFORMED_BODY', /boundary=quoted one\)/);
  const none = await app.inject({ method: 'POST', url: '/hessian', payload, headers: { 'content-type': 'multipart/form-data' } });
  assertProblem(none, 400, 'MALFORMED_BODY', /^the Content-Type multipart\/form-data has no boundary parameter/);
  // the same body with its own Content-Type is fine
  assert.equal((await app.inject({ method: 'POST', url: '/hessian', payload, headers: { 'content-type': contentType } })).statusCode, 200);
});

test('a 406 to an 8 KB Accept header quotes 200 characters of it and its length, not all of it', async (t) => {
  const app = await build(t, { config: { workers: 0 } });
  const accept = `text/html;q=0.9,${'x'.repeat(8000)}`;
  const r = await app.inject({ method: 'POST', url: '/hessian', payload: good, headers: { accept } });
  assertProblem(r, 406, 'NOT_ACCEPTABLE', /^Accept: text\/html;q=0\.9,x+… \(8,016 characters\) matches none of the answer's forms; ask for application\/json, /);
  const detail = r.json().detail as string;
  assert.ok(detail.length < 400, `${detail.length} characters`);
  assert.ok(r.body.length < 600, `${r.body.length} bytes`);
});

const kinkNetwork = (bias: number) => ({ layers: [{ weights: [[1]], bias: [bias], activation: 'relu' }, { weights: [[1]], bias: [0], activation: 'identity' }] });

test('finite differences across a relu kink come with a warning naming the columns (JSON warnings, X-Warnings), away from kinks with none', async (t) => {
  const app = await build(t, { config: { workers: 0 } });
  const atKink = { network: kinkNetwork(0), inputs: [[0]], targets: [[1]], loss: 'sum-of-squares' };
  const fd = await app.inject({ method: 'POST', url: '/hessian', payload: { ...atKink, method: 'finite-difference' } });
  assert.equal(fd.statusCode, 200, fd.body);
  const fdJson = fd.json() as { hessian: number[][]; warnings?: string[] };
  // the first layer's bias b (column 1) at ±ε: ∂E/∂b = (y − t)·relu′(a) with a = ±ε, y = relu(a), t = 1, so the
  // difference is ((ε − 1)·1 − (0 − 1)·0)/2ε = 1/2 − 1/2ε = −49999.5, where either side's Hessian is 0 or 1
  const eps = 1e-5;
  assert.ok(Math.abs(fdJson.hessian[1][1] - (eps - 1) / (2 * eps)) < 1e-6, String(fdJson.hessian[1][1]));
  assert.equal(fdJson.warnings?.length, 1);
  assert.match(fdJson.warnings![0], /^1 of the W = 4 columns \(and rows, the matrix being symmetrised\) of this finite-difference Hessian \(column 1\) difference gradients across the kink of 'relu' at 0: .*\(ε = 1e-5\).*Method 'exact'/);
  const exact = await app.inject({ method: 'POST', url: '/hessian', payload: { ...atKink, method: 'exact' } });
  assert.equal((exact.json() as { hessian: number[][] }).hessian[1][1], 0);
  assert.equal((exact.json() as { warnings?: string[] }).warnings, undefined);
  const npy = await app.inject({ method: 'POST', url: '/hessian', payload: { ...atKink, method: 'finite-difference' }, headers: { accept: 'application/x-npy' } });
  assert.equal(npy.headers['x-warnings'], 'FINITE_DIFFERENCE_KINK');
  assert.equal(parseNpy(npy.rawPayload).data[5], fdJson.hessian[1][1]);

  // pre-activations 0.5 away from the kink: no column straddles it, no warning, and the two methods agree
  const away = { network: { layers: [{ weights: [[1, -1], [0.5, 2]], bias: [0.5, -0.3], activation: 'relu' }, { weights: [[1, 0.7]], bias: [0], activation: 'identity' }] }, inputs: [[0.4, -0.2], [1, 0.3]], targets: [[1], [0]], loss: 'sum-of-squares' };
  const fd2 = (await app.inject({ method: 'POST', url: '/hessian', payload: { ...away, method: 'finite-difference' } })).json() as { hessian: number[][]; warnings?: string[] };
  const ex2 = (await app.inject({ method: 'POST', url: '/hessian', payload: { ...away, method: 'exact' } })).json() as { hessian: number[][] };
  assert.equal(fd2.warnings, undefined);
  let worst = 0;
  fd2.hessian.forEach((row, i) => row.forEach((x, j) => { worst = Math.max(worst, Math.abs(x - ex2.hessian[i][j])); }));
  assert.ok(worst < 1e-6, `finite differences off by ${worst}`);
  // a smooth network never gets the note
  const smooth = (await app.inject({ method: 'POST', url: '/hessian', payload: { ...good, method: 'finite-difference' } })).json() as { warnings?: string[] };
  assert.equal(smooth.warnings, undefined);
});
