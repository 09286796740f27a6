/**
 * The OpenAPI document, from the routes' zod schemas, at GET /openapi.json, and Swagger UI on it
 * at /docs. Each binary 200 lists the answer headers (src/http/representation.ts's table) and each
 * computing route its multipart/form-data body beside the JSON one.
 */
import fastifySwagger from '@fastify/swagger';
import fastifySwaggerUi from '@fastify/swagger-ui';
import fp from 'fastify-plugin';
import { jsonSchemaTransform } from 'fastify-type-provider-zod';
import { ANSWER_HEADERS, MEDIA_TYPES } from '../http/representation.ts';
import { documentMultipart } from './multipart.ts';

const REQUEST_ID_HEADER = { type: 'string', description: "The request's id in the service logs (the caller's X-Request-Id when it sent one)." };

/** The zod transform, plus the binary answers' headers on each 200 that has a .npy form, and the multipart body. */
function transform(doc: Parameters<typeof jsonSchemaTransform>[0]): ReturnType<typeof jsonSchemaTransform> {
  const out = jsonSchemaTransform(doc);
  const schema = out.schema as { response?: Record<string, { content?: Record<string, unknown>; headers?: unknown }>; body?: unknown } | undefined;
  const ok = schema?.response?.['200'];
  if (ok?.content?.[MEDIA_TYPES.npy] || ok?.content?.[MEDIA_TYPES.npz]) {
    ok.headers = {
      ...Object.fromEntries(ANSWER_HEADERS.map((h) => [h.name, { type: h.type, description: h.description }])),
      'X-Request-Id': REQUEST_ID_HEADER,
    };
  }
  const withMultipart = documentMultipart((doc.schema as { body?: unknown } | undefined)?.body, schema?.body);
  if (withMultipart && schema) schema.body = withMultipart;
  return out;
}

export const swaggerPlugin = fp<{ readonly version: string }>(async (app, opts) => {
  await app.register(fastifySwagger, {
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'Curvature service',
        version: opts.version,
        description:
          'Jacobians, Hessians and inverse Hessians of multilayer perceptrons (Bishop, PRML §5.3.4–5.4.6). ' +
          'Parameter order everywhere: layer by layer, weights row-major (out × in, as torch.nn.Linear.weight), then bias — ' +
          'the order of torch.nn.utils.parameters_to_vector. Every answer is JSON by default, or the principal array as a ' +
          'NumPy .npy file (Accept: application/x-npy) or raw little-endian float64 (Accept: application/octet-stream).',
      },
      components: {
        securitySchemes: {
          bearerAuth: {
            type: 'http',
            scheme: 'bearer',
            description: 'An API key, needed by the computing endpoints when the service is started with API_KEYS; /health, /openapi.json and /docs are always open.',
          },
        },
      },
      security: [{ bearerAuth: [] }],
      tags: [
        { name: 'jacobian', description: 'First derivatives of the outputs' },
        { name: 'hessian', description: 'Second derivatives of the error' },
        { name: 'operations', description: 'Health' },
      ],
    },
    transform,
  });
  await app.register(fastifySwaggerUi, { routePrefix: '/docs' });
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
}, { name: 'swagger' });
