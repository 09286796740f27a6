/**
 * The OpenAPI document: that it is the committed file, valid OpenAPI 3.1 by two validators, built to
 * the conventions of docs/api-conventions.md (operationIds, components, refusals with their headers,
 * HTML-safe descriptions, no safe-integer artefacts), and that its examples are real: every request
 * example succeeds as it stands, and every answer example is the service's answer to it.
 *
 * Validators: @seriousme/openapi-schema-validator checks the document against the OpenAPI
 * Initiative's own JSON Schema for 3.1; that schema treats every Schema Object as an opaque object and
 * resolves no $ref, so @redocly/openapi-core (Redocly CLI's engine, which openapi-typescript parses
 * with) lints it too: the 3.1 structure including the schemas, unresolved $refs, operationIds, and
 * every example against its schema. Live answers are checked against the documented schemas with Ajv
 * (JSON Schema 2020-12, the dialect of OpenAPI 3.1).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { Validator } from '@seriousme/openapi-schema-validator';
import { Ajv2020 } from 'ajv/dist/2020.js';
import type { InjectOptions } from 'fastify';
import { build } from '../helpers/http.ts';
import { deref, lint, pointer, refs } from '../helpers/openapi.ts';
import { openapiText, requestExamples } from '../../scripts/write-openapi.ts';
import { ANSWER_EXAMPLES } from '../../schemas/answer-examples.ts';
import { EXAMPLE_INPUTS, EXAMPLE_NETWORK, EXAMPLE_TARGETS } from '../../schemas/common.ts';
import { ANSWER_HEADERS } from '../../src/http/representation.ts';

const committedPath = new URL('../../openapi/openapi.json', import.meta.url);
const committedText = readFileSync(committedPath, 'utf8');

type Json = Record<string, unknown>;
interface Media { schema: Json; examples?: Record<string, { summary?: string; value: unknown }> }
interface Response { description: string; content?: Record<string, Media>; headers?: Record<string, Json> }
interface Operation {
  operationId?: string;
  summary?: string;
  requestBody?: { content: Record<string, Media> };
  responses: Record<string, Json>;
}
interface Doc {
  openapi: string;
  paths: Record<string, Record<string, Operation>>;
  components: { schemas: Record<string, Json>; responses: Record<string, Response>; headers: Record<string, Json> };
}
const doc = JSON.parse(committedText) as Doc;

/** Every operation: method, path and the operation. */
const operations = Object.entries(doc.paths).flatMap(([path, item]) => Object.entries(item).map(([method, op]) => ({ method, path, op })));

/** An operation's response `status`, its $ref followed. */
const response = (op: Operation, status: string): Response => deref<Response>(doc, op.responses[status]);

/** Ajv over the document's schemas (2020-12), and a validator for the component `name` or the schema at `schema`. */
function schemaValidator() {
  const ajv = new Ajv2020({ strict: true, allErrors: true, validateFormats: false });
  // the components as one schema's $defs, so that their $refs resolve inside it
  ajv.addSchema(JSON.parse(JSON.stringify({ $defs: doc.components.schemas }).replaceAll('#/components/schemas/', '#/$defs/')), 'api');
  return (schema: Json) => {
    const name = String(schema.$ref ?? '').replace('#/components/schemas/', '');
    const validate = ajv.getSchema(`api#/$defs/${name}`);
    assert.ok(validate, `no schema ${name}`);
    return (value: unknown): string | undefined => (validate(value) ? undefined : ajv.errorsText(validate.errors));
  };
}

test('the committed openapi/openapi.json is what the app publishes (run npm run openapi after changing a schema)', async () => {
  assert.equal(committedText, await openapiText(), 'openapi/openapi.json is stale: run `npm run openapi` and commit the file');
});

test('GET /openapi.json serves the committed document', async (t) => {
  const app = await build(t);
  const r = await app.inject({ method: 'GET', url: '/openapi.json' });
  assert.equal(r.statusCode, 200);
  assert.deepEqual(r.json(), doc);
});

test('the OpenAPI document is valid OpenAPI 3.1 by the OpenAPI Initiative\'s JSON Schema (@seriousme/openapi-schema-validator)', async () => {
  assert.equal(doc.openapi, '3.1.0');
  const validator = new Validator();
  const res = await validator.validate(JSON.parse(committedText));
  assert.ok(res.valid, JSON.stringify(res.errors, null, 2));
  assert.equal(validator.version, '3.1');
});

// The two refusals no single operation has: documented once, for every path.
const UNREFERENCED = [
  'no-unused-components at #/components/responses/NotFound: Component: "NotFound" is never used.',
  'no-unused-components at #/components/responses/MethodNotAllowed: Component: "MethodNotAllowed" is never used.',
];

test('Redocly lints the document clean: 3.1 structure and schemas, every $ref resolved, operationIds, every example valid against its schema', async () => {
  assert.deepEqual((await lint(committedText)).filter((p) => !UNREFERENCED.includes(p)), []);
});

test('the lint catches a broken document: an unresolved $ref, an example outside its schema, a missing operationId', async () => {
  const broken = JSON.parse(committedText) as Doc;
  const hessian = broken.paths['/hessian'].post;
  (hessian.requestBody as { content: Record<string, Media> }).content['application/json'].schema = { $ref: '#/components/schemas/NoSuchThing' };
  const ok = deref<Response>(broken, hessian.responses['200']).content?.['application/json'].examples?.exact;
  (ok?.value as Json).diagonal = [1, 2, 3];
  delete broken.paths['/jacobian'].post.operationId;
  const problems = (await lint(JSON.stringify(broken))).join('\n');
  assert.match(problems, /no-unresolved-refs at #\/paths\/~1hessian\/post\/requestBody/);
  assert.match(problems, /no-invalid-media-type-examples at #\/paths\/~1hessian\/post\/responses\/200\/content\/application~1json\/examples\/exact/);
  assert.match(problems, /operation-operationId at #\/paths\/~1jacobian\/post/);
});

test('every $ref resolves, and every schema component is referenced', () => {
  const all = refs(doc);
  assert.ok(all.length > 50);
  assert.deepEqual(all.filter((r) => pointer(doc, r.ref) === undefined), []);
  const used = new Set(all.map((r) => r.ref));
  assert.deepEqual(Object.keys(doc.components.schemas).filter((n) => !used.has(`#/components/schemas/${n}`)), []);
});

test('every operation has its operationId, unique and camelCase', () => {
  const ids = operations.map((o) => o.op.operationId);
  assert.deepEqual(operations.filter((o) => !o.op.operationId).map((o) => `${o.method} ${o.path}`), []);
  assert.equal(new Set(ids).size, ids.length);
  for (const id of ids) assert.match(String(id), /^[a-z][A-Za-z0-9]*$/);
  const byPath = Object.fromEntries(operations.map((o) => [`${o.method} ${o.path}`, o.op.operationId]));
  assert.deepEqual(
    {
      'post /jacobian': byPath['post /jacobian'], 'post /hessian': byPath['post /hessian'], 'post /hessian/vector-product': byPath['post /hessian/vector-product'],
      'post /hessian/inverse': byPath['post /hessian/inverse'], 'post /hessian/kfac': byPath['post /hessian/kfac'], 'post /hessian/eigen': byPath['post /hessian/eigen'],
      'post /hessian/inverse-vector-product': byPath['post /hessian/inverse-vector-product'], 'get /health': byPath['get /health'],
    },
    {
      'post /jacobian': 'computeJacobian', 'post /hessian': 'computeHessian', 'post /hessian/vector-product': 'hessianVectorProduct',
      'post /hessian/inverse': 'inverseHessian', 'post /hessian/kfac': 'kfacFactors', 'post /hessian/eigen': 'hessianEigen',
      'post /hessian/inverse-vector-product': 'inverseVectorProduct', 'get /health': 'health',
    },
  );
});

test('no safe-integer bound leaks into the document (9007199254740991 is what z.number().int() would give)', () => {
  assert.doesNotMatch(committedText, /9007199254740991/);
  const ints = JSON.stringify(doc).match(/"type":"integer"/g) ?? [];
  assert.ok(ints.length > 10, 'the document has integer fields');
});

/** The descriptions and summaries with a `<word>` outside a code span (or an unpaired backtick). */
function unsafeTexts(document: unknown): string[] {
  const bad: string[] = [];
  const walk = (v: unknown, at: string): void => {
    if (Array.isArray(v)) v.forEach((x, i) => walk(x, `${at}/${i}`));
    else if (typeof v === 'object' && v !== null) {
      for (const [k, x] of Object.entries(v)) {
        if ((k === 'description' || k === 'summary') && typeof x === 'string') {
          const text = x.replace(/`[^`]*`/g, '');
          if (/<[A-Za-z/!?]/.test(text) || /`/.test(text)) bad.push(`${at}/${k}: ${x}`);
        } else walk(x, `${at}/${k}`);
      }
    }
  };
  walk(document, '#');
  return bad;
}

test('descriptions and summaries are HTML-safe: no <word> outside a code span, which Swagger UI would swallow as a tag', () => {
  assert.deepEqual(unsafeTexts(doc), []);
  const raw = JSON.parse(committedText) as Doc;
  raw.components.responses.Unauthorized.description = 'send Authorization: Bearer <key>';
  assert.deepEqual(unsafeTexts(raw), ['#/components/responses/Unauthorized/description: send Authorization: Bearer <key>'], 'the check finds a raw tag');
  // the 401's text keeps its placeholder, in a code span
  assert.match(doc.components.responses.Unauthorized.description, /`Authorization: Bearer <key>`/);
});

test('request bodies and JSON answers are components; /hessian and /jacobian answer one of their variants (oneOf), and each variant says when', () => {
  for (const { path, op } of operations) {
    const body = op.requestBody?.content['application/json'];
    if (body) assert.match(String(body.schema.$ref), /^#\/components\/schemas\/[A-Z][A-Za-z]*Request$/, `${path} body`);
    const content = response(op, '200').content;
    // GET /metrics answers Prometheus text, not JSON (docs/api-conventions.md)
    if (!content?.['application/json']) { assert.ok(content?.['text/plain'], `${path} answer: JSON or text/plain`); continue; }
    assert.match(String(content['application/json'].schema.$ref), /^#\/components\/schemas\/[A-Z][A-Za-z]*$/, `${path} answer`);
  }
  const s = doc.components.schemas;
  assert.deepEqual((s.HessianAnswer.oneOf as Json[]).map((m) => m.$ref), [
    '#/components/schemas/HessianMatrixAnswer', '#/components/schemas/HessianRowsAnswer', '#/components/schemas/HessianDiagonalAnswer', '#/components/schemas/HessianBlocksAnswer',
  ]);
  assert.deepEqual((s.JacobianAnswer.oneOf as Json[]).map((m) => m.$ref), ['#/components/schemas/InputJacobianAnswer', '#/components/schemas/ParameterJacobianAnswer']);
  assert.match(String(s.HessianAnswer.description), /never holds both `hessian` and `diagonal`/);
  assert.match(String(s.HessianDiagonalAnswer.description), /'diagonal'.*'diagonal-approximation'/);
  assert.match(String(s.HessianMatrixAnswer.description), /'exact', 'outer-product' and 'finite-difference'/);
  for (const name of ['Network', 'Layer', 'Activation', 'Loss', 'Reduction', 'ParameterSelection', 'Inputs', 'Targets', 'Labels', 'Problem', 'Health']) assert.ok(s[name], name);
  const hessian = s.HessianRequest.properties as Record<string, Json>;
  assert.deepEqual(hessian.network, { $ref: '#/components/schemas/Network' });
  assert.deepEqual(hessian.loss, { $ref: '#/components/schemas/Loss' });
});

test('the POST endpoints list their JSON and binary answers (.npy, raw, .npz), the binary answers\' headers from ANSWER_HEADERS, and their refusals', () => {
  const single = ['application/json', 'application/octet-stream', 'application/x-npy', 'application/x-npz'];
  const multi = ['application/json', 'application/x-npz'];
  const forms: Record<string, string[]> = {
    '/jacobian': single, '/hessian': single, '/hessian/vector-product': single, '/hessian/inverse': single,
    '/hessian/inverse-vector-product': single, '/hessian/kfac': multi, '/hessian/eigen': multi,
  };
  for (const [path, content] of Object.entries(forms)) {
    const op = doc.paths[path]?.post;
    assert.ok(op, `${path} is documented`);
    const ok = response(op, '200');
    assert.deepEqual(Object.keys(ok.content ?? {}).sort(), content, path);
    const headers = Object.keys(ok.headers ?? {});
    assert.ok(headers.includes('X-Parameter-Count') && headers.includes('X-Request-Id'), `${path} documents its binary answers' headers`);
    assert.equal(headers.includes('X-Array-Shape'), content === single, `${path}: X-Array-Shape only with a single-array form`);
    for (const status of ['400', '401', '406', '413', '415', '422', '503']) {
      assert.match(String(op.responses[status]?.$ref), /^#\/components\/responses\//, `${path} refers to the shared ${status}`);
      assert.ok(response(op, status).content?.['application/problem+json'], `${path} documents ${status}`);
    }
  }
  // the headers only where their field is: the inverse's log-determinant, not the Jacobian's
  assert.ok(response(doc.paths['/hessian/inverse'].post, '200').headers?.['X-Log-Determinant']);
  assert.equal(response(doc.paths['/jacobian'].post, '200').headers?.['X-Log-Determinant'], undefined);
  assert.ok(response(doc.paths['/hessian'].post, '200').headers?.['X-Trace']);
  // every answer header is the table's, documented once
  const x = Object.keys(doc.components.headers).filter((h) => h.startsWith('X-') && h !== 'X-Request-Id');
  assert.deepEqual(x, ANSWER_HEADERS.map((h) => h.name));
  for (const h of ANSWER_HEADERS) assert.equal(doc.components.headers[h.name].description, h.description);
});

test('refusals declare their headers: 503 Retry-After, 405 Allow, 401 WWW-Authenticate, every one X-Request-Id', () => {
  const r = doc.components.responses;
  assert.ok(r.ServiceUnavailable.headers?.['Retry-After']);
  assert.ok(r.MethodNotAllowed.headers?.Allow);
  assert.ok(r.Unauthorized.headers?.['WWW-Authenticate']);
  for (const [name, resp] of Object.entries(r)) assert.ok(resp.headers?.['X-Request-Id'], name);
  assert.equal((deref<Json>(doc, r.ServiceUnavailable.headers?.['Retry-After']).schema as Json).type, 'integer');
});

test('the refusal examples are what the service answers', async (t) => {
  const app = await build(t, { config: { apiKeys: ['k'] } });
  const auth = { authorization: 'Bearer k' };
  const body = { network: EXAMPLE_NETWORK, inputs: EXAMPLE_INPUTS, targets: EXAMPLE_TARGETS, loss: 'sum-of-squares' };
  const cases: [string, string, InjectOptions][] = [
    ['BadRequest', 'mistypedField', { method: 'POST', url: '/hessian', headers: auth, payload: { ...body, inputs: [[0.5, 'x']] } }],
    ['Unauthorized', 'missingKey', { method: 'POST', url: '/hessian', payload: body }],
    ['MethodNotAllowed', 'getHessian', { method: 'GET', url: '/hessian', headers: auth }],
    ['NotAcceptable', 'csv', { method: 'POST', url: '/hessian', headers: { ...auth, accept: 'text/csv' }, payload: body }],
    ['UnsupportedMediaType', 'textPlain', { method: 'POST', url: '/hessian', headers: { ...auth, 'content-type': 'text/plain' }, payload: JSON.stringify(body) }],
    ['UnprocessableContent', 'shapeMismatch', { method: 'POST', url: '/hessian', headers: auth, payload: { ...body, inputs: [[0.5, -1, 2], [1.5, 0.2, 1], [1, 1, 1]] } }],
  ];
  for (const [name, example, request] of cases) {
    const r = await app.inject(request);
    const documented = doc.components.responses[name].content?.['application/problem+json'].examples?.[example]?.value;
    assert.deepEqual(r.json(), documented, `${name} ${example}`);
    for (const h of Object.keys(doc.components.responses[name].headers ?? {})) assert.ok(r.headers[h.toLowerCase()], `${name} sends ${h}`);
  }
});

test("every request example succeeds as it stands, as Swagger UI's Try it out sends it, and its answer fits the documented schema", async (t) => {
  const app = await build(t);
  const validator = schemaValidator();
  const examples = requestExamples(doc);
  assert.ok(examples.length >= 13, `${examples.length} examples`);
  for (const op of operations.filter((o) => o.op.requestBody)) assert.ok(op.op.requestBody?.content['application/json'].examples, `${op.path} has examples`);
  for (const ex of examples) {
    const r = await app.inject({ method: ex.method as 'POST', url: ex.path, payload: ex.body as object });
    assert.equal(r.statusCode, 200, `${ex.operationId} ${ex.name}: ${r.body}`);
    const op = doc.paths[ex.path][ex.method.toLowerCase()];
    const problem = validator(response(op, '200').content?.['application/json'].schema ?? {})(r.json());
    assert.equal(problem, undefined, `${ex.operationId} ${ex.name}: the answer does not fit its schema: ${problem}`);
  }
});

test('every method and form of /hessian and /jacobian answers exactly one documented variant, and none holds both hessian and diagonal', async (t) => {
  const app = await build(t);
  const validator = schemaValidator();
  const base = { network: EXAMPLE_NETWORK, inputs: EXAMPLE_INPUTS, targets: EXAMPLE_TARGETS, loss: 'sum-of-squares' };
  const variants = (doc.components.schemas.HessianAnswer.oneOf as Json[]).map((m) => validator(m));
  const cases: [Json, number][] = [
    [{ method: 'exact' }, 0], [{ method: 'outer-product' }, 0], [{ method: 'finite-difference' }, 0], [{ method: 'exact', rows: [3, 7] }, 1],
    [{ method: 'diagonal' }, 2], [{ method: 'diagonal-approximation' }, 2], [{ method: 'outer-product', structure: 'block-diagonal' }, 3],
  ];
  for (const [extra, which] of cases) {
    const answer = (await app.inject({ method: 'POST', url: '/hessian', payload: { ...base, ...extra } })).json() as Json;
    const fits = variants.map((v) => v(answer) === undefined);
    assert.deepEqual(fits, variants.map((_, i) => i === which), `${JSON.stringify(extra)} fits variant ${which} alone`);
    assert.ok(!('hessian' in answer && 'diagonal' in answer));
  }
  const jacobian = (doc.components.schemas.JacobianAnswer.oneOf as Json[]).map((m) => validator(m));
  for (const [wrt, which] of [['inputs', 0], ['parameters', 1]] as const) {
    const answer = (await app.inject({ method: 'POST', url: '/jacobian', payload: { network: EXAMPLE_NETWORK, inputs: EXAMPLE_INPUTS, wrt } })).json();
    assert.deepEqual(jacobian.map((v) => v(answer) === undefined), [which === 0, which === 1], wrt);
  }
});

/** |a − b| ≤ 1e-5·|b| + 1e-9 entry by entry (the examples are rounded to 6 digits), with the same fields; else where not. */
function close(a: unknown, b: unknown, at: string): string | undefined {
  if (typeof b === 'number') return typeof a === 'number' && Math.abs(a - b) <= 1e-5 * Math.abs(b) + 1e-9 ? undefined : `${at}: ${a} against ${b}`;
  if (Array.isArray(b)) {
    if (!Array.isArray(a) || a.length !== b.length) return `${at}: length`;
    for (let i = 0; i < b.length; i++) {
      const e = close(a[i], b[i], `${at}[${i}]`);
      if (e) return e;
    }
    return undefined;
  }
  if (typeof b === 'object' && b !== null) {
    const ka = Object.keys(a as Json), kb = Object.keys(b);
    if (ka.join() !== kb.join()) return `${at}: fields ${ka} against ${kb}`;
    for (const k of kb) {
      const e = close((a as Json)[k], (b as Json)[k], `${at}.${k}`);
      if (e) return e;
    }
    return undefined;
  }
  return a === b ? undefined : `${at}: ${String(a)} against ${String(b)}`;
}

/** An answer with each eigenvector's sign (which is arbitrary) fixed: its largest entry positive. */
function signFixed(answer: unknown): unknown {
  const v = answer as { eigenvectors?: number[][] };
  if (!Array.isArray(v.eigenvectors)) return answer;
  const m = v.eigenvectors.map((row) => [...row]);
  for (let j = 0; j < m[0].length; j++) {
    let big = 0;
    for (let i = 1; i < m.length; i++) if (Math.abs(m[i][j]) > Math.abs(m[big][j])) big = i;
    if (m[big][j] < 0) for (const row of m) row[j] = -row[j];
  }
  return { ...v, eigenvectors: m };
}

test('the answer examples are the service\'s own answers to the request examples (run npm run openapi after changing an example)', async (t) => {
  const app = await build(t);
  const stored = ANSWER_EXAMPLES as Readonly<Record<string, Readonly<Record<string, unknown>>>>;
  const examples = requestExamples(doc);
  const names = (list: { operationId: string; name: string }[]) => list.map((e) => `${e.operationId}.${e.name}`).sort();
  assert.deepEqual(names(Object.entries(stored).flatMap(([operationId, m]) => Object.keys(m).map((name) => ({ operationId, name })))), names(examples), 'one answer example per request example');
  for (const ex of examples) {
    const live = (await app.inject({ method: ex.method as 'POST', url: ex.path, payload: ex.body as object })).json();
    const problem = close(signFixed(stored[ex.operationId][ex.name]), signFixed(live), `${ex.operationId}.${ex.name}`);
    assert.equal(problem, undefined, `${problem}; run \`npm run openapi\``);
    // and the document shows it, under the request example's name and summary
    const shown = response(doc.paths[ex.path][ex.method.toLowerCase()], '200').content?.['application/json'].examples?.[ex.name];
    assert.deepEqual(shown?.value, stored[ex.operationId][ex.name]);
  }
});

test('the /hessian answer examples hold one answer each: hessian, or diagonal and trace, or blocks, never hessian and diagonal together', () => {
  const examples = response(doc.paths['/hessian'].post, '200').content?.['application/json'].examples ?? {};
  assert.deepEqual(Object.keys(examples), ['exact', 'diagonal', 'blockDiagonal', 'rows', 'outputLayer']);
  for (const [name, ex] of Object.entries(examples)) {
    const v = ex.value as Json;
    assert.ok(!('hessian' in v && 'diagonal' in v), name);
    assert.ok(ex.summary, name);
  }
  assert.deepEqual(Object.keys(examples.diagonal.value as Json), ['parameterCount', 'diagonal', 'trace']);
});

test('GET /health is described, and its answer fits the Health schema', async (t) => {
  const app = await build(t);
  const op = doc.paths['/health'].get;
  const ok = response(op, '200');
  assert.notEqual(ok.description, 'Default Response');
  assert.match(ok.description, /version, linear-algebra backend and the load of its compute pool/);
  assert.deepEqual(ok.content?.['application/json'].schema, { $ref: '#/components/schemas/Health' });
  const problem = schemaValidator()({ $ref: '#/components/schemas/Health' })((await app.inject({ method: 'GET', url: '/health' })).json());
  assert.equal(problem, undefined);
});

test('Swagger UI serves at /docs, showing operationIds', async (t) => {
  const app = await build(t);
  const r = await app.inject({ method: 'GET', url: '/docs' });
  assert.equal(r.statusCode, 200);
  assert.match(String(r.headers['content-type']), /text\/html/);
  assert.match(r.body, /swagger/i);
  const init = await app.inject({ method: 'GET', url: '/docs/static/swagger-initializer.js' });
  assert.equal(init.statusCode, 200);
  assert.match(init.body, /"displayOperationId":true/);
});
