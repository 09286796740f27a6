/**
 * The operations, one entry per endpoint: how its task is computed (run) and how much memory it
 * takes (footprint: the answer and the working set, from the estimates each method exports beside
 * its budgets). Adding an endpoint adds its task type (tasks.ts) and its entry here.
 */
import { jacobianScratchBytes, inputJacobian, inputJacobianChunk, parameterJacobian } from './jacobian.ts';
import {
  curvatureBlocks, curvatureRows, curvatureScratchBytes, curvatureWorkOf, exactHessian, hessianDiagonal, hessianDiagonalChunk, hessianDiagonalScratchBytes,
  outerProductHessian,
} from './hessian.ts';
import { diagonalApproximation, diagonalApproximationScratchBytes } from './diagonal-approximation.ts';
import { finiteDifferenceHessian, finiteDifferenceKinks, finiteDifferenceScratchBytes } from './finite-difference.ts';
import { curvatureOperator, hessianVectorProduct, hessianVectorProductScratchBytes } from './r-operator.ts';
import { checkDamping, choleskyInverse, choleskyScratchBytes, woodburyInverse, woodburyPlan, woodburyScratchBytes } from './inverse.ts';
import { denseEigen, EIGEN_DENSE_MAX, lanczosBasis, lanczosEigen } from './eigen.ts';
import { kfacApply, kfacChunk, kfacEigen, kfacFactors, kfacLogDeterminant, kfacPreconditioner, kfacScratchBytes, kfacSolve } from './kfac.ts';
import {
  choleskyWork, curvatureOperatorWork, diagonalApproximationWork, diagonalWork, eigenWork, gradientWork, inputJacobianWork, kfacEigenWork,
  kfacFactorsWork, kfacSolveWork, parameterJacobianWork, WorkMeter, woodburyWork, type Work,
} from './work.ts';
import { choleskySolve, conjugateGradient, jacobiPreconditioner, type Preconditioner as SolvePreconditioner, type SolveResult } from './solve.ts';
import { passesBytes } from './backprop.ts';
import { exactStackKind, type ExactStackKind } from './stack.ts';
import { CoreError } from './errors.ts';
import { assertFinite } from './finite.ts';
import { buildNetwork, countParameters, makeProblem, selectedLayers, type LayerSize, type Matrix, type Problem } from './network.ts';
import {
  isArrayResult, resultArrays, taskInputs, taskNetwork,
  type AnswerObject, type AnswerValue, type ArrayResult, type ComputeResult, type CurvatureTask, type Endpoint, type Preconditioner, type ProblemData, type TaskSummary,
} from './tasks.ts';

/** What a task will hold, in bytes, how much work it is, and what a refusal over a size says of it. */
export interface TaskFootprint {
  readonly summary: TaskSummary;
  /** The answer: every array it holds. */
  readonly answerBytes: number;
  /** The answer plus everything else alive at the peak of the computation. */
  readonly totalBytes: number;
  /** The work expected (src/core/work.ts; iterative methods at a typical number of products). */
  readonly work: Work;
  /** The most work it can be: iterative methods at maxIterations; the same as `work` for the others. */
  readonly workBound: Work;
  /** The work of the same task with one data point: what does not shrink with fewer data points. */
  readonly fixedWork: Work;
}

/** A task's sizes, as the operations' estimates need them. */
interface Dims {
  readonly layers: readonly Required<LayerSize>[];
  readonly n: number;
  readonly d: number;
  readonly k: number;
  /** The selected parameters. */
  readonly w: number;
}

/** Where auto solves by Cholesky rather than conjugate gradients: W at most this. */
export const SOLVE_DENSE_MAX = 3000;

/**
 * Typical curvature-vector products of an iterative method, for the expected work (the bound
 * takes maxIterations): CG took 281 products unpreconditioned at 784-128-10, N = 2000, α = 0.1
 * (README, issue 12's measurements); Lanczos converges in a few restarts of its basis.
 */
const TYPICAL_CG_PRODUCTS = 300;
const TYPICAL_LANCZOS_RESTARTS = 3;

interface OperationFootprint {
  readonly answerDoubles: number;
  readonly scratchBytes: number;
  readonly method?: TaskSummary['method'];
  readonly work: Work;
  /** Where it differs from `work` (iterative methods): the work at maxIterations. */
  readonly workBound?: Work;
}

interface Operation<T extends CurvatureTask> {
  run(task: T): ComputeResult;
  /** Doubles of the answer, bytes of scratch besides it and the passes, the method a refusal names, and the work (src/core/work.ts). */
  footprint(task: T, dims: Dims): OperationFootprint;
}

type Operations = { readonly [E in Endpoint]: Operation<Extract<CurvatureTask, { endpoint: E }>> };

const OPERATIONS: Operations = {
  jacobian: {
    run(task): ComputeResult {
      const net = buildNetwork(task.network, task.network.parameters);
      if (task.wrt === 'parameters') {
        const r = parameterJacobian(net, task.inputs);
        return { fields: { parameterCount: net.parameterCount, outputs: matrix(r.outputs), jacobian: array(r.jacobian, r.shape) }, principal: 'jacobian' };
      }
      const r = inputJacobian(net, task.inputs);
      return { fields: { outputs: matrix(r.outputs), jacobian: array(r.jacobian, r.shape) }, principal: 'jacobian' };
    },
    footprint: (task, { layers, n, d, k, w }) => ({
      answerDoubles: n * k * (task.wrt === 'parameters' ? w : d) + n * k,
      scratchBytes: jacobianScratchBytes(layers, n, task.wrt),
      method: task.wrt,
      work: task.wrt === 'parameters' ? parameterJacobianWork(layers, n, w) : inputJacobianWork(layers, n, inputJacobianChunk(layers, n)),
    }),
  },
  hessian: {
    run(task): ComputeResult {
      const p = problem(task.problem);
      const w = p.network.parameterCount;
      checkStructure(task);
      switch (task.method) {
        case 'diagonal': {
          const diagonal = hessianDiagonal(p);
          let trace = 0;
          for (const x of diagonal) trace += x;
          return { fields: { parameterCount: w, diagonal: array(diagonal, [w]), trace }, principal: 'diagonal' };
        }
        case 'diagonal-approximation':
          return { fields: { parameterCount: w, diagonal: array(diagonalApproximation(p), [w]) }, principal: 'diagonal' };
        case 'finite-difference': {
          const kinks = finiteDifferenceKinks(p);
          return {
            fields: { parameterCount: w, hessian: array(finiteDifferenceHessian(p), [w, w]) },
            principal: 'hessian',
            warnings: kinks ? [{ code: 'FINITE_DIFFERENCE_KINK', params: kinks }] : undefined,
          };
        }
        case 'exact':
        case 'outer-product': {
          const exact = task.method === 'exact';
          if (task.structure === 'block-diagonal') {
            const blocks = curvatureBlocks(p, exact);
            const size = (l: number) => p.network.layers[l].size;
            const arrays = blocks.map((b) => ({ layer: b.layer, hessian: array(b.block, [size(b.layer), size(b.layer)]) }));
            return {
              fields: { parameterCount: w, blocks: arrays },
              members: arrays.map((b) => ({ name: `block_${b.layer}`, array: b.hessian })),
            };
          }
          if (task.rows) {
            const [start, end] = checkRows(task.rows, w);
            return { fields: { parameterCount: w, rowStart: start, rowEnd: end, hessian: array(curvatureRows(p, exact, start, end), [end - start, w]) }, principal: 'hessian' };
          }
          return { fields: { parameterCount: w, hessian: array(exact ? exactHessian(p) : outerProductHessian(p), [w, w]) }, principal: 'hessian' };
        }
      }
    },
    footprint(task, { layers, n, w }) {
      const method = task.method;
      switch (method) {
        case 'diagonal':
          return { answerDoubles: w, scratchBytes: hessianDiagonalScratchBytes(layers, n), method, work: diagonalWork(layers, n, true, hessianDiagonalChunk(layers, n), lowestOf(layers)) };
        case 'diagonal-approximation':
          return { answerDoubles: w, scratchBytes: diagonalApproximationScratchBytes(layers, n), method, work: diagonalApproximationWork(layers, n) };
        case 'finite-difference':
          // 2W gradients, each with the parameters copied into a network of their own, then H symmetrised
          return { answerDoubles: w * w, scratchBytes: finiteDifferenceScratchBytes(layers, n, w), method, work: new WorkMeter().add(gradientWork(layers, n), 2 * w).touch(4 * w * w).work() };
        case 'exact':
        case 'outer-product': {
          const exact = method === 'exact';
          if (task.structure === 'block-diagonal') {
            let doubles = 0;
            for (const l of layers) if (l.selected) doubles += (l.out * (l.in + (l.hasBias ? 1 : 0))) ** 2;
            return { answerDoubles: doubles, scratchBytes: curvatureScratchBytes(layers, n, exact, 'blocks'), method: `${method}, block-diagonal`, work: curvatureWorkOf(layers, n, exact, 'blocks') };
          }
          if (task.rows) {
            const [start, end] = task.rows;
            const rows = Math.max(0, Math.min(end, w) - Math.max(0, start));
            return { answerDoubles: rows * w, scratchBytes: curvatureScratchBytes(layers, n, exact, [start, end]), method: `${method}, rows ${start}–${end}`, work: curvatureWorkOf(layers, n, exact, [start, end]) };
          }
          const stack = exactStackOf(task.problem);
          return { answerDoubles: w * w, scratchBytes: curvatureScratchBytes(layers, n, exact, 'matrix', stack), method, work: fullCurvatureWork(layers, n, exact, stack) };
        }
      }
    },
  },
  'hessian-vector-product': {
    run(task): ComputeResult {
      const p = problem(task.problem);
      const w = p.network.parameterCount;
      return { fields: { parameterCount: w, product: array(hessianVectorProduct(p, task.vector), [w]) }, principal: 'product' };
    },
    footprint: (_task, { layers, n, w }) => ({ answerDoubles: w, scratchBytes: hessianVectorProductScratchBytes(layers, n, w), work: curvatureOperatorWork(layers, n, w, 1) }),
  },
  'hessian-inverse': {
    run(task): ComputeResult {
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
      return { fields: { parameterCount: w, inverse: array(r.inverse, [w, w]), logDeterminant: r.logDeterminant }, principal: 'inverse' };
    },
    footprint: (task, { layers, n, k, w }) => {
      const plan = woodburyPlan(w, k, n);
      const exact = task.hessian === 'exact', stack = exactStackOf(task.problem);
      return {
        answerDoubles: w * w,
        scratchBytes: task.method === 'woodbury' ? woodburyScratchBytes(w, k, n) : curvatureScratchBytes(layers, n, exact, 'matrix', stack) + choleskyScratchBytes(w),
        method: task.method,
        work: task.method === 'woodbury'
          ? woodburyWork(layers, n, w, k, plan.chunk, plan.kMax)
          : new WorkMeter().add(fullCurvatureWork(layers, n, exact, stack)).add(choleskyWork(w)).work(),
      };
    },
  },
  'hessian-kfac': {
    run(task): ComputeResult {
      if (task.damping !== undefined) checkDamping(task.damping);
      const p = problem(task.problem);
      const factors = kfacFactors(p);
      const layers = factors.map((f) => ({
        layer: f.layer, inputFactor: array(f.inputFactor, [f.aug, f.aug]), outputFactor: array(f.outputFactor, [f.out, f.out]),
      }));
      const fields: Record<string, AnswerValue> = { parameterCount: p.network.parameterCount, layers };
      if (task.damping !== undefined) fields.logDeterminant = kfacLogDeterminant(kfacEigen(factors), task.damping);
      return {
        fields,
        members: layers.flatMap((l) => [{ name: `A_${l.layer}`, array: l.inputFactor }, { name: `G_${l.layer}`, array: l.outputFactor }]),
      };
    },
    footprint: (_task, { layers, n }) => {
      let doubles = 0;
      for (const l of layers) if (l.selected) doubles += (l.in + 1) ** 2 + l.out ** 2;
      // the factors' eigen-decompositions hold about twice the factors again
      const work = new WorkMeter().add(kfacFactorsWork(layers, n, kfacChunk(layers, n), lowestOf(layers)));
      if (_task.damping !== undefined) work.add(kfacEigenWork(layers));
      return { answerDoubles: doubles, scratchBytes: kfacScratchBytes(layers, n) + 8 * 2 * doubles, work: work.work() };
    },
  },
  'hessian-eigen': {
    run(task): ComputeResult {
      const p = problem(task.problem);
      const w = p.network.parameterCount;
      if (task.count > w) throw new CoreError('INVALID_COUNT', { count: task.count, w });
      const exact = task.hessian === 'exact';
      const method = eigenMethod(task.method, w);
      const r = method === 'dense'
        ? denseEigen(exact ? exactHessian(p) : outerProductHessian(p), w, task.count, task.which)
        : lanczosEigen(curvatureOperator(p, !exact), task.count, task.which, { tolerance: task.tolerance, maxIterations: task.maxIterations });
      const k = task.count;
      return {
        fields: {
          parameterCount: w, method, iterations: r.iterations,
          eigenvalues: array(r.eigenvalues, [k]), eigenvectors: array(r.eigenvectors, [w, k]), residuals: array(r.residuals, [k]),
        },
      };
    },
    footprint(task, { layers, n, w }) {
      const k = Math.min(task.count, w);
      const method = eigenMethod(task.method, w);
      const answerDoubles = w * k + 2 * k;
      const exact = task.hessian === 'exact';
      if (method === 'dense') {
        // the matrix, a copy for the solver and its workspace (up to 2W² for divide and conquer)
        const stack = exactStackOf(task.problem);
        const work = new WorkMeter().add(fullCurvatureWork(layers, n, exact, stack)).add(eigenWork(w, k)).work();
        return { answerDoubles, scratchBytes: 8 * 4 * w * w + curvatureScratchBytes(layers, n, exact, 'matrix', stack), method, work };
      }
      const basis = lanczosBasis(k, w);
      // each product, then the full reorthogonalisation against the basis (two passes of V u and Vᵀ c), and per restart T's eigenpairs
      const lanczos = (products: number) => new WorkMeter().add(curvatureOperatorWork(layers, n, w, products))
        .gemm(basis, 1, w, 4 * products).add(eigenWork(basis, basis), Math.ceil(products / basis)).touch(2 * basis * w * Math.ceil(products / basis)).work();
      const typical = Math.min(task.maxIterations, TYPICAL_LANCZOS_RESTARTS * basis + k);
      return {
        answerDoubles, scratchBytes: 8 * (2 * basis * w + basis * basis + k * w) + hessianVectorProductScratchBytes(layers, n, w), method,
        work: lanczos(typical), workBound: lanczos(task.maxIterations + k),
      };
    },
  },
  'hessian-inverse-vector-product': {
    run(task): ComputeResult {
      const p = problem(task.problem);
      const w = p.network.parameterCount;
      const { rows: m, cols } = task.vectors;
      if (cols !== w) throw new CoreError('SHAPE_MISMATCH', { reason: 'vectorLength', field: 'vectors', length: cols, w });
      const v = task.vectors.data;
      let r: SolveResult;
      const method = solveMethod(task.hessian, task.method, w);
      if (task.hessian === 'kfac') {
        checkDamping(task.damping);
        const factors = kfacFactors(p);
        const solutions = kfacSolve(p.network.layers, kfacEigen(factors), task.damping, v, m, w);
        const applied = kfacApply(p.network.layers, factors, task.damping, solutions, m, w);
        const residuals = new Float64Array(m);
        for (let i = 0; i < m; i++) {
          let s = 0, b = 0;
          for (let j = 0; j < w; j++) { const d = applied[i * w + j] - v[i * w + j]; s += d * d; b += v[i * w + j] ** 2; }
          residuals[i] = b === 0 ? Math.sqrt(s) : Math.sqrt(s / b);
        }
        r = { solutions, iterations: new Float64Array(m), residuals };
      } else {
        const exact = task.hessian === 'exact';
        const op = curvatureOperator(p, !exact);
        if (method === 'cholesky') {
          r = choleskySolve(exact ? exactHessian(p) : outerProductHessian(p), w, task.damping, v, m, op);
        } else {
          r = conjugateGradient(op, task.damping, v, m, { tolerance: task.tolerance, maxIterations: task.maxIterations, precondition: preconditioner(p, task.preconditioner, exact, task.damping) });
        }
      }
      return {
        fields: {
          parameterCount: w, method,
          solutions: array(r.solutions, [m, w]), iterations: array(r.iterations, [m]), residuals: array(r.residuals, [m]),
        },
        principal: 'solutions',
      };
    },
    footprint(task, { layers, n, w }) {
      const m = task.vectors.rows;
      const method = solveMethod(task.hessian, task.method, w);
      const answerDoubles = m * w + 2 * m;
      // the factors, their eigenvectors and eigenvalues (3 × Σ aug² + out², generously), and the chunks that form them
      let factorDoubles = 0;
      for (const l of layers) if (l.selected) factorDoubles += (l.in + 1) ** 2 + l.out ** 2;
      const kfacBytes = kfacScratchBytes(layers, n) + 8 * 3 * factorDoubles;
      const exact = task.hessian === 'exact';
      const factorsWork = () => new WorkMeter().add(kfacFactorsWork(layers, n, kfacChunk(layers, n), lowestOf(layers))).add(kfacEigenWork(layers));
      if (task.hessian === 'kfac') {
        const work = factorsWork().add(kfacSolveWork(layers, 2 * m)).touch(3 * m * w).work();
        return { answerDoubles, scratchBytes: kfacBytes + 8 * m * w, method, work };
      }
      const operator = hessianVectorProductScratchBytes(layers, n, w);
      if (method === 'cholesky') {
        // the matrix, its factorisation (W³/3), two triangular solves per vector, and each solution's residual by a product
        const stack = exactStackOf(task.problem);
        const work = new WorkMeter().add(fullCurvatureWork(layers, n, exact, stack)).kernel(w * w * w / 3, w * w).gemm(w, 2 * m, w)
          .add(curvatureOperatorWork(layers, n, w, m)).work();
        return { answerDoubles, scratchBytes: 8 * w * w + curvatureScratchBytes(layers, n, exact, 'matrix', stack) + operator, method, work };
      }
      const pre = task.preconditioner === 'kfac' ? kfacBytes : task.preconditioner === 'diagonal' ? 8 * w + hessianDiagonalScratchBytes(layers, n) : 0;
      const cg = (perVector: number) => {
        const meter = new WorkMeter().add(curvatureOperatorWork(layers, n, w, m * perVector)).touch(12 * w * m * perVector);
        if (task.preconditioner === 'kfac') meter.add(factorsWork().work()).add(kfacSolveWork(layers, m * perVector));
        if (task.preconditioner === 'diagonal') meter.add(diagonalWork(layers, n, exact, hessianDiagonalChunk(layers, n), lowestOf(layers)));
        return meter.work();
      };
      return {
        answerDoubles, scratchBytes: 8 * 6 * w + operator + pre, method: task.preconditioner === 'none' ? method : `${method}, ${task.preconditioner} preconditioner`,
        work: cg(Math.min(task.maxIterations, TYPICAL_CG_PRODUCTS)), workBound: cg(task.maxIterations),
      };
    },
  },
};

/** The lowest selected layer (the layers' count when none is). */
function lowestOf(layers: readonly Required<LayerSize>[]): number {
  const l = layers.findIndex((x) => x.selected);
  return l < 0 ? layers.length : l;
}

/** The whole (selected) exact or outer-product Hessian's work, in the form it will be computed in. */
function fullCurvatureWork(layers: readonly Required<LayerSize>[], n: number, exact: boolean, exactStack: ExactStackKind | undefined): Work {
  return curvatureWorkOf(layers, n, exact, 'matrix', exactStack);
}

/** CG's M⁻¹: none, Jacobi from H's own diagonal, or the KFAC matrix's exact solve. */
function preconditioner(p: Problem, kind: Preconditioner, exact: boolean, damping: number): SolvePreconditioner | undefined {
  if (kind === 'diagonal') return jacobiPreconditioner(hessianDiagonal(p, exact), damping);
  if (kind === 'kfac') return kfacPreconditioner(p.network.layers, kfacEigen(kfacFactors(p)), damping, p.network.parameterCount);
  return undefined;
}

/** Whether (and how) the exact Hessian of this problem has the stack form (stack.ts), from its loss and output activation. */
function exactStackOf(problem: ProblemData): ExactStackKind | undefined {
  return exactStackKind(problem.loss, problem.network.layers[problem.network.layers.length - 1]?.activation ?? '');
}

/** The eigensolver auto picks: dense up to EIGEN_DENSE_MAX parameters, Lanczos beyond. */
function eigenMethod(method: 'auto' | 'lanczos' | 'dense', w: number): 'lanczos' | 'dense' {
  return method === 'auto' ? (w <= EIGEN_DENSE_MAX ? 'dense' : 'lanczos') : method;
}

/** The solver auto picks: the KFAC matrix's own, Cholesky up to SOLVE_DENSE_MAX parameters, CG beyond. */
function solveMethod(hessian: 'outer-product' | 'exact' | 'kfac', method: 'auto' | 'cg' | 'cholesky', w: number): string {
  if (hessian === 'kfac') return 'kfac';
  return method === 'auto' ? (w <= SOLVE_DENSE_MAX ? 'cholesky' : 'cg') : method;
}

/** Block-diagonal and row slabs are of the exact and outer-product Hessians, and not together. */
function checkStructure(task: Extract<CurvatureTask, { endpoint: 'hessian' }>): void {
  const dense = task.method === 'exact' || task.method === 'outer-product';
  if (task.structure === 'block-diagonal' && !dense) throw new CoreError('UNSUPPORTED_METHOD', { reason: 'structureMethod', method: task.method });
  if (task.rows && !dense) throw new CoreError('UNSUPPORTED_METHOD', { reason: 'rowsMethod', method: task.method });
  if (task.rows && task.structure === 'block-diagonal') throw new CoreError('UNSUPPORTED_METHOD', { reason: 'rowsStructure' });
}

/** A valid slab 0 ≤ start < end ≤ W. */
function checkRows(rows: readonly [number, number], w: number): [number, number] {
  const [start, end] = rows;
  if (!(Number.isInteger(start) && Number.isInteger(end) && start >= 0 && start < end && end <= w)) {
    throw new CoreError('SHAPE_MISMATCH', { reason: 'rows', start, end, w });
  }
  return [start, end];
}

/** The operation of a task's endpoint (the one cast: a task's endpoint picks its entry). */
function operationOf<T extends CurvatureTask>(task: T): Operation<T> {
  return OPERATIONS[task.endpoint] as unknown as Operation<T>;
}

/** Runs one task and checks that its answer is finite. Throws CoreError for tasks that cannot be computed. */
export function compute(task: CurvatureTask): ComputeResult {
  const result = operationOf(task).run(task);
  const check = (name: string, v: AnswerValue) => {
    if (isArrayResult(v)) assertFinite(name, v.data, v.shape);
    else if (typeof v === 'number' && !Number.isFinite(v)) {
      throw new CoreError('NON_FINITE_RESULT', name === 'logDeterminant' ? { reason: 'logDeterminant', value: v } : { reason: 'entries', name, count: 1, index: [], value: v });
    } else if (Array.isArray(v)) for (const o of v as readonly AnswerObject[]) for (const [k, x] of Object.entries(o)) check(k, x);
  };
  for (const [name, v] of Object.entries(result.fields)) check(name, v);
  return result;
}

/**
 * The answer and peak memory of a task, from its array lengths alone (nothing allocated, in
 * microseconds): the forward and backward passes plus the operation's own estimate.
 */
export function taskFootprint(task: CurvatureTask): TaskFootprint {
  const network = taskNetwork(task);
  const selected = selectedLayers(network.layers.length, network.parameters);
  const layers: Required<LayerSize>[] = network.layers.map((l, i) => ({ out: l.weights.rows, in: l.weights.cols, hasBias: l.bias !== null, selected: selected[i] }));
  const n = taskInputs(task).rows;
  const dims: Dims = { layers, n, d: layers[0]?.in ?? 0, k: layers[layers.length - 1]?.out ?? 0, w: countParameters(layers) };
  const op = operationOf(task);
  const f = op.footprint(task, dims);
  const answerBytes = 8 * f.answerDoubles;
  // the answer's finiteness check (compute) reads every entry once
  const withCheck = (w: Work) => new WorkMeter().add(w).touch(f.answerDoubles).work();
  return {
    summary: { endpoint: task.endpoint, method: f.method, n, d: dims.d, k: dims.k, w: dims.w, layers: layers.length },
    answerBytes,
    totalBytes: answerBytes + passesBytes(layers, n) + f.scratchBytes,
    work: withCheck(f.work),
    workBound: withCheck(f.workBound ?? f.work),
    fixedWork: n > 1 ? withCheck(op.footprint(task, { ...dims, n: 1 }).work) : withCheck(f.work),
  };
}

function problem(data: ProblemData): Problem {
  return makeProblem(buildNetwork(data.network, data.network.parameters), data.inputs, data.targets, data.loss, data.reduction);
}

function matrix(m: Matrix): ArrayResult {
  return { data: m.data, shape: [m.rows, m.cols] };
}

function array(data: Float64Array, shape: readonly number[]): ArrayResult {
  return { data, shape };
}

export { resultArrays };
