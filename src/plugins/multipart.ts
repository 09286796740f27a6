/**
 * Binary request bodies for the compute routes: `multipart/form-data` with one part `request`
 * holding the JSON request and `inputs`, `targets` (and `vector`) allowed instead as NumPy .npy
 * parts (float64 or float32, C order). A pipeline with 100,000 inputs of 784 features sends
 * 627 MB of float64 rather than about 1.5 GB of JSON text, and each .npy part is received
 * straight into a Float64Array.
 *
 * The parts become the same body a JSON request makes: the JSON part is parsed by the same
 * parser (its arrays of numbers dense), each .npy part is a DenseArray in its field's place, and
 * the route's schema then validates that body exactly as it validates JSON. Limits are those of
 * JSON: the whole body (every part's bytes) within BODY_LIMIT, refused with 413 before a large
 * array is allocated; malformed parts with 400 and a detail naming the part.
 */
import type { FastifyRequest } from 'fastify';
import fastifyMultipart from '@fastify/multipart';
import fp from 'fastify-plugin';
import { ServiceError } from '../errors.ts';
import { BodyStall, untilStalled } from '../http/body-deadline.ts';
import type { DenseArray } from '../http/dense.ts';
import { parseJsonBody } from '../http/json.ts';
import { NpyReceiver } from '../http/npy.ts';

/** The fields a .npy part may carry, with their number of dimensions. */
export const ARRAY_PARTS = { inputs: 2, targets: 2, labels: 1, vector: 1, vectors: 2 } as const;
/** The parts of integers. */
const INTEGER_PARTS: ReadonlySet<string> = new Set(['labels']);
export type ArrayPart = keyof typeof ARRAY_PARTS;

/** The name of the part that holds the JSON request. */
export const REQUEST_PART = 'request';

const ALL_PARTS = [REQUEST_PART, ...Object.keys(ARRAY_PARTS)];

/** The .npy fields the route's body schema has (a zod object's keys), in the order of ARRAY_PARTS. */
export function arrayFieldsOf(bodySchema: unknown): ArrayPart[] {
  const shape = (bodySchema as { shape?: Record<string, unknown> } | undefined)?.shape;
  if (!shape || typeof shape !== 'object') return [];
  return (Object.keys(ARRAY_PARTS) as ArrayPart[]).filter((f) => f in shape);
}

/** The boundary parameter of a multipart Content-Type, as busboy reads it (quoted or not). */
function boundaryOf(contentType: string | undefined): string {
  const m = /;\s*boundary\s*=\s*(?:"([^"]*)"|([^;\s]*))/i.exec(contentType ?? '');
  return m ? (m[1] ?? m[2]) : '';
}

/** @fastify/multipart's and busboy's own errors, as catalogued refusals; `partsSeen` tells a wrong boundary from a cut body. */
function fromMultipartError(err: unknown, bodyLimit: number, req: FastifyRequest, partsSeen: number): unknown {
  if (err instanceof ServiceError) return err;
  const e = err as { code?: string; statusCode?: number; message?: string };
  switch (e.code) {
    case 'FST_PARTS_LIMIT':
    case 'FST_FILES_LIMIT':
    case 'FST_FIELDS_LIMIT':
      return new ServiceError('PAYLOAD_TOO_LARGE', { reason: 'tooManyParts', parts: ALL_PARTS });
    case 'FST_REQ_FILE_TOO_LARGE':
      return new ServiceError('PAYLOAD_TOO_LARGE', { reason: 'part', limit: bodyLimit });
    case 'FST_PROTO_VIOLATION':
      return new ServiceError('MALFORMED_BODY', { reason: 'protoPart', parts: ALL_PARTS });
  }
  if (e.message === 'Multipart: Boundary not found') return new ServiceError('MALFORMED_BODY', { reason: 'noBoundary' });
  // busboy reads to the end without meeting the boundary once: the body and its Content-Type disagree
  if (e.message === 'Unexpected end of multipart data' && partsSeen === 0) {
    return new ServiceError('MALFORMED_BODY', { reason: 'boundary', boundary: boundaryOf(req.headers['content-type']) });
  }
  if (typeof e.message === 'string' && (e.statusCode === undefined || e.statusCode < 500)) {
    // busboy: 'Multipart: Boundary not found', 'Unexpected end of multipart data', ...
    return new ServiceError('MALFORMED_BODY', { reason: 'multipart', message: e.message });
  }
  return err;
}

/**
 * Reads every part of a multipart request into the body a JSON request would have made; a body
 * of which no byte arrives for `bodyTimeoutMs` is refused with 408 (src/http/body-deadline.ts).
 */
async function readParts(req: FastifyRequest, bodyLimit: number, bodyTimeoutMs: number): Promise<unknown> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > bodyLimit) throw new ServiceError('PAYLOAD_TOO_LARGE', { reason: 'body', bytes: declared, limit: bodyLimit });
  const fields = arrayFieldsOf(req.routeOptions.schema?.body);
  const allowed = [REQUEST_PART, ...fields];
  let json: Buffer | undefined;
  const arrays: Partial<Record<ArrayPart, DenseArray>> = {};
  let total = 0;
  let failure: unknown;
  const count = (n: number) => {
    total += n;
    if (total > bodyLimit) throw new ServiceError('PAYLOAD_TOO_LARGE', { reason: 'parts', limit: bodyLimit });
  };
  let partsSeen = 0;
  const stall = new BodyStall(bodyTimeoutMs);
  const touch = (chunk: Buffer) => stall.touch(chunk.length);
  const parts = req.parts();
  // after req.parts(), which pipes the request into busboy: listening now does not start the flow early
  req.raw.on('data', touch);
  try {
    for await (const part of untilStalled(parts, stall)) {
      partsSeen++;
      if (part.type !== 'file') continue; // isPartAFile makes every part a file
      // busboy names a part without name="..." in its Content-Disposition undefined
      const name = part.fieldname as string | undefined;
      if (name === undefined || name === '') {
        failure ??= new ServiceError('MALFORMED_BODY', { reason: 'namelessPart', parts: allowed });
        for await (const chunk of untilStalled(part.file, stall)) count((chunk as Buffer).length);
        continue;
      }
      // After a refusal, the rest of the body is read and dropped, so the client is not cut off mid-upload.
      let error: unknown;
      if (failure !== undefined) error = failure;
      else if (!allowed.includes(name)) error = new ServiceError('MALFORMED_BODY', { reason: 'unknownPart', part: name, url: req.routeOptions.url ?? req.url, parts: allowed });
      else if ((name === REQUEST_PART && json !== undefined) || (name !== REQUEST_PART && arrays[name as ArrayPart] !== undefined)) {
        error = new ServiceError('MALFORMED_BODY', { reason: 'duplicatePart', part: name });
      }
      if (error !== undefined) {
        failure = error;
        for await (const chunk of untilStalled(part.file, stall)) count((chunk as Buffer).length);
        continue;
      }
      if (name === REQUEST_PART) {
        const chunks: Buffer[] = [];
        for await (const chunk of untilStalled(part.file, stall)) { count((chunk as Buffer).length); chunks.push(chunk as Buffer); }
        json = Buffer.concat(chunks);
        continue;
      }
      const field = name as ArrayPart;
      const receiver = new NpyReceiver(field, ARRAY_PARTS[field], bodyLimit, INTEGER_PARTS.has(field));
      for await (const chunk of untilStalled(part.file, stall)) {
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
        arrays[field] = receiver.finish();
      } catch (err) {
        failure = err;
      }
    }
  } catch (err) {
    throw fromMultipartError(err, bodyLimit, req, partsSeen);
  } finally {
    stall.stop();
    req.raw.off('data', touch);
  }
  if (failure !== undefined) throw failure;
  if (json === undefined) throw new ServiceError('MALFORMED_BODY', { reason: 'noRequestPart', parts: fields });
  const body = await parseJsonBody(json, REQUEST_PART);
  if (typeof body === 'object' && body !== null && !Array.isArray(body)) {
    const object = body as Record<string, unknown>;
    for (const [f, a] of Object.entries(arrays)) {
      if (Object.hasOwn(object, f)) throw new ServiceError('MALFORMED_BODY', { reason: 'givenTwice', field: f });
      object[f] = a;
    }
  }
  return body;
}

/**
 * Registers @fastify/multipart and the hook that reads a multipart body before validation.
 * Registered inside the compute routes' plugin, so only they take multipart bodies.
 */
export const multipartPlugin = fp<{ readonly bodyLimit: number; readonly bodyTimeoutMs: number }>(async (app, opts) => {
  const { bodyLimit, bodyTimeoutMs } = opts;
  await app.register(fastifyMultipart, {
    // Every part is read as a stream, the JSON part too, so that we parse it ourselves and report
    // its syntax errors as a JSON body's are.
    isPartAFile: () => true,
    throwFileSizeLimit: true,
    limits: { parts: ALL_PARTS.length, files: ALL_PARTS.length, fields: 0, fileSize: bodyLimit, headerPairs: 32 },
  });
  app.addHook('preValidation', async (req) => {
    if (req.isMultipart()) req.body = await readParts(req, bodyLimit, bodyTimeoutMs);
  });
}, { name: 'multipart-bodies' });

const PART_DOCS: Record<ArrayPart, string> = {
  inputs: 'N × D, as a .npy file (float64 or float32, C order), instead of inputs in the request part.',
  targets: 'N × K, as a .npy file (float64 or float32, C order), instead of targets in the request part.',
  labels: 'N class indices, as a 1-D .npy file of integers (int64 or int32), instead of labels in the request part.',
  vector: 'v (W), as a 1-D .npy file (float64 or float32), instead of vector in the request part.',
  vectors: 'm × W, as a .npy file (float64 or float32, C order), instead of vectors in the request part.',
};

/**
 * The OpenAPI requestBody content of a computing route: its JSON body (as the zod transform
 * documents it) and the multipart/form-data form. `zodBody` is the route's zod schema; routes
 * without array fields keep their body as it was (undefined).
 */
export function documentMultipart(zodBody: unknown, jsonBody: unknown): { content: Record<string, { schema: unknown }> } | undefined {
  const fields = arrayFieldsOf(zodBody);
  if (fields.length === 0 || jsonBody === undefined) return undefined;
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
