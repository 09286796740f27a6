/**
 * The service side of `npm run bench`: a fresh `node dist/src/server.js` on 127.0.0.1 and a free
 * port (limits raised by environment only), its /health, timed POSTs read to the last byte, and
 * its peak RSS. Shared by the issue-4 table (bench.ts), the sweep (sweep.ts) and the scale group
 * (scale.ts).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { createConnection, createServer } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SERVICE_MALLOC_MMAP_THRESHOLD } from '../../src/config.ts';
import { blasEnv } from './workloads.ts';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const SERVER = join(ROOT, 'dist/src/server.js');
const MiB = 1024 * 1024;

/** Limits raised for the benchmark only (the defaults are not touched): 8 GiB answers, 16 GiB tasks, 512 MiB bodies, a 30-minute timeout. */
export const SERVICE_ENV: Record<string, string> = {
  HOST: '127.0.0.1',
  LOG_LEVEL: 'warn',
  MAX_RESULT_BYTES: String(8 * 1024 * MiB),
  BODY_LIMIT: String(512 * MiB),
  MAX_TASK_BYTES: String(16 * 1024 * MiB),
  REQUEST_TIMEOUT_MS: String(30 * 60_000),
  SHUTDOWN_TIMEOUT_MS: '5000',
  // as the container image runs it (Dockerfile)
  MALLOC_MMAP_THRESHOLD_: SERVICE_MALLOC_MMAP_THRESHOLD,
};

export async function freePort(): Promise<number> {
  const srv = createServer();
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  const port = (srv.address() as { port: number }).port;
  srv.close();
  await once(srv, 'close');
  return port;
}

export interface HttpAnswer { status: number; headers: Record<string, string | string[] | undefined>; body: Buffer; seconds: number; firstByteSeconds: number }

/** Bytes of the socket's read buffer: each read(2) takes up to this much (1 MiB). */
const READ_BYTES = 1 << 20;

/**
 * POSTs `body` and reads the whole answer, timing request → first byte → last byte. With
 * `timeoutMs`, a request not answered in full by then is abandoned (the socket destroyed, which
 * the service takes as a client gone) and the promise rejects with a message that says so.
 *
 * A plain HTTP/1.1 client on a socket (`Connection: close`) that reads into one 1 MiB buffer and
 * copies a Content-Length body straight into its place: Node's own client hands the body over in
 * 64 KiB 'data' chunks and read a 734 MB .npy at 0.8–0.9 GB/s, where curl and the Python client's
 * `raw.readinto` read the same socket at 2.3–2.6 GB/s (measured 2026-12-01 against one Node
 * server), so the bench timed its own client. A chunked body (a streamed JSON answer) is decoded
 * at the end. *firstByteSeconds*: the first byte of the response, its status line (the service
 * sends the header once the answer is computed).
 */
export function post(port: number, path: string, body: string | Buffer, accept: string, timeoutMs?: number, contentType = 'application/json'): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    const payload = typeof body === 'string' ? Buffer.from(body) : body;
    const t0 = performance.now();
    let tFirst = 0;
    let timer: NodeJS.Timeout | undefined;
    let head: Buffer = Buffer.alloc(0);
    let parsed: { status: number; headers: Record<string, string | string[] | undefined>; length: number | undefined } | undefined;
    let fixed: Buffer | undefined;
    let got = 0;
    const rest: Buffer[] = [];
    let settled = false;
    const fail = (err: Error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      reject(err);
    };
    const take = (chunk: Buffer) => {
      if (fixed) {
        const n = Math.min(chunk.length, fixed.length - got);
        chunk.copy(fixed, got, 0, n);
        got += n;
      } else {
        rest.push(Buffer.from(chunk));
      }
    };
    const socket = createConnection({
      host: '127.0.0.1',
      port,
      onread: {
        buffer: Buffer.allocUnsafe(READ_BYTES),
        callback: (n: number, buf: Uint8Array) => {
          if (tFirst === 0) tFirst = performance.now();
          const chunk = Buffer.from(buf.buffer, buf.byteOffset, n);
          if (parsed) {
            take(chunk);
            return true;
          }
          head = Buffer.concat([head, chunk]);
          const end = head.indexOf('\r\n\r\n');
          if (end < 0) return true;
          const lines = head.subarray(0, end).toString('latin1').split('\r\n');
          const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(lines[0])?.[1] ?? 0);
          const headers: Record<string, string | string[] | undefined> = {};
          for (const line of lines.slice(1)) {
            const colon = line.indexOf(':');
            const name = line.slice(0, colon).trim().toLowerCase(), value = line.slice(colon + 1).trim();
            const had = headers[name];
            headers[name] = had === undefined ? value : Array.isArray(had) ? [...had, value] : [had, value];
          }
          const cl = headers['content-length'];
          const length = typeof cl === 'string' && headers['transfer-encoding'] === undefined ? Number(cl) : undefined;
          parsed = { status, headers, length };
          if (length !== undefined) fixed = Buffer.allocUnsafe(length);
          take(head.subarray(end + 4));
          return true;
        },
      },
    });
    socket.on('connect', () => {
      socket.write(`POST ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nContent-Type: ${contentType}\r\nContent-Length: ${payload.length}\r\nAccept: ${accept}\r\nConnection: close\r\n\r\n`);
      // not end(): the service takes a half-closed socket for a client gone and stops the work
      socket.write(payload);
    });
    socket.on('end', () => {
      if (settled) return;
      const t1 = performance.now();
      if (!parsed) return fail(new Error(`${path}: the connection closed before a complete response header`));
      if (fixed && got < fixed.length) return fail(new Error(`${path}: the answer ended after ${got} of its ${fixed.length} bytes`));
      settled = true;
      clearTimeout(timer);
      const raw = fixed ?? Buffer.concat(rest);
      const chunked = String(parsed.headers['transfer-encoding'] ?? '').toLowerCase() === 'chunked';
      resolve({ status: parsed.status, headers: parsed.headers, body: chunked ? unchunk(raw) : raw, seconds: (t1 - t0) / 1000, firstByteSeconds: ((tFirst || t1) - t0) / 1000 });
    });
    socket.on('error', fail);
    if (timeoutMs !== undefined) {
      timer = setTimeout(() => fail(new Error(`no complete answer within ${(timeoutMs / 1000).toFixed(0)} s (abandoned)`)), timeoutMs);
    }
  });
}

/** The body of a chunked transfer coding (RFC 9112 §7.1): sizes in hex, each chunk, a 0-size last one. */
function unchunk(raw: Buffer): Buffer {
  const parts: Buffer[] = [];
  let at = 0;
  for (;;) {
    const eol = raw.indexOf('\r\n', at);
    if (eol < 0) throw new Error('a chunked answer cut off inside a chunk size');
    const size = parseInt(raw.subarray(at, eol).toString('latin1').split(';')[0], 16);
    if (!Number.isFinite(size)) throw new Error('a chunked answer with a bad chunk size');
    if (size === 0) return Buffer.concat(parts);
    if (eol + 2 + size > raw.length) throw new Error('a chunked answer cut off inside a chunk');
    parts.push(raw.subarray(eol + 2, eol + 2 + size));
    at = eol + 4 + size;
  }
}

export async function getJson(port: number, path: string): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => (res.statusCode === 200 ? resolve(JSON.parse(text)) : reject(new Error(`${path}: ${res.statusCode} ${text}`))));
    });
    req.on('error', reject);
    req.end();
  });
}

/** Peak resident memory (VmHWM) of a process, bytes; it covers the worker threads. */
export function peakRss(pid: number): number {
  try {
    const m = /^VmHWM:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : NaN;
  } catch {
    return NaN;
  }
}

export interface Service {
  child: ChildProcess;
  port: number;
  /** e.g. `openblas/2t`. */
  backend: string;
  /** The OpenBLAS build and core the service reports, if any. */
  openblas?: string;
  workers?: number;
}

/**
 * Starts a fresh service and waits for /health. `nodeArgs` go before the script (e.g. --cpu-prof);
 * `script` is what node runs: the built server, or `['--import', 'tsx', 'src/server.ts']` where
 * dist/ may be stale (the smoke tests).
 */
export async function startService(env: Readonly<Record<string, string>>, nodeArgs: string[] = [], script: readonly string[] = [SERVER]): Promise<Service> {
  const port = await freePort();
  const child = spawn(process.execPath, [...nodeArgs, ...script], { cwd: ROOT, env: { ...blasEnv(), ...SERVICE_ENV, ...env, PORT: String(port) }, stdio: ['ignore', 'inherit', 'inherit'] });
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`the service exited with code ${child.exitCode} before answering /health`);
    try {
      const health = (await getJson(port, '/health')) as { linalg?: { backend?: string; threads?: number; openblas?: string } | string; pool?: { workers?: number; blasThreads?: number } };
      const li = health.linalg;
      const name = typeof li === 'string' ? li : li?.backend ?? 'unknown';
      const threads = health.pool?.blasThreads ?? (typeof li === 'object' ? li.threads : undefined);
      const backend = name === 'openblas' && threads !== undefined ? `openblas/${threads}t` : name;
      return { child, port, backend, workers: health.pool?.workers, openblas: typeof li === 'object' ? li.openblas : undefined };
    } catch (err) {
      if (Date.now() > deadline) {
        child.kill('SIGKILL');
        throw new Error(`the service did not answer /health within 60 s: ${(err as Error).message}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

export async function stopService(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}
