import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { Validator } from '@seriousme/openapi-schema-validator';
import { build } from '../helpers/http.ts';
import { openapiText } from '../../scripts/write-openapi.ts';

const committedPath = new URL('../../openapi/openapi.json', import.meta.url);

interface Operation {
  requestBody?: { content: Record<string, { schema: { example?: unknown } }> };
  responses: Record<string, { content?: Record<string, unknown>; headers?: Record<string, unknown> }>;
}
type Doc = { openapi: string; paths: Record<string, Record<string, Operation>> };

test('the committed openapi/openapi.json is what the app publishes (run npm run openapi after changing a schema)', async () => {
  const committed = readFileSync(committedPath, 'utf8');
  assert.equal(committed, await openapiText(), 'openapi/openapi.json is stale: run `npm run openapi` and commit the file');
});

test('GET /openapi.json serves the committed document', async (t) => {
  const app = await build(t);
  const r = await app.inject({ method: 'GET', url: '/openapi.json' });
  assert.equal(r.statusCode, 200);
  assert.deepEqual(r.json(), JSON.parse(readFileSync(committedPath, 'utf8')));
});

test('the OpenAPI document is valid OpenAPI 3', async () => {
  const validator = new Validator();
  const res = await validator.validate(JSON.parse(readFileSync(committedPath, 'utf8')));
  assert.ok(res.valid, JSON.stringify(res.errors, null, 2));
  assert.match(validator.version, /^3\./);
});

test('the document lists the POST endpoints with their JSON and binary answers (.npy, raw, .npz) and their 4xx refusals', () => {
  const doc = JSON.parse(readFileSync(committedPath, 'utf8')) as Doc;
  const single = ['application/json', 'application/octet-stream', 'application/x-npy', 'application/x-npz'];
  const multi = ['application/json', 'application/x-npz'];
  const forms: Record<string, string[]> = {
    '/jacobian': single, '/hessian': single, '/hessian/vector-product': single, '/hessian/inverse': single,
    '/hessian/inverse-vector-product': single, '/hessian/kfac': multi, '/hessian/eigen': multi,
  };
  for (const [path, content] of Object.entries(forms)) {
    const op = doc.paths[path]?.post;
    assert.ok(op, `${path} is documented`);
    assert.deepEqual(Object.keys(op.responses['200'].content ?? {}).sort(), content, path);
    assert.ok(op.responses['200'].headers?.['X-Parameter-Count'], `${path} documents its binary answers' headers`);
    for (const status of ['400', '406', '413', '415', '422']) {
      assert.ok(op.responses[status]?.content?.['application/problem+json'], `${path} documents ${status}`);
    }
  }
  assert.ok(doc.paths['/health']?.get);
});

test("every endpoint's example body succeeds as it is, as Swagger UI's Try it out sends it", async (t) => {
  const app = await build(t);
  const doc = JSON.parse(readFileSync(committedPath, 'utf8')) as Doc;
  let tried = 0;
  for (const [path, ops] of Object.entries(doc.paths)) {
    const op = ops.post;
    if (!op) continue;
    const example = op.requestBody?.content['application/json'].schema.example;
    assert.ok(example, `${path} has an example body`);
    const r = await app.inject({ method: 'POST', url: path, payload: example as object });
    assert.equal(r.statusCode, 200, `${path}: ${r.body}`);
    tried++;
  }
  assert.equal(tried, 7);
});

test('Swagger UI serves at /docs', async (t) => {
  const app = await build(t);
  const r = await app.inject({ method: 'GET', url: '/docs' });
  assert.equal(r.statusCode, 200);
  assert.match(String(r.headers['content-type']), /text\/html/);
  assert.match(r.body, /swagger/i);
  const init = await app.inject({ method: 'GET', url: '/docs/static/swagger-initializer.js' });
  assert.equal(init.statusCode, 200);
});
