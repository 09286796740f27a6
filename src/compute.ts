/**
 * The one dispatcher from a validated request to a computed answer. A task and its result are
 * plain data (objects, arrays, numbers, Float64Arrays), so the same function can run in this
 * thread or in a worker thread behind a structured-clone boundary.
 */
import { ServiceError } from './errors.ts';
import { checkTaskSize, type SizeLimits } from './limits.ts';
import {
  assertFinite,
  choleskyInverse,
  diagonalApproximation,
  exactHessian,
  finiteDifferenceHessian,
  hessianDiagonal,
  hessianVectorProduct,
  inputJacobian,
  outerProductHessian,
  parameterJacobian,
  woodburyInverse,
} from './core/index.ts';
import { buildNetwork, makeProblem, toMatrix, type Matrix, type Network, type Problem } from './core/network.ts';
import type { LossName } from './core/losses.ts';
import type { JacobianRequest } from '../schemas/jacobian.ts';
import type { HessianRequest, InverseRequest, VectorProductRequest } from '../schemas/hessian.ts';

/** The size limits a task runs under (src/limits.ts); a Config serves. */
export type ComputeLimits = SizeLimits;

/**
 * A validated request whose data arrays may also come dense, from the .npy parts of a multipart
 * body: `inputs` and `targets` as a row-major Matrix, `vector` as a Float64Array. The JSON path
 * and the binary path meet here and share everything after.
 */
export type WithDenseArrays<T> = {
  [K in keyof T]: K extends 'inputs' | 'targets' ? T[K] | Matrix : K extends 'vector' ? T[K] | Float64Array : T[K];
};

export type ComputeTask =
  | { readonly endpoint: 'jacobian'; readonly request: WithDenseArrays<JacobianRequest>; readonly limits: ComputeLimits }
  | { readonly endpoint: 'hessian'; readonly request: WithDenseArrays<HessianRequest>; readonly limits: ComputeLimits }
  | { readonly endpoint: 'hessian-vector-product'; readonly request: WithDenseArrays<VectorProductRequest>; readonly limits: ComputeLimits }
  | { readonly endpoint: 'hessian-inverse'; readonly request: WithDenseArrays<InverseRequest>; readonly limits: ComputeLimits };

/** A row-major array and its shape. */
export interface ArrayResult {
  readonly data: Float64Array;
  readonly shape: readonly number[];
}

/** An answer: its principal array (named as in the JSON answer), the outputs for a Jacobian, and scalar fields. */
export interface ComputeResult {
  readonly name: 'jacobian' | 'hessian' | 'diagonal' | 'product' | 'inverse';
  readonly array: ArrayResult;
  readonly outputs?: ArrayResult;
  readonly scalars: { readonly parameterCount?: number; readonly logDeterminant?: number };
}

/** Runs one task. Throws ServiceError for requests that cannot be computed. */
export function compute(task: ComputeTask): ComputeResult {
  // The service sizes every task in the main thread before queueing it; this repeats the same
  // check (microseconds) for callers that run compute directly.
  checkTaskSize(task, task.limits);
  const result = dispatch(task);
  assertFinite(result.name, result.array.data, result.array.shape);
  if (result.outputs) assertFinite('outputs', result.outputs.data, result.outputs.shape);
  const ld = result.scalars.logDeterminant;
  if (ld !== undefined && !Number.isFinite(ld)) {
    throw new ServiceError('NON_FINITE_RESULT', { detail: `logDeterminant is ${ld}; the matrix is numerically singular or overflows — use a larger damping` });
  }
  return result;
}

function dispatch(task: ComputeTask): ComputeResult {
  switch (task.endpoint) {
    case 'jacobian': {
      const { request } = task;
      const net = buildNetwork(request.network);
      const inputs = asMatrix(request.inputs, 'inputs');
      if (request.wrt === 'parameters') {
        const r = parameterJacobian(net, inputs);
        return { name: 'jacobian', array: { data: r.jacobian, shape: [...r.shape] }, outputs: matrix(r.outputs), scalars: { parameterCount: net.parameterCount } };
      }
      const r = inputJacobian(net, inputs);
      return { name: 'jacobian', array: { data: r.jacobian, shape: [...r.shape] }, outputs: matrix(r.outputs), scalars: {} };
    }
    case 'hessian': {
      const { request } = task;
      const p = problem(request);
      const w = p.network.parameterCount;
      const scalars = { parameterCount: w };
      switch (request.method) {
        case 'diagonal':
          return { name: 'diagonal', array: { data: hessianDiagonal(p), shape: [w] }, scalars };
        case 'diagonal-approximation':
          return { name: 'diagonal', array: { data: diagonalApproximation(p), shape: [w] }, scalars };
        case 'exact':
        case 'outer-product':
        case 'finite-difference': {
          const h = request.method === 'exact' ? exactHessian(p) : request.method === 'outer-product' ? outerProductHessian(p) : finiteDifferenceHessian(p);
          return { name: 'hessian', array: { data: h, shape: [w, w] }, scalars };
        }
      }
      break;
    }
    case 'hessian-vector-product': {
      const p = problem(task.request);
      const w = p.network.parameterCount;
      const product = hessianVectorProduct(p, Float64Array.from(task.request.vector));
      return { name: 'product', array: { data: product, shape: [w] }, scalars: { parameterCount: w } };
    }
    case 'hessian-inverse': {
      const { request } = task;
      const p = problem(request);
      const w = p.network.parameterCount;
      if (request.method === 'woodbury' && request.hessian === 'exact') {
        throw new ServiceError('UNSUPPORTED_METHOD', {
          detail: "method 'woodbury' inverts the outer-product Hessian only (PRML 5.89); use method 'cholesky' with hessian 'exact'",
        });
      }
      let r: { inverse: Float64Array; logDeterminant: number };
      if (request.method === 'woodbury') {
        r = woodburyInverse(p, request.damping);
      } else {
        const h = request.hessian === 'exact' ? exactHessian(p) : outerProductHessian(p);
        // An overflowing Hessian is refused as such before the factorisation (whose eigenvalue hint needs finite entries).
        assertFinite('hessian', h, [w, w]);
        r = choleskyInverse(h, w, request.damping);
      }
      return { name: 'inverse', array: { data: r.inverse, shape: [w, w] }, scalars: { parameterCount: w, logDeterminant: r.logDeterminant } };
    }
  }
  throw new ServiceError('INTERNAL', { detail: `no computation for ${JSON.stringify((task as { endpoint?: unknown }).endpoint)}` });
}

function problem(request: WithDenseArrays<HessianRequest | VectorProductRequest | InverseRequest>): Problem {
  const net: Network = buildNetwork(request.network);
  return makeProblem(net, asMatrix(request.inputs, 'inputs'), asMatrix(request.targets, 'targets'), request.loss as LossName);
}

/** Nested rows (JSON) become a dense Matrix once; a dense Matrix (from .npy) is used as it is. */
function asMatrix(x: number[][] | Matrix, field: string): Matrix {
  return Array.isArray(x) ? toMatrix(x, field) : x;
}

function matrix(m: { rows: number; cols: number; data: Float64Array }): ArrayResult {
  return { data: m.data, shape: [m.rows, m.cols] };
}

