/**
 * The sweep of `npm run bench` (issue 13): every shape of workloads.ts's SWEEP, the exact and the
 * outer-product Hessian, the service over HTTP against torch.func and JAX (scripts/bench/peers.py)
 * in the same run, each row also against the flop floor: the method's GEMM flops (floorFlops) at
 * the machine's dgemm rate, measured at the start of the run.
 *
 * Service: a fresh `node dist/src/server.js` per shape; after /health, one request of each method
 * on a toy network of the same depth warms the JIT, the pool and the BLAS threads; then per method
 * up to `repeat` timed `Accept: application/x-npy` requests (fewer once 10 s are spent), clocked
 * from sending to the last byte ("service s", the best) and to the first byte ("compute s", the
 * same request's; the answer's header goes out when the matrix is ready).
 *
 * Peers: one Python process per (shape, peer, method), each reading the same request body and
 * comparing its matrix with the service's .npy; see peers.py for what is timed and how a peer
 * that would exceed the time or memory budget is skipped with a reason.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { freemem } from 'node:os';
import { join } from 'node:path';
import { runPeerProcess } from './peer-process.ts';
import { ROOT, peakRss, post, startService, stopService } from './service.ts';
import { blasEnv, floorFlops, makeNetwork, request, shapeLabel, shapeParameterCount, type Kind, type SweepShape } from './workloads.ts';

export const PEERS_SCRIPT = join(ROOT, 'scripts/bench/peers.py');
export const SWEEP_METHODS = ['exact', 'outer-product'] as const;
export type SweepMethod = (typeof SWEEP_METHODS)[number];
export type Peer = 'torch' | 'jax';
/** Agreement required of the service with every peer: max|service − peer| / max|peer|. */
export const SWEEP_AGREE = 1e-13;

export interface PeerPython {
  python: string;
  versions: Record<string, string>;
  peers: Peer[];
}

/** The environment of every peer process: the service's BLAS environment and `threads` threads everywhere. */
export function peerEnv(threads: number): NodeJS.ProcessEnv {
  const t = String(threads);
  return {
    ...blasEnv(),
    BENCH_THREADS: t,
    OMP_NUM_THREADS: t,
    MKL_NUM_THREADS: t,
    OPENBLAS_NUM_THREADS: t,
    // XLA:CPU's intra-op pool (its default is every core; set for machines with more than `threads`)
    XLA_FLAGS: `${process.env.XLA_FLAGS ?? ''} --xla_cpu_multi_thread_eigen=true intra_op_parallelism_threads=${t}`.trim(),
    JAX_PLATFORMS: 'cpu',
    TF_CPP_MIN_LOG_LEVEL: '2',
  };
}

/**
 * The Python the peers run in: $BENCH_PYTHON, else the project's virtualenv .peers/ (made by
 * scripts/bench/peers-setup.sh), else Debian's /usr/bin/python3 (PyTorch 1.13 with functorch, no
 * JAX). Undefined when none of them imports numpy; `peers` lists what it can run.
 */
export function findPeerPython(): PeerPython | { missing: string } {
  const candidates = [process.env.BENCH_PYTHON, join(ROOT, '.peers/bin/python'), '/usr/bin/python3'].filter((p): p is string => !!p);
  const tried: string[] = [];
  for (const python of candidates) {
    if (!existsSync(python)) {
      tried.push(`${python}: absent`);
      continue;
    }
    const r = spawnSync(python, [PEERS_SCRIPT, 'versions'], { encoding: 'utf8', env: peerEnv(1), timeout: 120_000 });
    if (r.status !== 0) {
      tried.push(`${python}: ${(r.stderr || r.error?.message || '').trim().split('\n').pop()}`);
      continue;
    }
    const versions = JSON.parse(r.stdout.trim().split('\n').pop()!) as Record<string, string>;
    const peers: Peer[] = [];
    if (versions.torch) peers.push('torch');
    if (versions.jax) peers.push('jax');
    return { python, versions, peers };
  }
  return { missing: tried.join('; ') };
}

export interface DgemmRates {
  /** The service's own OpenBLAS addon, in the service's environment. */
  service?: { gflops: number; openblas?: string };
  numpy?: number;
  torch?: number;
  /** The fastest of them: the floor's rate. */
  best: number;
  bestSource: string;
  n: number;
}

/** The machine's float64 GEMM rate, n × n, `threads` threads: the service's addon, numpy and torch, in this run. */
export function measureDgemm(threads: number, serviceEnv: Readonly<Record<string, string>>, py: PeerPython | undefined, n = 2000): DgemmRates {
  const rates: DgemmRates = { best: 0, bestSource: 'none', n };
  const s = spawnSync(process.execPath, ['--import', 'tsx', join(ROOT, 'scripts/bench/dgemm.ts'), String(n)], {
    cwd: ROOT, encoding: 'utf8', env: { ...blasEnv(), CURVATURE_BLAS_THREADS: String(threads), ...serviceEnv }, timeout: 300_000,
  });
  if (s.status === 0) {
    const r = JSON.parse(s.stdout.trim().split('\n').pop()!) as { gflops?: number; openblas?: string };
    if (r.gflops) rates.service = { gflops: r.gflops, openblas: r.openblas };
  }
  if (py) {
    const p = spawnSync(py.python, [PEERS_SCRIPT, 'dgemm', String(n)], { encoding: 'utf8', env: peerEnv(threads), timeout: 300_000 });
    if (p.status === 0) {
      const r = JSON.parse(p.stdout.trim().split('\n').pop()!) as { numpy?: number; torch?: number };
      rates.numpy = r.numpy;
      rates.torch = r.torch;
    }
  }
  for (const [name, g] of [['service OpenBLAS', rates.service?.gflops], ['numpy', rates.numpy], ['torch', rates.torch]] as const) {
    if (g !== undefined && g > rates.best) {
      rates.best = g;
      rates.bestSource = name;
    }
  }
  return rates;
}

export interface ServiceTiming {
  seconds: number;
  computeSeconds: number;
  firstSeconds: number;
  requests: number;
  error?: string;
}

export interface PeerResult {
  seconds?: number;
  first?: number;
  repeats?: number;
  chunks?: number;
  gn?: string | null;
  relDiff?: number;
  skipped?: string;
  error?: string;
  peakRss?: number;
}

export interface SweepRow {
  shape: SweepShape;
  label: string;
  method: SweepMethod;
  w: number;
  n: number;
  k: number;
  depth: number;
  service: ServiceTiming;
  peers: Partial<Record<Peer, PeerResult>>;
  floor: { flops: number; model: string; seconds: number };
  peakRss?: number;
  /** Worst max|service − peer| / max|peer| over the peers that ran. */
  worstDiff?: number;
  agrees?: boolean;
}

export interface SweepOptions {
  shapes: readonly SweepShape[];
  methods: readonly SweepMethod[];
  peers: readonly Peer[];
  python?: string;
  threads: number;
  repeat: number;
  /** Seconds a peer's call may take (peers.py skips it beyond). */
  budget: number;
  /** Bytes a peer may use. */
  memory: number;
  /** Seconds one service request may take before it is abandoned. */
  serviceTimeoutSeconds: number;
  serviceEnv: Readonly<Record<string, string>>;
  dir: string;
  log: (s: string) => void;
}

/** The toy network that warms a service up for a shape: the same depth, widths capped at 3, 3 points. */
function toyFor(shape: SweepShape) {
  return makeNetwork(shape.sizes.map((s) => Math.min(s, 3)), 3, 99);
}

/** Seconds of timed service requests after which no more repeats are made. */
const SERVICE_REPEAT_SECONDS = 10;

async function serviceShape(shape: SweepShape, o: SweepOptions, bodyText: Record<SweepMethod, string>, npy: Record<SweepMethod, string>): Promise<{ timings: Partial<Record<SweepMethod, ServiceTiming>>; peakRss: number; backend: string }> {
  const svc = await startService(o.serviceEnv);
  const timings: Partial<Record<SweepMethod, ServiceTiming>> = {};
  try {
    const toy = toyFor(shape);
    for (const m of o.methods) {
      const r = request(m as Kind, toy);
      const warm = await post(svc.port, r.path, JSON.stringify(r.body), 'application/x-npy', 120_000);
      if (warm.status !== 200) throw new Error(`warm-up ${m} answered ${warm.status}: ${warm.body.toString('utf8').slice(0, 300)}`);
    }
    for (const m of o.methods) {
      const path = request(m as Kind, toyFor(shape)).path;
      let t: ServiceTiming | undefined;
      let spent = 0;
      try {
        for (let i = 0; i < o.repeat && (i === 0 || spent < SERVICE_REPEAT_SECONDS); i++) {
          const a = await post(svc.port, path, bodyText[m], 'application/x-npy', o.serviceTimeoutSeconds * 1000);
          if (a.status !== 200) throw new Error(`answered ${a.status}: ${a.body.toString('utf8').slice(0, 300)}`);
          spent += a.seconds;
          if (!t) {
            writeFileSync(npy[m], a.body);
            t = { seconds: a.seconds, computeSeconds: a.firstByteSeconds, firstSeconds: a.seconds, requests: 1 };
          } else {
            t.requests++;
            if (a.seconds < t.seconds) Object.assign(t, { seconds: a.seconds, computeSeconds: a.firstByteSeconds });
          }
        }
        timings[m] = t;
      } catch (err) {
        timings[m] = t ?? { seconds: NaN, computeSeconds: NaN, firstSeconds: NaN, requests: 0, error: (err as Error).message };
        if (!t) break; // an abandoned request may still be computing: the rest of this shape would measure a busy service
      }
    }
    return { timings, peakRss: peakRss(svc.child.pid!), backend: svc.backend };
  } finally {
    await stopService(svc.child);
  }
}

/** One peer process, asynchronously (so that the load sampler keeps running), killed past its wall-clock bound. */
function runPeer(o: SweepOptions, peer: Peer, method: SweepMethod, bodyFile: string, serviceNpy: string | undefined, specFile: string): Promise<PeerResult> {
  writeFileSync(specFile, JSON.stringify({ problem: bodyFile, peer, method, service: serviceNpy ?? null, repeats: o.repeat, budget: o.budget, memory: o.memory, gn: 'auto' }));
  // pilots + a first call + timed calls, each bounded by the budget: a process past this is stuck (e.g. compiling)
  const wallMs = (5 * o.budget + 120) * 1000;
  return runPeerProcess(o.python!, [PEERS_SCRIPT, 'run', specFile], peerEnv(o.threads), wallMs).then((end): PeerResult => {
    if ('answer' in end) return end.answer as PeerResult;
    switch (end.failed) {
      case 'spawn': return { error: end.message };
      case 'timeout': return { skipped: `did not finish within ${(wallMs / 1000).toFixed(0)} s (killed)` };
      case 'signal': return { skipped: `killed by ${end.signal}${end.signal === 'SIGKILL' ? ' (out of memory?)' : ''}` };
      case 'exit': return { error: end.stderrTail.slice(0, 400) || `exit ${end.code}` };
      case 'unreadable': return { error: `unreadable answer: ${end.message}` };
    }
  });
}

/** Runs the sweep and returns its rows (one per shape and method), logging progress to `log`. */
export async function runSweep(o: SweepOptions): Promise<SweepRow[]> {
  const rows: SweepRow[] = [];
  for (const shape of o.shapes) {
    const label = shapeLabel(shape.sizes);
    const p = makeNetwork(shape.sizes, shape.n, 1);
    const w = shapeParameterCount(shape.sizes);
    const k = shape.sizes[shape.sizes.length - 1];
    const bodyFile = join(o.dir, `${shape.id}.json`);
    const bodyText = Object.fromEntries(SWEEP_METHODS.map((m) => [m, JSON.stringify(request(m as Kind, p).body)])) as Record<SweepMethod, string>;
    writeFileSync(bodyFile, bodyText.exact);
    const npy = Object.fromEntries(SWEEP_METHODS.map((m) => [m, join(o.dir, `${shape.id}-${m}.npy`)])) as Record<SweepMethod, string>;
    o.log(`${shape.id} ${label} (W = ${w}, N = ${p.n}, K = ${k}, depth ${shape.sizes.length - 1})\n`);
    let service: Awaited<ReturnType<typeof serviceShape>>;
    try {
      service = await serviceShape(shape, o, bodyText, npy);
    } catch (err) {
      service = { timings: {}, peakRss: NaN, backend: '?' };
      for (const m of o.methods) service.timings[m] = { seconds: NaN, computeSeconds: NaN, firstSeconds: NaN, requests: 0, error: (err as Error).message };
    }
    for (const m of o.methods) {
      const t = service.timings[m] ?? { seconds: NaN, computeSeconds: NaN, firstSeconds: NaN, requests: 0, error: 'not run (an earlier request of this shape was abandoned)' };
      o.log(`  service ${m}: ${t.error ? `ERROR ${t.error}` : `${t.seconds.toFixed(3)} s (compute ${t.computeSeconds.toFixed(3)} s, ${t.requests} requests)`}\n`);
      const floor = floorFlops(m, shape.sizes, p.n);
      const row: SweepRow = {
        shape, label, method: m, w, n: p.n, k, depth: shape.sizes.length - 1, service: t, peers: {}, peakRss: service.peakRss,
        floor: { ...floor, seconds: NaN },
      };
      const haveNpy = !t.error && existsSync(npy[m]);
      for (const peer of o.peers) {
        const r = await runPeer(o, peer, m, bodyFile, haveNpy ? npy[m] : undefined, join(o.dir, `spec-${shape.id}-${peer}-${m}.json`));
        row.peers[peer] = r;
        const what = r.seconds !== undefined ? `${r.seconds.toFixed(3)} s${r.gn ? ` (${r.gn})` : ''}${r.chunks && r.chunks > 1 ? `, ${r.chunks} chunks` : ''}, diff ${r.relDiff?.toExponential(1) ?? '–'}` : r.skipped ? `skipped: ${r.skipped}` : `ERROR ${r.error}`;
        o.log(`  ${peer} ${m}: ${what}\n`);
        if (r.relDiff !== undefined) row.worstDiff = Math.max(row.worstDiff ?? 0, r.relDiff);
      }
      if (row.worstDiff !== undefined) row.agrees = row.worstDiff <= SWEEP_AGREE;
      if (row.agrees === false) o.log(`  *** ${label} ${m}: the service DISAGREES with a peer: ${row.worstDiff!.toExponential(2)} > ${SWEEP_AGREE}\n`);
      rows.push(row);
    }
    for (const f of Object.values(npy)) rmSync(f, { force: true });
  }
  return rows;
}

/** What the peers may use: the given cap, or 60 % of the memory free now, whichever is smaller. */
export function peerMemoryCap(capBytes: number): number {
  let available = freemem();
  try {
    const m = /^MemAvailable:\s+(\d+) kB/m.exec(readFileSync('/proc/meminfo', 'utf8'));
    if (m) available = Number(m[1]) * 1024;
  } catch {
    // freemem() then
  }
  return Math.min(capBytes, 0.6 * available);
}

// ---------------------------------------------------------------- the tables

const fx = (x: number | undefined, d = 3) => (x === undefined || !Number.isFinite(x) ? '–' : x < 0.001 && x > 0 ? x.toExponential(1) : x.toFixed(d));
const sci = (x: number | undefined) => (x === undefined ? '–' : x === 0 ? '0' : x.toExponential(1));

/** One markdown table per method, with footnotes for skipped peers and errors. */
export function sweepTables(rows: readonly SweepRow[], peers: readonly Peer[], dgemm: DgemmRates): string[] {
  const out: string[] = [];
  for (const method of SWEEP_METHODS) {
    const mine = rows.filter((r) => r.method === method);
    if (!mine.length) continue;
    for (const r of mine) r.floor.seconds = r.floor.flops / (dgemm.best * 1e9);
    const notes: string[] = [];
    const note = (text: string) => {
      notes.push(text);
      return `[${notes.length}]`;
    };
    const header = ['shape', 'W', 'N', 'K', 'depth', 'service s', 'compute s', 'torch.func s', 'JAX s', 'vs faster peer', 'floor s', 'x of floor', 'worst diff'];
    const table: string[][] = [];
    const gns = new Set<string>();
    for (const r of mine) {
      const s = r.service;
      const cell = (peer: Peer): string => {
        if (!peers.includes(peer)) return 'n/a';
        const p = r.peers[peer];
        if (!p) return '–';
        if (p.seconds !== undefined) {
          if (p.gn) gns.add(`${peer}:${p.gn}`);
          return `${fx(p.seconds)}${p.chunks && p.chunks > 1 ? ` (${p.chunks} chunks)` : ''}`;
        }
        return `skipped ${note(`${peer === 'torch' ? 'torch.func' : 'JAX'}, ${r.label}: ${p.skipped ?? `error: ${p.error}`}`)}`;
      };
      const times = peers.map((pe) => r.peers[pe]?.seconds).filter((x): x is number => x !== undefined);
      const fastest = times.length ? Math.min(...times) : undefined;
      let vs = '–';
      if (fastest !== undefined && Number.isFinite(s.seconds)) {
        const ratio = fastest / s.seconds;
        vs = ratio >= 1 ? `${ratio.toFixed(1)}x faster` : `${(1 / ratio).toFixed(1)}x slower`;
      }
      const xFloor = Number.isFinite(s.computeSeconds) ? s.computeSeconds / r.floor.seconds : undefined;
      let diff = sci(r.worstDiff);
      if (r.agrees === false) diff = `**FAIL ${diff}**`;
      const svc = s.error ? `error ${note(`service, ${r.label}: ${s.error}`)}` : fx(s.seconds);
      table.push([r.label, String(r.w), String(r.n), String(r.k), String(r.depth), svc, fx(s.computeSeconds), cell('torch'), cell('jax'), vs, fx(r.floor.seconds, 4), xFloor === undefined ? '–' : `${xFloor.toFixed(xFloor < 10 ? 1 : 0)}x`, diff]);
    }
    const widths = header.map((h, c) => Math.max(h.length, ...table.map((t) => t[c].length)));
    const line = (cells: string[]) => `| ${cells.map((x, c) => (c === 0 ? x.padEnd(widths[c]) : x.padStart(widths[c]))).join(' | ')} |`;
    out.push(`### ${method === 'exact' ? 'Exact Hessian' : 'Outer product (Gauss–Newton)'}`, '');
    out.push(line(header));
    out.push(`|${widths.map((w, c) => (c === 0 ? ':' + '-'.repeat(w + 1) : '-'.repeat(w + 1) + ':')).join('|')}|`);
    for (const t of table) out.push(line(t));
    out.push('');
    if (method === 'outer-product' && gns.size) {
      const desc = [...gns].sort().map((g) => {
        const [peer, gn] = g.split(':');
        return `${peer === 'torch' ? 'torch.func' : 'JAX'} ${gn === 'jacrev' ? 'vmap over points of jacrev' : 'jacfwd over the batch'}`;
      });
      out.push(`Peers' Jacobians here: ${desc.join('; ')}.`, '');
    }
    for (const [i, n] of notes.entries()) out.push(`[${i + 1}] ${n}  `);
    if (notes.length) out.push('');
  }
  return out;
}
