/** Tasks as the edge builds them from a JSON body (its own parser, schema and builder), for tests that call the core or the pool directly. */
import { HessianRequestSchema, InverseRequestSchema, VectorProductRequestSchema } from '../../schemas/hessian.ts';
import { JacobianRequestSchema } from '../../schemas/jacobian.ts';
import { parseJson } from '../../src/http/json.ts';
import { hessianTask, inverseTask, vectorProductTask } from '../../routes/hessian.ts';
import { jacobianTask } from '../../routes/jacobian.ts';
import type { CurvatureTask } from '../../src/core/index.ts';

const EDGE = {
  '/jacobian': (v: unknown) => jacobianTask(JacobianRequestSchema.parse(v)),
  '/hessian': (v: unknown) => hessianTask(HessianRequestSchema.parse(v)),
  '/hessian/vector-product': (v: unknown) => vectorProductTask(VectorProductRequestSchema.parse(v)),
  '/hessian/inverse': (v: unknown) => inverseTask(InverseRequestSchema.parse(v)),
} as const;

export function taskFromJson(url: keyof typeof EDGE, body: object): CurvatureTask {
  return EDGE[url](parseJson(Buffer.from(JSON.stringify(body))));
}
