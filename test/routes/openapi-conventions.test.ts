/**
 * The conventions of docs/api-conventions.md, on routes of the kinds still to come (a job's state by
 * path parameter, a 202 with Location, a 204 with no body, a text/plain /metrics): each is documented
 * as the convention says, the result lints clean, and a route without an operationId stops the
 * document with a message saying what to add. Its own process (its components are registered here
 * only), its own Fastify instance with the swagger plugin alone.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import Fastify from 'fastify';
import { serializerCompiler, validatorCompiler, type ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { answerComponent, requestComponent } from '../../schemas/components.ts';
import { refusals } from '../../schemas/problem.ts';
import { swaggerPlugin } from '../../src/plugins/swagger.ts';
import { deref, lint } from '../helpers/openapi.ts';

const JobSchema = answerComponent('ExampleJob', z
  .object({ state: z.enum(['queued', 'running', 'done']), progress: z.number().min(0).max(1), done: z.number().int().min(0) })
  .describe("A job's state and progress."));
const ThingRequestSchema = requestComponent('ExampleThingRequest', z.strictObject({ n: z.number().int().describe('How many.') }), {
  one: { summary: 'One thing', value: { n: 1 } },
});

async function app(withoutOperationId = false) {
  const a = Fastify();
  a.setValidatorCompiler(validatorCompiler);
  a.setSerializerCompiler(serializerCompiler);
  await a.register(swaggerPlugin, { version: '0.0.0' });
  const r = a.withTypeProvider<ZodTypeProvider>();
  r.get('/jobs/:id', {
    schema: {
      operationId: 'getJob', tags: ['jobs'], summary: 'A job', params: z.object({ id: z.string().describe("The job's id.") }),
      response: { 200: JobSchema, ...refusals(404) },
    },
  }, async () => ({ state: 'done' as const, progress: 1, done: 3 }));
  r.delete('/jobs/:id', {
    schema: { operationId: 'cancelJob', tags: ['jobs'], summary: 'Cancel a job', params: z.object({ id: z.string() }), response: { 204: { description: 'Cancelled.', content: {} } } },
  }, async (_req, reply) => reply.code(204).send());
  r.post('/things', {
    schema: {
      ...(withoutOperationId ? {} : { operationId: 'createThing' }), tags: ['jobs'], summary: 'Start a thing', body: ThingRequestSchema,
      response: {
        202: {
          description: 'Accepted: the job runs; Location names it.',
          headers: { Location: { description: 'The job, `/jobs/<id>`.', schema: { type: 'string' } } },
          content: { 'application/json': { schema: JobSchema } },
        },
        ...refusals(400),
      },
    },
  }, async (_req, reply) => reply.code(202).send({ state: 'queued', progress: 0, done: 0 }));
  r.get('/metrics', {
    schema: { operationId: 'metrics', tags: ['jobs'], summary: 'Metrics', security: [], response: { 200: { description: 'Prometheus text format.', content: { 'text/plain': { schema: z.string() } } } } },
  }, async () => 'up 1\n');
  await a.ready();
  return a;
}

test('routes declared by the conventions are documented by them, and lint clean', async (t) => {
  const a = await app();
  t.after(() => a.close());
  const doc = a.swagger() as unknown as {
    paths: Record<string, Record<string, { operationId: string; parameters?: { name: string; in: string }[]; requestBody?: { content: Record<string, { schema: unknown; examples?: unknown }> }; responses: Record<string, unknown> }>>;
    components: { schemas: Record<string, { properties?: Record<string, Record<string, unknown>> }> };
  };
  const getJob = doc.paths['/jobs/{id}'].get;
  assert.equal(getJob.operationId, 'getJob');
  assert.deepEqual(getJob.parameters?.map((p) => [p.in, p.name]), [['path', 'id']]);
  assert.deepEqual((getJob.responses['200'] as { content: unknown }).content, { 'application/json': { schema: { $ref: '#/components/schemas/ExampleJob' } } });
  assert.deepEqual(getJob.responses['404'], { $ref: '#/components/responses/NotFound' });
  assert.deepEqual(doc.paths['/jobs/{id}'].delete.responses['204'], { description: 'Cancelled.', headers: { 'X-Request-Id': { $ref: '#/components/headers/X-Request-Id' } } });
  const created = deref<{ headers: Record<string, unknown> }>(doc, doc.paths['/things'].post.responses['202']);
  assert.ok(created.headers.Location && created.headers['X-Request-Id']);
  assert.deepEqual(doc.paths['/things'].post.requestBody?.content['application/json'], {
    schema: { $ref: '#/components/schemas/ExampleThingRequest' }, examples: { one: { summary: 'One thing', value: { n: 1 } } },
  });
  assert.deepEqual(Object.keys((doc.paths['/metrics'].get.responses['200'] as { content: object }).content), ['text/plain']);
  assert.deepEqual(doc.components.schemas.ExampleThingRequest.properties?.n, { type: 'integer', description: 'How many.' });
  assert.deepEqual(doc.components.schemas.ExampleJob.properties?.done, { type: 'integer', minimum: 0 });
  const problems = (await lint(JSON.stringify(doc))).filter((p) => !/no-unused-components|tag-description|operation-tag-defined/.test(p));
  assert.deepEqual(problems, []);
});

test('a documented route without an operationId stops the document, saying what to add', async (t) => {
  const a = await app(true);
  t.after(() => a.close());
  assert.throws(() => a.swagger(), /POST \/things: every documented route declares an operationId, a camelCase verb phrase/);
});
