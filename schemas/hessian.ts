/** POST /hessian, /hessian/vector-product and /hessian/inverse. */
import { z } from 'zod';
import { HESSIAN_METHODS, HESSIAN_STRUCTURES, INVERSE_HESSIANS, INVERSE_METHODS } from '../src/core/index.ts';
import {
  checkTargets, IndexListSchema, EXAMPLE_INPUTS, EXAMPLE_NETWORK, EXAMPLE_TARGETS, JsonMatrixSchema as JsonMatrix, JsonVectorSchema as JsonVector, problemFields, VectorSchema,
} from './common.ts';
import { answerComponent, requestComponent } from './components.ts';

/** [start, end], two integers. */
const RowsSchema = IndexListSchema.refine((r) => r.length === 2, { message: 'expected two integers, [start, end]' }).meta({ type: 'array', minItems: 2, maxItems: 2, items: { type: 'integer' } });

const example = { network: EXAMPLE_NETWORK, inputs: EXAMPLE_INPUTS, targets: EXAMPLE_TARGETS, loss: 'sum-of-squares' };

export const HessianRequestSchema = requestComponent('HessianRequest', z
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
      .describe("'full' (W × W) or 'block-diagonal': for exact and outer-product, the diagonal block of each selected layer only (Σ W_l² memory and work), in JSON as blocks, in .npz as `block_<l>`."),
    rows: RowsSchema.optional().describe('[start, end]: rows start … end − 1 of the exact or outer-product Hessian only, (end − start) × W, in (end − start)·W memory; the size limits apply to the slab.'),
  })
  .superRefine(checkTargets), {
  exact: { summary: 'The exact Hessian, W × W (W = 13)', value: { ...example, method: 'exact' } },
  diagonal: { summary: 'Its exact diagonal and trace', value: { ...example, method: 'diagonal' } },
  blockDiagonal: { summary: 'One block per layer (9 × 9 and 4 × 4)', value: { ...example, method: 'exact', structure: 'block-diagonal' } },
  rows: { summary: 'Rows 0 and 1 of it, 2 × W', value: { ...example, method: 'exact', rows: [0, 2] } },
  outputLayer: { summary: "The Gauss–Newton block of the output layer alone (parameters)", value: { ...example, method: 'outer-product', parameters: { layers: [-1] } } },
});
export type HessianRequest = z.output<typeof HessianRequestSchema>;

const parameterCount = z.number().int().min(1).describe('W, the number of (selected) parameters.');

export const HessianMatrixAnswerSchema = answerComponent('HessianMatrixAnswer', z
  .object({
    parameterCount,
    hessian: JsonMatrix.describe('H, W × W, rows and columns in the parameter order.'),
    warnings: z.array(z.string()).optional().describe("Notes on reading this answer, when there are any: with finite-difference, the columns whose differences cross the kink of relu or leaky-relu at 0 (meaningless there; use 'exact'). Binary answers name their codes in X-Warnings."),
  })
  .describe("Methods 'exact', 'outer-product' and 'finite-difference' (structure 'full', no rows): the whole matrix."));

export const HessianRowsAnswerSchema = answerComponent('HessianRowsAnswer', z
  .object({
    parameterCount,
    rowStart: z.number().int().min(0).describe("The slab's first row (rows[0])."),
    rowEnd: z.number().int().min(1).describe('One past its last row (rows[1]).'),
    hessian: JsonMatrix.describe('Rows rowStart … rowEnd − 1 of H, (rowEnd − rowStart) × W.'),
  })
  .describe("Methods 'exact' and 'outer-product' with rows [start, end]: a slab of rows, for assembling a Hessian larger than one machine."));

export const HessianDiagonalAnswerSchema = answerComponent('HessianDiagonalAnswer', z
  .object({
    parameterCount,
    diagonal: JsonVector.describe('The diagonal of H, W entries in the parameter order.'),
    trace: z.number().optional().describe("Method 'diagonal' only: the trace of H, the sum of the exact diagonal."),
  })
  .describe("Methods 'diagonal' (the exact diagonal, with its trace) and 'diagonal-approximation' (Becker–LeCun, no trace)."));

export const HessianBlockSchema = answerComponent('HessianBlock', z
  .object({
    layer: z.number().int().min(0).describe('The layer, an index into network.layers.'),
    hessian: JsonMatrix.describe("The layer's diagonal block of H, W_l × W_l with W_l = out_l · (in_l + 1) (out_l · in_l without a bias), in its parameter order."),
  }));

export const HessianBlocksAnswerSchema = answerComponent('HessianBlocksAnswer', z
  .object({ parameterCount, blocks: z.array(HessianBlockSchema).min(1).describe('One block per selected layer, in layer order.') })
  .describe("Structure 'block-diagonal' (methods 'exact' and 'outer-product'): the diagonal blocks only."));

export const HessianResponseSchema = answerComponent('HessianAnswer', z
  .xor([HessianMatrixAnswerSchema, HessianRowsAnswerSchema, HessianDiagonalAnswerSchema, HessianBlocksAnswerSchema])
  .describe(
    'One of four forms, by the request: `hessian` (W × W) for the dense methods; `hessian` with rowStart and rowEnd for rows; ' +
      "`diagonal` (and `trace`) for 'diagonal' and 'diagonal-approximation'; `blocks` for structure 'block-diagonal'. " +
      'An answer never holds both `hessian` and `diagonal`.',
  ));

export const VectorProductRequestSchema = requestComponent('VectorProductRequest', z
  .strictObject({
    ...problemFields,
    vector: VectorSchema.describe('v, W entries in the parameter order.'),
  })
  .superRefine(checkTargets), {
  product: { summary: 'H v for v = e_0 + ½ e_12', value: { ...example, vector: [1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0.5] } },
});
export type VectorProductRequest = z.output<typeof VectorProductRequestSchema>;

export const VectorProductResponseSchema = answerComponent('VectorProductAnswer', z.object({
  parameterCount,
  product: JsonVector.describe('H v (W), by the R-operator (PRML 5.4.6), O(NW).'),
}));

export const InverseRequestSchema = requestComponent('InverseRequest', z
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
  .superRefine(checkTargets), {
  cholesky: { summary: '(G + 0.1 I)⁻¹ of the outer-product Hessian G, by Cholesky', value: { ...example, damping: 0.1, method: 'cholesky', hessian: 'outer-product' } },
});
export type InverseRequest = z.output<typeof InverseRequestSchema>;

export const InverseResponseSchema = answerComponent('InverseAnswer', z.object({
  parameterCount,
  inverse: JsonMatrix.describe('(H + αI)⁻¹, W × W.'),
  logDeterminant: z.number().describe('log det(H + αI).'),
}));
