/**
 * The scale group of `npm run bench` (issue 12, "Speed and memory"): the curvature-at-scale
 * endpoints on an MNIST-sized network, 784-128-10 (tanh hidden, logits out, softmax-cross-entropy
 * on labels, W = 101,770) with N = 10,000, against PyTorch 2 doing the same in the same run
 * (scripts/bench/scale_peers.py). The rows:
 *
 * - `eigen`: POST /hessian/eigen, the top 5 of the exact Hessian by Lanczos to a relative residual
 *   of 1e-8; against a PyHessian-style power iteration for the top 1 at PyHessian's default
 *   tolerance 1e-3 (and for the top 5 with its deflation), and against scipy's eigsh (ARPACK) for
 *   the top 5 at 1e-8 on the same double-backward products (like for like).
 * - `cg`, `cg-kfac`: POST /hessian/inverse-vector-product, one vector, the outer product,
 *   α = 0.1, CG to 1e-10, preconditioner none and kfac; against the same CG in PyTorch on
 *   Gauss–Newton-vector products Jᵀ L J v (torch.func.jvp, then the vjp of a kept forward pass).
 * - `kfac`: POST /hessian/kfac with α = 0.1 (the factors and log det(K + αI)); against the factors
 *   by their definition in PyTorch (A = mean z̃z̃ᵀ; G = Σ_n Rᵀ L R with R and L by torch.func).
 * - `hvp`: POST /hessian/vector-product, one product (the upload and the passes included), and
 *   the per-product cost inside the Lanczos and CG runs: (run − one-product request) / (products −
 *   1), both timed in the same process, i.e. with the upload, parsing and the passes over the data
 *   taken out; against PyTorch's double-backward HVP (the gradient graph kept, as PyHessian does).
 *
 * Each row runs in a fresh service process (limits raised as for the other groups): after /health,
 * the row's requests on a toy network warm the JIT and the pool; then its one-product baseline
 * (where it has one) and its own request, up to `repeat` times each (no more once
 * SCALE_REPEAT_SECONDS are spent), clocked from sending the request to its last byte. The data
 * go once per request as multipart/form-data: the JSON (network, loss, options) in the part
 * `request`, inputs (N × 784 float64), labels (N int64) and the vector as .npy parts, the same
 * files the peers read. The service's peak memory is its VmHWM, read after the baseline and after
 * the row's request; the peers' is each task's own process's VmHWM (not ru_maxrss, which Linux
 * carries over from the Node process that forked it).
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { lanczosBasis } from '../../src/core/eigen.ts';
import { npyHeader } from '../../src/http/npy.ts';
import { seededRandom } from '../../test/helpers/random.ts';
import { runPeerProcess } from './peer-process.ts';
import { ROOT, peakRss, post, SERVER, startService, stopService } from './service.ts';
import type { LayerSpec } from './workloads.ts';

export const SCALE_PEERS_SCRIPT = join(ROOT, 'scripts/bench/scale_peers.py');

/** The issue's network and data size. */
export const SCALE_SIZES: readonly number[] = [784, 128, 10];
export const SCALE_N = 10_000;
/** α of the CG rows and of the KFAC log det. */
export const SCALE_DAMPING = 0.1;
export const EIGEN_COUNT = 5;
export const EIGEN_TOLERANCE = 1e-8;
/** PyHessian's default tolerance of its power iteration (relative change of the Rayleigh quotient) and its default maxIter. */
export const POWER_TOLERANCE = 1e-3;
export const POWER_MAX_ITERATIONS = 100;
export const CG_TOLERANCE = 1e-10;
/** Products the service may use: far above what these runs take, so that only a genuine stall is refused. */
export const SCALE_MAX_ITERATIONS = 20_000;
/** No more repeats of a request once its timed runs have taken this long together (at least one is made). */
export const SCALE_REPEAT_SECONDS = 40;

/** Agreement required with the peers. Eigenvalues: max relative difference over the k pairs. */
export const SCALE_AGREE = { eigenvalues: 1e-6, solution: 1e-8, factors: 1e-10, logDeterminant: 1e-10, product: 1e-10 } as const;

export interface ScaleProblem {
  readonly sizes: readonly number[];
  readonly n: number;
  /** tanh hidden layers, identity (logit) outputs: softmax-cross-entropy applies the log-softmax itself. */
  readonly layers: LayerSpec[];
  /** N × D, row-major, uniform on [0, 1) (pixel intensities). */
  readonly inputs: Float64Array;
  /** N class indices in [0, K). */
  readonly labels: Int32Array;
  /** W entries uniform in ±1: CG's right-hand side and the direction of the one H·v. */
  readonly vector: Float64Array;
  readonly w: number;
}

/**
 * The scale group's network and data from one seeded stream: weights uniform in ±1/√in, biases
 * in ±0.1 (layer by layer, row-major), then the inputs, the labels and the vector. The same bytes
 * every run, so every peer and every repeat sees the same float64 numbers.
 */
export function makeScaleProblem(sizes: readonly number[], n: number, seed = 12): ScaleProblem {
  const r = seededRandom(seed);
  const u = (scale: number) => (2 * r() - 1) * scale;
  const layers: LayerSpec[] = [];
  let w = 0;
  for (let l = 1; l < sizes.length; l++) {
    const [inp, out] = [sizes[l - 1], sizes[l]];
    const weights = Array.from({ length: out }, () => Array.from({ length: inp }, () => u(1 / Math.sqrt(inp))));
    layers.push({ weights, bias: Array.from({ length: out }, () => u(0.1)), activation: l === sizes.length - 1 ? 'identity' : 'tanh' });
    w += out * (inp + 1);
  }
  const d = sizes[0], k = sizes[sizes.length - 1];
  const inputs = new Float64Array(n * d);
  for (let i = 0; i < inputs.length; i++) inputs[i] = r();
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) labels[i] = Math.min(k - 1, Math.floor(r() * k));
  const vector = new Float64Array(w);
  for (let i = 0; i < w; i++) vector[i] = u(1);
  return { sizes, n, layers, inputs, labels, vector, w };
}

/** A .npy file ('<f8', C order) of `data` with this shape. */
export function npyFloat64(shape: readonly number[], data: Float64Array): Buffer {
  return Buffer.concat([npyHeader(shape), Buffer.from(data.buffer, data.byteOffset, data.byteLength)]);
}

/** A .npy file of int64 ('<i8'), as numpy writes labels. */
export function npyInt64(values: Int32Array): Buffer {
  const head = npyHeader([values.length]);
  // npyHeader writes '<f8'; the same preamble with the type changed (equal length)
  head.write("'<i8'", head.indexOf("'<f8'"), 'latin1');
  const data = Buffer.alloc(8 * values.length);
  for (let i = 0; i < values.length; i++) data.writeBigInt64LE(BigInt(values[i]), 8 * i);
  return Buffer.concat([head, data]);
}

/** A multipart/form-data body: the JSON in the part `request`, then each Buffer as a .npy part. */
export function multipartBody(json: unknown, parts: Readonly<Record<string, Buffer>>): { body: Buffer; contentType: string } {
  const boundary = `----curvature-bench-${Math.random().toString(16).slice(2)}`;
  const chunks: Buffer[] = [];
  const part = (name: string, filename: string, type: string, data: Buffer) => {
    chunks.push(Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${name}"; filename="${filename}"\r\nContent-Type: ${type}\r\n\r\n`, 'latin1'), data, Buffer.from('\r\n'));
  };
  part('request', 'request.json', 'application/json', Buffer.from(JSON.stringify(json)));
  for (const [name, data] of Object.entries(parts)) part(name, `${name}.npy`, 'application/x-npy', data);
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return { body: Buffer.concat(chunks), contentType: `multipart/form-data; boundary=${boundary}` };
}

export type ScaleRowId = 'eigen' | 'cg' | 'cg-kfac' | 'kfac' | 'hvp';
export const SCALE_ROWS: readonly ScaleRowId[] = ['eigen', 'cg', 'cg-kfac', 'kfac', 'hvp'];

/** One request of a row: where it goes, its JSON fields beyond the problem, its extra .npy parts. */
export interface ScaleRequest {
  readonly path: string;
  readonly fields: Readonly<Record<string, unknown>>;
  readonly vector?: 'vector' | 'vectors';
  readonly accept: string;
}

export interface ScaleRowSpec {
  readonly id: ScaleRowId;
  readonly label: string;
  readonly main: ScaleRequest;
  /** The same data with one product: its time is the fixed cost (upload, parsing, passes over the data) the per-product cost leaves out. */
  readonly baseline?: ScaleRequest;
}

const cgFields = (preconditioner: 'none' | 'kfac', tolerance: number) => ({
  hessian: 'outer-product', method: 'cg', damping: SCALE_DAMPING, tolerance, preconditioner, maxIterations: SCALE_MAX_ITERATIONS,
});

/** The rows' requests (the issue's parameters). */
export function scaleRowSpecs(): ScaleRowSpec[] {
  const hvp: ScaleRequest = { path: '/hessian/vector-product', fields: {}, vector: 'vector', accept: 'application/x-npy' };
  return [
    {
      id: 'eigen', label: `eigen: top ${EIGEN_COUNT}, exact, Lanczos to ${EIGEN_TOLERANCE}`,
      main: { path: '/hessian/eigen', fields: { hessian: 'exact', count: EIGEN_COUNT, which: 'largest', method: 'lanczos', tolerance: EIGEN_TOLERANCE, maxIterations: SCALE_MAX_ITERATIONS }, accept: 'application/x-npz' },
      baseline: hvp,
    },
    // tolerance 1: CG stops before its first step and checks the true residual with one product
    { id: 'cg', label: `CG (G + ${SCALE_DAMPING}I)⁻¹v to ${CG_TOLERANCE}, no preconditioner`, main: { path: '/hessian/inverse-vector-product', fields: cgFields('none', CG_TOLERANCE), vector: 'vectors', accept: 'application/x-npy' }, baseline: { path: '/hessian/inverse-vector-product', fields: cgFields('none', 1), vector: 'vectors', accept: 'application/x-npy' } },
    { id: 'cg-kfac', label: `CG (G + ${SCALE_DAMPING}I)⁻¹v to ${CG_TOLERANCE}, KFAC preconditioner`, main: { path: '/hessian/inverse-vector-product', fields: cgFields('kfac', CG_TOLERANCE), vector: 'vectors', accept: 'application/x-npy' }, baseline: { path: '/hessian/inverse-vector-product', fields: cgFields('kfac', 1), vector: 'vectors', accept: 'application/x-npy' } },
    { id: 'kfac', label: `KFAC factors and log det(K + ${SCALE_DAMPING}I)`, main: { path: '/hessian/kfac', fields: { damping: SCALE_DAMPING }, accept: 'application/x-npz' } },
    { id: 'hvp', label: 'H·v, one product', main: hvp },
  ];
}

/** The files of a problem in `dir`: what the service is sent and the peers read. */
export interface ScaleFiles {
  readonly request: string;
  readonly inputs: string;
  readonly labels: string;
  readonly vector: string;
  readonly vectors: string;
}

export function writeScaleFiles(p: ScaleProblem, dir: string, prefix = 'scale'): ScaleFiles {
  const d = p.sizes[0];
  const files: ScaleFiles = {
    request: join(dir, `${prefix}-request.json`), inputs: join(dir, `${prefix}-inputs.npy`), labels: join(dir, `${prefix}-labels.npy`),
    vector: join(dir, `${prefix}-vector.npy`), vectors: join(dir, `${prefix}-vectors.npy`),
  };
  writeFileSync(files.request, JSON.stringify(problemJson(p)));
  writeFileSync(files.inputs, npyFloat64([p.n, d], p.inputs));
  writeFileSync(files.labels, npyInt64(p.labels));
  writeFileSync(files.vector, npyFloat64([p.w], p.vector));
  writeFileSync(files.vectors, npyFloat64([1, p.w], p.vector));
  return files;
}

/** The JSON part shared by every request: the network, the loss and the reduction. */
function problemJson(p: ScaleProblem) {
  return { network: { layers: p.layers }, loss: 'softmax-cross-entropy', reduction: 'sum' };
}

/** A request's multipart body from the files (read as they are, so service and peers get the same bytes). */
function bodyOf(files: ScaleFiles, r: ScaleRequest): { body: Buffer; contentType: string } {
  const json = { ...(JSON.parse(readFileSync(files.request, 'utf8')) as object), ...r.fields };
  const parts: Record<string, Buffer> = { inputs: readFileSync(files.inputs), labels: readFileSync(files.labels) };
  if (r.vector) parts[r.vector] = readFileSync(files[r.vector]);
  return multipartBody(json, parts);
}

export interface Timed {
  /** Every timed request, request sent → last byte. */
  seconds: number[];
  /** Request sent → first byte, of each. */
  firstByte: number[];
  /** Curvature-vector products the service reports (X-Iterations), of the first. */
  products?: number;
  /** Peak resident memory (VmHWM) of the service process after these requests. */
  peakRss: number;
  error?: string;
}

export interface ScaleServiceRow {
  spec: ScaleRowSpec;
  backend?: string;
  /** VmHWM after the toy warm-up requests: the process's own footprint. */
  idleRss?: number;
  baseline?: Timed;
  main?: Timed;
  /** Where the first answer of the row's own request was saved. */
  answer?: string;
  headers?: Record<string, string>;
  error?: string;
}

export interface ScaleOptions {
  problem: ScaleProblem;
  rows: readonly ScaleRowId[];
  dir: string;
  repeat: number;
  repeatSeconds: number;
  serviceEnv: Readonly<Record<string, string>>;
  /** What node runs for the service (default the built server). */
  serverArgs?: readonly string[];
  /** Seconds one request may take. */
  timeoutSeconds: number;
  log: (s: string) => void;
}

/** The toy problem that warms a service up: the same kinds of layers and loss, W = 75 (above Lanczos' basis of 40). */
export function scaleToy(): ScaleProblem {
  return makeScaleProblem([8, 6, 3], 7, 99);
}

async function timedRequests(port: number, files: ScaleFiles, r: ScaleRequest, o: ScaleOptions, pid: number, save?: string): Promise<{ t: Timed; headers: Record<string, string> }> {
  const { body, contentType } = bodyOf(files, r);
  const t: Timed = { seconds: [], firstByte: [], peakRss: NaN };
  let headers: Record<string, string> = {};
  let spent = 0;
  for (let i = 0; i < o.repeat && (i === 0 || spent < o.repeatSeconds); i++) {
    const a = await post(port, r.path, body, r.accept, o.timeoutSeconds * 1000, contentType);
    if (a.status !== 200) {
      t.error = `${r.path} answered ${a.status}: ${a.body.toString('utf8').slice(0, 400)}`;
      break;
    }
    spent += a.seconds;
    t.seconds.push(a.seconds);
    t.firstByte.push(a.firstByteSeconds);
    if (i === 0) {
      headers = Object.fromEntries(Object.entries(a.headers).filter(([k, v]) => k.startsWith('x-') && typeof v === 'string')) as Record<string, string>;
      const it = headers['x-iterations'];
      if (it !== undefined) t.products = it.split(',').map(Number).reduce((s, x) => s + x, 0);
      if (save) writeFileSync(save, a.body);
    }
  }
  t.peakRss = peakRss(pid);
  return { t, headers };
}

/** Runs the service side of the rows, each in a fresh process. */
export async function runScaleService(o: ScaleOptions, files: ScaleFiles, toyFiles: ScaleFiles): Promise<ScaleServiceRow[]> {
  const out: ScaleServiceRow[] = [];
  const specs = scaleRowSpecs().filter((s) => o.rows.includes(s.id));
  for (const spec of specs) {
    const row: ScaleServiceRow = { spec };
    out.push(row);
    o.log(`scale ${spec.id}: ${spec.label} … `);
    let svc: Awaited<ReturnType<typeof startService>> | undefined;
    try {
      svc = await startService(o.serviceEnv, [], o.serverArgs ?? [SERVER]);
      row.backend = svc.backend;
      for (const r of [spec.baseline, spec.main]) {
        if (!r) continue;
        const { body, contentType } = bodyOf(toyFiles, r);
        const warm = await post(svc.port, r.path, body, r.accept, 120_000, contentType);
        if (warm.status !== 200) throw new Error(`warm-up ${r.path} answered ${warm.status}: ${warm.body.toString('utf8').slice(0, 300)}`);
      }
      row.idleRss = peakRss(svc.child.pid!);
      if (spec.baseline) {
        row.baseline = (await timedRequests(svc.port, files, spec.baseline, o, svc.child.pid!)).t;
        if (row.baseline.error) throw new Error(`baseline: ${row.baseline.error}`);
      }
      row.answer = join(o.dir, `service-${spec.id}.${spec.main.accept.endsWith('npz') ? 'npz' : 'npy'}`);
      const m = await timedRequests(svc.port, files, spec.main, o, svc.child.pid!, row.answer);
      row.main = m.t;
      row.headers = m.headers;
      if (m.t.error) throw new Error(m.t.error);
      o.log(`${range(m.t.seconds)} s${m.t.products !== undefined ? `, ${m.t.products} products` : ''}, VmHWM ${(m.t.peakRss / 1e6).toFixed(0)} MB\n`);
    } catch (err) {
      row.error = (err as Error).message;
      row.answer = undefined;
      o.log(`ERROR ${row.error}\n`);
    } finally {
      if (svc) await stopService(svc.child);
    }
  }
  return out;
}

// ---------------------------------------------------------------- the peers

export type ScalePeerTask = 'hvp' | 'power1' | 'power5' | 'eigsh' | 'cg' | 'cg-kfac' | 'kfac';
/** Which peer tasks go with which service row. */
export const PEER_TASKS: Readonly<Record<ScaleRowId, readonly ScalePeerTask[]>> = {
  eigen: ['power1', 'power5', 'eigsh'], cg: ['cg'], 'cg-kfac': ['cg-kfac'], kfac: ['kfac'], hvp: ['hvp'],
};

/** What scale_peers.py prints for a task (the fields a task has). */
export interface ScalePeerResult {
  task: ScalePeerTask;
  /** Each timed run, seconds. */
  seconds?: number[];
  products?: number;
  eigenvalues?: number[];
  /** Max relative difference of the eigenvalues with the service's, pairwise in order. */
  eigenvalueDiff?: number;
  /** max|service − peer| / max|peer| of the solution, product or factors. */
  relDiff?: number;
  logDeterminant?: number;
  logDetDiff?: number;
  /** HVP task: per product with the gradient graph kept; the graph's own build; a product from scratch; a Gauss–Newton product. */
  hvpSeconds?: number[];
  graphSeconds?: number;
  freshSeconds?: number;
  gnSeconds?: number[];
  /** power1, power5, eigsh, cg, cg-kfac: (run − setup) / products of each run, setup = the gradient graph (or the kept forward pass and the factors). */
  perProductSeconds?: number[];
  /** Max RSS of the task's process, and its RSS once torch and the data were loaded. */
  peakRss?: number;
  loadedRss?: number;
  /** The service's eigenvalues as the peer read them from its .npz, and its log det from its header. */
  serviceEigenvalues?: number[];
  serviceLogDeterminant?: number;
  /** eigsh: max over the pairs of 1 − |cos| between the service's eigenvector and eigsh's. */
  vectorDiff?: number;
  residual?: number;
  note?: string;
  error?: string;
}

export interface ScalePeerOptions {
  python: string;
  env: NodeJS.ProcessEnv;
  dir: string;
  threads: number;
  repeat: number;
  repeatSeconds: number;
  /** Seconds a task's process may take before it is killed. */
  wallSeconds: number;
  log: (s: string) => void;
}

/**
 * Whether `python` can run the scale peers: PyTorch 2 (torch.func) and scipy (eigsh). Debian's
 * python3 has PyTorch 1.13 (functorch, no torch.func): the peers' Python of scripts/bench/peers-setup.sh has both.
 */
export function scalePeerPython(python: string | undefined, env: NodeJS.ProcessEnv): { python: string } | { missing: string } {
  if (!python) return { missing: 'no Python with torch' };
  const r = spawnSync(python, ['-c', 'import torch.func, scipy.sparse.linalg'], { env, encoding: 'utf8', timeout: 120_000 });
  if (r.status === 0) return { python };
  return { missing: `${python} cannot import torch.func and scipy.sparse.linalg: ${(r.stderr || r.error?.message || '').trim().split('\n').pop()}` };
}

/** One task in its own Python process (so its VmHWM is its own), killed past its wall-clock bound. */
export function runScalePeer(o: ScalePeerOptions, task: ScalePeerTask, files: ScaleFiles, service: ScaleServiceRow | undefined): Promise<ScalePeerResult> {
  const spec = join(o.dir, `peer-${task}.json`);
  writeFileSync(spec, JSON.stringify({
    task, files, service: service?.answer ?? null, serviceHeaders: service?.headers ?? null, threads: o.threads, repeats: o.repeat, repeatSeconds: o.repeatSeconds,
    damping: SCALE_DAMPING, count: EIGEN_COUNT, eigenTolerance: EIGEN_TOLERANCE, powerTolerance: POWER_TOLERANCE, powerMaxIterations: POWER_MAX_ITERATIONS,
    cgTolerance: CG_TOLERANCE, maxIterations: SCALE_MAX_ITERATIONS,
  }));
  return runPeerProcess(o.python, [SCALE_PEERS_SCRIPT, spec], o.env, o.wallSeconds * 1000).then((end): ScalePeerResult => {
    if ('answer' in end) return end.answer as ScalePeerResult;
    switch (end.failed) {
      case 'spawn': return { task, error: end.message };
      case 'timeout': return { task, error: `did not finish within ${o.wallSeconds} s (killed)` };
      case 'signal': return { task, error: `killed by ${end.signal}` };
      case 'exit': return { task, error: end.stderrTail.slice(0, 500) || `exit ${end.code}` };
      case 'unreadable': return { task, error: `unreadable answer: ${end.message}` };
    }
  });
}

export interface ScaleResult {
  service: ScaleServiceRow[];
  peers: Partial<Record<ScalePeerTask, ScalePeerResult>>;
  /** Every comparison made, and whether it passed. */
  checks: { what: string; value: number; limit: number; ok: boolean }[];
}

/** The agreement checks of a run: every comparison a peer made with the service, against SCALE_AGREE. */
export function scaleChecks(peers: Partial<Record<ScalePeerTask, ScalePeerResult>>): ScaleResult['checks'] {
  const checks: ScaleResult['checks'] = [];
  const add = (what: string, value: number | undefined, limit: number) => {
    if (value !== undefined) checks.push({ what, value, limit, ok: value <= limit });
  };
  add(`eigenvalues, service vs eigsh (top ${EIGEN_COUNT})`, peers.eigsh?.eigenvalueDiff, SCALE_AGREE.eigenvalues);
  add('CG solution, service vs PyTorch (no preconditioner)', peers.cg?.relDiff, SCALE_AGREE.solution);
  add('CG solution, service vs PyTorch (KFAC preconditioner)', peers['cg-kfac']?.relDiff, SCALE_AGREE.solution);
  add('KFAC factors A_l, G_l, service vs by definition', peers.kfac?.relDiff, SCALE_AGREE.factors);
  add('KFAC log det(K + αI), service vs by definition', peers.kfac?.logDetDiff, SCALE_AGREE.logDeterminant);
  add('H·v, service vs double backward', peers.hvp?.relDiff, SCALE_AGREE.product);
  return checks;
}

// ---------------------------------------------------------------- the tables

export const range = (xs: readonly number[] | undefined, digits = 2): string => {
  if (!xs || !xs.length) return '–';
  const lo = Math.min(...xs), hi = Math.max(...xs);
  const f = (x: number) => (x < 0.01 ? x.toExponential(1) : x.toFixed(x < 1 ? 3 : digits));
  return lo === hi || f(lo) === f(hi) ? f(lo) : `${f(lo)}–${f(hi)}`;
};
const sci = (x: number | undefined) => (x === undefined || !Number.isFinite(x) ? '–' : x === 0 ? '0' : x.toExponential(1));
const mb = (x: number | undefined) => (x === undefined || !Number.isFinite(x) ? '–' : (x / 1e6).toFixed(0));
const ms = (x: number | undefined) => (x === undefined || !Number.isFinite(x) ? '–' : (1000 * x).toFixed(0));
const msRange = (xs: readonly number[] | undefined) => (!xs || !xs.length ? '–' : range(xs.map((x) => 1000 * x), 0));

/** Per-product seconds inside a run: (run − one-product request) / (products − 1), best against best and worst against worst. */
export function marginalPerProduct(row: ScaleServiceRow | undefined): number[] | undefined {
  const m = row?.main, b = row?.baseline;
  if (!m || !b || m.products === undefined || m.products < 2 || !m.seconds.length || !b.seconds.length) return undefined;
  const per = (run: number, one: number) => (run - one) / (m.products! - 1);
  return [per(Math.min(...m.seconds), Math.min(...b.seconds)), per(Math.max(...m.seconds), Math.max(...b.seconds))];
}

/** The markdown of the scale group: its tables and notes (method and reading are bench.ts's, around them). */
export function scaleTables(r: ScaleResult, p: ScaleProblem): string[] {
  const row = (id: ScaleRowId) => r.service.find((s) => s.spec.id === id);
  const svcCell = (s: ScaleServiceRow | undefined) => (s?.error ? 'error' : range(s?.main?.seconds));
  const peerCell = (x: ScalePeerResult | undefined) => (x?.error ? 'error' : range(x?.seconds));
  const ratio = (s: ScaleServiceRow | undefined, x: ScalePeerResult | undefined) => {
    const a = s?.main?.seconds, b = x?.seconds;
    if (!a?.length || !b?.length) return '–';
    const q = Math.min(...b) / Math.min(...a);
    return q >= 1 ? `${q.toFixed(1)}x faster` : `${(1 / q).toFixed(1)}x slower`;
  };
  const lines: string[] = [];
  const table = (header: string[], rows: string[][]) => {
    const widths = header.map((h, c) => Math.max(h.length, ...rows.map((x) => x[c].length)));
    const line = (cells: string[]) => `| ${cells.map((x, c) => (c === 0 || c === 4 ? x.padEnd(widths[c]) : x.padStart(widths[c]))).join(' | ')} |`;
    lines.push(line(header));
    lines.push(`|${widths.map((w, c) => (c === 0 || c === 4 ? ':' + '-'.repeat(w + 1) : '-'.repeat(w + 1) + ':')).join('|')}|`);
    for (const x of rows) lines.push(line(x));
    lines.push('');
  };
  const eigen = row('eigen'), cg = row('cg'), cgk = row('cg-kfac'), kf = row('kfac'), hv = row('hvp');
  const pe = r.peers;
  const eig = (xs: number[] | undefined) => (xs ? xs.map((x) => x.toPrecision(10)).join(', ') : '–');
  lines.push('### Time to the answer', '');
  table(
    ['task', 'service s', 'products', 'service answer', 'PyTorch 2', 'PyTorch s', 'products', 'vs PyTorch', 'agreement'],
    [
      ['eigen top 5, Lanczos 1e-8', svcCell(eigen), String(eigen?.main?.products ?? '–'), 'λ₁…λ₅ below', 'power iteration, top 1, tol 1e-3 (PyHessian)', peerCell(pe.power1), String(pe.power1?.products ?? '–'), ratio(eigen, pe.power1), `λ₁ ${sci(pe.power1?.eigenvalueDiff)} (its tolerance)`],
      ['', '', '', '', 'power iteration, top 5, tol 1e-3, deflation', peerCell(pe.power5), String(pe.power5?.products ?? '–'), ratio(eigen, pe.power5), `λ₁…λ₅ ${sci(pe.power5?.eigenvalueDiff)}`],
      ['', '', '', '', 'scipy eigsh (ARPACK) on HVPs, top 5, tol 1e-8', peerCell(pe.eigsh), String(pe.eigsh?.products ?? '–'), ratio(eigen, pe.eigsh), `λ₁…λ₅ ${sci(pe.eigsh?.eigenvalueDiff)}`],
      [`CG, α = ${SCALE_DAMPING}, 1e-10`, svcCell(cg), String(cg?.main?.products ?? '–'), `residual ${cg?.headers?.['x-residuals'] ? sci(Number(cg.headers['x-residuals'])) : '–'}`, 'the same CG on GN products (jvp + vjp)', peerCell(pe.cg), String(pe.cg?.products ?? '–'), ratio(cg, pe.cg), `x ${sci(pe.cg?.relDiff)}`],
      ['CG, KFAC preconditioner', svcCell(cgk), String(cgk?.main?.products ?? '–'), `residual ${cgk?.headers?.['x-residuals'] ? sci(Number(cgk.headers['x-residuals'])) : '–'}`, 'the same PCG, (K + αI)⁻¹ from eigh of the factors', peerCell(pe['cg-kfac']), String(pe['cg-kfac']?.products ?? '–'), ratio(cgk, pe['cg-kfac']), `x ${sci(pe['cg-kfac']?.relDiff)}`],
      [`KFAC + log det, α = ${SCALE_DAMPING}`, svcCell(kf), '–', `log det ${kf?.headers?.['x-log-determinant'] ? Number(kf.headers['x-log-determinant']).toFixed(4) : '–'}`, 'A, G by definition (torch.func jacrev, hessian), eigvalsh', peerCell(pe.kfac), '–', ratio(kf, pe.kfac), `A, G ${sci(pe.kfac?.relDiff)}; log det ${sci(pe.kfac?.logDetDiff)}`],
    ],
  );
  lines.push(`Eigenvalues (exact Hessian, summed loss): service ${eig(pe.eigsh?.serviceEigenvalues ?? pe.power1?.serviceEigenvalues)}; eigsh ${eig(pe.eigsh?.eigenvalues)}; power top 1 ${eig(pe.power1?.eigenvalues)}; power top 5 ${eig(pe.power5?.eigenvalues)}. Eigenvectors, service vs eigsh: max 1 − |cos| = ${sci(pe.eigsh?.vectorDiff)}.`, '');

  lines.push('### Curvature-vector products', '');
  const inLanczos = marginalPerProduct(eigen), inCg = marginalPerProduct(cg), inCgk = marginalPerProduct(cgk);
  table(
    ['product', 'service ms', 'how', '', 'PyTorch 2', 'PyTorch ms', '', 'service vs PyTorch', ''],
    [
      ['H·v, exact', msRange(inLanczos), 'inside Lanczos: (run − one H·v request) / (products − 1)', '', 'double backward, graph kept (PyHessian), timed alone', msRange(pe.hvp?.hvpSeconds), '', perRatio(inLanczos, pe.hvp?.hvpSeconds), ''],
      ['', '', '', '', 'the same, inside the power iteration (top 1): (run − graph) / products', msRange(pe.power1?.perProductSeconds), '', perRatio(inLanczos, pe.power1?.perProductSeconds), ''],
      ['', '', '', '', 'the same, inside the power iteration (top 5)', msRange(pe.power5?.perProductSeconds), '', perRatio(inLanczos, pe.power5?.perProductSeconds), ''],
      ['', '', '', '', 'the same, inside eigsh', msRange(pe.eigsh?.perProductSeconds), '', perRatio(inLanczos, pe.eigsh?.perProductSeconds), ''],
      ['H·v, exact', msRange(hv?.main?.seconds), 'one POST /hessian/vector-product, upload and passes included', '', 'forward + gradient graph + one HVP', ms(pe.hvp?.freshSeconds), '', perRatio(hv?.main?.seconds, pe.hvp?.freshSeconds !== undefined ? [pe.hvp.freshSeconds] : undefined), ''],
      ['G·v, outer product', msRange(inCg), 'inside CG: (run − one-product CG request) / (products − 1)', '', 'torch.func.jvp + vjp of a kept forward, timed alone', msRange(pe.hvp?.gnSeconds), '', perRatio(inCg, pe.hvp?.gnSeconds), ''],
      ['', '', '', '', 'the same, inside its CG: (run − kept forward) / products', msRange(pe.cg?.perProductSeconds), '', perRatio(inCg, pe.cg?.perProductSeconds), ''],
      ['G·v + KFAC M⁻¹', msRange(inCgk), 'inside KFAC-preconditioned CG, the same way', '', 'inside its PCG: (run − forward, factors, eigh) / products', msRange(pe['cg-kfac']?.perProductSeconds), '', perRatio(inCgk, pe['cg-kfac']?.perProductSeconds), ''],
    ].map((x) => x.slice(0, 9)),
  );
  if (pe.hvp?.graphSeconds !== undefined) lines.push(`PyTorch's gradient graph (forward + backward with create_graph, once per PyHessian object): ${ms(pe.hvp.graphSeconds)} ms.`, '');

  lines.push('### Peak memory', '');
  const w2 = 8 * p.w * p.w;
  const memRows: string[][] = [];
  for (const s of r.service) {
    const id = s.spec.id;
    const { k, bytes: model } = memoryModel(id, p);
    const peers = PEER_TASKS[id].map((t) => pe[t]).filter((x): x is ScalePeerResult => !!x && x.peakRss !== undefined);
    const peak = s.main?.peakRss;
    const used = peak !== undefined && s.idleRss !== undefined ? peak - s.idleRss : undefined;
    memRows.push([
      id, mb(s.idleRss), mb(s.baseline?.peakRss), mb(peak), `${mb(model)} (k = ${k})`, used !== undefined ? (used / model).toFixed(1) : '–',
      peers.map((x) => `${x.task} ${mb(x.peakRss)} (${mb(x.loadedRss)} loaded)`).join('; ') || '–',
      peak !== undefined ? (peak < w2 / 20 ? `yes (${((100 * peak) / w2).toFixed(2)} % of 8W²)` : `**NO** (${((100 * peak) / w2).toFixed(1)} % of 8W²)`) : '–',
    ]);
  }
  const header = ['row', 'service idle MB', 'after one product MB', 'service peak MB', 'model 8·(N·(D + Σout) + k·W) MB', '(peak − idle) / model', 'PyTorch VmHWM MB', 'no W²'];
  const widths = header.map((h, c) => Math.max(h.length, ...memRows.map((x) => x[c].length)));
  const mline = (cells: string[]) => `| ${cells.map((x, c) => (c === 0 || c === 6 ? x.padEnd(widths[c]) : x.padStart(widths[c]))).join(' | ')} |`;
  lines.push(mline(header));
  lines.push(`|${widths.map((w, c) => (c === 0 || c === 6 ? ':' + '-'.repeat(w + 1) : '-'.repeat(w + 1) + ':')).join('|')}|`);
  for (const x of memRows) lines.push(mline(x));
  lines.push('', `8·W² = ${(w2 / 1e9).toFixed(1)} GB (W = ${p.w}); "no W²" requires the peak below 5 % of it.`, '');

  const notes = r.service.filter((s) => s.error).map((s) => `service ${s.spec.id}: ${s.error}`);
  for (const [t, x] of Object.entries(pe)) if (x?.error) notes.push(`PyTorch ${t}: ${x.error}`);
  for (const [t, x] of Object.entries(pe)) if (x?.note) notes.push(`PyTorch ${t}: ${x.note}`);
  if (notes.length) lines.push(...notes.map((n) => `- ${n}`), '');
  lines.push('Agreement:', '');
  for (const c of r.checks) lines.push(`- ${c.ok ? 'agrees' : '**DISAGREES**'}: ${c.what}: ${sci(c.value)} (≤ ${sci(c.limit)})`);
  lines.push('');
  return lines;
}

function perRatio(service: readonly number[] | undefined, peer: readonly number[] | undefined): string {
  if (!service?.length || !peer?.length) return '–';
  const q = Math.min(...peer) / Math.min(...service);
  return q >= 1 ? `${q.toFixed(1)}x faster` : `${(1 / q).toFixed(1)}x slower`;
}

/** The service rows' options (its problem made from `sizes` and `n`), and the peers'. */
export interface ScaleGroupOptions extends Omit<ScaleOptions, 'problem'> {
  sizes: readonly number[];
  n: number;
  /** The peers' Python (with torch; scipy for eigsh), or none: the service alone. */
  python?: string;
  peerEnv: NodeJS.ProcessEnv;
  threads: number;
  peerWallSeconds: number;
  /** Peer processes at once: 1 for timing (the bench); more where only the answers matter (the smoke test). */
  peerConcurrency?: number;
}

/** The whole group: the problem and its files, the service rows, then the peers of each row (one at a time unless peerConcurrency says otherwise), then the checks. */
export async function runScaleGroup(o: ScaleGroupOptions): Promise<{ result: ScaleResult; problem: ScaleProblem }> {
  const problem = makeScaleProblem(o.sizes, o.n);
  const files = writeScaleFiles(problem, o.dir);
  const toyFiles = writeScaleFiles(scaleToy(), o.dir, 'toy');
  o.log(`scale ${o.sizes.join('-')} (W = ${problem.w}, N = ${problem.n}), multipart body ${((readFileSync(files.inputs).length + readFileSync(files.labels).length) / 1e6).toFixed(1)} MB of .npy + ${(readFileSync(files.request).length / 1e6).toFixed(1)} MB of JSON\n`);
  const service = await runScaleService({ ...o, problem }, files, toyFiles);
  const peers: ScaleResult['peers'] = {};
  if (o.python) {
    const po: ScalePeerOptions = { python: o.python, env: o.peerEnv, dir: o.dir, threads: o.threads, repeat: o.repeat, repeatSeconds: o.repeatSeconds, wallSeconds: o.peerWallSeconds, log: o.log };
    const queue = service.flatMap((s) => PEER_TASKS[s.spec.id].map((task) => ({ task, s })));
    const worker = async () => {
      for (let next = queue.shift(); next; next = queue.shift()) {
        const r = await runScalePeer(po, next.task, files, next.s);
        peers[next.task] = r;
        o.log(`scale PyTorch ${next.task} … ${r.error ? `ERROR ${r.error}` : `${range(r.seconds)} s${r.products !== undefined ? `, ${r.products} products` : ''}, VmHWM ${((r.peakRss ?? NaN) / 1e6).toFixed(0)} MB`}\n`);
      }
    };
    await Promise.all(Array.from({ length: Math.max(1, o.peerConcurrency ?? 1) }, worker));
  }
  return { result: { service, peers, checks: scaleChecks(peers) }, problem };
}

/**
 * The memory the issue allows a row, O(N·(D + Σ_l out_l) + k·W), with constant 1 in doubles: the
 * inputs and the passes' per-unit arrays, and k vectors of W — Lanczos' basis twice (the vectors
 * and their products, src/core/eigen.ts lanczosBasis) plus the k locked; CG's x, r, z, p, q and
 * the right-hand side; H·v's v and answer; none for KFAC (its factors are Σ_l (in_l + 1)² + out_l²).
 */
export function memoryModel(id: ScaleRowId, p: Pick<ScaleProblem, 'sizes' | 'n' | 'w'>): { k: number; bytes: number } {
  const sumOut = p.sizes.slice(1).reduce((a, b) => a + b, 0);
  const k = { eigen: 2 * lanczosBasis(EIGEN_COUNT, p.w) + EIGEN_COUNT, cg: 6, 'cg-kfac': 6, kfac: 0, hvp: 2 }[id];
  return { k, bytes: 8 * (p.n * (p.sizes[0] + sumOut) + k * p.w) };
}

/**
 * How many times the model a row's own memory (VmHWM after the row − after the toy warm-up) may
 * be and still count as O(N·(D + Σout) + k·W): the request as received (its .npy parts, N·D) and
 * parsed (N·D again), the forward's activations and the backward's per-unit arrays (two or three
 * of N·Σout), the vectors: about 3; 4 leaves room for the allocator's slack. Fixed before the
 * full-size run, not fitted to it.
 */
export const MEMORY_CONSTANT = 4;

/** The issue's targets, judged on a run: PASS, MISS or n/a, each with its numbers. */
export function scaleVerdicts(r: ScaleResult, p: ScaleProblem): string[] {
  const eigen = r.service.find((s) => s.spec.id === 'eigen');
  const out: string[] = [];
  const best = (xs: readonly number[] | undefined) => (xs?.length ? Math.min(...xs) : undefined);
  const e = best(eigen?.main?.seconds), p1 = best(r.peers.power1?.seconds);
  out.push(e !== undefined && p1 !== undefined
    ? `${e < p1 ? 'PASS' : 'MISS'} eigen top ${EIGEN_COUNT} by Lanczos to ${EIGEN_TOLERANCE} (${e.toFixed(2)} s, end to end) faster than PyTorch's power iteration for the top 1 at ${POWER_TOLERANCE} (${p1.toFixed(2)} s, computation alone): ${(p1 / e).toFixed(2)}x`
    : 'n/a  eigen vs power iteration: a side did not run');
  // PyTorch's fastest HVP of the run: timed alone, or inside its power iterations or eigsh
  const inLanczos = marginalPerProduct(eigen);
  const torchHvps = ([['alone', r.peers.hvp?.hvpSeconds], ['in power1', r.peers.power1?.perProductSeconds], ['in power5', r.peers.power5?.perProductSeconds], ['in eigsh', r.peers.eigsh?.perProductSeconds]] as const)
    .map(([how, xs]) => ({ how, t: best(xs) }))
    .filter((x): x is { how: typeof x.how; t: number } => x.t !== undefined);
  const torchHvp = torchHvps.length ? torchHvps.reduce((a, b) => (b.t < a.t ? b : a)) : undefined;
  out.push(inLanczos && torchHvp
    ? `${inLanczos[0] <= torchHvp.t ? 'PASS' : 'MISS'} the service's H·v inside Lanczos (${(1000 * inLanczos[0]).toFixed(0)}–${(1000 * inLanczos[1]).toFixed(0)} ms a product) no slower than PyTorch's double-backward HVP (its fastest in this run, ${torchHvp.how}: ${(1000 * torchHvp.t).toFixed(0)} ms): ${(torchHvp.t / inLanczos[0]).toFixed(2)}x`
    : 'n/a  H·v inside Lanczos vs PyTorch: a side did not run');
  const w2 = 8 * p.w * p.w;
  const peaks = r.service.map((s) => s.main?.peakRss).filter((x): x is number => x !== undefined && Number.isFinite(x));
  const worst = peaks.length ? Math.max(...peaks) : undefined;
  out.push(worst !== undefined
    ? `${worst < w2 / 20 ? 'PASS' : 'MISS'} nothing W²: the largest service peak ${(worst / 1e6).toFixed(0)} MB against 8·W² = ${(w2 / 1e9).toFixed(1)} GB`
    : 'n/a  memory: no service row ran');
  const used = r.service
    .filter((s) => s.main && Number.isFinite(s.main.peakRss) && s.idleRss !== undefined)
    .map((s) => ({ id: s.spec.id, q: (s.main!.peakRss - s.idleRss!) / memoryModel(s.spec.id, p).bytes }));
  const most = used.length ? used.reduce((a, b) => (b.q > a.q ? b : a)) : undefined;
  out.push(most
    ? `${most.q <= MEMORY_CONSTANT ? 'PASS' : 'MISS'} O(N·(D + Σout) + k·W): each row's peak above its idle process within ${MEMORY_CONSTANT}x the model; the most ${most.q.toFixed(1)}x (${most.id}); ${used.map((u) => `${u.id} ${u.q.toFixed(1)}x`).join(', ')}`
    : 'n/a  memory model: no service row ran');
  return out;
}
