/** POST /hessian/kfac, /hessian/eigen, /hessian/inverse-vector-product — curvature at scale, no W² where it can be helped. */
import type { FastifyPluginAsync } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import {
  EigenRequestSchema, EigenResponseSchema, InverseVectorProductRequestSchema, InverseVectorProductResponseSchema, KfacRequestSchema,
  KfacResponseSchema, type EigenRequest, type InverseVectorProductRequest, type KfacRequest,
} from '../schemas/scale.ts';
import { PreferHeaderSchema, jobAccepted } from '../schemas/jobs.ts';
import { arrayAnswer, errorResponses, multiArrayAnswer } from '../schemas/common.ts';
import type { CurvatureTask } from '../src/core/index.ts';
import { computeAndSend } from '../src/http/answer.ts';
import { MULTI_ARRAY_FORMS } from '../src/http/representation.ts';
import { matrix, problem } from '../src/http/to-task.ts';

export function kfacTask(body: KfacRequest): CurvatureTask {
  return { endpoint: 'hessian-kfac', problem: problem(body), damping: body.damping };
}

export function eigenTask(body: EigenRequest): CurvatureTask {
  const { hessian, count, which, method, tolerance, maxIterations } = body;
  return { endpoint: 'hessian-eigen', problem: problem(body), hessian, count, which, method, tolerance, maxIterations };
}

export function inverseVectorProductTask(body: InverseVectorProductRequest): CurvatureTask {
  const { damping, hessian, method, tolerance, maxIterations, preconditioner } = body;
  return { endpoint: 'hessian-inverse-vector-product', problem: problem(body), damping, vectors: matrix(body.vectors), hessian, method, tolerance, maxIterations, preconditioner };
}

export const scaleRoutes: FastifyPluginAsync = async (app) => {
  const r = app.withTypeProvider<ZodTypeProvider>();

  r.post('/hessian/kfac', {
    schema: {
      operationId: 'kfacFactors',
      tags: ['hessian'],
      summary: 'Kronecker factors A_l, G_l of the outer-product Hessian (KFAC), and log det(K + αI)',
      description: 'Exact output factors (the Gauss–Newton L_n pulled back, no sampling); O(N·Σ_l ((in_l + 1)² + out_l·K)) plus the backward passes, no W² anywhere.',
      body: KfacRequestSchema,
      headers: PreferHeaderSchema,
      response: { 200: multiArrayAnswer(KfacResponseSchema, 'members `A_<l>` and `G_<l>` for each selected layer l'), 202: jobAccepted(), ...errorResponses() },
    },
  }, async (req, reply) => computeAndSend(req, reply, kfacTask(req.body), MULTI_ARRAY_FORMS));

  r.post('/hessian/eigen', {
    schema: {
      operationId: 'hessianEigen',
      tags: ['hessian'],
      summary: 'A few eigenpairs of the exact or outer-product Hessian (Lanczos or dense)',
      description: 'Matrix-free thick-restart Lanczos on curvature-vector products (O(N·W) a product, never W²), or the dense matrix and LAPACK.',
      body: EigenRequestSchema,
      headers: PreferHeaderSchema,
      response: { 200: multiArrayAnswer(EigenResponseSchema, 'eigenvalues, eigenvectors and residuals'), 202: jobAccepted(), ...errorResponses() },
    },
  }, async (req, reply) => computeAndSend(req, reply, eigenTask(req.body), MULTI_ARRAY_FORMS));

  r.post('/hessian/inverse-vector-product', {
    schema: {
      operationId: 'inverseVectorProduct',
      tags: ['hessian'],
      summary: '(H + αI)⁻¹ applied to m vectors (CG, Cholesky or KFAC)',
      description: 'Conjugate gradients on curvature-vector products (matrix-free), a dense Cholesky solve, or the exact solve of the KFAC matrix; refused as a Cholesky inverse is where H + αI is not positive definite.',
      body: InverseVectorProductRequestSchema,
      headers: PreferHeaderSchema,
      response: { 200: arrayAnswer(InverseVectorProductResponseSchema, 'the solutions (m × W)'), 202: jobAccepted(), ...errorResponses() },
    },
  }, async (req, reply) => computeAndSend(req, reply, inverseVectorProductTask(req.body)));
};
