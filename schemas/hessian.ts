/** POST /hessian, /hessian/vector-product and /hessian/inverse. */
import { z } from 'zod';
import { HESSIAN_METHODS, INVERSE_HESSIANS, INVERSE_METHODS } from '../src/task.ts';
import {
  EXAMPLE_INPUTS, EXAMPLE_NETWORK, EXAMPLE_TARGETS, InputsSchema, JsonMatrixSchema as JsonMatrix, JsonVectorSchema as JsonVector, LossSchema, NetworkSchema, TargetsSchema, VectorSchema,
} from './common.ts';


const problemFields = {
  network: NetworkSchema,
  inputs: InputsSchema,
  targets: TargetsSchema,
  loss: LossSchema,
};
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
  })
  .meta({ example: { ...example, method: 'exact' } });
export type HessianRequest = z.output<typeof HessianRequestSchema>;

export const HessianResponseSchema = z.object({
  parameterCount: z.number().int().describe('W.'),
  hessian: JsonMatrix.optional().describe('W × W, for exact, outer-product and finite-difference.'),
  diagonal: JsonVector.optional().describe('W, for diagonal and diagonal-approximation.'),
});

export const VectorProductRequestSchema = z
  .strictObject({
    ...problemFields,
    vector: VectorSchema.describe('v, W entries in the parameter order.'),
  })
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
      .default('woodbury')
      .describe("'woodbury': sequential updates from αI (PRML 5.89), outer-product Hessian only; 'cholesky': a factorisation of H + αI."),
    hessian: z
      .enum(INVERSE_HESSIANS)
      .default('outer-product')
      .describe("Which H: 'outer-product' (positive semi-definite) or 'exact' (cholesky only; refused with a 422 where H + αI is not positive definite)."),
  })
  .meta({ example: { ...example, damping: 0.1, method: 'woodbury', hessian: 'outer-product' } });
export type InverseRequest = z.output<typeof InverseRequestSchema>;

export const InverseResponseSchema = z.object({
  parameterCount: z.number().int().describe('W.'),
  inverse: JsonMatrix.describe('(H + αI)⁻¹, W × W.'),
  logDeterminant: z.number().describe('log det(H + αI).'),
});
