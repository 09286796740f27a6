/**
 * `npm run bench` (issue 4): the service against PyTorch float64, over HTTP, in one run.
 *
 * Each workload runs in a fresh service process (`node dist/src/server.js` on 127.0.0.1, a free
 * port, limits raised by environment only), so the peak RSS reported is that workload's own high-
 * water mark (VmHWM of /proc/<pid>/status, which covers the worker threads). After /health answers,
 * one toy request of the same kind warms the JIT, the worker pool and the BLAS threads; then
 * --repeat=N (default 3) timed requests ask for `Accept: application/x-npy`, the clock running
 * from sending each request to the body's last byte; the table has the best and the first. The
 * peak RSS is read after the first. The first answer is kept as .npy in a temporary folder.
 *
 * Then, where `/usr/bin/python3` (or $BENCH_PYTHON) imports torch, scripts/bench/torch_bench.py
 * reads the same request bodies, computes the same matrices in PyTorch float64 (timing only the
 * computation, torch.set_num_threads = cores), and compares them with the service's .npy files:
 * max|a − b| / max(1, max|b|) must be ≤ 1e-8. One table, flop models and PASS/MISS per target are printed at the end.
 *
 * Options: --only=name,name (substrings of workload names), --no-torch, --keep (keep the
 * temporary folder), --json=FILE (results as JSON), --cpu-prof=DIR (run each service process
 * under `node --cpu-prof`, one .cpuprofile per thread in DIR). It is a benchmark, not a test.
 * Both the service and PyTorch run with OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset (blasEnv), so
 * that their OpenBLAS picks the same kernels for this CPU, as in the container image, which sets
 * neither. The service inherits the rest of the environment, so e.g.
 * `WORKERS=1 CURVATURE_BLAS_THREADS=2 npm run bench` measures another pool layout.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { createServer } from 'node:net';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SERVICE_MALLOC_MMAP_THRESHOLD } from '../../src/config.ts';
import { DAMPING, SIZES, WORKLOADS, blasEnv, flops, makeProblem, parameterCount, request, type Problem, type Workload } from './workloads.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const SERVER = join(ROOT, 'dist/src/server.js');
const TORCH_SCRIPT = join(ROOT, 'scripts/bench/torch_bench.py');
const AGREE = 1e-8;
/** Timed requests per workload (--repeat=N): the table has the best, and the first. */
const REPEAT = Math.max(1, Number(process.argv.find((a) => a.startsWith('--repeat='))?.slice(9) ?? 3) || 3);
const MB = 1e6;
const MiB = 1024 * 1024;

const args = process.argv.slice(2);
const flag = (name: string) => args.includes(`--${name}`);
const option = (name: string) => args.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);

/** Limits raised for the benchmark only (the defaults are not touched): 8 GiB answers, 16 GiB tasks, 512 MiB bodies, a 30-minute timeout. */
const SERVICE_ENV: Record<string, string> = {
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

interface ServiceRun {
  workload: Workload;
  w: number;
  n: number;
  backend: string;
  /** Worker threads of the service's pool, from /health. */
  workers?: number;
  status: number;
  error?: string;
  /** The best of REPEAT requests, request sent → last byte. */
  seconds: number;
  /** The first timed request (JIT still tiering up for these sizes, fresh memory). */
  firstSeconds: number;
  /** Request sent → first byte of the answer (the computation, mostly). */
  firstByteSeconds: number;
  bytes: number;
  /** Peak resident memory of the service process, bytes. */
  peakRss: number;
  logDeterminant?: number;
  npyPath?: string;
}

interface TorchTask { seconds: number; relDiff?: number; logDetDiff?: number }
interface TorchResults { threads: number; torch: string; blas: string; tasks: Record<string, TorchTask> }

async function freePort(): Promise<number> {
  const srv = createServer();
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  const port = (srv.address() as { port: number }).port;
  srv.close();
  await once(srv, 'close');
  return port;
}

interface HttpAnswer { status: number; headers: Record<string, string | string[] | undefined>; body: Buffer; seconds: number; firstByteSeconds: number }

/** POSTs `body` and reads the whole answer, timing request → first byte → last byte. */
function post(port: number, path: string, body: string, accept: string): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    const payload = Buffer.from(body);
    const t0 = performance.now();
    let tFirst = 0;
    const req = httpRequest(
      { host: '127.0.0.1', port, path, method: 'POST', agent: false, headers: { 'content-type': 'application/json', 'content-length': payload.length, accept } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => {
          if (tFirst === 0) tFirst = performance.now();
          chunks.push(c);
        });
        res.on('end', () => {
          const t1 = performance.now();
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks), seconds: (t1 - t0) / 1000, firstByteSeconds: ((tFirst || t1) - t0) / 1000 });
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

async function getJson(port: number, path: string): Promise<unknown> {
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

function peakRss(pid: number): number {
  const m = /^VmHWM:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : NaN;
}

async function startService(env: Readonly<Record<string, string>>): Promise<{ child: ChildProcess; port: number; backend: string; workers?: number }> {
  const port = await freePort();
  const profile = option('cpu-prof');
  const nodeArgs = profile ? ['--cpu-prof', `--cpu-prof-dir=${profile}`] : [];
  const child = spawn(process.execPath, [...nodeArgs, SERVER], { env: { ...blasEnv(), ...SERVICE_ENV, ...env, PORT: String(port) }, stdio: ['ignore', 'inherit', 'inherit'] });
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`the service exited with code ${child.exitCode} before answering /health`);
    try {
      const health = (await getJson(port, '/health')) as { linalg?: { backend?: string; threads?: number } | string; pool?: { workers?: number; blasThreads?: number } };
      const li = health.linalg;
      const name = typeof li === 'string' ? li : li?.backend ?? 'unknown';
      const threads = health.pool?.blasThreads ?? (typeof li === 'object' ? li.threads : undefined);
      const backend = name === 'openblas' && threads !== undefined ? `openblas/${threads}t` : name;
      return { child, port, backend, workers: health.pool?.workers };
    } catch (err) {
      if (Date.now() > deadline) {
        child.kill('SIGKILL');
        throw new Error(`the service did not answer /health within 60 s: ${(err as Error).message}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

async function stopService(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}

async function runService(w: Workload, p: Problem, dir: string, index: number): Promise<ServiceRun> {
  const { child, port, backend, workers } = await startService(w.env ?? {});
  const base = { workload: w, w: parameterCount(p), n: p.n, backend, workers };
  try {
    const toy = request(w.kind, makeProblem(3, 4, 2, 5, 7));
    const warm = await post(port, toy.path, JSON.stringify(toy.body), 'application/x-npy');
    if (warm.status !== 200) throw new Error(`warm-up answered ${warm.status}: ${warm.body.toString('utf8').slice(0, 300)}`);
    const { path, body } = request(w.kind, p);
    const text = JSON.stringify(body);
    const answer = await post(port, path, text, 'application/x-npy');
    // the peak of one request: read before any repeat can overlap a new answer with an uncollected one
    const rss = peakRss(child.pid!);
    const run: ServiceRun = {
      ...base, status: answer.status, seconds: answer.seconds, firstByteSeconds: answer.firstByteSeconds, firstSeconds: answer.seconds, bytes: answer.body.length, peakRss: rss,
    };
    if (answer.status !== 200) return { ...run, error: answer.body.toString('utf8').slice(0, 500) };
    for (let r = 1; r < REPEAT; r++) {
      const again = await post(port, path, text, 'application/x-npy');
      if (again.status !== 200) return { ...run, status: again.status, error: `repeat ${r + 1}: ${again.body.toString('utf8').slice(0, 500)}` };
      if (again.seconds < run.seconds) Object.assign(run, { seconds: again.seconds, firstByteSeconds: again.firstByteSeconds });
    }
    const ld = answer.headers['x-log-determinant'];
    if (typeof ld === 'string') run.logDeterminant = Number(ld);
    run.npyPath = join(dir, `service-${index}.npy`);
    writeFileSync(run.npyPath, answer.body);
    return run;
  } catch (err) {
    return { ...base, status: 0, error: (err as Error).message, seconds: NaN, firstSeconds: NaN, firstByteSeconds: NaN, bytes: 0, peakRss: peakRss(child.pid!) };
  } finally {
    await stopService(child);
  }
}

function torchPython(): string | undefined {
  if (flag('no-torch')) return undefined;
  const py = process.env.BENCH_PYTHON ?? '/usr/bin/python3';
  if (!existsSync(py)) return undefined;
  const r = spawnSync(py, ['-c', 'import torch, numpy'], { encoding: 'utf8' });
  return r.status === 0 ? py : undefined;
}

const fmt = (x: number | undefined, digits: number) => (x === undefined || !Number.isFinite(x) ? '–' : x.toFixed(digits));
const sci = (x: number | undefined) => (x === undefined ? '–' : x === 0 ? '0' : x.toExponential(1));

async function main(): Promise<void> {
  if (!existsSync(SERVER)) throw new Error(`${SERVER} is missing: run \`npm run build\` first (npm run bench does)`);
  const only = option('only')?.split(',').map((s) => s.trim().toLowerCase()).filter(Boolean);
  const workloads = WORKLOADS.filter((w) => !only || only.some((o) => w.name.toLowerCase().includes(o)));
  const dir = mkdtempSync(join(tmpdir(), 'curvature-bench-'));
  const problems = { small: makeProblem(SIZES.small.d, SIZES.small.m, SIZES.small.k, SIZES.small.n, 1), large: makeProblem(SIZES.large.d, SIZES.large.m, SIZES.large.k, SIZES.large.n, 2) };
  const started = new Date();
  const load0 = loadavg();
  let loadMax = load0[0];
  const sampler = setInterval(() => (loadMax = Math.max(loadMax, loadavg()[0])), 2000);
  console.log(`# curvature service vs PyTorch, ${started.toISOString()}, ${cpus().length} cores (${cpus()[0]?.model ?? '?'}), load ${load0.map((l) => l.toFixed(2)).join(' ')}`);

  const runs: ServiceRun[] = [];
  let workers: number | undefined;
  for (const [i, w] of workloads.entries()) {
    const p = problems[w.problem];
    process.stderr.write(`service: ${w.name} (W = ${parameterCount(p)}, N = ${p.n}) … `);
    const run = await runService(w, p, dir, i);
    workers ??= run.workers;
    process.stderr.write(run.error ? `ERROR ${run.status}: ${run.error}\n` : `${run.seconds.toFixed(3)} s\n`);
    runs.push(run);
  }

  let torch: TorchResults | undefined;
  const py = torchPython();
  if (py) {
    const manifest = {
      damping: DAMPING,
      problems: Object.fromEntries(Object.entries(problems).map(([k, p]) => {
        const file = join(dir, `${k}.json`);
        writeFileSync(file, JSON.stringify(request('exact', p).body));
        return [k, file];
      })),
      tasks: runs.map((r, i) => ({ id: String(i), problem: r.workload.problem, kind: r.workload.torchKind ?? r.workload.kind, serviceNpy: r.npyPath ?? null, logDeterminant: r.logDeterminant ?? null })),
    };
    writeFileSync(join(dir, 'manifest.json'), JSON.stringify(manifest));
    process.stderr.write(`PyTorch (${py}) …\n`);
    const r = spawnSync(py, [TORCH_SCRIPT, join(dir, 'manifest.json'), join(dir, 'torch.json')], { env: blasEnv(), stdio: ['ignore', 'inherit', 'inherit'] });
    if (r.status === 0) torch = JSON.parse(readFileSync(join(dir, 'torch.json'), 'utf8')) as TorchResults;
    else console.log(`PyTorch run failed (exit ${r.status}); the table has the service alone`);
  } else {
    console.log('no Python with torch (/usr/bin/python3 or $BENCH_PYTHON): the table has the service alone');
  }

  // The table
  const rows: string[][] = [];
  const verdicts: string[] = [];
  for (const [i, r] of runs.entries()) {
    const w = r.workload;
    const t = torch?.tasks[String(i)];
    const ratio = t && !r.error ? t.seconds / r.seconds : undefined;
    const gflops = r.error ? undefined : flops(w.kind, problems[w.problem]) / r.seconds / 1e9;
    const streamMBps = r.error ? undefined : r.bytes / MB / (r.seconds - r.firstByteSeconds);
    const endToEndMBps = r.error ? undefined : r.bytes / MB / r.seconds;
    const agrees = t?.relDiff !== undefined ? t.relDiff <= AGREE && (t.logDetDiff === undefined || t.logDetDiff <= AGREE) : undefined;
    let verdict = '–';
    const why: string[] = [];
    if (r.error) {
      verdict = 'MISS';
      why.push(`service error: ${r.error}`);
    } else if (w.target.kind === 'ratio') {
      if (ratio === undefined) verdict = 'n/a';
      else {
        const ok = w.target.min === 1 && w.target.label.startsWith('>') && !w.target.label.startsWith('>=') ? ratio > 1 : ratio >= w.target.min;
        verdict = ok && agrees ? 'PASS' : 'MISS';
        why.push(`ratio ${ratio.toFixed(1)}x vs ${w.target.label}`);
      }
    } else if (w.target.kind === 'stream') {
      const matrixBytes = 8 * r.w * r.w;
      const limit = 2 * matrixBytes + 300 * MB;
      const ok = streamMBps! >= w.target.minMBps && r.peakRss < limit && agrees !== false;
      verdict = ok ? 'PASS' : 'MISS';
      why.push(`stream ${streamMBps!.toFixed(0)} MB/s (end to end ${endToEndMBps!.toFixed(0)} MB/s) of ${(r.bytes / MB).toFixed(0)} MB; peak RSS ${(r.peakRss / MB).toFixed(0)} MB vs limit 2 × ${(matrixBytes / MB).toFixed(0)} + 300 = ${(limit / MB).toFixed(0)} MB`);
    } else {
      verdict = agrees === undefined ? '–' : agrees ? 'agrees' : 'MISS';
    }
    if (agrees === false) why.push(`disagrees with PyTorch: rel diff ${sci(t?.relDiff)}${t?.logDetDiff !== undefined ? `, log det ${sci(t.logDetDiff)}` : ''}`);
    if (w.target.kind !== 'none' || agrees === false) verdicts.push(`${verdict.padEnd(4)} ${w.name}: ${w.target.kind === 'none' ? 'no speed target' : w.target.label}; ${why.join('; ')}`);
    rows.push([
      w.name, String(r.w), String(r.n), r.backend,
      fmt(r.seconds, 3), fmt(r.firstByteSeconds, 3), fmt(r.firstSeconds, 3), fmt(t?.seconds, 3), ratio === undefined ? '–' : `${ratio.toFixed(1)}x`,
      fmt(gflops, 1), fmt(streamMBps, 0), fmt(r.peakRss / MB, 0), sci(t?.relDiff), verdict,
    ]);
  }
  const header = ['workload', 'W', 'N', 'backend', 'service s', 'first byte s', 'first req s', 'PyTorch s', 'ratio', 'GFLOP/s', 'stream MB/s', 'peak RSS MB', 'rel diff', 'target'];
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map((r) => r[c].length)));
  const line = (cells: string[]) => `| ${cells.map((x, c) => (c === 0 || c === 3 ? x.padEnd(widths[c]) : x.padStart(widths[c]))).join(' | ')} |`;
  console.log('');
  console.log(line(header));
  console.log(`|${widths.map((w, c) => (c === 0 || c === 3 ? ':' + '-'.repeat(w + 1) : '-'.repeat(w + 1) + ':')).join('|')}|`);
  for (const r of rows) console.log(line(r));
  console.log('');
  clearInterval(sampler);
  const load1 = loadavg();
  loadMax = Math.max(loadMax, load1[0]);
  console.log(`PyTorch: ${torch ? `${torch.torch}, ${torch.threads} threads, OpenBLAS ${torch.blas}` : 'not run'}; service pool: ${workers ?? '?'} workers.`);
  console.log(`Load average (1 min) on these ${cpus().length} cores: ${load0[0].toFixed(2)} before, at most ${loadMax.toFixed(2)} during, ${load1[0].toFixed(2)} after.`);
  console.log(`service s: request sent → last byte of the .npy answer over loopback HTTP, best of ${REPEAT} requests in a fresh service process per row after a toy warm-up request;`);
  console.log('first byte s: request sent → first byte of that request (the computation); first req s: the first of those requests (JIT tiering up, fresh memory);');
  console.log('stream MB/s: answer bytes / (last byte − first byte); peak RSS: VmHWM of the service process after its first request.');
  console.log('PyTorch s: the computation alone: exact = autograd.functional.hessian(vectorize=True); outer product = jacobian(vectorize=True) then B.T @ B;');
  console.log('Cholesky = cholesky_inverse(linalg.cholesky(G + αI)) of a precomputed G; the Woodbury row is timed and checked against that same Cholesky inverse.');
  console.log(`GFLOP/s = model flops / service s, W = Σ W_l: exact 2·N·W²; outer product N·(W² + Σ W_l²) (lower block triangle); Cholesky that + W³; Woodbury 4·N·K·W². α = ${DAMPING}.`);
  console.log(`rel diff = max|service − PyTorch| / max(1, max|PyTorch|) (and the same for log det on the inverses), agreement ≤ ${AGREE}.`);
  console.log('');
  for (const v of verdicts) console.log(v);

  const json = option('json');
  if (json) writeFileSync(json, JSON.stringify({ started: started.toISOString(), load: { before: load0, maxDuring: loadMax, after: load1 }, torch, runs: runs.map((r, i) => ({ ...r, workload: r.workload.name, torch: torch?.tasks[String(i)] })) }, null, 2));
  if (flag('keep')) console.log(`kept ${dir}`);
  else rmSync(dir, { recursive: true, force: true });
}

await main();

