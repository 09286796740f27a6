/**
 * `npm run bench`: the service against its peers, over HTTP, in one run. Two groups (--shapes):
 *
 * - `benchmark` (issue 4): the 32-64-10 network (W = 2762, N = 1000) through six workloads —
 *   exact, outer product, Cholesky and Woodbury inverses, the TypeScript backend, and the
 *   streamed W ≈ 9600 outer product — each in a fresh service process, against PyTorch's
 *   torch.autograd.functional (scripts/bench/torch_bench.py), judged against the issue's targets.
 * - `sweep` (issue 13, scripts/bench/sweep.ts): the shapes of workloads.ts's SWEEP, exact and
 *   outer product, against torch.func and JAX (scripts/bench/peers.py) and against the flop floor
 *   at the machine's dgemm rate measured in the same run; one table per method.
 * - `scale` (issue 12, scripts/bench/scale.ts): the curvature-at-scale endpoints on 784-128-10,
 *   N = 10,000 (W = 101,770), data sent once per request as multipart .npy: eigen top 5 by
 *   Lanczos, CG solves with and without the KFAC preconditioner, KFAC factors, H·v; against
 *   PyTorch 2 doing the same (scripts/bench/scale_peers.py: PyHessian-style power iteration, scipy
 *   eigsh on double-backward HVPs, CG on Gauss–Newton products, KFAC by definition), with the
 *   per-product cost and the peak memory of each side.
 *
 * Issue-4 method: after /health, one toy request of the same kind warms the JIT, the worker pool
 * and the BLAS threads; then --repeat=N (default 3) timed requests ask for `Accept:
 * application/x-npy`, the clock running from sending each request to the body's last byte; the
 * table has the best and the first. The peak RSS is read after the first. Then the peers' Python
 * reads the same request bodies, computes the same matrices in PyTorch float64 (timing only the
 * computation, torch.set_num_threads = --threads), and compares them with the service's .npy:
 * max|a − b| / max(1, max|b|) must be ≤ 1e-8.
 *
 * The peers' Python: $BENCH_PYTHON, else .peers/bin/python (scripts/bench/peers-setup.sh makes
 * it: PyTorch 2 and JAX), else Debian's /usr/bin/python3 (PyTorch 1.13 with functorch, no JAX).
 *
 * Options:
 *   --shapes=LIST       `benchmark`, `sweep`, `scale` (alone: `npm run bench:scale`), or sweep shape ids (workloads.ts),
 *                       comma-separated; default benchmark,sweep,scale
 *   --scale-rows=LIST   the scale group's rows: eigen,cg,cg-kfac,kfac,hvp (default all)
 *   --scale-n=N         the scale group's data points (default 10000; smaller for a quick look)
 *   --peers=LIST        torch,jax (default: those the Python has) or none
 *   --methods=LIST      the sweep's methods: exact,outer-product (default both)
 *   --only=LIST         substrings of the issue-4 workloads' names
 *   --repeat=N          timed requests/calls per row (default 3)
 *   --threads=N         BLAS/compute threads of the peers and the dgemm probe (default 2)
 *   --budget=S          seconds a peer's call may take before it is skipped (default 60)
 *   --peer-memory=GB    memory a peer may use (default 12, at most 60 % of what is free)
 *   --service-timeout=S seconds a service request may take in the sweep (default 300)
 *   --openblas-coretype=NAME  OPENBLAS_CORETYPE for the service and the dgemm probe (default
 *                       the service's choice from the CPU flags, as in the container)
 *   --md=FILE|none      write the markdown report there; a full run (default shapes and peers)
 *                       writes docs/benchmarks.md
 *   --json=FILE, --keep (keep the temporary folder), --cpu-prof=DIR (issue-4 services under
 *   `node --cpu-prof`), --no-torch (= --peers=none)
 *
 * Both the service and the peers run with OPENBLAS_L2_SIZE unset and OPENBLAS_CORETYPE the kernels
 * the service picks for this CPU from its flags (blasEnv), as in the container image. The service inherits the rest of the environment, so e.g. `WORKERS=1
 * CURVATURE_BLAS_THREADS=2 npm run bench` measures another pool layout. It is a benchmark, not a
 * test; it exits 1 when an answer disagrees with a peer.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { peakRss, post, ROOT, SERVER, startService, stopService } from './service.ts';
import { findPeerPython, measureDgemm, peerEnv, peerMemoryCap, runSweep, sweepTables, SWEEP_AGREE, SWEEP_METHODS, type DgemmRates, type Peer, type PeerPython, type SweepMethod, type SweepRow } from './sweep.ts';
import { MEMORY_CONSTANT, runScaleGroup, scalePeerPython, scaleTables, scaleVerdicts, SCALE_N, SCALE_ROWS, SCALE_SIZES, SCALE_AGREE, SCALE_REPEAT_SECONDS, type ScaleRowId } from './scale.ts';
import { DAMPING, SIZES, SWEEP, WORKLOADS, blasEnv, flops, floorFlops, makeProblem, parameterCount, request, shapeLabel, type Problem, type Workload } from './workloads.ts';

const TORCH_SCRIPT = join(ROOT, 'scripts/bench/torch_bench.py');
const AGREE = 1e-8;
const MB = 1e6;

const args = process.argv.slice(2);
const flag = (name: string) => args.includes(`--${name}`);
const option = (name: string) => args.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
const list = (name: string) => option(name)?.split(',').map((s) => s.trim()).filter(Boolean);
const num = (name: string, dflt: number) => {
  const v = Number(option(name) ?? dflt);
  return Number.isFinite(v) && v > 0 ? v : dflt;
};

/** Timed requests per workload (--repeat=N): the table has the best, and the first. */
const REPEAT = Math.max(1, Math.floor(num('repeat', 3)));
const THREADS = Math.max(1, Math.floor(num('threads', 2)));

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

function nodeArgs(): string[] {
  const profile = option('cpu-prof');
  return profile ? ['--cpu-prof', `--cpu-prof-dir=${profile}`] : [];
}

async function runService(w: Workload, p: Problem, dir: string, index: number, serviceEnv: Readonly<Record<string, string>>): Promise<ServiceRun> {
  const { child, port, backend, workers } = await startService({ ...serviceEnv, ...(w.env ?? {}) }, nodeArgs());
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

const fmt = (x: number | undefined, digits: number) => (x === undefined || !Number.isFinite(x) ? '–' : x.toFixed(digits));
const sci = (x: number | undefined) => (x === undefined ? '–' : x === 0 ? '0' : x.toExponential(1));

/** The issue-4 table: its markdown lines, the raw runs, and whether every answer agreed. */
async function issue4Table(dir: string, py: PeerPython | undefined, serviceEnv: Readonly<Record<string, string>>, log: (s: string) => void): Promise<{ lines: string[]; json: unknown; agreed: boolean }> {
  const only = option('only')?.split(',').map((s) => s.trim().toLowerCase()).filter(Boolean);
  const workloads = WORKLOADS.filter((w) => !only || only.some((o) => w.name.toLowerCase().includes(o)));
  const problems = { small: makeProblem(SIZES.small.d, SIZES.small.m, SIZES.small.k, SIZES.small.n, 1), large: makeProblem(SIZES.large.d, SIZES.large.m, SIZES.large.k, SIZES.large.n, 2) };
  const runs: ServiceRun[] = [];
  let workers: number | undefined;
  for (const [i, w] of workloads.entries()) {
    const p = problems[w.problem];
    log(`service: ${w.name} (W = ${parameterCount(p)}, N = ${p.n}) … `);
    const run = await runService(w, p, dir, i, serviceEnv);
    workers ??= run.workers;
    log(run.error ? `ERROR ${run.status}: ${run.error}\n` : `${run.seconds.toFixed(3)} s\n`);
    runs.push(run);
  }

  let torch: TorchResults | undefined;
  const lines: string[] = [];
  if (py?.peers.includes('torch')) {
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
    log(`PyTorch (${py.python}) …\n`);
    const r = spawnSync(py.python, [TORCH_SCRIPT, join(dir, 'manifest.json'), join(dir, 'torch.json')], { env: peerEnv(THREADS), stdio: ['ignore', 'inherit', 'inherit'] });
    if (r.status === 0) torch = JSON.parse(readFileSync(join(dir, 'torch.json'), 'utf8')) as TorchResults;
    else lines.push(`PyTorch run failed (exit ${r.status}); the table has the service alone`, '');
  } else {
    lines.push('no Python with torch (BENCH_PYTHON, .peers/bin/python, /usr/bin/python3), or --peers without torch: the table has the service alone', '');
  }
  for (const r of runs) if (r.npyPath) rmSync(r.npyPath, { force: true });

  const rows: string[][] = [];
  const verdicts: string[] = [];
  let agreed = true;
  for (const [i, r] of runs.entries()) {
    const w = r.workload;
    const t = torch?.tasks[String(i)];
    const ratio = t && !r.error ? t.seconds / r.seconds : undefined;
    const gflops = r.error ? undefined : flops(w.kind, problems[w.problem]) / r.seconds / 1e9;
    const streamMBps = r.error ? undefined : r.bytes / MB / (r.seconds - r.firstByteSeconds);
    const endToEndMBps = r.error ? undefined : r.bytes / MB / r.seconds;
    const agrees = t?.relDiff !== undefined ? t.relDiff <= AGREE && (t.logDetDiff === undefined || t.logDetDiff <= AGREE) : undefined;
    if (agrees === false) agreed = false;
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
  lines.push(line(header));
  lines.push(`|${widths.map((w, c) => (c === 0 || c === 3 ? ':' + '-'.repeat(w + 1) : '-'.repeat(w + 1) + ':')).join('|')}|`);
  for (const r of rows) lines.push(line(r));
  lines.push('');
  lines.push(`- PyTorch: ${torch ? `${torch.torch}, ${torch.threads} threads, BLAS ${torch.blas}` : 'not run'}; service pool: ${workers ?? '?'} workers.`);
  lines.push(`- service s: request sent → last byte of the .npy answer over loopback HTTP, best of ${REPEAT} requests in a fresh service process per row after a toy warm-up request;`);
  lines.push('  first byte s: request sent → first byte of that request (the computation); first req s: the first of those requests (JIT tiering up, fresh memory);');
  lines.push('  stream MB/s: answer bytes / (last byte − first byte); peak RSS: VmHWM of the service process after its first request.');
  lines.push('- PyTorch s: the computation alone: exact = autograd.functional.hessian(vectorize=True); outer product = jacobian(vectorize=True) then B.T @ B;');
  lines.push('  Cholesky = cholesky_inverse(linalg.cholesky(G + αI)) of a precomputed G; the Woodbury row is timed and checked against that same Cholesky inverse.');
  lines.push(`- GFLOP/s = model flops / service s, W = Σ W_l: exact 2·N·W²; outer product N·(W² + Σ W_l²) (lower block triangle); Cholesky that + W³; Woodbury 4·N·K·W². α = ${DAMPING}.`);
  lines.push(`- rel diff = max|service − PyTorch| / max(1, max|PyTorch|) (and the same for log det on the inverses), agreement ≤ ${AGREE}.`);
  lines.push('');
  for (const v of verdicts) lines.push(`    ${v}`);
  lines.push('');
  return { lines, json: { torch, runs: runs.map((r, i) => ({ ...r, workload: r.workload.name, torch: torch?.tasks[String(i)] })) }, agreed };
}

/** The scale group's markdown section: method, verdicts, tables and the reading. */
function scaleSection(
  n: number, backend: string, peers: string, started: Date, load0: number, loadMax: number, load1: number, minutes: number, verdicts: string[], tables: string[],
): string[] {
  return [
    '## Curvature at scale (issue 12)',
    '',
    `784-128-10 (tanh hidden, logits out), softmax-cross-entropy on labels, summed, W = 101,770, N = ${n.toLocaleString('en-US')}; started ${started.toISOString().replace('T', ' ').slice(0, 16)} UTC, ${minutes.toFixed(1)} min, load average (1 min) ${load0.toFixed(2)} before, at most ${loadMax.toFixed(2)} during, ${load1.toFixed(2)} after, on ${cpus().length} cores.`,
    '',
    `- **Service**: \`node dist/src/server.js\` (${backend}), a fresh process per row. The data go once per request as multipart/form-data: the JSON (network, loss, options) in the part \`request\`, inputs (N × 784 float64, 63 MB at N = 10,000) and labels (int64) as .npy parts. After toy requests of the row's kinds warm it up, each request is timed from sending to the last byte (the upload, parsing and answer included), up to ${REPEAT} times (no more once ${SCALE_REPEAT_SECONDS} s are spent); *s* columns give the range. Products: what the answer reports (X-Iterations), the residual checks included.`,
    `- **PyTorch 2** (${peers}; float64, CPU, ${THREADS} threads): scripts/bench/scale_peers.py, the computation alone from the forward pass on (the data already in tensors), each task in its own process. Power iteration: PyHessian's \`hessian.eigenvalues\` (maxIter 100, tol 1e-3: the relative change of the Rayleigh quotient; top 5 by orthonormalising against the vectors found), on double-backward HVPs with the gradient graph kept (\`torch.autograd.grad(grads, params, v, retain_graph=True)\`), re-implemented after PyHessian's source. eigsh: \`scipy.sparse.linalg.eigsh(k=5, which='LA', tol=1e-8)\` on a LinearOperator of the same HVPs. CG: the service's algorithm step for step on G v = Jᵀ L J v (\`torch.func.jvp\` of the logits, L_n = diag(p) − ppᵀ, the vjp of one kept forward pass); the KFAC preconditioner from the factors by definition and their \`eigh\`. KFAC: A_l = mean z̃z̃ᵀ, G_l = Σ_n Rᵀ L R with L_n by \`torch.func.hessian\` and R_{l,n} = ∂logits/∂a_l by \`torch.func.jacrev\`, vmapped over points; log det from \`eigvalsh\`.`,
    `- **Per product** (the second table): inside a service run, (run − a one-product request of the same body in the same process) / (products − 1): the upload, parsing and the passes over the data taken out, the orthogonalisation or CG vector work left in. PyTorch: each product timed alone, and inside its algorithms as (run − setup) / products, setup being the gradient graph (or the kept forward pass and the KFAC factors); the verdict takes the fastest PyTorch figure. The two sides' products are timed in their own processes minutes apart on a shared machine: the load, not only the code, moves them (see the load line).`,
    `- **Memory**: the service's VmHWM (its whole process, worker threads included) after the toy warm-up (*idle*), after the one-product baseline and after the row's own requests; PyTorch's VmHWM of the task's process (*loaded*: after importing torch and reading the data). The expectation is O(N·(D + Σ_l out_l) + k·W) (the inputs, the passes' per-unit arrays, k vectors of W: Lanczos' basis of 40 and its products plus the k locked, CG's 6); the *model* column is that with constant 1, in doubles, and a row passes with its peak above idle within ${MEMORY_CONSTANT}x of it (scale.ts memoryModel, MEMORY_CONSTANT); a W × W array would be 8·W² = 83 GB.`,
    `- **Agreement** (a disagreement fails the run, exit 1): eigenvalues with eigsh ≤ ${SCALE_AGREE.eigenvalues} relative; CG solutions ≤ ${SCALE_AGREE.solution} (max|a − b| / max|b|); KFAC factors ≤ ${SCALE_AGREE.factors} and log det ≤ ${SCALE_AGREE.logDeterminant}; H·v ≤ ${SCALE_AGREE.product}. The power iteration's eigenvalues are reported against the service's, at its own tolerance.`,
    '',
    ...verdicts.map((v) => `    ${v}`),
    '',
    ...tables,
  ];
}

function describeVersions(py: PeerPython | undefined): string {
  if (!py) return 'none';
  const v = py.versions;
  const parts = [`Python ${v.python} (${py.python})`, `numpy ${v.numpy}`];
  parts.push(v.torch ? `PyTorch ${v.torch} (${v.torchFunc}, BLAS ${v.torchBlas})` : 'no PyTorch');
  parts.push(v.jax ? `JAX ${v.jax} (jaxlib ${v.jaxlib})` : 'no JAX');
  return parts.join(', ');
}

async function main(): Promise<void> {
  if (!existsSync(SERVER)) throw new Error(`${SERVER} is missing: run \`npm run build\` first (npm run bench does)`);
  const shapeArgs = list('shapes') ?? ['benchmark', 'sweep', 'scale'];
  const runIssue4 = shapeArgs.includes('benchmark');
  const runScale = shapeArgs.includes('scale');
  const scaleRows = (list('scale-rows') ?? [...SCALE_ROWS]) as ScaleRowId[];
  if (scaleRows.some((r) => !SCALE_ROWS.includes(r))) throw new Error(`--scale-rows: use ${SCALE_ROWS.join(', ')}`);
  const sweepIds = shapeArgs.filter((s) => s !== 'benchmark' && s !== 'scale');
  const unknown = sweepIds.filter((s) => s !== 'sweep' && !SWEEP.some((x) => x.id === s));
  if (unknown.length) throw new Error(`--shapes: unknown ${unknown.join(', ')}; use benchmark, sweep, scale or a sweep shape: ${SWEEP.map((s) => s.id).join(', ')}`);
  const shapes = sweepIds.includes('sweep') ? SWEEP : SWEEP.filter((s) => sweepIds.includes(s.id));
  const methods = (list('methods') ?? [...SWEEP_METHODS]) as SweepMethod[];
  if (methods.some((m) => !SWEEP_METHODS.includes(m))) throw new Error(`--methods: use ${SWEEP_METHODS.join(', ')}`);
  const peerArg = flag('no-torch') ? ['none'] : list('peers');
  const serviceEnv: Record<string, string> = {};
  const coretype = option('openblas-coretype');
  if (coretype) serviceEnv.OPENBLAS_CORETYPE = coretype;

  const dir = mkdtempSync(join(tmpdir(), 'curvature-bench-'));
  const started = new Date();
  const load0 = loadavg();
  let loadMax = load0[0];
  const sampler = setInterval(() => (loadMax = Math.max(loadMax, loadavg()[0])), 2000);
  const log = (s: string) => process.stderr.write(s);
  const cpu = cpus()[0]?.model ?? '?';
  console.log(`# curvature service vs its peers, ${started.toISOString()}, ${cpus().length} cores (${cpu}), load ${load0.map((l) => l.toFixed(2)).join(' ')}`);

  // the peers' Python
  let py: PeerPython | undefined;
  let peerNote = '';
  if (peerArg?.includes('none')) peerNote = 'peers: none (--peers=none)';
  else {
    const found = findPeerPython();
    if ('missing' in found) peerNote = `peers: none found (${found.missing})`;
    else {
      py = found;
      const wanted = (peerArg ?? ['torch', 'jax']) as Peer[];
      const absent = wanted.filter((p) => !found.peers.includes(p));
      py = { ...found, peers: found.peers.filter((p) => wanted.includes(p)) };
      peerNote = `peers: ${describeVersions(found)}${absent.length ? `; not available there, skipped: ${absent.join(', ')}` : ''}`;
    }
  }
  console.log(peerNote);

  const md: string[] = [];
  let agreed = true;
  const json: Record<string, unknown> = { started: started.toISOString() };

  if (runIssue4) {
    const t = await issue4Table(dir, py, serviceEnv, log);
    agreed &&= t.agreed;
    json.benchmark = t.json;
    console.log('');
    console.log('## The issue-4 workloads (32-64-10, N = 1000; 128-72-4, N = 200)');
    console.log('');
    for (const l of t.lines) console.log(l);
    md.push('## The issue-4 workloads', '', ...t.lines);
  }

  let rows: SweepRow[] = [];
  let dgemm: DgemmRates | undefined;
  let serviceBackend = '';
  if (shapes.length) {
    log('dgemm rate … ');
    dgemm = measureDgemm(THREADS, serviceEnv, py);
    log(`${dgemm.best.toFixed(1)} GFLOP/s (${dgemm.bestSource})\n`);
    const svc = await startService(serviceEnv);
    serviceBackend = `${svc.backend}, ${svc.workers ?? '?'} workers, ${svc.openblas ?? 'no OpenBLAS'}`;
    await stopService(svc.child);
    const memory = peerMemoryCap(num('peer-memory', 12) * 1e9);
    rows = await runSweep({
      shapes, methods, peers: py?.peers ?? [], python: py?.python, threads: THREADS, repeat: REPEAT,
      budget: num('budget', 60), memory, serviceTimeoutSeconds: num('service-timeout', 300), serviceEnv, dir, log,
    });
    const lines = sweepTables(rows, py?.peers ?? [], dgemm);
    const bad = rows.filter((r) => r.agrees === false);
    if (bad.length) agreed = false;
    const method = [
      `- **Service**: \`node dist/src/server.js\` (${serviceBackend}), a fresh process per shape; after a toy request of each method (same depth, widths ≤ 3) warms it up, up to ${REPEAT} timed \`Accept: application/x-npy\` requests per method (no more once 10 s are spent). *service s*: request sent → last byte, the best; *compute s*: that request's time to the first byte (the answer's header goes out once the matrix is computed).`,
      `- **Peers** (float64, CPU, ${THREADS} threads; ${describeVersions(py)}): the computation alone, warm (the first call, with JAX's compilation, excluded), best of up to ${REPEAT} calls (no more once 10 s are spent). Exact: \`torch.func.hessian(E)(θ)\` and \`jax.jit(jax.hessian(E))(θ)\` of the summed loss E = ½ Σ‖y − t‖² w.r.t. the flat parameter vector (a run of ≥ 4 identical layers is one \`jax.lax.scan\` for JAX, whose compile time explodes on hundreds of unrolled layers). Outer product: J (N·K × W) by \`vmap\` over points of \`jacrev\` (torch.func and JAX; faster than \`jacfwd\` whenever K < W, e.g. 2.9 s vs 5.6 s for torch on 32-64-10), then Jᵀ J (L = I: identity outputs, sum-of-squares), jitted for JAX. Pilot runs at 8 and N/8 points predict each call's time and memory: a peer whose call would exceed ${num('budget', 60)} s is skipped with the reason; one that would exceed ${(memory / 1e9).toFixed(1)} GB runs on chunks of the data, the chunks' matrices summed.`,
      `- **Same data**: every network, input and target is generated from a seeded stream (workloads.ts makeNetwork: tanh hidden layers, identity outputs), sent to the service as JSON and read from the same file by the peers; parameters layer by layer, weights row-major (out × in), then bias.`,
      `- **worst diff** = max over the peers of max|service − peer| / max|peer|; a row fails (**FAIL**, exit 1) above ${SWEEP_AGREE}.`,
      `- **dgemm rate**, float64 n = ${dgemm.n}, ${THREADS} threads, best of 5, measured at the start of this run: service's OpenBLAS ${fmt(dgemm.service?.gflops, 1)} GFLOP/s (${dgemm.service?.openblas ?? '?'}), numpy ${fmt(dgemm.numpy, 1)}, torch ${fmt(dgemm.torch, 1)}; the floor uses the fastest, ${dgemm.best.toFixed(1)} GFLOP/s (${dgemm.bestSource}).`,
      '- **floor s** = the method\'s GEMM flops / that rate. Flops, W_l = out_l·(in_l + 1), P(r) = r(r+1)/2: own blocks from packed symmetric pairs Σ_l 2N·P(out_l)·P(in_l+1); blocks between layers Σ_{l>m} 2N·W_l·W_m; cross terms (exact only, PRML 5.95) Σ_{l>m} 2N·out_l·in_l·W_m, with (in_m + 1) for W_m when m = l − 1 (S_{l,l−1} = diag(h′) leaves one product per unit of layer m). Exact = all three; outer product = the smaller of the first two and N·K·W(W+1) (one SYRK of the Jacobian; the block form is smaller on every row here). *x of floor* = compute s / floor s. *vs faster peer* = the faster peer\'s time / service s (end to end, HTTP and the .npy transfer included).',
    ];
    if (dgemm.service && dgemm.service.gflops < 0.5 * dgemm.best) {
      method.push(`- **Note**: the service's OpenBLAS runs at ${dgemm.service.gflops.toFixed(1)} GFLOP/s here, ${((100 * dgemm.service.gflops) / dgemm.best).toFixed(0)} % of the machine's rate (${dgemm.service.openblas ?? '?'}): OpenBLAS 0.3.21 does not know this CPU and falls back to old kernels. Much of the *x of floor* on the large shapes is that; \`--openblas-coretype=Cooperlake\` (or SkylakeX) runs the service with the AVX-512 kernels.`);
    }
    console.log('');
    console.log(`## The sweep (issue 13)`);
    console.log('');
    for (const l of [...method, '', ...lines]) console.log(l);
    md.push('## The sweep (issue 13)', '', ...method, '', ...lines);
    json.sweep = { dgemm, rows: rows.map((r) => ({ ...r, shape: r.shape.id, sizes: shapeLabel(r.shape.sizes), floorModel: floorFlops(r.method, r.shape.sizes, r.n) })) };
    if (bad.length) console.log(`\n*** ${bad.length} row(s) DISAGREE with a peer beyond ${SWEEP_AGREE}: ${bad.map((r) => `${r.label} ${r.method} (${r.worstDiff!.toExponential(2)})`).join(', ')}`);
  }

  if (runScale) {
    const scaleStarted = new Date();
    const scaleLoad0 = loadavg()[0];
    let scaleLoadMax = scaleLoad0;
    const scaleSampler = setInterval(() => (scaleLoadMax = Math.max(scaleLoadMax, loadavg()[0])), 2000);
    const svc = await startService(serviceEnv);
    const scaleBackend = `${svc.backend}, ${svc.workers ?? '?'} workers, ${svc.openblas ?? 'no OpenBLAS'}`;
    await stopService(svc.child);
    const scalePy = scalePeerPython(py?.peers.includes('torch') ? py.python : undefined, peerEnv(1));
    if ('missing' in scalePy) log(`scale: the service alone (${scalePy.missing})\n`);
    const python = 'python' in scalePy ? scalePy.python : undefined;
    const { result, problem } = await runScaleGroup({
      sizes: SCALE_SIZES, n: Math.floor(num('scale-n', SCALE_N)), rows: scaleRows, dir, repeat: REPEAT, repeatSeconds: SCALE_REPEAT_SECONDS,
      serviceEnv, timeoutSeconds: num('service-timeout', 300) * 3, python, peerEnv: peerEnv(THREADS), threads: THREADS,
      peerWallSeconds: 30 * 60, log,
    });
    clearInterval(scaleSampler);
    scaleLoadMax = Math.max(scaleLoadMax, loadavg()[0]);
    const minutes = (Date.now() - scaleStarted.getTime()) / 60000;
    const verdicts = scaleVerdicts(result, problem);
    const tables = scaleTables(result, problem);
    const sec = scaleSection(problem.n, scaleBackend, python ? describeVersions(py) : 'none (no Python with torch)', scaleStarted, scaleLoad0, scaleLoadMax, loadavg()[0], minutes, verdicts, tables);
    console.log('');
    for (const l of sec) console.log(l);
    md.push(...sec);
    json.scale = { ...result, n: problem.n, w: problem.w };
    const bad = result.checks.filter((c) => !c.ok);
    if (bad.length) {
      agreed = false;
      console.log(`\n*** scale: ${bad.length} comparison(s) DISAGREE: ${bad.map((c) => `${c.what} ${c.value.toExponential(2)} > ${c.limit}`).join('; ')}`);
    }
  }

  clearInterval(sampler);
  const load1 = loadavg();
  loadMax = Math.max(loadMax, load1[0]);
  const finished = new Date();
  const loadLine = `Load average (1 min) on these ${cpus().length} cores: ${load0[0].toFixed(2)} before, at most ${loadMax.toFixed(2)} during, ${load1[0].toFixed(2)} after; the run took ${((finished.getTime() - started.getTime()) / 60000).toFixed(1)} min.`;
  console.log('');
  console.log(loadLine);
  json.load = { before: load0, maxDuring: loadMax, after: load1 };

  const mdOption = option('md');
  const full = !list('shapes') && !list('peers') && !flag('no-torch') && !option('only') && !list('methods');
  const mdPath = mdOption === 'none' ? undefined : mdOption ?? (full ? join(ROOT, 'docs/benchmarks.md') : undefined);
  if (mdPath) {
    const head = [
      '# Benchmarks',
      '',
      `The latest run of \`npm run bench\`${full ? '' : ` (${args.join(' ')})`}, ${started.toISOString().replace('T', ' ').slice(0, 16)} UTC. Written by scripts/bench/bench.ts; \`npm run bench -- --md=none\` measures without rewriting this file.`,
      '',
      `- **Machine**: ${cpus().length} cores (${cpu}), ${(totalmem() / 2 ** 30).toFixed(0)} GiB; Node ${process.version}; shared with other sessions. ${loadLine}`,
      `- **Service**: ${serviceBackend || '(see the tables)'}${coretype ? `; OPENBLAS_CORETYPE=${coretype}` : `; OPENBLAS_CORETYPE=${blasEnv().OPENBLAS_CORETYPE ?? 'unset'} (the service's choice from the CPU flags, as in the container)`}.`,
      `- **${peerNote}**`,
      '- **How to run**: `bash scripts/bench/peers-setup.sh` once (makes .peers/ with PyTorch 2 and JAX from the machine\'s package sources), then `npm run bench` (everything: 51 min on these 2 cores with other sessions loading them to 4–12, the issue-4 table and the sweep 32 min of it, the scale group 19), or a subset: `npm run bench:scale` (the scale group alone), `npm run bench -- --shapes=benchmark,one-input --peers=torch --methods=exact`, `--peers=none` for the service alone; see the header of scripts/bench/bench.ts.',
      '',
    ];
    mkdirSync(dirname(mdPath), { recursive: true });
    writeFileSync(mdPath, [...head, ...md].join('\n').replace(/\n+$/, '\n'));
    console.log(`wrote ${mdPath}`);
  }
  const jsonPath = option('json');
  if (jsonPath) writeFileSync(jsonPath, JSON.stringify(json, null, 2));
  if (flag('keep')) console.log(`kept ${dir}`);
  else rmSync(dir, { recursive: true, force: true });
  if (!agreed) process.exitCode = 1;
}

await main();
