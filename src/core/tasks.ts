/**
 * What the core computes, as plain data: a CurvatureTask (every array a Float64Array, matrices
 * row-major) and its answer, a ComputeResult. The edge builds a task from a validated body (each
 * route, with src/http/to-task.ts), the pool sizes it once (src/sizing.ts, from the operation's own
 * estimate) and moves it to a worker thread with its buffers transferred, and the operation of its
 * endpoint computes it (operations.ts).
 */
import type { ActivationName } from './activations.ts';
import type { EigenWhich } from './eigen.ts';
import type { CoreWarning } from './errors.ts';
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

/** How POST /hessian's exact and outer-product matrices are laid out. */
export const HESSIAN_STRUCTURES = ['full', 'block-diagonal'] as const;
export type HessianStructure = (typeof HESSIAN_STRUCTURES)[number];

/** The Hessians of POST /hessian/eigen, and its methods (the first is the default). */
export const EIGEN_HESSIANS = ['exact', 'outer-product'] as const;
export const EIGEN_METHODS = ['auto', 'lanczos', 'dense'] as const;
export type EigenMethod = (typeof EIGEN_METHODS)[number];

/** The matrices of POST /hessian/inverse-vector-product, and its methods (the first is the default). */
export const SOLVE_HESSIANS = ['outer-product', 'exact', 'kfac'] as const;
export type SolveHessian = (typeof SOLVE_HESSIANS)[number];
export const SOLVE_METHODS = ['auto', 'cg', 'cholesky'] as const;
export type SolveMethod = (typeof SOLVE_METHODS)[number];
export const PRECONDITIONERS = ['none', 'diagonal', 'kfac'] as const;
export type Preconditioner = (typeof PRECONDITIONERS)[number];

export type CurvatureTask =
  | { readonly endpoint: 'jacobian'; readonly network: NetworkData; readonly inputs: Matrix; readonly wrt: JacobianWrt }
  | {
    readonly endpoint: 'hessian';
    readonly problem: ProblemData;
    readonly method: HessianMethod;
    readonly structure: HessianStructure;
    /** Rows start … end − 1 only (exact and outer-product, full structure). */
    readonly rows?: readonly [number, number];
  }
  | { readonly endpoint: 'hessian-vector-product'; readonly problem: ProblemData; readonly vector: Float64Array }
  | {
    readonly endpoint: 'hessian-inverse';
    readonly problem: ProblemData;
    readonly damping: number;
    readonly method: InverseMethod;
    readonly hessian: InverseHessian;
  }
  | { readonly endpoint: 'hessian-kfac'; readonly problem: ProblemData; readonly damping?: number }
  | {
    readonly endpoint: 'hessian-eigen';
    readonly problem: ProblemData;
    readonly hessian: (typeof EIGEN_HESSIANS)[number];
    readonly count: number;
    readonly which: EigenWhich;
    readonly method: EigenMethod;
    readonly tolerance: number;
    readonly maxIterations: number;
  }
  | {
    readonly endpoint: 'hessian-inverse-vector-product';
    readonly problem: ProblemData;
    readonly damping: number;
    /** m × W, one vector a row. */
    readonly vectors: Matrix;
    readonly hessian: SolveHessian;
    readonly method: SolveMethod;
    readonly tolerance: number;
    readonly maxIterations: number;
    readonly preconditioner: Preconditioner;
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
  if (task.endpoint === 'hessian-inverse-vector-product') arrays.push(task.vectors.data);
  const buffers = new Set<ArrayBuffer>();
  for (const a of arrays) if (a.buffer instanceof ArrayBuffer) buffers.add(a.buffer);
  return [...buffers];
}

/** A row-major array and its shape. */
export interface ArrayResult {
  readonly data: Float64Array;
  readonly shape: readonly number[];
}

/** A field of an answer: a number, a string, an array, or a list of objects of those. */
export type AnswerValue = number | string | ArrayResult | readonly AnswerObject[];
export interface AnswerObject {
  readonly [field: string]: AnswerValue;
}

/**
 * An answer: its JSON fields, in order (arrays stay Float64Arrays until the representation writes
 * them); the field that a .npy or raw answer holds, where the answer has one principal array; and
 * the members of an .npz answer (by default every top-level array, named by its field).
 */
export interface ComputeResult {
  readonly fields: AnswerObject;
  readonly principal?: string;
  /** What the answer should be read with (a finite difference across a kink, ...); rendered as texts at the edge. */
  readonly warnings?: readonly CoreWarning[];
  readonly members?: readonly { readonly name: string; readonly array: ArrayResult }[];
}

export function isArrayResult(v: AnswerValue | undefined): v is ArrayResult {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && (v as ArrayResult).data instanceof Float64Array;
}

/** The answer's principal array (for .npy and raw), if it has one. */
export function principalArray(result: ComputeResult): ArrayResult | undefined {
  const v = result.principal === undefined ? undefined : result.fields[result.principal];
  return isArrayResult(v) ? v : undefined;
}

/** Every array of an answer (its fields', nested ones too, and its members'), each once. */
export function resultArrays(result: ComputeResult): ArrayResult[] {
  const out = new Set<ArrayResult>();
  const walk = (v: AnswerValue) => {
    if (isArrayResult(v)) out.add(v);
    else if (Array.isArray(v)) for (const o of v as readonly AnswerObject[]) for (const x of Object.values(o)) walk(x);
  };
  for (const v of Object.values(result.fields)) walk(v);
  for (const m of result.members ?? []) out.add(m.array);
  return [...out];
}

/** The members of an .npz answer: the given ones, or every top-level array named by its field. */
export function npzMembers(result: ComputeResult): { name: string; array: ArrayResult }[] {
  if (result.members) return [...result.members];
  const out: { name: string; array: ArrayResult }[] = [];
  for (const [name, v] of Object.entries(result.fields)) if (isArrayResult(v)) out.push({ name, array: v });
  return out;
}

/** What a refusal over a size says of the task: its endpoint, method and sizes. */
export interface TaskSummary {
  readonly endpoint: Endpoint;
  /** The method (or, for a Jacobian, what it is taken with respect to; for a structured Hessian its structure). */
  readonly method: string | undefined;
  /** Data points. */
  readonly n: number;
  /** Inputs per point. */
  readonly d: number;
  /** Outputs per point. */
  readonly k: number;
  /** Parameters. */
  readonly w: number;
  /** Layers of the network (the depth, which a refusal may name). */
  readonly layers?: number;
}
