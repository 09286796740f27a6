/**
 * Property-based fuzzing of the HTTP surface (fast-check): requests generated from the schemas'
 * shapes, valid and near-valid (a field dropped or mistyped, a size off by one, a non-finite or
 * huge number, truncated JSON, a wrong content type or Accept), sent to the app. The property:
 * never a 5xx, and every status and content type is one the OpenAPI document lists for the route.
 * test/routes/fuzz.test.ts runs it briefly; `npm run fuzz` (scripts/fuzz.ts) runs it long.
 */
import fc from 'fast-check';
import type { FastifyInstance } from 'fastify';
import { deref } from './openapi.ts';

const HIDDEN = ['identity', 'tanh', 'sigmoid', 'relu', 'softplus'] as const;
const OUTPUT = [...HIDDEN, 'softmax'] as const;
const LOSSES = ['sum-of-squares', 'cross-entropy', 'softmax-cross-entropy'] as const;
const ROUTES = ['/jacobian', '/hessian', '/hessian/vector-product', '/hessian/inverse'] as const;

const num = fc.oneof(
  { weight: 8, arbitrary: fc.double({ min: -3, max: 3, noNaN: true, noDefaultInfinity: true }) },
  { weight: 1, arbitrary: fc.constantFrom(0, -0, 1e-300, 1e300, -1e300, 5e-324, 700, -700) },
);

interface Shape { d: number; sizes: number[]; n: number }

const shapeArb: fc.Arbitrary<Shape> = fc.record({
  d: fc.integer({ min: 1, max: 3 }),
  sizes: fc.array(fc.integer({ min: 1, max: 4 }), { minLength: 1, maxLength: 3 }),
  n: fc.integer({ min: 1, max: 4 }),
});

const matrix = (rows: number, cols: number) => fc.array(fc.array(num, { minLength: cols, maxLength: cols }), { minLength: rows, maxLength: rows });

/** A request body that the schemas accept (it may still be refused with a 422: pairing, domain, definiteness). */
const validArb = shapeArb.chain(({ d, sizes, n }) => {
  const ins = [d, ...sizes.slice(0, -1)];
  const k = sizes[sizes.length - 1];
  const w = sizes.reduce((s, out, l) => s + out * (ins[l] + 1), 0);
  const layers = fc.tuple(...sizes.map((out, l) => fc.record({
    weights: matrix(out, ins[l]),
    bias: fc.array(num, { minLength: out, maxLength: out }),
    activation: l === sizes.length - 1 ? fc.constantFrom(...OUTPUT) : fc.constantFrom(...HIDDEN),
  })));
  const probs = fc.array(fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { minLength: k, maxLength: k }), { minLength: n, maxLength: n })
    .map((rows) => rows.map((r) => { const s = r.reduce((a, b) => a + b, 0) || 1; return r.map((x) => x / s); }));
  return fc.record({
    route: fc.constantFrom(...ROUTES),
    network: layers.map((ls) => ({ layers: ls })),
    inputs: matrix(n, d),
    targets: fc.oneof(matrix(n, k), probs),
    loss: fc.constantFrom(...LOSSES),
    wrt: fc.constantFrom('inputs', 'parameters', undefined),
    method: fc.constantFrom('exact', 'outer-product', 'diagonal', 'diagonal-approximation', 'finite-difference', undefined),
    inverseMethod: fc.constantFrom('woodbury', 'cholesky', undefined),
    hessian: fc.constantFrom('outer-product', 'exact', undefined),
    damping: fc.oneof(fc.double({ min: 1e-6, max: 10, noNaN: true }), fc.constantFrom(1e-300, 1e300)),
    vector: fc.array(num, { minLength: w, maxLength: w }),
    coherent: fc.boolean(),
    probs,
  }).map((r) => {
    if (r.coherent) {
      // the loss its output activation pairs with, and targets in its domain: mostly 200s
      const out = r.network.layers[r.network.layers.length - 1].activation;
      r.loss = out === 'sigmoid' ? 'cross-entropy' : out === 'softmax' ? 'softmax-cross-entropy' : 'sum-of-squares';
      if (r.loss !== 'sum-of-squares') r.targets = r.probs;
    }
    const base: Record<string, unknown> = { network: r.network, inputs: r.inputs };
    if (r.route === '/jacobian') {
      if (r.wrt) base.wrt = r.wrt;
      return { route: r.route, body: base };
    }
    Object.assign(base, { targets: r.targets, loss: r.loss });
    if (r.route === '/hessian' && r.method) base.method = r.method;
    if (r.route === '/hessian/vector-product') base.vector = r.vector;
    if (r.route === '/hessian/inverse') {
      base.damping = r.damping;
      if (r.inverseMethod) base.method = r.inverseMethod;
      if (r.hessian) base.hessian = r.hessian;
    }
    return { route: r.route, body: base };
  });
});

type Mutation =
  | { kind: 'none' }
  | { kind: 'drop' | 'mistype'; pick: number; value?: unknown }
  | { kind: 'unknown-field' }
  | { kind: 'ragged' | 'extra-row'; pick: number }
  | { kind: 'literal'; pick: number; literal: string }
  | { kind: 'truncate'; at: number }
  | { kind: 'garbage'; text: string };

const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  { weight: 6, arbitrary: fc.constant({ kind: 'none' as const }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('drop' as const), pick: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('mistype' as const), pick: fc.nat(), value: fc.constantFrom('x', null, 3, true, {}, [], [[]], [['1']]) }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'unknown-field' as const }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constantFrom('ragged' as const, 'extra-row' as const), pick: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('literal' as const), pick: fc.nat(), literal: fc.constantFrom('1e999', '-1e999', 'NaN', 'Infinity', '1e308', '"1"', 'null', '1e-400') }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('garbage' as const), text: fc.string({ maxLength: 40 }) }) },
);

export const fuzzCaseArb = fc.record({
  request: validArb,
  mutation: mutationArb,
  accept: fc.constantFrom(undefined, 'application/json', 'application/x-npy', 'application/octet-stream', '*/*', 'application/*;q=0.5', 'text/html', 'application/x-npy;q=0, application/json'),
  contentType: fc.oneof({ weight: 8, arbitrary: fc.constant('application/json') }, { weight: 1, arbitrary: fc.constantFrom('text/plain', 'application/json; charset=utf-8', 'application/xml', '') }),
});
export type FuzzCase = typeof fuzzCaseArb extends fc.Arbitrary<infer T> ? T : never;

/** The body text of a case, with its mutation applied. */
export function bodyText(c: FuzzCase): string {
  const body = structuredClone(c.request.body);
  const m = c.mutation;
  const keys = Object.keys(body);
  switch (m.kind) {
    case 'drop': delete body[keys[m.pick % keys.length]]; break;
    case 'mistype': body[keys[m.pick % keys.length]] = m.value; break;
    case 'unknown-field': body.extra = 1; break;
    case 'ragged': {
      const rows = body.inputs as number[][];
      rows[m.pick % rows.length].push(0.5);
      break;
    }
    case 'extra-row': (body.inputs as number[][]).push((body.inputs as number[][])[0]); break;
    default: break;
  }
  let text = JSON.stringify(body);
  if (m.kind === 'literal') {
    const numbers = [...text.matchAll(/-?\d+(\.\d+)?(e[-+]?\d+)?/gi)];
    const hit = numbers[m.pick % numbers.length];
    if (hit?.index !== undefined) text = text.slice(0, hit.index) + m.literal + text.slice(hit.index + hit[0].length);
  }
  if (m.kind === 'truncate') text = text.slice(0, m.at % Math.max(1, text.length));
  if (m.kind === 'garbage') text = m.text;
  return text;
}

interface OpenApiDoc {
  paths: Record<string, Record<string, { responses: Record<string, { content?: Record<string, unknown> }> }>>;
}

/** Tallies of what came back, for the run's summary. */
export type Tally = Map<string, number>;

/** Sends one case to `app` and checks the property; throws with the case on a violation. */
export async function checkCase(app: FastifyInstance, doc: OpenApiDoc, c: FuzzCase, tally?: Tally): Promise<void> {
  const headers: Record<string, string> = {};
  if (c.accept !== undefined) headers.accept = c.accept;
  if (c.contentType !== '') headers['content-type'] = c.contentType;
  const r = await app.inject({ method: 'POST', url: c.request.route, payload: bodyText(c), headers });
  const type = String(r.headers['content-type'] ?? '').split(';')[0].trim();
  const key = `${c.request.route} ${r.statusCode} ${type}`;
  tally?.set(key, (tally.get(key) ?? 0) + 1);
  if (r.statusCode >= 500) throw new Error(`${key}: ${r.body.slice(0, 400)}`);
  const declared = doc.paths[c.request.route]?.post?.responses?.[String(r.statusCode)];
  const documented = declared === undefined ? undefined : deref<{ content?: Record<string, unknown> }>(doc, declared);
  if (!documented) throw new Error(`${key}: status not in the OpenAPI document; ${r.body.slice(0, 300)}`);
  if (!documented.content || !(type in documented.content)) {
    throw new Error(`${key}: content type not in the OpenAPI document (${Object.keys(documented.content ?? {}).join(', ')})`);
  }
  if (type === 'application/problem+json') {
    const p = r.json() as { status: number; detail: unknown };
    if (p.status !== r.statusCode || typeof p.detail !== 'string' || p.detail.length === 0) throw new Error(`${key}: not a problem with a detail: ${r.body}`);
  }
}

/** Runs the property `numRuns` times against `app`. */
export async function fuzz(app: FastifyInstance, numRuns: number, seed?: number, tally?: Tally): Promise<void> {
  const doc = app.swagger() as unknown as OpenApiDoc;
  await fc.assert(fc.asyncProperty(fuzzCaseArb, (c) => checkCase(app, doc, c, tally)), { numRuns, seed, endOnFailure: true });
}
