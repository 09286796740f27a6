/** Shared pieces of the HTTP tests: the app per test, the reference cases, array comparison. */
import { readdirSync, readFileSync } from 'node:fs';
import assert from 'node:assert/strict';
import type { TestContext } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { buildApp, type AppOptions } from '../../src/app.ts';
import { parseNpy } from '../../src/http/npy.ts';

/** Builds the app for one test and closes it when the test ends (fastify/demo's build(t)). */
export async function build(t: TestContext, options: AppOptions = {}): Promise<FastifyInstance> {
  const app = await buildApp(options);
  t.after(() => app.close());
  await app.ready();
  return app;
}

type Nested = number | Nested[];

export interface ReferenceCase {
  name: string;
  request: { network: { layers: { weights: number[][]; bias: number[]; activation: string }[] }; inputs: number[][]; targets: number[][]; loss: string };
  damping: number;
  exactDamping: number;
  vector: number[];
  expected: Record<string, Nested> & { parameterCount: number; logDeterminant: number; logDeterminantExact: number };
}

const FIXTURES = new URL('../fixtures/', import.meta.url);

/** The reference cases of test/fixtures (PyTorch autograd, float64). */
export function referenceCases(): ReferenceCase[] {
  return readdirSync(FIXTURES)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((f) => JSON.parse(readFileSync(new URL(f, FIXTURES), 'utf8')) as ReferenceCase);
}

/** Flattens a nested array (row-major) and returns its shape. */
export function flatten(x: Nested): { data: number[]; shape: number[] } {
  const shape: number[] = [];
  let probe: Nested = x;
  while (Array.isArray(probe)) { shape.push(probe.length); probe = probe[0]; }
  const data = (Array.isArray(x) ? (x as unknown[]).flat(Infinity) : [x]) as number[];
  return { data, shape };
}

/** max|a − b| / max(1, max|b|): the relative error the tests bound. */
export function relativeError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length, `lengths differ: ${a.length} vs ${b.length}`);
  let diff = 0;
  let scale = 1;
  for (let i = 0; i < a.length; i++) {
    diff = Math.max(diff, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(b[i]));
  }
  return diff / scale;
}

/** Asserts `actual` has the reference's shape and is within `tolerance` of it (relative error as above). */
export function assertClose(actual: { data: ArrayLike<number>; shape: readonly number[] }, expected: Nested, tolerance: number, what: string): void {
  const e = flatten(expected);
  assert.deepEqual([...actual.shape], e.shape, `${what}: shape`);
  const err = relativeError(actual.data, e.data);
  assert.ok(err <= tolerance, `${what}: relative error ${err} > ${tolerance}`);
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
