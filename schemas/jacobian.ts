/** POST /jacobian: the network's outputs and their derivatives with respect to inputs or parameters. */
import { z } from 'zod';
import { JACOBIAN_WRT } from '../src/core/index.ts';
import { EXAMPLE_INPUTS, EXAMPLE_NETWORK, InputsSchema, JsonMatrixSchema as JsonMatrix, NetworkSchema, ParametersSchema } from './common.ts';
import { answerComponent, requestComponent } from './components.ts';

export const JacobianRequestSchema = requestComponent('JacobianRequest', z
  .strictObject({
    network: NetworkSchema,
    inputs: InputsSchema,
    wrt: z
      .enum(JACOBIAN_WRT)
      .default('inputs')
      .describe("'inputs': J[n][k][i] = ∂y_k/∂x_i (PRML 5.3.4), N × K × D; 'parameters': ∂y_k/∂w_i, N × K × W."),
    parameters: ParametersSchema.optional().describe("With wrt 'parameters': the layers whose parameters are the Jacobian's columns; absent: all."),
  }), {
  inputs: { summary: 'With respect to the inputs, N × K × D', value: { network: EXAMPLE_NETWORK, inputs: EXAMPLE_INPUTS, wrt: 'inputs' } },
  parameters: { summary: 'With respect to the parameters, N × K × W', value: { network: EXAMPLE_NETWORK, inputs: EXAMPLE_INPUTS, wrt: 'parameters' } },
});

export type JacobianRequest = z.output<typeof JacobianRequestSchema>;

const outputs = JsonMatrix.describe('The network outputs y, N × K.');

export const InputJacobianAnswerSchema = answerComponent('InputJacobianAnswer', z
  .object({
    outputs,
    jacobian: z.array(JsonMatrix).describe('J[n][k][i] = ∂y_k/∂x_i, N × K × D.'),
  })
  .describe("wrt 'inputs' (the default)."));

export const ParameterJacobianAnswerSchema = answerComponent('ParameterJacobianAnswer', z
  .object({
    parameterCount: z.number().int().min(1).describe('W, the number of (selected) parameters.'),
    outputs,
    jacobian: z.array(JsonMatrix).describe('J[n][k][i] = ∂y_k/∂w_i, N × K × W, columns in the parameter order.'),
  })
  .describe("wrt 'parameters'."));

export const JacobianResponseSchema = answerComponent('JacobianAnswer', z
  .xor([InputJacobianAnswerSchema, ParameterJacobianAnswerSchema])
  .describe("By wrt: with respect to the inputs (N × K × D, no parameterCount) or to the parameters (N × K × W, with parameterCount)."));
