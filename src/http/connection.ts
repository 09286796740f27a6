/**
 * What happens on the connection around a request, below Fastify's routes: the refusals of Node's
 * HTTP parser as problem+json, the answer to a socket that went quiet, and the close after an
 * answer sent while the body is still arriving.
 */
import { maxHeaderSize, STATUS_CODES, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { ServiceError } from '../errors.ts';
import { problemBody } from './problem.ts';

/** Node's own fields of a server socket that tell what it is doing (not in its typings). */
interface ServerSocket extends Socket {
  parser?: { incoming?: IncomingMessage | null } | null;
  _httpMessage?: ServerResponse | null;
}

/**
 * The refusal for an error of Node's HTTP parser or its request timers ('clientError'): 408 for
 * the headers or the whole request not received in time (which of the two from whether the
 * headers had arrived), 431 for headers over Node's limit, else 400 MALFORMED_HTTP naming what
 * llhttp found (its HPE_ code).
 */
export function clientErrorRefusal(err: Error & { code?: string; reason?: string }, socket: Socket, timeouts: { headersMs: number; receiveMs: number }): ServiceError {
  if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') {
    const started = (socket as ServerSocket).parser?.incoming;
    return new ServiceError('REQUEST_TIMEOUT', started ? { reason: 'receive', ms: timeouts.receiveMs } : { reason: 'headers', ms: timeouts.headersMs });
  }
  if (err.code === 'HPE_HEADER_OVERFLOW') return new ServiceError('HEADERS_TOO_LARGE', { limit: maxHeaderSize });
  return new ServiceError('MALFORMED_HTTP', { reason: err.code ?? 'unknown', message: err.reason ?? err.message });
}

/** A whole HTTP/1.1 answer carrying `err` as problem+json, closing the connection. */
export function rawProblem(err: ServiceError): string {
  const body = problemBody(err);
  return `HTTP/1.1 ${err.status} ${STATUS_CODES[err.status] ?? ''}\r\nContent-Type: application/problem+json; charset=utf-8\r\n` +
    `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`;
}

/** How long a connection is kept, after its answer, to take the rest of a body that is still arriving, when no byte of it comes. */
export const LINGER_IDLE_MS = 2000;

/** Sockets already answered by answerClientError (the parser reports each later chunk again). */
const answered = new WeakSet<Socket>();

/**
 * Answers a parser refusal on the raw socket (there is no request object), unless an answer is
 * already on its way there, then half-closes and lingers as lingerAfterAnswer does. Returns the
 * refusal, or undefined when there was nothing to answer (a reset, a second report).
 */
export function answerClientError(err: Error & { code?: string; reason?: string }, socket: Socket, timeouts: { headersMs: number; receiveMs: number }): ServiceError | undefined {
  if (err.code === 'ECONNRESET' || socket.destroyed || answered.has(socket)) return undefined;
  answered.add(socket);
  const refusal = clientErrorRefusal(err, socket, timeouts);
  const inFlight = (socket as ServerSocket)._httpMessage;
  if (!socket.writable || inFlight?.headersSent) {
    // an answer has started on this connection: nothing can be written after it
    socket.destroy();
    return refusal;
  }
  socket.end(rawProblem(refusal));
  linger(socket);
  return refusal;
}

/** After our FIN: discard what the client still sends, and close once it closes or goes quiet for LINGER_IDLE_MS. */
function linger(socket: Socket): void {
  const timer = setTimeout(() => socket.destroy(), LINGER_IDLE_MS);
  timer.unref();
  socket.on('data', () => timer.refresh());
  socket.once('end', () => socket.destroy());
  socket.once('close', () => clearTimeout(timer));
  socket.resume();
}

/**
 * An answer (a refusal: 413, 408, 401, 503, ...) is being sent while the request's body is still
 * arriving. The answer says Connection: close (set by the caller); here the rest of the body is
 * read and dropped while the answer goes out, and when Node would end the connection after the
 * answer, it half-closes instead (a FIN after the answer) and keeps reading until the body ends,
 * the client closes, no byte comes for LINGER_IDLE_MS or `drainBytes` more have come, then closes.
 *
 * Why not close at once: a client that writes its whole body before reading (Python requests,
 * urllib3, http.client) would meet a closed socket; the kernel answers the bytes that keep coming
 * with a reset, and a reset discards the answer still unread in the client's receive buffer, so
 * the client sees "connection reset" or times out instead of its 413 (Apache's "lingering close").
 * Why not keep the connection: a body refused for its size may be endless (chunked).
 */
export function lingerAfterAnswer(req: IncomingMessage, drainBytes: number): void {
  const socket = req.socket;
  // whoever read the body (busboy, Fastify's reader) has given up on it
  req.unpipe();
  let drained = 0;
  req.on('data', (chunk: Buffer) => {
    drained += chunk.length;
    if (drained > drainBytes) socket.destroy();
  });
  req.resume();
  // Node calls destroySoon once the answer is written (Connection: close): FIN, then destroy.
  const destroySoon = socket.destroySoon;
  if (typeof destroySoon !== 'function') return;
  socket.destroySoon = function lingeringClose(this: Socket) {
    socket.destroySoon = destroySoon;
    if (req.complete) return destroySoon.call(socket);
    const timer = setTimeout(() => socket.destroy(), LINGER_IDLE_MS);
    timer.unref();
    req.on('data', () => timer.refresh());
    req.once('end', () => socket.destroy());
    socket.once('end', () => socket.destroy());
    socket.once('close', () => clearTimeout(timer));
    socket.end();
  };
}

/**
 * A connection on which nothing moved for CONNECTION_TIMEOUT_MS (Node's socket 'timeout', also
 * its keep-alive timer): closed, unless its request is complete and its answer not started, that
 * is, being computed or waiting for a worker (REQUEST_TIMEOUT_MS bounds those).
 */
export function onSocketIdle(socket: Socket): void {
  const s = socket as ServerSocket;
  const req = s.parser?.incoming;
  const res = s._httpMessage;
  if (req?.complete && res && !res.headersSent) return;
  socket.destroy();
}
