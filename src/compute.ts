/**
 * The one dispatcher from a task to its answer. A task and its result are plain data (objects,
 * numbers, Float64Arrays), so the same function runs in a worker thread (src/worker.ts) or, with
 * WORKERS=0, in the main thread. Refusals are the core's typed errors (CoreError).
 */
import {
  assertFinite,
  buildNetwork,
  choleskyInverse,
  CoreError,
  diagonalApproximation,
  exactHessian,
  finiteDifferenceHessian,
  hessianDiagonal,
  hessianVectorProduct,
  inputJacobian,
  makeProblem,
  outerProductHessian,
  parameterJacobian,
  woodburyInverse,
  type Matrix,
  type Problem,
} from './core/index.ts';
import type { ArrayResult, ComputeResult, CurvatureTask, HessianMethod, ProblemData } from './task.ts';

/** Runs one task and checks that its answer is finite. Throws CoreError for tasks that cannot be computed. */
export function compute(task: CurvatureTask): ComputeResult {
  const result = dispatch(task);
  assertFinite(result.name, result.array.data, result.array.shape);
  if (result.outputs) assertFinite('outputs', result.outputs.data, result.outputs.shape);
  const ld = result.scalars.logDeterminant;
  if (ld !== undefined && !Number.isFinite(ld)) throw new CoreError('NON_FINITE_RESULT', { reason: 'logDeterminant', value: ld });
  return result;
}

function dispatch(task: CurvatureTask): ComputeResult {
  switch (task.endpoint) {
    case 'jacobian': {
      const net = buildNetwork(task.network);
      if (task.wrt === 'parameters') {
        const r = parameterJacobian(net, task.inputs);
        return { name: 'jacobian', array: { data: r.jacobian, shape: r.shape }, outputs: matrix(r.outputs), scalars: { parameterCount: net.parameterCount } };
      }
      const r = inputJacobian(net, task.inputs);
      return { name: 'jacobian', array: { data: r.jacobian, shape: r.shape }, outputs: matrix(r.outputs), scalars: {} };
    }
    case 'hessian': {
      const p = problem(task.problem);
      const w = p.network.parameterCount;
      return hessianResult(p, task.method, w);
    }
    case 'hessian-vector-product': {
      const p = problem(task.problem);
      const w = p.network.parameterCount;
      return { name: 'product', array: { data: hessianVectorProduct(p, task.vector), shape: [w] }, scalars: { parameterCount: w } };
    }
    case 'hessian-inverse': {
      const p = problem(task.problem);
      const w = p.network.parameterCount;
      if (task.method === 'woodbury' && task.hessian === 'exact') throw new CoreError('UNSUPPORTED_METHOD', { reason: 'woodburyExact' });
      let r: { inverse: Float64Array; logDeterminant: number };
      if (task.method === 'woodbury') {
        r = woodburyInverse(p, task.damping);
      } else {
        const h = task.hessian === 'exact' ? exactHessian(p) : outerProductHessian(p);
        // An overflowing Hessian is refused as such before the factorisation (whose eigenvalue hint needs finite entries).
        assertFinite('hessian', h, [w, w]);
        r = choleskyInverse(h, w, task.damping);
      }
      return { name: 'inverse', array: { data: r.inverse, shape: [w, w] }, scalars: { parameterCount: w, logDeterminant: r.logDeterminant } };
    }
  }
}

/** POST /hessian's five methods. */
function hessianResult(p: Problem, method: HessianMethod, w: number): ComputeResult {
  const scalars = { parameterCount: w };
  switch (method) {
    case 'diagonal':
      return { name: 'diagonal', array: { data: hessianDiagonal(p), shape: [w] }, scalars };
    case 'diagonal-approximation':
      return { name: 'diagonal', array: { data: diagonalApproximation(p), shape: [w] }, scalars };
    case 'exact':
      return { name: 'hessian', array: { data: exactHessian(p), shape: [w, w] }, scalars };
    case 'outer-product':
      return { name: 'hessian', array: { data: outerProductHessian(p), shape: [w, w] }, scalars };
    case 'finite-difference':
      return { name: 'hessian', array: { data: finiteDifferenceHessian(p), shape: [w, w] }, scalars };
  }
}

function problem(data: ProblemData): Problem {
  return makeProblem(buildNetwork(data.network), data.inputs, data.targets, data.loss);
}

function matrix(m: Matrix): ArrayResult {
  return { data: m.data, shape: [m.rows, m.cols] };
}
