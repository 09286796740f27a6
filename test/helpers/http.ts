/** Shared pieces of the HTTP tests: the app per test, and answers decoded whatever their form. */
import assert from 'node:assert/strict';
import type { TestContext } from 'node:test';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { buildApp, type AppOptions } from '../../src/app.ts';
import { flatten, loadCases, type Nested, type ReferenceCase } from './cases.ts';
import { parseNpy } from './npy.ts';

/** Builds the app for one test and closes it when the test ends (fastify/demo's build(t)). */
export async function build(t: TestContext, options: AppOptions = {}): Promise<FastifyInstance> {
  const app = await buildApp(options);
  t.after(() => app.close());
  await app.ready();
  return app;
}

/** The reference cases of test/fixtures (PyTorch autograd, float64). */
export function referenceCases(): ReferenceCase[] {
  return loadCases();
}

export const FORMS = { json: 'application/json', npy: 'application/x-npy', raw: 'application/octet-stream' } as const;
export type Form = keyof typeof FORMS;

export interface Answer {
  array: { data: ArrayLike<number>; shape: number[] };
  /** parameterCount and logDeterminant, from the JSON body or from the binary answer's headers. */
  scalars: { parameterCount?: number; logDeterminant?: number };
  json?: Record<string, unknown>;
}

/**
 * POSTs `body` asking for `form`, checks the answer's framing (status, content type, exact
 * Content-Length, shape header matching the .npy header) and decodes the principal array `field`.
 */
export async function answer(app: FastifyInstance, url: string, body: unknown, form: Form, field: string): Promise<Answer> {
  const r = await app.inject({ method: 'POST', url, payload: body as object, headers: { accept: FORMS[form] } });
  assert.equal(r.statusCode, 200, r.body);
  assert.ok(String(r.headers['content-type']).startsWith(FORMS[form]), `content-type ${r.headers['content-type']}`);
  if (form === 'json') {
    const json = r.json() as Record<string, unknown>;
    return {
      array: flatten(json[field] as Nested),
      scalars: { parameterCount: json.parameterCount as number | undefined, logDeterminant: json.logDeterminant as number | undefined },
      json,
    };
  }
  assert.equal(Number(r.headers['content-length']), r.rawPayload.length, 'Content-Length is exact');
  assert.equal(r.headers['x-array-name'], field);
  const shape = String(r.headers['x-array-shape']).split(',').map(Number);
  const scalars = {
    parameterCount: r.headers['x-parameter-count'] === undefined ? undefined : Number(r.headers['x-parameter-count']),
    logDeterminant: r.headers['x-log-determinant'] === undefined ? undefined : Number(r.headers['x-log-determinant']),
  };
  if (form === 'npy') {
    const npy = parseNpy(r.rawPayload);
    assert.deepEqual(npy.shape, shape, '.npy header shape equals X-Array-Shape');
    assert.equal((r.rawPayload.length - npy.data.byteLength) % 64, 0, '.npy preamble is a multiple of 64 bytes');
    return { array: npy, scalars };
  }
  const data = parseRaw(r.rawPayload);
  assert.equal(data.length, shape.reduce((a, b) => a * b, 1), 'raw length matches X-Array-Shape');
  return { array: { data, shape }, scalars };
}

/** Decodes raw little-endian float64. */
export function parseRaw(buf: Buffer): Float64Array {
  const out = new Float64Array(buf.length / 8);
  for (let i = 0; i < out.length; i++) out[i] = buf.readDoubleLE(i * 8);
  return out;
}

export { parseNpy };
export { assertClose, flatten, relativeError, type ReferenceCase } from './cases.ts';

export type Parts = Record<string, string | Buffer | object>;

/** A multipart body from parts: objects become the JSON request, Buffers .npy files, strings text. */
export async function multipart(parts: Parts): Promise<{ payload: Buffer; contentType: string }> {
  const form = new FormData();
  for (const [name, value] of Object.entries(parts)) {
    if (Buffer.isBuffer(value)) form.append(name, new Blob([new Uint8Array(value)], { type: 'application/x-npy' }), `${name}.npy`);
    else if (typeof value === 'string') form.append(name, value);
    else form.append(name, new Blob([JSON.stringify(value)], { type: 'application/json' }));
  }
  const req = new Request('http://localhost/', { method: 'POST', body: form });
  return { payload: Buffer.from(await req.arrayBuffer()), contentType: String(req.headers.get('content-type')) };
}

export async function postParts(app: FastifyInstance, url: string, parts: Parts, accept = 'application/json') {
  const { payload, contentType } = await multipart(parts);
  return app.inject({ method: 'POST', url, payload, headers: { 'content-type': contentType, accept } });
}

/** Asserts an RFC 9457 refusal with this status and code whose detail matches `detail`. */
export function assertProblem(r: LightMyRequestResponse, status: number, code: string, detail?: RegExp): void {
  assert.equal(r.statusCode, status, r.body);
  assert.match(String(r.headers['content-type']), /^application\/problem\+json/);
  const p = r.json();
  assert.equal(p.status, status);
  assert.equal(p.code, code);
  assert.equal(typeof p.type, 'string');
  assert.equal(typeof p.title, 'string');
  assert.equal(typeof p.detail, 'string');
  if (detail) assert.match(p.detail, detail);
}

/** POSTs a payload (an object as JSON, a string as it is) by inject. */
export async function post(app: FastifyInstance, url: string, payload: unknown, headers: Record<string, string> = {}): Promise<LightMyRequestResponse> {
  return app.inject({ method: 'POST', url, payload: payload as string, headers });
}
