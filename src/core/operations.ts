/**
 * The operations, one entry per endpoint: how its task is computed (run) and how much memory it
 * takes (footprint: the answer and the working set, from the estimates each method exports beside
 * its budgets). Adding an endpoint adds its task type (tasks.ts) and its entry here.
 */
import { jacobianScratchBytes, inputJacobian, parameterJacobian } from './jacobian.ts';
import {
  curvatureScratchBytes, exactHessian, hessianDiagonal, hessianDiagonalScratchBytes, outerProductHessian,
} from './hessian.ts';
import { diagonalApproximation, diagonalApproximationScratchBytes } from './diagonal-approximation.ts';
import { finiteDifferenceHessian, finiteDifferenceScratchBytes } from './finite-difference.ts';
import { hessianVectorProduct, hessianVectorProductScratchBytes } from './r-operator.ts';
import { choleskyInverse, choleskyScratchBytes, woodburyInverse, woodburyScratchBytes } from './inverse.ts';
import { passesBytes } from './backprop.ts';
import type { LayerSize } from './network.ts';
import { CoreError } from './errors.ts';
import { assertFinite } from './finite.ts';
import { buildNetwork, countParameters, makeProblem, selectedLayers, type Matrix, type Problem } from './network.ts';
import { taskInputs, taskNetwork, type ArrayResult, type ComputeResult, type CurvatureTask, type Endpoint, type ProblemData, type TaskSummary } from './tasks.ts';

/** What a task will hold, in bytes, and what a refusal over a size says of it. */
export interface TaskFootprint {
  readonly summary: TaskSummary;
  /** The answer: principal array plus outputs. */
  readonly answerBytes: number;
  /** The answer plus everything else alive at the peak of the computation. */
  readonly totalBytes: number;
}

/** A task's sizes, as the operations' estimates need them. */
interface Dims {
  readonly layers: readonly LayerSize[];
  readonly n: number;
  readonly d: number;
  readonly k: number;
  readonly w: number;
}

interface Operation<T extends CurvatureTask> {
  run(task: T): ComputeResult;
  /** Doubles of the answer, bytes of scratch besides it and the passes, and the method a refusal names. */
  footprint(task: T, dims: Dims): { readonly answerDoubles: number; readonly scratchBytes: number; readonly method?: TaskSummary['method'] };
}

type Operations = { readonly [E in Endpoint]: Operation<Extract<CurvatureTask, { endpoint: E }>> };

const OPERATIONS: Operations = {
  jacobian: {
    run(task) {
      const net = buildNetwork(task.network, task.network.parameters);
      if (task.wrt === 'parameters') {
        const r = parameterJacobian(net, task.inputs);
        return { name: 'jacobian', array: { data: r.jacobian, shape: r.shape }, outputs: matrix(r.outputs), scalars: { parameterCount: net.parameterCount } };
      }
      const r = inputJacobian(net, task.inputs);
      return { name: 'jacobian', array: { data: r.jacobian, shape: r.shape }, outputs: matrix(r.outputs), scalars: {} };
    },
    footprint: (task, { layers, n, d, k, w }) => ({
      answerDoubles: n * k * (task.wrt === 'parameters' ? w : d) + n * k,
      scratchBytes: jacobianScratchBytes(layers, n, task.wrt),
      method: task.wrt,
    }),
  },
  hessian: {
    run(task) {
      const p = problem(task.problem);
      const w = p.network.parameterCount;
      const scalars = { parameterCount: w };
      switch (task.method) {
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
    },
    footprint(task, { layers, n, w }) {
      const method = task.method;
      switch (method) {
        case 'diagonal':
          return { answerDoubles: w, scratchBytes: hessianDiagonalScratchBytes(layers, n), method };
        case 'diagonal-approximation':
          return { answerDoubles: w, scratchBytes: diagonalApproximationScratchBytes(layers, n), method };
        case 'finite-difference':
          return { answerDoubles: w * w, scratchBytes: finiteDifferenceScratchBytes(layers, n, w), method };
        case 'exact':
        case 'outer-product':
          return { answerDoubles: w * w, scratchBytes: curvatureScratchBytes(layers, n), method };
      }
    },
  },
  'hessian-vector-product': {
    run(task) {
      const p = problem(task.problem);
      const w = p.network.parameterCount;
      return { name: 'product', array: { data: hessianVectorProduct(p, task.vector), shape: [w] }, scalars: { parameterCount: w } };
    },
    footprint: (_task, { layers, n, w }) => ({ answerDoubles: w, scratchBytes: hessianVectorProductScratchBytes(layers, n, w) }),
  },
  'hessian-inverse': {
    run(task) {
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
    },
    footprint: (task, { layers, n, k, w }) => ({
      answerDoubles: w * w,
      scratchBytes: task.method === 'woodbury' ? woodburyScratchBytes(w, k, n) : curvatureScratchBytes(layers, n) + choleskyScratchBytes(w),
      method: task.method,
    }),
  },
};

/** The operation of a task's endpoint (the one cast: a task's endpoint picks its entry). */
function operationOf<T extends CurvatureTask>(task: T): Operation<T> {
  return OPERATIONS[task.endpoint] as unknown as Operation<T>;
}

/** Runs one task and checks that its answer is finite. Throws CoreError for tasks that cannot be computed. */
export function compute(task: CurvatureTask): ComputeResult {
  const result = operationOf(task).run(task);
  assertFinite(result.name, result.array.data, result.array.shape);
  if (result.outputs) assertFinite('outputs', result.outputs.data, result.outputs.shape);
  const ld = result.scalars.logDeterminant;
  if (ld !== undefined && !Number.isFinite(ld)) throw new CoreError('NON_FINITE_RESULT', { reason: 'logDeterminant', value: ld });
  return result;
}

/**
 * The answer and peak memory of a task, from its array lengths alone (nothing allocated, in
 * microseconds): the forward and backward passes plus the operation's own estimate.
 */
export function taskFootprint(task: CurvatureTask): TaskFootprint {
  const network = taskNetwork(task);
  const selected = selectedLayers(network.layers.length, network.parameters);
  const layers: LayerSize[] = network.layers.map((l, i) => ({ out: l.weights.rows, in: l.weights.cols, hasBias: l.bias !== null, selected: selected[i] }));
  const n = taskInputs(task).rows;
  const dims: Dims = { layers, n, d: layers[0]?.in ?? 0, k: layers[layers.length - 1]?.out ?? 0, w: countParameters(layers) };
  const f = operationOf(task).footprint(task, dims);
  const answerBytes = 8 * f.answerDoubles;
  return {
    summary: { endpoint: task.endpoint, method: f.method, n, d: dims.d, k: dims.k, w: dims.w },
    answerBytes,
    totalBytes: answerBytes + passesBytes(layers, n) + f.scratchBytes,
  };
}

function problem(data: ProblemData): Problem {
  return makeProblem(buildNetwork(data.network, data.network.parameters), data.inputs, data.targets, data.loss, data.reduction);
}

function matrix(m: Matrix): ArrayResult {
  return { data: m.data, shape: [m.rows, m.cols] };
}
