/**
 * The compute routes as one encapsulated plugin: their API-key check, their admission and
 * their multipart bodies are hooks of this context alone, so GET /health, the OpenAPI document
 * and Swagger UI never pass through them and no hook matches URL strings.
 */
import type { FastifyPluginAsync } from 'fastify';
import { admissionPlugin } from '../src/plugins/admission.ts';
import { authPlugin } from '../src/plugins/auth.ts';
import { multipartPlugin } from '../src/plugins/multipart.ts';
import { hessianRoutes } from './hessian.ts';
import { jacobianRoutes } from './jacobian.ts';
import { scaleRoutes } from './scale.ts';

export interface ComputeRoutesOptions {
  readonly apiKeys: readonly string[];
  readonly bodyLimit: number;
  readonly bodyTimeoutMs: number;
}

export const computeRoutes: FastifyPluginAsync<ComputeRoutesOptions> = async (app, opts) => {
  // authentication before admission: a request without a key is not counted as shed
  await app.register(authPlugin, { apiKeys: opts.apiKeys });
  await app.register(admissionPlugin, { bodyLimit: opts.bodyLimit });
  await app.register(multipartPlugin, { bodyLimit: opts.bodyLimit, bodyTimeoutMs: opts.bodyTimeoutMs });
  await app.register(jacobianRoutes);
  await app.register(hessianRoutes);
  await app.register(scaleRoutes);
};
