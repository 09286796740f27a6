/**
 * The one internal form of a request: a CurvatureTask, dense from the edge (every array a
 * Float64Array, matrices row-major), built once from a validated JSON or multipart body by
 * src/http/to-task.ts, sized once by the pool (src/sizing.ts), moved to a worker thread with its
 * buffers transferred, and computed by src/compute.ts. Its answer is a ComputeResult.
 */
import type { ActivationName, LossName, Matrix } from './core/index.ts';

/** The methods of POST /hessian. */
export const HESSIAN_METHODS = ['exact', 'outer-product', 'diagonal', 'diagonal-approximation', 'finite-difference'] as const;
export type HessianMethod = (typeof HESSIAN_METHODS)[number];

/** The methods of POST /hessian/inverse, and the Hessians it inverts. */
export const INVERSE_METHODS = ['woodbury', 'cholesky'] as const;
export type InverseMethod = (typeof INVERSE_METHODS)[number];
export const INVERSE_HESSIANS = ['outer-product', 'exact'] as const;
export type InverseHessian = (typeof INVERSE_HESSIANS)[number];

/** What POST /jacobian differentiates with respect to. */
export const JACOBIAN_WRT = ['inputs', 'parameters'] as const;
export type JacobianWrt = (typeof JACOBIAN_WRT)[number];

export interface LayerData {
  /** out × in, as torch.nn.Linear.weight. */
  readonly weights: Matrix;
  readonly bias: Float64Array;
  readonly activation: ActivationName;
}

export interface NetworkData {
  readonly layers: readonly LayerData[];
}

/** A network with data and a loss: what every curvature endpoint computes on. */
export interface ProblemData {
  readonly network: NetworkData;
  /** N × D. */
  readonly inputs: Matrix;
  /** N × K. */
  readonly targets: Matrix;
  readonly loss: LossName;
}

export type CurvatureTask =
  | { readonly endpoint: 'jacobian'; readonly network: NetworkData; readonly inputs: Matrix; readonly wrt: JacobianWrt }
  | { readonly endpoint: 'hessian'; readonly problem: ProblemData; readonly method: HessianMethod }
  | { readonly endpoint: 'hessian-vector-product'; readonly problem: ProblemData; readonly vector: Float64Array }
  | {
    readonly endpoint: 'hessian-inverse';
    readonly problem: ProblemData;
    readonly damping: number;
    readonly method: InverseMethod;
    readonly hessian: InverseHessian;
  };

export type Endpoint = CurvatureTask['endpoint'];

/** The network of a task, whichever endpoint. */
export function taskNetwork(task: CurvatureTask): NetworkData {
  return task.endpoint === 'jacobian' ? task.network : task.problem.network;
}

/** The inputs of a task, whichever endpoint. */
export function taskInputs(task: CurvatureTask): Matrix {
  return task.endpoint === 'jacobian' ? task.inputs : task.problem.inputs;
}

/** Every Float64Array a task holds, each buffer once: what is transferred to the worker thread. */
export function taskBuffers(task: CurvatureTask): ArrayBuffer[] {
  const arrays: Float64Array[] = [taskInputs(task).data];
  for (const l of taskNetwork(task).layers) arrays.push(l.weights.data, l.bias);
  if (task.endpoint !== 'jacobian') arrays.push(task.problem.targets.data);
  if (task.endpoint === 'hessian-vector-product') arrays.push(task.vector);
  const buffers = new Set<ArrayBuffer>();
  for (const a of arrays) if (a.buffer instanceof ArrayBuffer) buffers.add(a.buffer);
  return [...buffers];
}

/** A row-major array and its shape. */
export interface ArrayResult {
  readonly data: Float64Array;
  readonly shape: readonly number[];
}

/** The principal arrays an answer may hold, by their name in the JSON answer. */
export type AnswerArrayName = 'jacobian' | 'hessian' | 'diagonal' | 'product' | 'inverse';

/** An answer: its principal array, the outputs for a Jacobian, and scalar fields. */
export interface ComputeResult {
  readonly name: AnswerArrayName;
  readonly array: ArrayResult;
  readonly outputs?: ArrayResult;
  readonly scalars: { readonly parameterCount?: number; readonly logDeterminant?: number };
}

/** What a refusal over a size says of the task: its endpoint, method and sizes. */
export interface TaskSummary {
  readonly endpoint: Endpoint;
  /** The Hessian's or inverse's method; for a Jacobian, what it is taken with respect to. */
  readonly method: HessianMethod | InverseMethod | JacobianWrt | undefined;
  /** Data points. */
  readonly n: number;
  /** Inputs per point. */
  readonly d: number;
  /** Outputs per point. */
  readonly k: number;
  /** Parameters. */
  readonly w: number;
}
