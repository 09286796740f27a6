/** POST /jacobian — outputs and their Jacobian with respect to inputs or parameters. */
import type { FastifyPluginAsync } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { JacobianRequestSchema, JacobianResponseSchema, type JacobianRequest } from '../schemas/jacobian.ts';
import { PreferHeaderSchema, jobAccepted } from '../schemas/jobs.ts';
import { arrayAnswer, errorResponses } from '../schemas/common.ts';
import type { CurvatureTask } from '../src/core/index.ts';
import { computeAndSend } from '../src/http/answer.ts';
import { matrix, network } from '../src/http/to-task.ts';

export function jacobianTask(body: JacobianRequest): CurvatureTask {
  return { endpoint: 'jacobian', network: network(body.network, body.parameters), inputs: matrix(body.inputs), wrt: body.wrt };
}

export const jacobianRoutes: FastifyPluginAsync = async (app) => {
  app.withTypeProvider<ZodTypeProvider>().post('/jacobian', {
    schema: {
      operationId: 'computeJacobian',
      tags: ['jacobian'],
      summary: 'Jacobian of the outputs with respect to inputs or parameters',
      description: 'J[n][k][i] = ∂y_k/∂x_i for each data point (PRML 5.3.4, by backpropagation), or ∂y_k/∂w_i with wrt = parameters.',
      body: JacobianRequestSchema,
      headers: PreferHeaderSchema,
      response: { 200: arrayAnswer(JacobianResponseSchema, 'the Jacobian (N × K × D or N × K × W)'), 202: jobAccepted(), ...errorResponses() },
    },
  }, async (req, reply) => computeAndSend(req, reply, jacobianTask(req.body)));
};
