/**
 * Calibrates the cost model: times every case of scripts/cost-cases.ts with `compute` in this
 * thread on the backend in use (CURVATURE_LINALG, every core per kernel call as a lone worker
 * has), takes the median of several runs, and fits the rates of src/cost.ts
 * (seconds = secondsPerTask + flops / flopsPerSecond + elements / elementsPerSecond + calls · secondsPerCall)
 * by non-negative least squares on the relative error. Prints the measured and estimated times
 * with the table's current rates and with the fitted ones, and the rates to put in the table.
 *
 *   node --import tsx scripts/calibrate-cost.ts            # all cases, OpenBLAS when it loads
 *   CURVATURE_LINALG=typescript node --import tsx scripts/calibrate-cost.ts --flops-only
 *
 * `--flops-only` refits flopsPerSecond alone, keeping the table's element and call rates (the
 * TypeScript backend differs from OpenBLAS in its kernels only). Takes a minute or two.
 */
import { compute, taskFootprint, type Work } from '../src/core/index.ts';
import { linalgInfo } from '../src/core/linalg/index.ts';
import { COST_RATES, estimateSeconds, type CostRates } from '../src/cost.ts';
import { COST_CASES } from './cost-cases.ts';

const flopsOnly = process.argv.includes('--flops-only');
const backend = linalgInfo().backend;
const table = COST_RATES[backend];

function time(run: () => void): number {
  run(); // warm-up: code paths compiled, the BLAS threads started
  const times: number[] = [];
  const start = performance.now();
  while (times.length < 7 && (times.length < 3 || performance.now() - start < 1500)) {
    const t0 = performance.now();
    run();
    times.push((performance.now() - t0) / 1000);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)];
}

const rows: { name: string; seconds: number; work: Work }[] = [];
for (const c of COST_CASES) {
  const work = taskFootprint(c.task()).work;
  const seconds = time(() => { compute(c.task()); });
  rows.push({ name: c.name, seconds, work });
  process.stderr.write(`${c.name}: ${(seconds * 1000).toFixed(2)} ms\n`);
}

/** Least squares of Σ (x·a_i / t_i − 1)² over x ≥ 0, by trying every subset of free variables. */
function fit(columns: ((w: Work) => number)[], fixed: (w: Work) => number): number[] {
  let best: { x: number[]; err: number } | undefined;
  for (let mask = 1; mask < 1 << columns.length; mask++) {
    const free = columns.map((_, j) => j).filter((j) => mask & (1 << j));
    // normal equations over the free columns, each row scaled by 1/t
    const A = free.map(() => free.map(() => 0));
    const b = free.map(() => 0);
    for (const r of rows) {
      const a = free.map((j) => columns[j](r.work) / r.seconds);
      const y = 1 - fixed(r.work) / r.seconds;
      for (let p = 0; p < free.length; p++) { b[p] += a[p] * y; for (let q = 0; q < free.length; q++) A[p][q] += a[p] * a[q]; }
    }
    const x = solve(A, b);
    if (!x || x.some((v) => !(v >= 0))) continue;
    const full = columns.map(() => 0);
    free.forEach((j, p) => { full[j] = x[p]; });
    let err = 0;
    for (const r of rows) {
      const est = fixed(r.work) + columns.reduce((s, col, j) => s + full[j] * col(r.work), 0);
      err += (est / r.seconds - 1) ** 2;
    }
    if (!best || err < best.err) best = { x: full, err };
  }
  return best!.x;
}

function solve(A: number[][], b: number[]): number[] | undefined {
  const n = b.length;
  const M = A.map((row, i) => [...row, b[i]]);
  for (let c = 0; c < n; c++) {
    let p = c;
    for (let r = c + 1; r < n; r++) if (Math.abs(M[r][c]) > Math.abs(M[p][c])) p = r;
    if (Math.abs(M[p][c]) < 1e-300) return undefined;
    [M[c], M[p]] = [M[p], M[c]];
    for (let r = 0; r < n; r++) {
      if (r === c) continue;
      const f = M[r][c] / M[c][c];
      for (let k = c; k <= n; k++) M[r][k] -= f * M[c][k];
    }
  }
  return M.map((row, i) => row[n] / row[i]);
}

let fitted: CostRates;
if (flopsOnly) {
  const [a] = fit([(w) => w.flops], (w) => table.secondsPerTask + w.elements / table.elementsPerSecond + w.calls * table.secondsPerCall);
  fitted = { ...table, flopsPerSecond: 1 / a };
} else {
  const [a, e, c, t] = fit([(w) => w.flops, (w) => w.elements, (w) => w.calls, () => 1], () => 0);
  fitted = { flopsPerSecond: 1 / a, elementsPerSecond: 1 / e, secondsPerCall: c, secondsPerTask: t };
}

const ms = (s: number) => (s * 1000).toFixed(s < 0.01 ? 3 : 1);
console.log(`backend ${backend} (${linalgInfo().threads} threads), ${new Date().toISOString()}`);
console.log('| case | measured ms | table ms | ratio | fitted ms | ratio |');
console.log('| --- | ---: | ---: | ---: | ---: | ---: |');
const logs: { table: number[]; fitted: number[] } = { table: [], fitted: [] };
for (const r of rows) {
  const t = estimateSeconds(r.work, table), f = estimateSeconds(r.work, fitted);
  logs.table.push(Math.log(t / r.seconds));
  logs.fitted.push(Math.log(f / r.seconds));
  console.log(`| ${r.name} | ${ms(r.seconds)} | ${ms(t)} | ${(t / r.seconds).toFixed(2)} | ${ms(f)} | ${(f / r.seconds).toFixed(2)} |`);
}
const spread = (xs: number[]) => `worst ratio ${Math.exp(Math.max(...xs.map(Math.abs))).toFixed(2)}x, rms ${Math.exp(Math.sqrt(xs.reduce((s, x) => s + x * x, 0) / xs.length)).toFixed(2)}x`;
console.log(`\ntable rates: ${spread(logs.table)}; fitted: ${spread(logs.fitted)}`);
console.log(`fitted ${backend}: { flopsPerSecond: ${fitted.flopsPerSecond.toExponential(3)}, elementsPerSecond: ${fitted.elementsPerSecond.toExponential(3)}, secondsPerCall: ${fitted.secondsPerCall.toExponential(3)}, secondsPerTask: ${fitted.secondsPerTask.toExponential(3)} }`);
