/**
 * What the core computes, as plain data: a CurvatureTask (every array a Float64Array, matrices
 * row-major) and its answer, a ComputeResult. The edge builds a task from a validated body (each
 * route, with src/http/to-task.ts), the pool sizes it once (src/sizing.ts, from the operation's own
 * estimate) and moves it to a worker thread with its buffers transferred, and the operation of its
 * endpoint computes it (operations.ts).
 */
import type { ActivationName } from './activations.ts';
import type { LossName, Reduction } from './losses.ts';
import type { Matrix, Targets } from './network.ts';

/** The methods of POST /hessian. */
export const HESSIAN_METHODS = ['exact', 'outer-product', 'diagonal', 'diagonal-approximation', 'finite-difference'] as const;
export type HessianMethod = (typeof HESSIAN_METHODS)[number];

/** The methods of POST /hessian/inverse (the first is the default), and the Hessians it inverts. */
export const INVERSE_METHODS = ['cholesky', 'woodbury'] as const;
export type InverseMethod = (typeof INVERSE_METHODS)[number];
export const INVERSE_HESSIANS = ['outer-product', 'exact'] as const;
export type InverseHessian = (typeof INVERSE_HESSIANS)[number];

/** What POST /jacobian differentiates with respect to. */
export const JACOBIAN_WRT = ['inputs', 'parameters'] as const;
export type JacobianWrt = (typeof JACOBIAN_WRT)[number];

export interface LayerData {
  /** out × in, as torch.nn.Linear.weight. */
  readonly weights: Matrix;
  /** out entries, or null for a layer without bias. */
  readonly bias: Float64Array | null;
  readonly activation: ActivationName;
}

export interface NetworkData {
  readonly layers: readonly LayerData[];
  /** The layers whose parameters are the answer's (negative indices count from the end); absent: all. */
  readonly parameters?: readonly number[];
}

/** A network with data and a loss: what every curvature endpoint computes on. */
export interface ProblemData {
  readonly network: NetworkData;
  /** N × D. */
  readonly inputs: Matrix;
  /** N × K, or N labels. */
  readonly targets: Targets;
  readonly loss: LossName;
  readonly reduction: Reduction;
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
  for (const l of taskNetwork(task).layers) {
    arrays.push(l.weights.data);
    if (l.bias) arrays.push(l.bias);
  }
  if (task.endpoint !== 'jacobian') {
    const t = task.problem.targets;
    arrays.push('labels' in t ? t.labels : t.data);
  }
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
