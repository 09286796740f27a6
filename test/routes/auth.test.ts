/** Optional API keys: computing endpoints need a Bearer key; health, the document and Swagger UI stay open. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { build } from '../helpers/http.ts';
import { keyChecker } from '../../src/plugins/auth.ts';
import { loadConfig } from '../../src/config.ts';

const body = {
  network: { layers: [{ weights: [[0.1, -0.2]], bias: [0], activation: 'identity' }] },
  inputs: [[0.5, -1]],
  targets: [[0.3]],
  loss: 'sum-of-squares',
};
const keys = ['first-key-0123456789', 'second-key-abcdefghij'];

test('with API_KEYS set, a computing request without a key, with a malformed header or a wrong key gets 401 problem+json with WWW-Authenticate: Bearer', async (t) => {
  const app = await build(t, { config: { apiKeys: keys, workers: 0 } });
  for (const headers of [{}, { authorization: 'Basic Zm9vOmJhcg==' }, { authorization: 'Bearer' }, { authorization: 'Bearer first-key-012345678' }, { authorization: `Bearer ${keys[0]}x` }]) {
    for (const url of ['/hessian', '/jacobian', '/hessian/vector-product', '/hessian/inverse']) {
      const r = await app.inject({ method: 'POST', url, payload: body, headers });
      assert.equal(r.statusCode, 401, `${url} ${JSON.stringify(headers)}: ${r.body}`);
      assert.match(String(r.headers['www-authenticate']), /^Bearer realm="curvature-service"/);
      assert.match(String(r.headers['content-type']), /^application\/problem\+json/);
      const p = r.json() as { code: string; detail: string };
      assert.equal(p.code, 'UNAUTHORIZED');
      assert.match(p.detail, /Bearer|API key/);
      assert.ok(!p.detail.includes(keys[0]), 'the detail never echoes a key');
    }
  }
});

test('with API_KEYS set, a path that is no endpoint is a 404 like any other (the key check belongs to the computing routes; the endpoint list is public in the OpenAPI document)', async (t) => {
  const app = await build(t, { config: { apiKeys: keys, workers: 0 } });
  const r = await app.inject({ method: 'POST', url: '/nowhere', payload: body });
  assert.equal(r.statusCode, 404);
  assert.equal((r.json() as { code: string }).code, 'NOT_FOUND');
});

test('with API_KEYS set, each configured key opens the computing endpoints, and health, the OpenAPI document and Swagger UI need none', async (t) => {
  const app = await build(t, { config: { apiKeys: keys, workers: 0 } });
  for (const key of keys) {
    const r = await app.inject({ method: 'POST', url: '/hessian', payload: body, headers: { authorization: `Bearer ${key}` } });
    assert.equal(r.statusCode, 200, r.body);
    assert.equal(r.headers['www-authenticate'], undefined);
  }
  const lower = await app.inject({ method: 'POST', url: '/hessian', payload: body, headers: { authorization: `bearer ${keys[1]}` } });
  assert.equal(lower.statusCode, 200, 'the scheme name is case-insensitive');
  for (const url of ['/health', '/openapi.json', '/docs', '/docs/']) {
    const r = await app.inject({ method: 'GET', url });
    assert.ok(r.statusCode === 200 || r.statusCode === 302, `${url}: ${r.statusCode}`);
  }
});

test('without API_KEYS the service is open', async (t) => {
  const app = await build(t, { config: { workers: 0 } });
  const r = await app.inject({ method: 'POST', url: '/hessian', payload: body });
  assert.equal(r.statusCode, 200);
});

test('the OpenAPI document declares a bearer scheme for the computing endpoints, so Swagger UI offers Authorize, and none for /health', async (t) => {
  const app = await build(t, { config: { workers: 0 } });
  const doc = app.swagger() as unknown as {
    components: { securitySchemes: Record<string, { type: string; scheme: string }> };
    security: Record<string, string[]>[];
    paths: Record<string, Record<string, { security?: unknown[]; responses: Record<string, unknown> }>>;
  };
  assert.deepEqual(doc.components.securitySchemes.bearerAuth, { ...doc.components.securitySchemes.bearerAuth, type: 'http', scheme: 'bearer' });
  assert.deepEqual(doc.security, [{ bearerAuth: [] }]);
  assert.deepEqual(doc.paths['/health'].get.security, []);
  for (const p of ['/jacobian', '/hessian', '/hessian/vector-product', '/hessian/inverse']) {
    assert.equal(doc.paths[p].post.security, undefined, `${p} inherits the bearer requirement`);
    assert.ok(doc.paths[p].post.responses['401'], `${p} documents 401`);
    assert.ok(doc.paths[p].post.responses['503'], `${p} documents 503`);
  }
});

test('keys are compared by digest: equal keys match, others (prefixes, longer, empty) do not', () => {
  const matches = keyChecker(keys);
  assert.equal(matches(keys[0]), true);
  assert.equal(matches(keys[1]), true);
  for (const wrong of ['', 'first-key', `${keys[0]} `, keys[0].toUpperCase(), 'x'.repeat(10_000)]) assert.equal(matches(wrong), false, wrong);
});

test('API_KEYS is read as a comma-separated list, blanks dropped', () => {
  assert.deepEqual(loadConfig({ API_KEYS: ' a1 ,b2,, ' }).apiKeys, ['a1', 'b2']);
  assert.deepEqual(loadConfig({}).apiKeys, []);
});
