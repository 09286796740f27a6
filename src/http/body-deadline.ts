/**
 * The body-progress deadline (BODY_TIMEOUT_MS): a request body of which no byte arrives for that
 * long is cut off with a 408 REQUEST_TIMEOUT, instead of holding its connection, its buffers and a
 * place in front of the pool until the whole-request limit (RECEIVE_TIMEOUT_MS) or forever. The
 * clock restarts at every chunk, so a slow but steady upload is never cut; it is Node's socket
 * inactivity timeout made specific to a body that has started and not finished.
 *
 * JSON bodies pass through watchBody (a preParsing stream: Fastify's body reader sees its error as
 * any other and the error handler answers it); multipart bodies, read by @fastify/multipart from
 * the raw request, race each read against a BodyStall (untilStalled).
 */
import { Transform, type Readable } from 'node:stream';
import { ServiceError } from '../errors.ts';

const noop = (): void => {};

/** A restartable timer that fails `failed` when `ms` pass without a touch. */
export class BodyStall {
  /** Rejects with the 408 once the body stalls; already handled, so it never goes unobserved. */
  readonly failed: Promise<never>;
  private received = 0;
  private timer: NodeJS.Timeout | undefined;
  private fail: (err: ServiceError) => void = noop;
  private stopped = false;

  constructor(private readonly ms: number) {
    this.failed = new Promise<never>((_, reject) => { this.fail = reject; });
    this.failed.catch(noop);
    this.arm();
  }

  /** `bytes` more arrived: the clock starts again. */
  touch(bytes: number): void {
    this.received += bytes;
    this.timer?.refresh();
  }

  /** The body is complete, or nobody waits for it any more. */
  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  /** The 408 this stall gives. */
  error(): ServiceError {
    return new ServiceError('REQUEST_TIMEOUT', { reason: 'bodyStalled', ms: this.ms, received: this.received });
  }

  private arm(): void {
    if (this.ms <= 0) return;
    this.timer = setTimeout(() => { if (!this.stopped) this.fail(this.error()); }, this.ms);
    this.timer.unref();
  }
}

/** `payload` as it arrives, failing with the 408 when no chunk comes for `ms` (0: `payload` itself). */
export function watchBody(payload: Readable, ms: number): Readable {
  if (ms <= 0) return payload;
  const stall = new BodyStall(ms);
  const watched = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      stall.touch(chunk.length);
      callback(null, chunk);
    },
    flush(callback) {
      stall.stop();
      callback();
    },
  });
  // its reader (Fastify's) listens for errors; until it does, or if nobody reads, an error must not go unheard
  watched.on('error', noop);
  stall.failed.catch((err: unknown) => watched.destroy(err as Error));
  watched.on('close', () => stall.stop());
  payload.on('error', (err) => watched.destroy(err));
  return payload.pipe(watched);
}

/**
 * The values of `source`, each read raced against `stall`: when it fails first, the loop over this
 * throws its 408. The read left pending is abandoned (its eventual outcome ignored), and `source`
 * is not asked to return, which would wait for that read.
 */
export async function* untilStalled<T>(source: AsyncIterable<T>, stall: BodyStall): AsyncGenerator<T> {
  const iterator = source[Symbol.asyncIterator]();
  let stalled = false;
  try {
    for (;;) {
      const next = iterator.next();
      next.catch(noop);
      const r = await Promise.race([next, stall.failed.catch((err: unknown) => { stalled = true; throw err; })]);
      if (r.done) return;
      yield r.value;
    }
  } finally {
    if (!stalled) await iterator.return?.();
  }
}
