/** Deterministic requests of a chosen cost, and a real listening server for the socket tests. */
import type { FastifyInstance } from 'fastify';
import type { TestContext } from 'node:test';
import { buildApp, type AppOptions } from '../../src/app.ts';

type Layer = { weights: number[][]; bias: number[]; activation: string };

export function layer(out: number, inp: number, activation: string, seed = 1): Layer {
  return {
    weights: Array.from({ length: out }, (_, i) => Array.from({ length: inp }, (_, j) => Math.sin(seed * 7 + i * inp + j) / Math.sqrt(inp))),
    bias: Array.from({ length: out }, (_, i) => 0.1 * Math.cos(seed + i)),
    activation,
  };
}

/** A sum-of-squares problem: D inputs, one tanh layer of M units, K linear outputs, N points. W = M(D+1) + K(M+1). */
export function problem(d: number, m: number, k: number, n: number) {
  return {
    network: { layers: [layer(m, d, 'tanh'), layer(k, m, 'identity', 2)] },
    inputs: Array.from({ length: n }, (_, p) => Array.from({ length: d }, (_, j) => Math.cos(p + 0.3 * j))),
    targets: Array.from({ length: n }, (_, p) => Array.from({ length: k }, (_, j) => Math.sin(p * (j + 1)))),
    loss: 'sum-of-squares',
  };
}

/** Builds the app, listens on 127.0.0.1:0 and closes it after the test; returns the base URL. */
export async function listen(t: TestContext, options: AppOptions = {}): Promise<{ app: FastifyInstance; base: string }> {
  const app = await buildApp(options);
  t.after(() => app.close());
  const base = await app.listen({ host: '127.0.0.1', port: 0 });
  return { app, base };
}

/** A TCP port free on 127.0.0.1 now (for a server started with quiet logs, which print no listening line). */
export async function freePort(): Promise<number> {
  const { createServer } = await import('node:net');
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** GET /health's pool counters. */
export async function poolStats(base: string): Promise<Record<string, number>> {
  const r = await fetch(`${base}/health`, { signal: AbortSignal.timeout(10_000) });
  return ((await r.json()) as { pool: Record<string, number> }).pool;
}

/** Polls `check` every 20 ms until it holds or `ms` pass; returns whether it held. */
export async function until(check: () => Promise<boolean> | boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  for (;;) {
    if (await check()) return true;
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * The real server (node --import tsx src/server.ts) in a child process, as an operator runs it:
 * the environment of the test runner (without MALLOC_MMAP_THRESHOLD_: the server sets glibc's
 * setting for itself, src/malloc.ts) and `env`.
 */
export interface ServerProcess {
  readonly child: import('node:child_process').ChildProcess;
  readonly base: string;
  /** Everything it printed so far. */
  log(): string;
  /** Its resident set size in MiB (Linux /proc). */
  rssMiB(): number;
}

export async function spawnServer(t: TestContext, env: Record<string, string>): Promise<ServerProcess> {
  const { spawn } = await import('node:child_process');
  const { readFileSync } = await import('node:fs');
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/server.ts'], {
    cwd: new URL('../../', import.meta.url),
    env: { ...process.env, HOST: '127.0.0.1', PORT: '0', LOG_LEVEL: 'info', MALLOC_MMAP_THRESHOLD_: undefined, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  t.after(() => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL'); });
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => { out += d; });
  child.stderr.setEncoding('utf8').on('data', (d: string) => { out += d; });
  const base = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no listening line in 60 s:\n${out}`)), 60_000);
    child.on('exit', () => { clearTimeout(timer); reject(new Error(`exited before listening:\n${out}`)); });
    if (env.PORT && env.PORT !== '0') {
      // a port chosen by the caller (quiet logs print no listening line): wait until it answers
      const at = `http://127.0.0.1:${env.PORT}`;
      const poll = async () => {
        try {
          if ((await fetch(`${at}/health/live`, { signal: AbortSignal.timeout(1000) })).ok) { clearTimeout(timer); resolve(at); return; }
        } catch {
          // not listening yet
        }
        if (child.exitCode === null) setTimeout(poll, 100);
      };
      void poll();
      return;
    }
    child.stdout.on('data', () => {
      const m = /listening at (http:\/\/127\.0\.0\.1:\d+)/.exec(out);
      if (m) { clearTimeout(timer); resolve(m[1]); }
    });
  });
  return {
    child,
    base,
    log: () => out,
    rssMiB: () => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'))![1]) / 1024,
  };
}
