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

/** GET /health's pool counters. */
export async function poolStats(base: string): Promise<Record<string, number>> {
  const r = await fetch(`${base}/health`);
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
