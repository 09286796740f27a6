/** POST /hessian, /hessian/vector-product and /hessian/inverse. */
import { z } from 'zod';
import { HESSIAN_METHODS, HESSIAN_STRUCTURES, INVERSE_HESSIANS, INVERSE_METHODS } from '../src/core/index.ts';
import {
  checkTargets, IndexListSchema, EXAMPLE_INPUTS, EXAMPLE_NETWORK, EXAMPLE_TARGETS, JsonMatrixSchema as JsonMatrix, JsonVectorSchema as JsonVector, problemFields, VectorSchema,
} from './common.ts';

/** [start, end], two integers. */
const RowsSchema = IndexListSchema.refine((r) => r.length === 2, { message: 'expected two integers, [start, end]' }).meta({ type: 'array', minItems: 2, maxItems: 2, items: { type: 'integer' } });

const example = { network: EXAMPLE_NETWORK, inputs: EXAMPLE_INPUTS, targets: EXAMPLE_TARGETS, loss: 'sum-of-squares' };

export const HessianRequestSchema = z
  .strictObject({
    ...problemFields,
    method: z
      .enum(HESSIAN_METHODS)
      .default('exact')
      .describe(
        "'exact': full Hessian by extended backpropagation (PRML 5.4.5); 'outer-product': Gauss–Newton Σ BᵀLB (5.84–5.85); " +
          "'diagonal': the exact diagonal; 'diagonal-approximation': Becker–LeCun (5.79–5.81); " +
          "'finite-difference': central differences of gradients (5.4.4), a check.",
      ),
    structure: z
      .enum(HESSIAN_STRUCTURES)
      .default('full')
      .describe("'full' (W × W) or 'block-diagonal': for exact and outer-product, the diagonal block of each selected layer only (Σ W_l² memory and work), in JSON as blocks, in .npz as block_<l>."),
    rows: RowsSchema.optional().describe('[start, end]: rows start … end − 1 of the exact or outer-product Hessian only, (end − start) × W, in (end − start)·W memory; the size limits apply to the slab.'),
  })
  .superRefine(checkTargets)
  .meta({ example: { ...example, method: 'exact' } });
export type HessianRequest = z.output<typeof HessianRequestSchema>;

export const HessianResponseSchema = z.object({
  parameterCount: z.number().int().describe('W (of the selected parameters).'),
  hessian: JsonMatrix.optional().describe('W × W, for exact, outer-product and finite-difference; (end − start) × W with rows.'),
  diagonal: JsonVector.optional().describe('W, for diagonal and diagonal-approximation.'),
  trace: z.number().optional().describe("The exact trace of H (the sum of the exact diagonal), for method 'diagonal'."),
  blocks: z.array(z.object({ layer: z.number().int(), hessian: JsonMatrix })).optional().describe("structure 'block-diagonal': one W_l × W_l block per selected layer, in layer order."),
  rowStart: z.number().int().optional().describe('With rows: the slab\'s first row.'),
  rowEnd: z.number().int().optional().describe('With rows: one past its last row.'),
  warnings: z.array(z.string()).optional().describe("Notes on reading this answer, when there are any: with finite-difference, the columns whose differences cross the kink of relu or leaky-relu at 0 (meaningless there; use 'exact'). Binary answers name their codes in X-Warnings."),
});

export const VectorProductRequestSchema = z
  .strictObject({
    ...problemFields,
    vector: VectorSchema.describe('v, W entries in the parameter order.'),
  })
  .superRefine(checkTargets)
  .meta({ example: { ...example, vector: [1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0.5] } });
export type VectorProductRequest = z.output<typeof VectorProductRequestSchema>;

export const VectorProductResponseSchema = z.object({
  parameterCount: z.number().int().describe('W.'),
  product: JsonVector.describe('H v (W), by the R-operator (PRML 5.4.6), O(NW).'),
});

export const InverseRequestSchema = z
  .strictObject({
    ...problemFields,
    damping: z.number().positive().describe('α > 0: the answer is (H + αI)⁻¹.'),
    method: z
      .enum(INVERSE_METHODS)
      .default('cholesky')
      .describe("'cholesky' (default): a factorisation of H + αI (LAPACK), accurate to working precision; 'woodbury': sequential updates from αI (PRML 5.89), outer-product Hessian only."),
    hessian: z
      .enum(INVERSE_HESSIANS)
      .default('outer-product')
      .describe("Which H: 'outer-product' (positive semi-definite) or 'exact' (cholesky only; refused with a 422 where H + αI is not positive definite)."),
  })
  .superRefine(checkTargets)
  .meta({ example: { ...example, damping: 0.1, method: 'cholesky', hessian: 'outer-product' } });
export type InverseRequest = z.output<typeof InverseRequestSchema>;

export const InverseResponseSchema = z.object({
  parameterCount: z.number().int().describe('W.'),
  inverse: JsonMatrix.describe('(H + αI)⁻¹, W × W.'),
  logDeterminant: z.number().describe('log det(H + αI).'),
});
