/** POST /jacobian: the network's outputs and their derivatives with respect to inputs or parameters. */
import { z } from 'zod';
import { JACOBIAN_WRT } from '../src/task.ts';
import { EXAMPLE_INPUTS, EXAMPLE_NETWORK, InputsSchema, JsonMatrixSchema as JsonMatrix, NetworkSchema } from './common.ts';

export const JacobianRequestSchema = z
  .strictObject({
    network: NetworkSchema,
    inputs: InputsSchema,
    wrt: z
      .enum(JACOBIAN_WRT)
      .default('inputs')
      .describe("'inputs': J[n][k][i] = ∂y_k/∂x_i (PRML 5.3.4), N × K × D; 'parameters': ∂y_k/∂w_i, N × K × W."),
  })
  .meta({ example: { network: EXAMPLE_NETWORK, inputs: EXAMPLE_INPUTS, wrt: 'inputs' } });

export type JacobianRequest = z.output<typeof JacobianRequestSchema>;

export const JacobianResponseSchema = z.object({
  parameterCount: z.number().int().optional().describe('W, with wrt = parameters.'),
  outputs: JsonMatrix.describe('y, N × K.'),
  jacobian: z.array(JsonMatrix).describe('N × K × D (wrt inputs) or N × K × W (wrt parameters).'),
});
