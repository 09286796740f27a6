/**
 * The OpenAPI 3.1 document, from the routes' zod schemas, at GET /openapi.json (and
 * openapi/openapi.json, written by `npm run openapi`), and Swagger UI on it at /docs.
 *
 * @fastify/swagger lists the routes and copies each one's metadata (operationId, tags, summary,
 * description, security); this plugin writes what it would otherwise inline or mangle:
 * - components.schemas: every schema named in schemas/components.ts, converted once (zod's input side
 *   for request components, output side for answers) and referenced with $ref. Safe-integer bounds
 *   (±9007199254740991, what zod gives every z.number().int()) are left out: they say nothing and
 *   leaked into Swagger UI's generated examples;
 * - requestBody: the body's component with its named examples, and its multipart/form-data form;
 * - responses: a 200 with its forms, its named answer examples (schemas/answer-examples.ts) and its
 *   headers (X-Request-Id; for binary forms the ANSWER_HEADERS whose field the JSON answer has), and
 *   each shared refusal (schemas/problem.ts) as a $ref to components.responses, where its headers
 *   (Retry-After, Allow, WWW-Authenticate) and examples are written once.
 *
 * How a route declares itself (docs/api-conventions.md has the whole list):
 *
 *     r.post('/hessian', { schema: {
 *       operationId: 'computeHessian', tags: ['hessian'], summary: '…', description: '…',
 *       body: HessianRequestSchema,                       // a requestComponent
 *       response: { 200: arrayAnswer(HessianResponseSchema, '…'), ...errorResponses() },
 *     } }, handler);
 *
 * Every documented route needs an operationId (a camelCase verb phrase, unique) and a description for
 * each response; the document is not built without them. Descriptions are CommonMark: write `<name>`
 * only inside a code span (test/routes/openapi.test.ts checks).
 */
import fastifySwagger from '@fastify/swagger';
import fastifySwaggerUi from '@fastify/swagger-ui';
import fp from 'fastify-plugin';
import { z } from 'zod';
import { ANSWER_EXAMPLES } from '../../schemas/answer-examples.ts';
import { componentOf, components, type Side } from '../../schemas/components.ts';
import { problemOf } from '../http/problem.ts';
import { ANSWER_HEADERS, MEDIA_TYPES } from '../http/representation.ts';
import { REFUSAL_HEADERS, REFUSALS, refusalOf } from '../../schemas/problem.ts';
import { documentMultipart } from './multipart.ts';

type Json = Record<string, unknown>;

const schemaRef = (id: string): string => `#/components/schemas/${id}`;
const ref = (kind: 'schemas' | 'responses' | 'headers', name: string): Json => ({ $ref: `#/components/${kind}/${name}` });

const REQUEST_ID_HEADER = 'X-Request-Id';

function isZod(v: unknown): v is z.ZodType {
  return typeof v === 'object' && v !== null && '_zod' in v;
}

/** zod's JSON Schema, as this document writes it: no safe-integer bounds (they are no limit a client needs to know). */
function override(ctx: { jsonSchema: Json }): void {
  const j = ctx.jsonSchema;
  if (j.maximum === Number.MAX_SAFE_INTEGER) delete j.maximum;
  if (j.minimum === Number.MIN_SAFE_INTEGER) delete j.minimum;
}

const INLINE = '__inline';

/**
 * JSON Schemas of one side's components, and of `extra` (a schema that is none of them) under
 * INLINE, its components referenced by $ref.
 */
function convert(side: Side, extra?: z.ZodType): Record<string, Json> {
  const registry = z.registry<{ id: string }>();
  for (const c of components(side)) registry.add(c.schema, { id: c.id });
  if (extra !== undefined && !registry.has(extra)) registry.add(extra, { id: INLINE });
  const { schemas } = z.toJSONSchema(registry, {
    target: 'draft-2020-12',
    io: side === 'request' ? 'input' : 'output',
    unrepresentable: 'any',
    cycles: 'ref',
    reused: 'inline',
    uri: schemaRef,
    override,
  });
  if ('__shared' in schemas) throw new Error(`a ${side} schema names a schema that is no ${side} component: name it in schemas/components.ts`);
  const out: Record<string, Json> = {};
  for (const [id, s] of Object.entries(schemas)) {
    const { $id: _id, $schema: _schema, ...rest } = s as Json;
    out[id] = rest;
  }
  return out;
}

/** `schema` in an operation: a $ref to its component, or inline. */
function schemaOf(side: Side, schema: z.ZodType): Json {
  const c = componentOf(schema);
  if (c) {
    if (c.side !== side) throw new Error(`component '${c.id}' is a ${c.side} component, used in a ${side === 'request' ? 'request' : 'response'}`);
    return ref('schemas', c.id);
  }
  return convert(side, schema)[INLINE];
}

/** A zod schema with no component references, inline (for parameters, which @fastify/swagger turns into parameter lists). */
function inlineSchema(schema: z.ZodType): Json {
  const { $schema: _schema, ...rest } = z.toJSONSchema(schema, { target: 'draft-2020-12', io: 'input', unrepresentable: 'any', override }) as Json;
  return rest;
}

/** The property names a schema's objects may have: its own, those of its oneOf/anyOf/allOf members, through $refs. */
function propertyNames(schema: Json | undefined, all: Record<string, Json>, seen = new Set<Json>()): Set<string> {
  const names = new Set<string>();
  if (!schema || seen.has(schema)) return names;
  seen.add(schema);
  if (typeof schema.$ref === 'string') {
    for (const n of propertyNames(all[schema.$ref.replace('#/components/schemas/', '')], all, seen)) names.add(n);
  }
  for (const n of Object.keys((schema.properties as Json | undefined) ?? {})) names.add(n);
  for (const k of ['oneOf', 'anyOf', 'allOf']) {
    for (const m of (schema[k] as Json[] | undefined) ?? []) for (const n of propertyNames(m, all, seen)) names.add(n);
  }
  return names;
}

/** What a route declared, for the document's second pass. */
interface Declared {
  readonly route: string;
  readonly body?: z.ZodType;
  /** Status → the route's response entry. */
  readonly responses: ReadonlyMap<string, unknown>;
}

/** A response entry by content type: `{ description, headers?, content: { [type]: { schema } } }` (content may be empty: no body). */
type ContentEntry = { description?: string; headers?: Record<string, Json>; content: Record<string, { schema: unknown }> };
const isContentEntry = (v: unknown): v is ContentEntry =>
  typeof v === 'object' && v !== null && 'content' in v && typeof (v as ContentEntry).content === 'object';

/**
 * Whether a route's response entry is of a form this plugin writes: a shared refusal, a zod schema
 * (JSON), or an entry by content type whose schemas are all zod. (Plain JSON Schema would not pass
 * the zod serializer compiler either.)
 */
function writable(entry: unknown): boolean {
  if (refusalOf(entry) || isZod(entry)) return true;
  return isContentEntry(entry) && Object.values(entry.content).every((m) => isZod(m?.schema));
}

interface Operation {
  operationId?: string;
  requestBody?: unknown;
  responses?: Record<string, unknown>;
}
interface Doc {
  paths: Record<string, Record<string, Operation>>;
  components?: Record<string, Record<string, unknown>>;
}

const HTTP_METHODS = new Set(['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace']);

/** The answer examples of an operation, named as its request examples. */
function answerExamples(operationId: string, requestExamples: Readonly<Record<string, { summary: string }>> | undefined): Json | undefined {
  const answers = (ANSWER_EXAMPLES as Readonly<Record<string, Readonly<Record<string, unknown>>>>)[operationId];
  if (!answers || !requestExamples) return undefined;
  const out: Json = {};
  for (const [name, ex] of Object.entries(requestExamples)) {
    if (name in answers) out[name] = { summary: ex.summary, value: answers[name] };
  }
  return Object.keys(out).length > 0 ? out : undefined;
}

/** The document builder: a transform per route and the second pass over the whole document. */
function documentBuilder() {
  const declared = new Map<string, Declared>();

  const transform = ({ schema, url, route }: { schema: unknown; url: string; route: { method: string | string[] } }) => {
    if (!schema) return { schema, url };
    const { body, response, querystring, params, headers, hide, ...rest } = schema as Record<string, unknown>;
    if (hide) return { schema: { hide: true }, url };
    const name = `${String(route.method)} ${url}`;
    const operationId = rest.operationId;
    if (typeof operationId !== 'string' || !/^[a-z][A-Za-z0-9]*$/.test(operationId)) {
      throw new Error(`${name}: every documented route declares an operationId, a camelCase verb phrase such as computeHessian (docs/api-conventions.md)`);
    }
    const previous = declared.get(operationId);
    if (previous && previous.route !== name) throw new Error(`${name}: operationId '${operationId}' is already ${previous.route}'s`);
    const out: Record<string, unknown> = { ...rest };
    for (const [k, v] of Object.entries({ querystring, params, headers })) if (v !== undefined) out[k] = isZod(v) ? inlineSchema(v) : v;
    if (body !== undefined && !isZod(body)) out.body = body;
    const responses = new Map(Object.entries((response as Record<string, unknown> | undefined) ?? {}));
    if (responses.size === 0) throw new Error(`${name}: declare its responses (schema.response), each with a description`);
    for (const [status, entry] of responses) {
      if (!writable(entry)) throw new Error(`${name}: response ${status} is neither a zod schema, { description, content: { [type]: { schema: zod } } } nor a shared refusal (docs/api-conventions.md)`);
    }
    declared.set(operationId, { route: name, body: isZod(body) ? body : undefined, responses });
    return { schema: out, url };
  };

  function requestBody(body: z.ZodType): Json {
    const json: Json = { schema: schemaOf('request', body) };
    const examples = componentOf(body)?.examples;
    if (examples) json.examples = Object.fromEntries(Object.entries(examples).map(([k, e]) => [k, { ...e }]));
    const multipart = documentMultipart(body, json.schema);
    return { required: true, content: { [MEDIA_TYPES.json]: json, ...(multipart ? { 'multipart/form-data': multipart.content['multipart/form-data'] } : {}) } };
  }

  function answer(operationId: string, route: string, status: string, entry: unknown, schemas: Record<string, Json>, requestExamples: Parameters<typeof answerExamples>[1]): Json {
    const declaredEntry: ContentEntry = isZod(entry)
      ? { description: z.globalRegistry.get(entry)?.description, content: { [MEDIA_TYPES.json]: { schema: entry } } }
      : (entry as ContentEntry);
    if (!declaredEntry.description) throw new Error(`${route}: give each response a description (or its schema one, with .describe())`);
    const content: Record<string, Json> = {};
    for (const [type, media] of Object.entries(declaredEntry.content)) {
      const media2: Json = { schema: isZod(media.schema) ? schemaOf('answer', media.schema) : media.schema };
      // the service's answers to the request examples are its 200s (a 202's body is a job)
      if (type === MEDIA_TYPES.json && status === '200') {
        const examples = answerExamples(operationId, requestExamples);
        if (examples) media2.examples = examples;
      }
      content[type] = media2;
    }
    // the route's own headers (Header Objects, e.g. a 202's Location), then the service's
    const headers: Json = { ...declaredEntry.headers, [REQUEST_ID_HEADER]: ref('headers', REQUEST_ID_HEADER) };
    const binary = Object.keys(content).filter((t) => t !== MEDIA_TYPES.json);
    if (binary.length > 0) {
      const single = binary.includes(MEDIA_TYPES.npy) || binary.includes(MEDIA_TYPES.raw);
      const fields = propertyNames(content[MEDIA_TYPES.json]?.schema as Json | undefined, schemas);
      for (const h of ANSWER_HEADERS) {
        if (h.field === undefined ? single : fields.has(h.field)) headers[h.name] = ref('headers', h.name);
      }
    }
    return Object.keys(content).length > 0 ? { description: declaredEntry.description, headers, content } : { description: declaredEntry.description, headers };
  }

  const transformObject = ({ openapiObject }: { openapiObject: unknown }) => {
    const doc = openapiObject as Doc;
    const all = { ...convert('request'), ...convert('answer') };
    const schemas = Object.fromEntries(Object.keys(all).sort().map((k) => [k, all[k]]));

    for (const [path, item] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(item)) {
        if (!HTTP_METHODS.has(method)) continue;
        const route = `${method.toUpperCase()} ${path}`;
        if (!op.operationId) throw new Error(`${route}: every documented route declares an operationId (docs/api-conventions.md)`);
        const d = declared.get(op.operationId);
        if (!d) continue;
        const requestExamples = d.body ? componentOf(d.body)?.examples : undefined;
        if (d.body) op.requestBody = requestBody(d.body);
        // (@fastify/swagger, given none, wrote "200: Default Response")
        const responses: Record<string, unknown> = {};
        for (const [status, entry] of d.responses) {
          const r = refusalOf(entry);
          responses[status] = r ? ref('responses', r.name) : answer(op.operationId, route, status, entry, schemas, requestExamples);
        }
        op.responses = Object.fromEntries(Object.keys(responses).sort().map((s) => [s, responses[s]]));
      }
    }

    const headers: Json = {
      [REQUEST_ID_HEADER]: { description: "The request's id in the service logs: the caller's X-Request-Id when it sent a sane one, else a new one. Every answer has it.", schema: { type: 'string' } },
    };
    for (const [name, h] of Object.entries(REFUSAL_HEADERS)) headers[name] = { description: h.description, schema: { type: h.type }, example: h.example };
    for (const h of ANSWER_HEADERS) headers[h.name] = { description: h.description, schema: { type: h.type } };

    const responses: Json = {};
    for (const r of Object.values(REFUSALS)) {
      const rh: Json = { [REQUEST_ID_HEADER]: ref('headers', REQUEST_ID_HEADER) };
      for (const h of r.headers) rh[h] = ref('headers', h);
      const media: Json = { schema: ref('schemas', 'Problem') };
      const examples = Object.entries(r.examples);
      if (examples.length > 0) {
        media.examples = Object.fromEntries(examples.map(([k, e]) => [k, { summary: e.code, value: problemOf(e) }]));
      }
      responses[r.name] = { description: r.description, headers: rh, content: { 'application/problem+json': media } };
    }

    doc.components = { ...doc.components, schemas, responses, headers };
    return doc as never;
  };

  return { transform, transformObject };
}

export const swaggerPlugin = fp<{ readonly version: string }>(async (app, opts) => {
  const { transform, transformObject } = documentBuilder();
  await app.register(fastifySwagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Curvature service',
        version: opts.version,
        description:
          'Jacobians, Hessians and inverse Hessians of multilayer perceptrons (Bishop, PRML §5.3.4–5.4.6). ' +
          'Parameter order everywhere: layer by layer, weights row-major (out × in, as torch.nn.Linear.weight), then bias — ' +
          'the order of torch.nn.utils.parameters_to_vector. Every answer is JSON by default, or the principal array as a ' +
          'NumPy .npy file (`Accept: application/x-npy`) or raw little-endian float64 (`Accept: application/octet-stream`).\n\n' +
          'Every answer carries X-Request-Id. Every refusal is application/problem+json with a catalogue code; besides those ' +
          'each operation lists, any path that is no endpoint answers 404 (NotFound) and an endpoint asked with a method it does ' +
          'not take 405 (MethodNotAllowed, with Allow).',
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
        { name: 'jobs', description: 'Requests sent with `Prefer: respond-async`: state, progress, result, cancellation' },
        { name: 'operations', description: 'Health' },
      ],
    },
    transform: transform as never,
    transformObject: transformObject as never,
  });
  await app.register(fastifySwaggerUi, { routePrefix: '/docs', uiConfig: { displayOperationId: true } });
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
}, { name: 'swagger' });
