/** HTTP/1.1 over a bare TCP socket, for what an HTTP client library would not send or would hide. */
import { connect, type Socket } from 'node:net';

export interface RawAnswer {
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly body: string;
  /** Everything received. */
  readonly text: string;
  /** ms from connecting to the first byte received, and to the server's FIN or close. */
  readonly firstByteMs: number;
  readonly endMs: number;
  /** The server ended the connection (FIN) rather than resetting it. */
  readonly ended: boolean;
  readonly error?: string;
}

/** Splits one HTTP/1.1 answer (status line, headers, body). */
export function parseAnswer(text: string): { status: number; headers: Record<string, string>; body: string } {
  const end = text.indexOf('\r\n\r\n');
  const head = end < 0 ? text : text.slice(0, end);
  const [statusLine, ...lines] = head.split('\r\n');
  const headers: Record<string, string> = {};
  for (const l of lines) {
    const i = l.indexOf(':');
    if (i > 0) headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
  }
  return { status: Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine)?.[1] ?? 0), headers, body: end < 0 ? '' : text.slice(end + 4) };
}

export interface RawOptions {
  /** Called once connected, to write the request (and keep writing, if it likes). */
  send(socket: Socket): void;
  /** Give up after this long (the answer so far is returned with error 'timeout'). */
  timeoutMs?: number;
}

/**
 * Connects to `port`, lets `send` write, and collects what comes back until the server ends the
 * connection (FIN, or a reset), or `timeoutMs`. The socket is half-open: the server's FIN does not
 * end our side, so a client that keeps writing after its answer is what it looks like; the caller
 * ends or destroys `socket`.
 */
export function rawExchange(port: number, options: RawOptions): Promise<RawAnswer & { socket: Socket }> {
  return new Promise((resolve) => {
    const started = performance.now();
    const socket = connect({ port, host: '127.0.0.1', allowHalfOpen: true });
    let text = '';
    let firstByteMs = -1;
    let ended = false;
    let error: string | undefined;
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      const endMs = performance.now() - started;
      resolve({ ...parseAnswer(text), text, firstByteMs, endMs, ended, error, socket });
    };
    const timer = setTimeout(() => { error = 'timeout'; finish(); socket.destroy(); }, options.timeoutMs ?? 10_000);
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => { if (firstByteMs < 0) firstByteMs = performance.now() - started; text += d; });
    // the server's FIN: its answer is whole; our side stays open for the caller to end
    socket.on('end', () => { ended = true; finish(); });
    socket.on('error', (e) => { error = (e as NodeJS.ErrnoException).code ?? e.message; });
    socket.on('close', finish);
    socket.on('connect', () => options.send(socket));
  });
}

/** Writes `total` bytes of zeros after `head`, as fast as the socket takes them; resolves with how many were written and whether a write failed. */
export function writeZeros(socket: Socket, head: Buffer, total: number): Promise<{ written: number; failed?: string }> {
  return new Promise((resolve) => {
    let written = 0;
    const chunk = Buffer.alloc(64 * 1024);
    let failed: string | undefined;
    socket.on('error', (e) => { failed = (e as NodeJS.ErrnoException).code ?? e.message; resolve({ written, failed }); });
    socket.write(head);
    const pump = () => {
      while (written < total && !socket.destroyed) {
        const n = Math.min(chunk.length, total - written);
        written += n;
        if (!socket.write(chunk.subarray(0, n))) { socket.once('drain', pump); return; }
      }
      if (failed === undefined) resolve({ written, failed });
    };
    pump();
  });
}
