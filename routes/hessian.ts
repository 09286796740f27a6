/** POST /hessian, /hessian/vector-product, /hessian/inverse — second derivatives of the error. */
import type { FastifyPluginAsync } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import {
  HessianRequestSchema, HessianResponseSchema, InverseRequestSchema, InverseResponseSchema, VectorProductRequestSchema, VectorProductResponseSchema,
  type HessianRequest, type InverseRequest, type VectorProductRequest,
} from '../schemas/hessian.ts';
import { PreferHeaderSchema, jobAccepted } from '../schemas/jobs.ts';
import { arrayAnswer, errorResponses } from '../schemas/common.ts';
import type { CurvatureTask } from '../src/core/index.ts';
import { computeAndSend } from '../src/http/answer.ts';
import { ALL_FORMS, MULTI_ARRAY_FORMS } from '../src/http/representation.ts';
import { problem } from '../src/http/to-task.ts';

export function hessianTask(body: HessianRequest): CurvatureTask {
  const rows = body.rows ? [body.rows[0], body.rows[1]] as const : undefined;
  return { endpoint: 'hessian', problem: problem(body), method: body.method, structure: body.structure, rows };
}

export function vectorProductTask(body: VectorProductRequest): CurvatureTask {
  return { endpoint: 'hessian-vector-product', problem: problem(body), vector: body.vector.data };
}

export function inverseTask(body: InverseRequest): CurvatureTask {
  return { endpoint: 'hessian-inverse', problem: problem(body), damping: body.damping, method: body.method, hessian: body.hessian };
}

export const hessianRoutes: FastifyPluginAsync = async (app) => {
  const r = app.withTypeProvider<ZodTypeProvider>();

  r.post('/hessian', {
    schema: {
      operationId: 'computeHessian',
      tags: ['hessian'],
      summary: 'Hessian of the error with respect to the parameters (five methods)',
      description: 'H = ∇∇E with E a sum (or mean) over data points; W × W for exact, outer-product and finite-difference, its diagonal (W, and the trace) for the two diagonal methods; ' +
        "the diagonal blocks of the selected layers with structure 'block-diagonal' (JSON or .npz), a slab of rows with rows.",
      body: HessianRequestSchema,
      headers: PreferHeaderSchema,
      response: { 200: arrayAnswer(HessianResponseSchema, 'the Hessian (W × W), its rows, or its diagonal (W)'), 202: jobAccepted(), ...errorResponses() },
    },
  }, async (req, reply) => computeAndSend(req, reply, hessianTask(req.body), req.body.structure === 'block-diagonal' ? MULTI_ARRAY_FORMS : ALL_FORMS));

  r.post('/hessian/vector-product', {
    schema: {
      operationId: 'hessianVectorProduct',
      tags: ['hessian'],
      summary: 'Hessian-vector product H v by the R-operator',
      description: "Pearlmutter's R-operator (PRML 5.4.6): O(W) memory and O(NW) time, without forming H.",
      body: VectorProductRequestSchema,
      headers: PreferHeaderSchema,
      response: { 200: arrayAnswer(VectorProductResponseSchema, 'the product H v (W)'), 202: jobAccepted(), ...errorResponses() },
    },
  }, async (req, reply) => computeAndSend(req, reply, vectorProductTask(req.body)));

  r.post('/hessian/inverse', {
    schema: {
      operationId: 'inverseHessian',
      tags: ['hessian'],
      summary: 'Inverse of the damped Hessian, (H + αI)⁻¹, and log det(H + αI)',
      description: "'cholesky' (default): a factorisation of the outer-product or exact Hessian plus αI; 'woodbury': sequential rank-k updates of the outer-product Hessian from αI (PRML 5.89).",
      body: InverseRequestSchema,
      headers: PreferHeaderSchema,
      response: { 200: arrayAnswer(InverseResponseSchema, 'the inverse (W × W)'), 202: jobAccepted(), ...errorResponses() },
    },
  }, async (req, reply) => computeAndSend(req, reply, inverseTask(req.body)));
};
