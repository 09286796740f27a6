/** POST /hessian/kfac, /hessian/eigen and /hessian/inverse-vector-product: curvature at scale. */
import { z } from 'zod';
import { EIGEN_HESSIANS, EIGEN_METHODS, EIGEN_WHICH, PRECONDITIONERS, SOLVE_HESSIANS, SOLVE_METHODS } from '../src/core/index.ts';
import {
  checkTargets, EXAMPLE_INPUTS, EXAMPLE_NETWORK, EXAMPLE_TARGETS, JsonMatrixSchema as JsonMatrix, JsonVectorSchema as JsonVector, MatrixSchema,
  problemFields,
} from './common.ts';
import { answerComponent, requestComponent } from './components.ts';

const example = { network: EXAMPLE_NETWORK, inputs: EXAMPLE_INPUTS, targets: EXAMPLE_TARGETS, loss: 'sum-of-squares' };
const damping = z.number().positive();
const maxIterations = (otherwise: number) => z.number().int().min(1).max(1_000_000).default(otherwise);
const parameterCount = z.number().int().min(1).describe('W, the number of (selected) parameters.');

export const KfacRequestSchema = requestComponent('KfacRequest', z
  .strictObject({
    ...problemFields,
    damping: damping.optional().describe('α > 0: with it, the answer also has log det(K + αI) from the factors\' eigenvalues.'),
  })
  .superRefine(checkTargets), {
  damped: { summary: 'The factors of both layers, and log det(K + 0.1 I)', value: { ...example, damping: 0.1 } },
});
export type KfacRequest = z.output<typeof KfacRequestSchema>;

export const KfacLayerSchema = answerComponent('KfacLayer', z.object({
  layer: z.number().int().min(0).describe('The layer, an index into network.layers.'),
  inputFactor: JsonMatrix.describe('A_l = (1/N) Σ_n z̃ z̃ᵀ, (in_l + 1) × (in_l + 1) (in_l × in_l without a bias), z̃ = (z_{l−1}, 1).'),
  outputFactor: JsonMatrix.describe('G_l = Σ_n R_{l,n}ᵀ L_n R_{l,n}, out_l × out_l (divided by N for the mean).'),
}));

export const KfacResponseSchema = answerComponent('KfacAnswer', z.object({
  parameterCount,
  layers: z
    .array(KfacLayerSchema)
    .describe(
      'One entry per selected layer, in layer order. The KFAC block of layer l is G_l ⊗ A_l in the augmented layout: the entry for ' +
        'parameters (i, j) and (p, q) of [W_l | b_l] (column in_l the bias) is G_l[i][p]·A_l[j][q]; in the service\'s parameter order ' +
        '(weights row-major, then bias) parameter (i, j) is at offset + i·in_l + j for j < in_l and offset + out_l·in_l + i for the bias.',
    ),
  logDeterminant: z.number().optional().describe('With damping: log det(K + αI) = Σ_l Σ_{i,j} log(μ_{l,i} λ_{l,j} + α).'),
}));

export const EigenRequestSchema = requestComponent('EigenRequest', z
  .strictObject({
    ...problemFields,
    hessian: z.enum(EIGEN_HESSIANS).default('exact').describe("Which matrix: 'exact' or 'outer-product' (Gauss–Newton)."),
    count: z.number().int().min(1).max(100_000).default(1).describe('k: how many eigenpairs (at most W).'),
    which: z.enum(EIGEN_WHICH).default('largest').describe("'largest' (algebraically), 'smallest' (algebraically) or 'magnitude' (largest |λ|)."),
    method: z
      .enum(EIGEN_METHODS)
      .default('auto')
      .describe("'lanczos': matrix-free, curvature-vector products only, O(N·W) memory and time per product, never W²; 'dense': the dense matrix and a LAPACK symmetric eigensolver (413 where W² does not fit); 'auto': dense up to W = 2000, Lanczos beyond."),
    tolerance: z.number().positive().max(1).default(1e-8).describe('The relative residual to reach: ‖H v − λ v‖ ≤ tolerance · max(|λ|, ‖H‖ estimate).'),
    maxIterations: maxIterations(1000).describe('Most curvature-vector products Lanczos may use (default 1000); past it, 422 NOT_CONVERGED saying how far it got.'),
  })
  .superRefine(checkTargets), {
  lanczos: { summary: 'The two largest eigenpairs of the exact Hessian, by Lanczos', value: { ...example, count: 2, which: 'largest', method: 'lanczos' } },
});
export type EigenRequest = z.output<typeof EigenRequestSchema>;

export const EigenResponseSchema = answerComponent('EigenAnswer', z.object({
  parameterCount,
  method: z.enum(['lanczos', 'dense']).describe('The method used (auto resolved).'),
  iterations: z.number().int().min(0).describe('Curvature-vector products used (0 for dense).'),
  eigenvalues: JsonVector.describe('k eigenvalues: descending for largest, by |λ| for magnitude, ascending for smallest.'),
  eigenvectors: JsonMatrix.describe('W × k: column j is the unit eigenvector of eigenvalues[j], in the parameter order.'),
  residuals: JsonVector.describe('k: the achieved ‖H v − λ v‖ of each pair.'),
}));

export const InverseVectorProductRequestSchema = requestComponent('InverseVectorProductRequest', z
  .strictObject({
    ...problemFields,
    damping: damping.describe('α > 0: the answers are (H + αI)⁻¹ v.'),
    vectors: MatrixSchema.describe('m × W: one vector a row, in the parameter order (a multipart body may send it as a .npy part named vectors).'),
    hessian: z.enum(SOLVE_HESSIANS).default('outer-product').describe("Which H: 'outer-product' (default), 'exact', or 'kfac' (the block-diagonal KFAC matrix of POST /hessian/kfac, solved exactly from its factors' eigenvectors)."),
    method: z
      .enum(SOLVE_METHODS)
      .default('auto')
      .describe("'cg': conjugate gradients on curvature-vector products (matrix-free); 'cholesky': the dense matrix (413 where W² does not fit); 'auto': Cholesky up to W = 3000, CG beyond. Ignored for hessian 'kfac'."),
    tolerance: z.number().positive().max(1).default(1e-10).describe('The relative residual ‖(H + αI) x − v‖ / ‖v‖ CG reaches.'),
    maxIterations: maxIterations(1000).describe('Most curvature-vector products CG may use per vector (default 1000); past it, 422 NOT_CONVERGED.'),
    preconditioner: z.enum(PRECONDITIONERS).default('none').describe("CG's preconditioner: 'none' (default), 'diagonal' (Jacobi, (diag H + α)⁻¹, one O(N·W) pass) or 'kfac' ((KFAC + αI)⁻¹ from the factors' eigenvectors). Unpreconditioned CG needs at most rank(H) + 1 products, and the outer product's rank is at most N·K: where that is below W, the eigenvalues at α form one cluster that a preconditioner breaks up (784-128-10, N = 2000, α = 0.1: 281 products unpreconditioned, 888 with KFAC, 1912 with Jacobi)."),
  })
  .superRefine(checkTargets), {
  auto: { summary: '(G + 0.1 I)⁻¹ v for one vector (auto: Cholesky at this size)', value: { ...example, damping: 0.1, vectors: [[1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0.5]] } },
  cg: { summary: 'The same by conjugate gradients', value: { ...example, damping: 0.1, method: 'cg', vectors: [[1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0.5]] } },
});
export type InverseVectorProductRequest = z.output<typeof InverseVectorProductRequestSchema>;

export const InverseVectorProductResponseSchema = answerComponent('InverseVectorProductAnswer', z.object({
  parameterCount,
  method: z.enum(['cg', 'cholesky', 'kfac']).describe('The method used (auto resolved).'),
  solutions: JsonMatrix.describe('m × W: row i = (H + αI)⁻¹ v_i.'),
  iterations: JsonVector.describe('m: curvature-vector products used per vector (0 for Cholesky and KFAC).'),
  residuals: JsonVector.describe('m: the achieved ‖(H + αI) x − v‖ / ‖v‖.'),
}));
