/** POST /jacobian — outputs and their Jacobian with respect to inputs or parameters. */
import type { FastifyPluginAsync } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { JacobianRequestSchema, JacobianResponseSchema } from '../schemas/jacobian.ts';
import { arrayAnswer, errorResponses } from '../schemas/common.ts';
import { negotiate, sendResult } from '../src/http/representation.ts';
import { disconnectSignal } from '../src/http/disconnect.ts';
import type { ComputeRouteOptions } from './options.ts';

export const jacobianRoutes: FastifyPluginAsync<ComputeRouteOptions> = async (app, opts) => {
  app.withTypeProvider<ZodTypeProvider>().post('/jacobian', {
    schema: {
      tags: ['jacobian'],
      summary: 'Jacobian of the outputs with respect to inputs or parameters',
      description: 'J[n][k][i] = ∂y_k/∂x_i for each data point (PRML 5.3.4, by backpropagation), or ∂y_k/∂w_i with wrt = parameters.',
      body: JacobianRequestSchema,
      response: { 200: arrayAnswer(JacobianResponseSchema, 'the Jacobian (N × K × D or N × K × W)'), ...errorResponses() },
    },
  }, async (req, reply) => {
    const rep = negotiate(req.headers.accept);
    const result = await opts.runTask({ endpoint: 'jacobian', request: req.body, limits: opts.limits }, disconnectSignal(reply));
    return sendResult(reply, result, rep);
  });
};
