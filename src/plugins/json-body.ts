/**
 * Request bodies: JSON by the service's own parser (src/http/json.ts: arrays of numbers dense,
 * bounded work, the event loop free while a large body is read) and nothing else at the root;
 * multipart bodies belong to the compute routes (src/plugins/multipart.ts). Fastify's text/plain
 * parser would turn a 415 into a confusing 400, so it goes.
 *
 * The body is read into one buffer as it arrives (readBody): Fastify's own reader keeps the chunks
 * and joins them at the end, one copy of the whole body in one go (about 40 ms for 50 MiB, during
 * which nothing else, /health included, is answered).
 */
import type { Readable } from 'node:stream';
import fp from 'fastify-plugin';
import { ServiceError } from '../errors.ts';
import { parseJsonBody } from '../http/json.ts';

/** The first buffer of a body without Content-Length; it doubles as the body grows. */
const FIRST_BYTES = 64 * 1024;

/**
 * Reads `payload` into one buffer, copying each chunk as it comes: of the declared size when there
 * is a Content-Length (refused at once above `limit`), else growing by doubling up to `limit`.
 */
export async function readBody(payload: Readable, contentLength: string | undefined, limit: number): Promise<Buffer> {
  const declared = contentLength === undefined ? NaN : Number(contentLength);
  if (declared > limit) throw new ServiceError('PAYLOAD_TOO_LARGE', { reason: 'body', bytes: declared, limit });
  let buf = Buffer.allocUnsafe(Number.isInteger(declared) && declared >= 0 ? declared : FIRST_BYTES);
  let length = 0;
  for await (const chunk of payload as AsyncIterable<Buffer>) {
    const end = length + chunk.length;
    if (end > limit) throw new ServiceError('PAYLOAD_TOO_LARGE', { reason: 'body', limit });
    if (end > buf.length) {
      if (Number.isInteger(declared)) throw new ServiceError('MALFORMED_BODY', { reason: 'framing', message: `the body is longer than its Content-Length of ${declared} bytes` });
      const grown = Buffer.allocUnsafe(Math.min(limit, Math.max(end, 2 * buf.length)));
      buf.copy(grown, 0, 0, length);
      buf = grown;
    }
    chunk.copy(buf, length);
    length = end;
  }
  if (Number.isInteger(declared) && length !== declared) {
    throw new ServiceError('MALFORMED_BODY', { reason: 'framing', message: `the body has ${length} bytes but its Content-Length says ${declared}` });
  }
  return buf.subarray(0, length);
}

export const jsonBodyPlugin = fp<{ readonly bodyLimit: number }>(async (app, opts) => {
  app.removeContentTypeParser(['application/json', 'text/plain']);
  app.addContentTypeParser('application/json', async (req: { headers: Record<string, string | string[] | undefined> }, payload: Readable) => {
    const length = req.headers['content-length'];
    return parseJsonBody(await readBody(payload, typeof length === 'string' ? length : undefined, opts.bodyLimit));
  });
}, { name: 'json-body' });
