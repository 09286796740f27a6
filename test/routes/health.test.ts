import { test } from 'node:test';
import assert from 'node:assert/strict';
import { build } from '../helpers/http.ts';
import { serviceVersion } from '../../src/app.ts';

test('GET /health answers 200 with the version and the linear-algebra backend', async (t) => {
  const app = await build(t);
  const r = await app.inject({ method: 'GET', url: '/health' });
  assert.equal(r.statusCode, 200);
  const body = r.json();
  assert.equal(body.status, 'ok');
  assert.equal(body.version, serviceVersion());
  assert.match(body.linalg.backend, /^(typescript|openblas)$/);
  assert.ok(body.linalg.threads >= 1);
});

test('every answer echoes a request id, keeping a sane X-Request-Id the caller sent', async (t) => {
  const app = await build(t);
  const fresh = await app.inject({ method: 'GET', url: '/health' });
  assert.match(String(fresh.headers['x-request-id']), /^[0-9a-f-]{36}$/);
  const kept = await app.inject({ method: 'GET', url: '/health', headers: { 'x-request-id': 'pipeline-42.step-7' } });
  assert.equal(kept.headers['x-request-id'], 'pipeline-42.step-7');
  const replaced = await app.inject({ method: 'GET', url: '/health', headers: { 'x-request-id': 'bad id\twith spaces' } });
  assert.notEqual(replaced.headers['x-request-id'], 'bad id\twith spaces');
  const refused = await app.inject({ method: 'POST', url: '/hessian', payload: {}, headers: { 'x-request-id': 'req-1' } });
  assert.equal(refused.statusCode, 400);
  assert.equal(refused.headers['x-request-id'], 'req-1');
});
