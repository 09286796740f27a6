/**
 * Binary request bodies: `multipart/form-data` on the computing endpoints, with one part
 * `request` holding the JSON request and `inputs`, `targets` (and `vector`) allowed instead as
 * NumPy .npy parts (float64 or float32, C order). A pipeline with 100,000 inputs of 784 features
 * sends 627 MB of float64 rather than about 1.5 GB of JSON text, and the service never builds
 * number[][] for them: each .npy part is received straight into a Float64Array.
 *
 * The JSON part is validated by the route's own zod schema, exactly as a JSON body is; each field
 * sent as .npy stands in the JSON as a one-element array while the schema runs and is replaced by
 * the dense array just after, so the compute dispatcher gets the same validated request type
 * (with dense arrays, see WithDenseArrays in src/compute.ts) and checks sizes in one place.
 * Limits are those of JSON: the whole body (every part's bytes) within BODY_LIMIT, refused with
 * 413 before a large array is allocated; malformed parts with 400 and a detail naming the part.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import fastifyMultipart from '@fastify/multipart';
import { ServiceError } from '../errors.ts';
import type { Matrix } from '../core/network.ts';
import { NpyReceiver, type NpyRefusal } from './npy.ts';

/** The fields a .npy part may carry, with their number of dimensions. */
export const ARRAY_PARTS = { inputs: 2, targets: 2, vector: 1 } as const;
export type ArrayPart = keyof typeof ARRAY_PARTS;

/** The name of the part that holds the JSON request. */
export const REQUEST_PART = 'request';

/** What stands in the JSON for a field sent as .npy while the zod schema runs (the schema's smallest valid value). */
const STAND_IN: Record<ArrayPart, unknown> = { inputs: [[0]], targets: [[0]], vector: [0] };

type DenseArrays = Partial<Record<ArrayPart, Matrix | Float64Array>>;
const received = new WeakMap<FastifyRequest, DenseArrays>();

const refuse: NpyRefusal = (kind, detail) => new ServiceError(kind === 'tooLarge' ? 'PAYLOAD_TOO_LARGE' : 'INVALID_ARRAY_PART', { detail });

const mib = (bytes: number): string => `${(bytes / 1048576).toFixed(1)} MiB`;

/** The .npy fields the route's body schema has (a zod object's keys), in the order of ARRAY_PARTS. */
function arrayFieldsOf(req: FastifyRequest): ArrayPart[] {
  const body = req.routeOptions.schema?.body as { shape?: Record<string, unknown> } | undefined;
  const shape = body?.shape;
  if (!shape || typeof shape !== 'object') return [];
  return (Object.keys(ARRAY_PARTS) as ArrayPart[]).filter((f) => f in shape);
}

function tooLarge(bodyLimit: number, what: string): ServiceError {
  return new ServiceError('PAYLOAD_TOO_LARGE', {
    detail: `${what}; the limit for a whole request body is ${bodyLimit} bytes (${mib(bodyLimit)}, BODY_LIMIT); send fewer data points per request, or raise BODY_LIMIT`,
  });
}

/** @fastify/multipart's and busboy's own errors, as catalogued refusals. */
function fromMultipartError(err: unknown, bodyLimit: number): unknown {
  if (err instanceof ServiceError) return err;
  const e = err as { code?: string; statusCode?: number; message?: string };
  switch (e.code) {
    case 'FST_PARTS_LIMIT':
    case 'FST_FILES_LIMIT':
    case 'FST_FIELDS_LIMIT':
      return new ServiceError('PAYLOAD_TOO_LARGE', {
        detail: `the multipart body has too many parts; send at most ${1 + Object.keys(ARRAY_PARTS).length}: '${REQUEST_PART}' (the JSON request) and ${Object.keys(ARRAY_PARTS).map((p) => `'${p}'`).join(', ')} (.npy)`,
      });
    case 'FST_REQ_FILE_TOO_LARGE':
      return tooLarge(bodyLimit, 'a part of the multipart body is over the limit');
    case 'FST_PROTO_VIOLATION':
      return new ServiceError('MALFORMED_BODY', { detail: 'a multipart part is named after a prototype property; use the names request, inputs, targets, vector' });
  }
  if (typeof e.message === 'string' && (e.statusCode === undefined || e.statusCode < 500)) {
    // busboy: 'Multipart: Boundary not found', 'Unexpected end of multipart data', ...
    return new ServiceError('MALFORMED_BODY', { detail: `the multipart/form-data body could not be read: ${e.message}` });
  }
  return err;
}

/**
 * Registers @fastify/multipart and the two hooks that turn a multipart body into the route's
 * validated request. Called on the root instance, before the routes.
 */
export async function registerMultipartBodies(app: FastifyInstance, opts: { bodyLimit: number }): Promise<void> {
  const { bodyLimit } = opts;
  await app.register(fastifyMultipart, {
    // Every part is read as a stream, the JSON part too, so that we parse it ourselves and report
    // its syntax errors as a JSON body's are.
    isPartAFile: () => true,
    throwFileSizeLimit: true,
    limits: {
      parts: 1 + Object.keys(ARRAY_PARTS).length,
      files: 1 + Object.keys(ARRAY_PARTS).length,
      fields: 0,
      fileSize: bodyLimit,
      headerPairs: 32,
    },
  });

  app.addHook('preValidation', async (req) => {
    if (!req.isMultipart()) return;
    const declared = Number(req.headers['content-length']);
    if (Number.isFinite(declared) && declared > bodyLimit) {
      throw tooLarge(bodyLimit, `the request body is ${declared} bytes (${mib(declared)})`);
    }
    const fields = arrayFieldsOf(req);
    const allowed = [REQUEST_PART, ...fields];
    let json: string | undefined;
    const arrays: DenseArrays = {};
    let total = 0;
    let failure: unknown;
    const count = (n: number) => {
      total += n;
      if (total > bodyLimit) throw tooLarge(bodyLimit, `the multipart body's parts hold more than ${bodyLimit} bytes`);
    };
    try {
      for await (const part of req.parts()) {
        if (part.type !== 'file') continue; // isPartAFile makes every part a file
        const name = part.fieldname;
        // After a refusal, the rest of the body is read and dropped, so the client is not cut off mid-upload.
        let error: unknown;
        if (failure !== undefined) error = failure;
        else if (!allowed.includes(name)) {
          error = new ServiceError('MALFORMED_BODY', {
            detail: `the multipart body has a part '${name}'; ${req.routeOptions.url} takes '${REQUEST_PART}' (the JSON request)` +
              (fields.length ? ` and ${fields.map((f) => `'${f}'`).join(', ')} as .npy files` : ''),
          });
        } else if ((name === REQUEST_PART && json !== undefined) || (name !== REQUEST_PART && arrays[name as ArrayPart] !== undefined)) {
          error = new ServiceError('MALFORMED_BODY', { detail: `the multipart body has two parts named '${name}'; send each part once` });
        }
        if (error !== undefined) {
          failure = error;
          for await (const chunk of part.file) count((chunk as Buffer).length);
          continue;
        }
        if (name === REQUEST_PART) {
          const chunks: Buffer[] = [];
          for await (const chunk of part.file) { count((chunk as Buffer).length); chunks.push(chunk as Buffer); }
          json = Buffer.concat(chunks).toString('utf8');
          continue;
        }
        const field = name as ArrayPart;
        const receiver = new NpyReceiver(field, ARRAY_PARTS[field], bodyLimit, refuse);
        for await (const chunk of part.file) {
          count((chunk as Buffer).length);
          if (failure === undefined) {
            try { receiver.push(chunk as Buffer); } catch (err) {
              if ((err as ServiceError).code === 'PAYLOAD_TOO_LARGE') throw err;
              failure = err;
            }
          }
        }
        if (failure !== undefined) continue;
        try {
          const { shape, data } = receiver.finish();
          arrays[field] = shape.length === 2 ? { rows: shape[0], cols: shape[1], data } : data;
        } catch (err) {
          failure = err;
        }
      }
    } catch (err) {
      throw fromMultipartError(err, bodyLimit);
    }
    if (failure !== undefined) throw failure;
    if (json === undefined) {
      throw new ServiceError('MALFORMED_BODY', {
        detail: `the multipart body has no part '${REQUEST_PART}'; send the JSON request (network, loss, ...) in a part named '${REQUEST_PART}'` +
          (fields.length ? `, with ${fields.map((f) => `'${f}'`).join(', ')} in it or as .npy parts` : ''),
      });
    }
    let body: unknown;
    try {
      body = JSON.parse(json);
    } catch (err) {
      throw new ServiceError('MALFORMED_BODY', { detail: `the '${REQUEST_PART}' part is not valid JSON: ${(err as Error).message}` });
    }
    if (typeof body === 'object' && body !== null && !Array.isArray(body)) {
      const object = body as Record<string, unknown>;
      for (const f of Object.keys(arrays) as ArrayPart[]) {
        if (Object.hasOwn(object, f)) {
          throw new ServiceError('MALFORMED_BODY', { detail: `${f} is given twice, in the '${REQUEST_PART}' part and as a .npy part; send it once` });
        }
        object[f] = STAND_IN[f];
      }
      received.set(req, arrays);
    }
    req.body = body;
  });

  // After the route's schema has validated the JSON part, the dense arrays take their fields' places.
  app.addHook('preHandler', async (req) => {
    const arrays = received.get(req);
    if (arrays === undefined) return;
    received.delete(req);
    Object.assign(req.body as Record<string, unknown>, arrays);
  });
}

const PART_DOCS: Record<ArrayPart, string> = {
  inputs: 'N × D, as a .npy file (float64 or float32, C order), instead of inputs in the request part.',
  targets: 'N × K, as a .npy file (float64 or float32, C order), instead of targets in the request part.',
  vector: 'v (W), as a 1-D .npy file (float64 or float32), instead of vector in the request part.',
};

/**
 * The OpenAPI requestBody content of a computing route: its JSON body (as the zod transform
 * documents it) and the multipart/form-data form. `zodBody` is the route's zod schema; routes
 * without array fields keep their body as it was (undefined).
 */
export function documentMultipart(zodBody: unknown, jsonBody: unknown): { content: Record<string, { schema: unknown }> } | undefined {
  const shape = (zodBody as { shape?: Record<string, unknown> } | undefined)?.shape;
  if (!shape || typeof shape !== 'object' || jsonBody === undefined) return undefined;
  const fields = (Object.keys(ARRAY_PARTS) as ArrayPart[]).filter((f) => f in shape);
  if (fields.length === 0) return undefined;
  const properties: Record<string, unknown> = {
    [REQUEST_PART]: {
      type: 'string',
      description: `The JSON request, as the application/json body, without the fields sent as .npy parts (${fields.join(', ')}). Send this part with Content-Type: application/json.`,
    },
  };
  for (const f of fields) properties[f] = { type: 'string', format: 'binary', description: PART_DOCS[f] };
  return {
    content: {
      'application/json': { schema: jsonBody },
      'multipart/form-data': {
        schema: {
          type: 'object',
          required: [REQUEST_PART],
          description:
            `The same request with its arrays in binary: a part '${REQUEST_PART}' with the JSON request, and ${fields.map((f) => `'${f}'`).join(', ')} ` +
            'as NumPy .npy files (float64 or float32, C order; numpy.save writes them) in place of the JSON fields. Same limits and refusals as JSON: ' +
            'the whole body within BODY_LIMIT (413), a part that is not a float64/float32 C-order array of the right number of dimensions 400, sizes that do not fit the network 422.',
          properties,
        },
      },
    },
  };
}
