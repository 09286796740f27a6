/**
 * The reference cases (test/fixtures, computed with PyTorch autograd in float64; the generators
 * there document every field) and the one way the tests compare arrays with them.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import assert from 'node:assert/strict';
import { buildNetwork, makeProblem, type LossName, type Matrix, type Network, type NetworkSpec, type Problem, type Reduction } from '../../src/core/index.ts';

export type Nested = number | Nested[];

/** A network in the API's JSON form. */
export interface NetworkJson {
  layers: { weights: number[][]; bias?: number[] | null; activation: string }[];
}

/** What every reference case expects (PyTorch autograd, float64). */
export interface ReferenceExpected {
  parameterCount: number;
  outputs: number[][];
  error: number;
  gradient: number[];
  inputJacobian: number[][][];
  hessian: number[][];
  hessianDiagonal: number[];
  diagonalApproximation: number[];
  outerProduct: number[][];
  hessianVectorProduct: number[];
  inverseOuterProduct: number[][];
  logDeterminant: number;
  inverseExact: number[][];
  logDeterminantExact: number;
}

/** A reference case of test/fixtures (and held-out/). */
export interface ReferenceCase {
  name: string;
  request: { network: NetworkJson; inputs: number[][]; targets: number[][]; loss: LossName };
  damping: number;
  exactDamping: number;
  vector: number[];
  expected: ReferenceExpected;
}

/** A case of test/fixtures/models: the 2026-12 models (logits, labels, mean reduction, layers without bias, new activations). */
export interface ModelCase extends Omit<ReferenceCase, 'request' | 'expected'> {
  request: { network: NetworkJson; inputs: number[][]; targets?: number[][]; labels?: number[]; loss: LossName; reduction: Reduction };
  expected: ReferenceExpected & { parameterJacobian: number[][][] };
}

export const FIXTURES_DIR = join(fileURLToPath(new URL('.', import.meta.url)), '..', 'fixtures');

/** The cases in test/fixtures/ (the eight public ones), or in a subfolder such as `held-out`. */
export function loadCases<T = ReferenceCase>(subfolder = ''): T[] {
  const dir = join(FIXTURES_DIR, subfolder);
  return readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((f) => JSON.parse(readFileSync(join(dir, f), 'utf8')) as T);
}

/** Flattens nested arrays of numbers in row-major order. */
export function flat(x: unknown): number[] {
  return Array.isArray(x) ? x.flatMap(flat) : [x as number];
}

/** A nested array's values (row-major) and shape. */
export function flatten(x: Nested): { data: number[]; shape: number[] } {
  const shape: number[] = [];
  let probe: Nested = x;
  while (Array.isArray(probe)) { shape.push(probe.length); probe = probe[0]; }
  return { data: flat(x), shape };
}

/** max |a − b| / max(1, max |b|), the relative error every comparison uses; NaN anywhere makes it Infinity. */
export function relativeError(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  assert.equal(actual.length, expected.length, `lengths differ: ${actual.length} vs ${expected.length}`);
  let diff = 0, scale = 1;
  for (let i = 0; i < expected.length; i++) {
    const d = Math.abs(actual[i] - expected[i]);
    if (Number.isNaN(d)) return Infinity;
    diff = Math.max(diff, d);
    scale = Math.max(scale, Math.abs(expected[i]));
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

/** Rows of numbers as the core's row-major Matrix. */
export function matrixOf(rows: readonly (readonly number[])[]): Matrix {
  const r = rows.length, c = rows[0]?.length ?? 0;
  const data = new Float64Array(r * c);
  rows.forEach((row, i) => data.set(row, i * c));
  return { rows: r, cols: c, data };
}

/** A network in JSON form as the core's NetworkSpec. */
export function specOf(network: NetworkJson): NetworkSpec {
  return { layers: network.layers.map((l) => ({ weights: matrixOf(l.weights), bias: l.bias ? Float64Array.from(l.bias) : null, activation: l.activation })) };
}

export function networkOf(network: NetworkJson, selection?: readonly number[]): Network {
  return buildNetwork(specOf(network), selection);
}

/** A reference case's problem for the core (targets or labels, and its reduction), optionally over some layers' parameters. */
export function problemOf(c: ReferenceCase | ModelCase, selection?: readonly number[]): Problem {
  const r = c.request as ModelCase['request'];
  const targets = r.labels ? { labels: Float64Array.from(r.labels) } : matrixOf(r.targets!);
  return makeProblem(networkOf(r.network, selection), matrixOf(r.inputs), targets, r.loss, r.reduction ?? 'sum');
}
