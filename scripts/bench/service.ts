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
import { createServer } from 'node:net';
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

/**
 * POSTs `body` and reads the whole answer, timing request → first byte → last byte. With
 * `timeoutMs`, a request not answered in full by then is abandoned (the socket destroyed, which
 * the service takes as a client gone) and the promise rejects with a message that says so.
 */
export function post(port: number, path: string, body: string | Buffer, accept: string, timeoutMs?: number, contentType = 'application/json'): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    const payload = typeof body === 'string' ? Buffer.from(body) : body;
    const t0 = performance.now();
    let tFirst = 0;
    let timer: NodeJS.Timeout | undefined;
    const req = httpRequest(
      { host: '127.0.0.1', port, path, method: 'POST', agent: false, headers: { 'content-type': contentType, 'content-length': payload.length, accept } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => {
          if (tFirst === 0) tFirst = performance.now();
          chunks.push(c);
        });
        res.on('end', () => {
          clearTimeout(timer);
          const t1 = performance.now();
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks), seconds: (t1 - t0) / 1000, firstByteSeconds: ((tFirst || t1) - t0) / 1000 });
        });
        res.on('error', reject);
      },
    );
    if (timeoutMs !== undefined) {
      timer = setTimeout(() => {
        req.destroy();
        reject(new Error(`no complete answer within ${(timeoutMs / 1000).toFixed(0)} s (abandoned)`));
      }, timeoutMs);
    }
    req.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    req.end(payload);
  });
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
