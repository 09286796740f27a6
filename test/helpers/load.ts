/**
 * A small closed-loop load generator over real sockets: `connections` clients, each on a
 * keep-alive connection of its own, sending one request after another (optionally at most one
 * per `intervalMs`) until `durationMs` has passed. Records each answer's status, Retry-After and
 * latency (from sending to the last byte read). Bounded in count and time; it stops by itself.
 */
import { Agent, request } from 'node:http';

export interface LoadResult {
  readonly statuses: number[];
  readonly latenciesMs: number[];
  readonly retryAfters: (string | undefined)[];
  readonly errors: string[];
  readonly elapsedMs: number;
}

export interface LoadOptions {
  readonly base: string;
  readonly path: string;
  readonly body: string;
  readonly connections: number;
  readonly durationMs: number;
  /** Each client waits until this long after its previous request started (0: back to back). */
  readonly intervalMs?: number;
  /** At most this many requests in all. */
  readonly maxRequests?: number;
  readonly headers?: Record<string, string>;
  /** POST (default, with `body`) or GET. */
  readonly method?: 'GET' | 'POST';
}

export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))];
}

export async function load(o: LoadOptions): Promise<LoadResult> {
  const url = new URL(o.path, o.base);
  const statuses: number[] = [];
  const latenciesMs: number[] = [];
  const retryAfters: (string | undefined)[] = [];
  const errors: string[] = [];
  const started = performance.now();
  const end = started + o.durationMs;
  const max = o.maxRequests ?? Infinity;
  let sent = 0;
  const one = (agent: Agent) => new Promise<void>((resolve) => {
    const t0 = performance.now();
    const req = request({
      host: url.hostname, port: url.port, path: url.pathname, method: o.method ?? 'POST', agent,
      headers: o.method === 'GET' ? { ...o.headers } : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(o.body), ...o.headers },
    }, (res) => {
      res.on('data', () => undefined);
      res.on('end', () => {
        latenciesMs.push(performance.now() - t0);
        statuses.push(res.statusCode ?? 0);
        retryAfters.push(res.headers['retry-after'] as string | undefined);
        resolve();
      });
      res.on('error', (e) => { errors.push(e.message); resolve(); });
    });
    req.setTimeout(30_000, () => req.destroy(new Error('no answer in 30 s')));
    req.on('error', (e) => { errors.push(e.message); resolve(); });
    req.end(o.method === 'GET' ? undefined : o.body);
  });
  await Promise.all(Array.from({ length: o.connections }, async () => {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    try {
      while (performance.now() < end && sent < max) {
        sent++;
        const t0 = performance.now();
        await one(agent);
        const wait = (o.intervalMs ?? 0) - (performance.now() - t0);
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      }
    } finally {
      agent.destroy();
    }
  }));
  return { statuses, latenciesMs, retryAfters, errors, elapsedMs: performance.now() - started };
}
