/**
 * The connection's limits, from the configuration: Node's headersTimeout and requestTimeout
 * (HEADERS_TIMEOUT_MS, RECEIVE_TIMEOUT_MS), the body-progress deadline (BODY_TIMEOUT_MS), the
 * keep-alive timeout and the idle-connection timeout (KEEP_ALIVE_TIMEOUT_MS,
 * CONNECTION_TIMEOUT_MS); the refusals of Node's HTTP parser as problem+json (a clientError
 * handler); and an answer sent while the body is still arriving closes the connection only after
 * the client has seen it (src/http/connection.ts).
 *
 * Fastify takes the server's own options at construction (connectionOptions, for buildApp); the
 * plugin adds the hooks and the server's 'timeout' listener.
 */
import type { FastifyInstance, FastifyServerOptions } from 'fastify';
import fp from 'fastify-plugin';
import type { Config } from '../config.ts';
import { ServiceError } from '../errors.ts';
import { watchBody } from '../http/body-deadline.ts';
import { answerClientError, lingerAfterAnswer, onSocketIdle } from '../http/connection.ts';

export type ConnectionConfig = Pick<Config, 'bodyLimit' | 'headersTimeoutMs' | 'receiveTimeoutMs' | 'bodyTimeoutMs' | 'keepAliveTimeoutMs' | 'connectionTimeoutMs'>;

/**
 * How often Node looks for requests past headersTimeout or requestTimeout (its default is every
 * 30 s, which would let a 1 s limit run 30 s): a quarter of the shorter limit, from 50 ms to 30 s.
 */
function checkingInterval(c: ConnectionConfig): number {
  const shorter = Math.min(c.headersTimeoutMs, c.receiveTimeoutMs > 0 ? c.receiveTimeoutMs : Infinity);
  return Math.max(50, Math.min(30_000, Math.floor(shorter / 4)));
}

/** Fastify's server options for these limits, and the clientError handler. */
export function connectionOptions(c: ConnectionConfig): Pick<FastifyServerOptions, 'requestTimeout' | 'keepAliveTimeout' | 'connectionTimeout' | 'clientErrorHandler'> & { http: { headersTimeout: number; requestTimeout: number; connectionsCheckingInterval: number; requireHostHeader: boolean } } {
  const timeouts = { headersMs: c.headersTimeoutMs, receiveMs: c.receiveTimeoutMs };
  return {
    requestTimeout: c.receiveTimeoutMs,
    keepAliveTimeout: c.keepAliveTimeoutMs,
    connectionTimeout: c.connectionTimeoutMs,
    // Node's own refusal of an HTTP/1.1 request without Host is a bare 400; the onRequest hook below refuses it as a problem
    http: { headersTimeout: c.headersTimeoutMs, requestTimeout: c.receiveTimeoutMs, connectionsCheckingInterval: checkingInterval(c), requireHostHeader: false },
    clientErrorHandler(this: FastifyInstance, err, socket) {
      const refusal = answerClientError(err, socket, timeouts);
      if (refusal) this.log.info({ code: refusal.code, parser: err.code, reason: (err as { reason?: string }).reason, detail: refusal.detail, remoteAddress: socket.remoteAddress }, 'request refused by the HTTP parser');
    },
  };
}

/** The bodies Fastify reads for us (src/plugins/json-body.ts); multipart bodies are read by src/plugins/multipart.ts. */
const JSON_TYPE = /^\s*application\/json\s*(;|$)/i;

/** At least this much of a refused body is read and dropped after the answer (else BODY_LIMIT): a client that writes all before it reads then sees its answer. */
const DRAIN_MIN_BYTES = 64 * 1024 * 1024;

export const connectionsPlugin = fp<{ readonly config: ConnectionConfig }>(async (app, opts) => {
  const { bodyLimit, bodyTimeoutMs } = opts.config;
  const drainBytes = Math.max(bodyLimit, DRAIN_MIN_BYTES);
  // the body-progress deadline for the bodies Fastify reads (JSON); multipart bodies have theirs in src/plugins/multipart.ts
  app.addHook('preParsing', async (req, _reply, payload) => {
    if (req.raw.complete !== false || !JSON_TYPE.test(req.headers['content-type'] ?? '')) return payload;
    return watchBody(payload, bodyTimeoutMs);
  });
  app.addHook('onRequest', async (req, reply) => {
    if (req.raw.httpVersion === '1.1' && req.headers.host === undefined) {
      reply.header('connection', 'close');
      throw new ServiceError('MALFORMED_HTTP', { reason: 'NO_HOST', message: 'Missing Host header' });
    }
  });
  app.addHook('onSend', async (req, reply, payload) => {
    if (req.raw.complete === false && !reply.raw.headersSent) {
      reply.header('connection', 'close');
      lingerAfterAnswer(req.raw, drainBytes);
    }
    return payload;
  });
  // with a listener here Node leaves every idle socket to it, keep-alive ones included
  app.server.on('timeout', onSocketIdle);
}, { name: 'connections' });
