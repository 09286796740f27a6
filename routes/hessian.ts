/** POST /hessian, /hessian/vector-product, /hessian/inverse — second derivatives of the error. */
import type { FastifyPluginAsync } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import {
  HessianRequestSchema, HessianResponseSchema, InverseRequestSchema, InverseResponseSchema, VectorProductRequestSchema, VectorProductResponseSchema,
} from '../schemas/hessian.ts';
import { arrayAnswer, errorResponses } from '../schemas/common.ts';
import { computeAndSend } from '../src/http/answer.ts';
import { hessianTask, inverseTask, vectorProductTask } from '../src/http/to-task.ts';

export const hessianRoutes: FastifyPluginAsync = async (app) => {
  const r = app.withTypeProvider<ZodTypeProvider>();

  r.post('/hessian', {
    schema: {
      tags: ['hessian'],
      summary: 'Hessian of the error with respect to the parameters (five methods)',
      description: 'H = ∇∇E with E a sum over data points; W × W for exact, outer-product and finite-difference, its diagonal (W) for the two diagonal methods.',
      body: HessianRequestSchema,
      response: { 200: arrayAnswer(HessianResponseSchema, 'the Hessian (W × W) or its diagonal (W)'), ...errorResponses() },
    },
  }, async (req, reply) => computeAndSend(req, reply, hessianTask(req.body)));

  r.post('/hessian/vector-product', {
    schema: {
      tags: ['hessian'],
      summary: 'Hessian-vector product H v by the R-operator',
      description: "Pearlmutter's R-operator (PRML 5.4.6): O(W) memory and O(NW) time, without forming H.",
      body: VectorProductRequestSchema,
      response: { 200: arrayAnswer(VectorProductResponseSchema, 'the product H v (W)'), ...errorResponses() },
    },
  }, async (req, reply) => computeAndSend(req, reply, vectorProductTask(req.body)));

  r.post('/hessian/inverse', {
    schema: {
      tags: ['hessian'],
      summary: 'Inverse of the damped Hessian, (H + αI)⁻¹, and log det(H + αI)',
      description: "'woodbury': sequential rank-one updates of the outer-product Hessian from αI (PRML 5.89); 'cholesky': a factorisation of the outer-product or exact Hessian plus αI.",
      body: InverseRequestSchema,
      response: { 200: arrayAnswer(InverseResponseSchema, 'the inverse (W × W)'), ...errorResponses() },
    },
  }, async (req, reply) => computeAndSend(req, reply, inverseTask(req.body)));
};
