/**
 * A task's cost in seconds: the core's work counts (src/core/work.ts: kernel flops, elements
 * touched, fixed-cost calls) at rates measured on this project's machine. Admission
 * (src/pool.ts) sums these seconds over the work queued and running; refusals name the part
 * of the cost that is large (src/errors.ts).
 *
 * The rates come from `node --import tsx scripts/calibrate-cost.ts`, which times the cases of
 * scripts/cost-cases.ts (tiny requests, large GEMMs, thin GEMMs of a 1-965-1 network, hundreds of
 * layers of width 1) and fits the three rates by least squares on the relative error; the run,
 * its table and the spread are in docs/admission.md. On another machine, run it again and put
 * its rates here (or scale every estimate with COST_SCALE).
 */
import type { Work } from './core/index.ts';

export interface CostRates {
  /** Kernel floating-point operations per second (BLAS/LAPACK, every core per call). */
  readonly flopsPerSecond: number;
  /** Array elements touched per second outside the kernels' arithmetic (JavaScript loops, zeroing, operands). */
  readonly elementsPerSecond: number;
  /** Seconds per kernel call, allocation and block pair. */
  readonly secondsPerCall: number;
  /** Seconds every task costs whatever its size (building the network and problem, checking the answer). */
  readonly secondsPerTask: number;
}

/**
 * Measured 2026-12-01 on the 2-core AMD EPYC (24 GiB) these sessions run on, with other sessions
 * busy (load 0.8–3.7): see docs/admission.md for the runs. The TypeScript row refits the flop rate
 * alone (`--flops-only`): its kernels are the main difference. The cheap lane judges tasks at the
 * TypeScript row (src/pool.ts), since cheap tasks run on those kernels.
 */
export const COST_RATES: { readonly openblas: CostRates; readonly typescript: CostRates } = {
  openblas: { flopsPerSecond: 1.1e11, elementsPerSecond: 4e8, secondsPerCall: 5e-7, secondsPerTask: 1e-4 },
  // --flops-only, 2026-12-01 12:44 (load 3–7): 4.2e9; its calls are cheaper than the addon's (deep
  // narrow networks estimated 3x over here), which errs on the safe side for the cheap lane. Halved
  // (17:05): the Jacobian stack's syrk of a tall N·K × W stack runs at 1.6e9 (8-10-1, N = 10,000:
  // 1e8 flops, estimated 45 ms and so cheap, took 100–200 ms on the cheap lane against 30–45 ms on
  // OpenBLAS); the cheap lane is for tasks whose kernels are not what costs
  typescript: { flopsPerSecond: 2e9, elementsPerSecond: 4e8, secondsPerCall: 5e-7, secondsPerTask: 1e-4 },
};

/** Seconds of `work` at `rates`, times `scale`. */
export function estimateSeconds(work: Work, rates: CostRates, scale = 1): number {
  return scale * (rates.secondsPerTask + work.flops / rates.flopsPerSecond + work.elements / rates.elementsPerSecond + work.calls * rates.secondsPerCall);
}

/** What makes a task's cost large, for a refusal's advice: the data points, or the network's depth or size whatever N. */
export type CostDriver = 'points' | 'depth' | 'size';

/** A task's estimate in seconds and what drives it. */
export interface CostEstimate {
  /** Expected seconds on one worker. */
  readonly seconds: number;
  /** At most this many (iterative methods at maxIterations). */
  readonly boundSeconds: number;
  /** The share of the seconds that grows with N (0–1). */
  readonly perPointShare: number;
  readonly driver: CostDriver;
}

/**
 * The estimate of a task with work `work` (and `bound`), whose one-point version costs `fixed`.
 * The driver is 'points' when most of the cost grows with N; otherwise 'depth' when the
 * fixed cost is mostly calls (block pairs: L(L+1)/2 of them for L layers), else 'size' (the W²
 * answer, the factorisations).
 */
export function costEstimate(work: Work, bound: Work, fixed: Work, rates: CostRates, scale = 1): CostEstimate {
  const seconds = estimateSeconds(work, rates, scale);
  const fixedSeconds = Math.min(seconds, estimateSeconds(fixed, rates, scale) - scale * rates.secondsPerTask);
  const perPointShare = seconds > 0 ? (seconds - fixedSeconds) / seconds : 0;
  const callSeconds = scale * fixed.calls * rates.secondsPerCall;
  const driver: CostDriver = perPointShare >= 0.5 ? 'points' : callSeconds >= 0.5 * fixedSeconds ? 'depth' : 'size';
  return { seconds, boundSeconds: Math.max(seconds, estimateSeconds(bound, rates, scale)), perPointShare, driver };
}
