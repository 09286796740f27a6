import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** A reference case computed with PyTorch autograd in float64 (test/fixtures/generate.py documents each field). */
export interface ReferenceCase {
  name: string;
  request: {
    network: { layers: { weights: number[][]; bias: number[]; activation: string }[] };
    inputs: number[][];
    targets: number[][];
    loss: 'sum-of-squares' | 'cross-entropy' | 'softmax-cross-entropy';
  };
  damping: number;
  exactDamping: number;
  vector: number[];
  expected: {
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
  };
}

export const FIXTURES_DIR = join(fileURLToPath(new URL('.', import.meta.url)), '..', 'fixtures');

/** The reference cases in `test/fixtures/` (the eight public ones), or in a subfolder such as `held-out`. */
export function loadCases(subfolder = ''): ReferenceCase[] {
  const dir = join(FIXTURES_DIR, subfolder);
  return readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((f) => JSON.parse(readFileSync(join(dir, f), 'utf8')) as ReferenceCase);
}

/** Flattens nested arrays of numbers in row-major order. */
export function flat(x: unknown): number[] {
  return Array.isArray(x) ? x.flatMap(flat) : [x as number];
}

/** max |a − b| / max(1, max |b|): the relative error every comparison uses. */
export function relativeError(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  if (actual.length !== expected.length) throw new Error(`length ${actual.length} ≠ ${expected.length}`);
  let diff = 0, scale = 1;
  for (let i = 0; i < expected.length; i++) {
    diff = Math.max(diff, Math.abs(actual[i] - expected[i]));
    scale = Math.max(scale, Math.abs(expected[i]));
  }
  return Number.isNaN(diff) ? Infinity : diff / scale;
}
