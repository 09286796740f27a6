/**
 * The cost model (src/core/work.ts, src/cost.ts): estimates against the times measured on this
 * machine for the shapes issue 14 named (deep narrow networks, the 1-965-1 network against
 * 32-64-10), in the forms the core now picks for them (issue 13: columns, stack), against times
 * measured here with `compute` (a wide band: other tenants share the cores), and the refusals
 * that name what drives a cost; the memory budget's default from the cgroup.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compute, taskFootprint, type CurvatureTask } from '../../src/core/index.ts';
import { linalgInfo } from '../../src/core/linalg/index.ts';
import { COST_RATES, costEstimate } from '../../src/cost.ts';
import { cgroupMemoryLimit, defaultMemoryBudget, MemoryBudget } from '../../src/budget.ts';
import { ServiceError } from '../../src/errors.ts';
import { checkTaskSize } from '../../src/sizing.ts';
import { DEFAULT_CONFIG } from '../../src/config.ts';
import { COST_CASES, deepNarrow, problem } from '../../scripts/cost-cases.ts';

const rates = COST_RATES.openblas;
const estimate = (task: CurvatureTask, r = rates) => {
  const f = taskFootprint(task);
  return costEstimate(f.work, f.workBound, f.fixedWork, r);
};
const exact = (widths: number[], n: number): CurvatureTask => ({ endpoint: 'hessian', problem: problem(widths, n), method: 'exact', structure: 'full' });
const outer = (widths: number[], n: number): CurvatureTask => ({ endpoint: 'hessian', problem: problem(widths, n), method: 'outer-product', structure: 'full' });

test('deep narrow networks are priced by their depth: 1,000 tanh layers of width 1 (N = 1) within 2x of the 0.6–1.2 s measured for the columns form (issue 13; the issue\'s 4–4.8 s was the block form\'s), 3,000 and 6,000 layers growing faster than W, and the depth named as the driver', () => {
  const e1 = estimate(exact(deepNarrow(1000), 1));
  const e3 = estimate(exact(deepNarrow(3000), 1));
  const e6 = estimate(exact(deepNarrow(6000), 1));
  assert.ok(e1.seconds >= 0.6 / 2 && e1.seconds <= 1.2 * 2, `1,000 layers: ${e1.seconds.toFixed(2)} s`);
  // W grows 3x and 2x; the work per direction grows with the depth too
  assert.ok(e3.seconds > 3 * e1.seconds && e6.seconds > 2 * e3.seconds, `3,000 layers: ${e3.seconds.toFixed(1)} s, 6,000: ${e6.seconds.toFixed(1)} s`);
  for (const e of [e1, e3, e6]) assert.equal(e.driver, 'depth');
  // W = 2,000 at 1,000 layers: a count of parameters alone (N·W² = 4e6 flops) would say milliseconds
  assert.equal(taskFootprint(exact(deepNarrow(1000), 1)).summary.w, 2000);
  assert.ok(e1.seconds > 100 * (4e6 / rates.flopsPerSecond));
});

test("the 1-965-1 network's outer product (N = 1,000) and 32-64-10's of about the same W are each estimated within 2x of their measured times (0.28 s in the stack form since issue 13, where the issue's block form took 8–12 s; 0.4–0.5 s)", () => {
  const thin = estimate(outer([1, 965, 1], 1000));
  const wide = estimate(outer([32, 64, 10], 1000));
  assert.equal(taskFootprint(outer([1, 965, 1], 1000)).summary.w, 2896);
  assert.equal(taskFootprint(outer([32, 64, 10], 1000)).summary.w, 2762);
  assert.ok(thin.seconds >= 0.28 / 2 && thin.seconds <= 0.28 * 2, `1-965-1: ${thin.seconds.toFixed(2)} s`);
  assert.ok(wide.seconds >= 0.45 / 2 && wide.seconds <= 0.45 * 2, `32-64-10: ${wide.seconds.toFixed(2)} s`);
  assert.equal(thin.driver, 'points');
});

test('relative costs hold on this machine: each calibration case\'s measured/estimated ratio within 5x of the median ratio (the least of five runs under 0.1 s, else of three; the median itself, printed, is how much slower or faster the machine is now than when calibrated)', { timeout: 300_000 }, (t) => {
  const backend = linalgInfo().backend;
  const r = COST_RATES[backend];
  const rows: { name: string; measured: number; estimated: number }[] = [];
  for (const c of COST_CASES) {
    const estimated = estimate(c.task(), r).seconds;
    // a second at most each (the long ones are checked against the issue's own times above)
    if (estimated > 1) continue;
    compute(c.task()); // warm-up
    // the least of several runs for the shorter ones: on a loaded machine (other sessions' tests) one
    // run can lose time slices or meet a full collection
    let measured = Infinity;
    for (let i = 0; i < (estimated < 0.1 ? 5 : 3); i++) {
      const t0 = performance.now();
      compute(c.task());
      measured = Math.min(measured, (performance.now() - t0) / 1000);
    }
    rows.push({ name: c.name, measured, estimated });
  }
  // under 5 ms, timers, the scheduler and the collector dominate: printed, not checked
  const checked = rows.filter((x) => x.measured >= 0.005);
  const ratios = checked.map((x) => x.measured / x.estimated).sort((a, b) => a - b);
  const median = ratios[Math.floor(ratios.length / 2)];
  t.diagnostic(`${backend}, median measured/estimated ${median.toFixed(2)}:\n` + rows.map((x) => `${x.name}: measured ${(x.measured * 1000).toFixed(2)} ms, estimated ${(x.estimated * 1000).toFixed(2)} ms (${(x.measured / x.estimated).toFixed(2)}x)`).join('\n'));
  assert.ok(checked.length >= 10, `${checked.length} cases checked`);
  // 5x, not 3x: at a load of 9 on the 2 cores the long cases ran ~2x slow while the least of five
  // runs of the short ones did not (a spread of 3.9x, no estimate wrong); a misestimate of the kind
  // issue 14 found (deep narrow networks, 1-965-1) was 10–40x
  const off = checked.filter((x) => { const q = x.measured / x.estimated / median; return q > 5 || q < 1 / 5; });
  assert.deepEqual(off.map((x) => x.name), [], 'relative to the others, these are off by more than 5x');
});

test('a cheap request is estimated under CHEAP_TASK_MS and the heavy ones far over it', () => {
  const p = problem([2, 3, 1], 2);
  const tiny = estimate({ endpoint: 'jacobian', network: p.network, inputs: p.inputs, wrt: 'inputs' });
  assert.ok(tiny.boundSeconds * 1000 < DEFAULT_CONFIG.cheapTaskMs / 10, `${tiny.boundSeconds * 1000} ms`);
  assert.ok(estimate(exact([32, 64, 10], 1000)).seconds * 1000 > 4 * DEFAULT_CONFIG.cheapTaskMs);
  // an iterative method's bound is its maxIterations, so a CG solve is never taken for cheap by a guess
  const cg: CurvatureTask = {
    endpoint: 'hessian-inverse-vector-product', problem: problem([20, 30, 3], 50), damping: 0.1, vectors: { rows: 1, cols: 20 * 31 + 3 * 31, data: new Float64Array(20 * 31 + 93) },
    hessian: 'outer-product', method: 'cg', tolerance: 1e-10, maxIterations: 100_000, preconditioner: 'none',
  };
  const e = estimate(cg);
  assert.ok(e.boundSeconds > 50 * e.seconds, `bound ${e.boundSeconds} s, expected ${e.seconds} s`);
});

test('TIMEOUT names what drives the cost: the depth for 6,000 layers at N = 1 (never "send fewer data points"), the data points for a large N', () => {
  const deep = taskFootprint(exact(deepNarrow(6000), 1));
  const de = estimate(exact(deepNarrow(6000), 1));
  const deepErr = new ServiceError('TIMEOUT', { ms: 120_000, task: deep.summary, seconds: de.seconds, driver: de.driver });
  assert.equal(deepErr.status, 503);
  assert.match(deepErr.detail, /120000 ms \(REQUEST_TIMEOUT_MS\)/);
  assert.match(deepErr.detail, /fewer data points will not help \(N = 1\): the cost is in the network's 6,000 layers \(18,003,000 pairs of layers\)/);
  assert.match(deepErr.detail, /parameters: \{layers: \[\.\.\.\]\}|block-diagonal/);
  assert.doesNotMatch(deepErr.detail, /send fewer data points/);
  const many = taskFootprint(outer([1, 965, 1], 1000));
  const me = estimate(outer([1, 965, 1], 1000));
  const manyErr = new ServiceError('TIMEOUT', { ms: 5000, task: many.summary, seconds: me.seconds, driver: me.driver });
  assert.match(manyErr.detail, /growing with the N = 1,000 data points; send fewer data points per request/);
});

test('a 413 over memory for one data point does not advise fewer data points', () => {
  // a Jacobian of one data point through 600 layers of width 1000 (W ≈ 6e8): too many parameters, named as such
  const layers = problem([1000, 1000, 1000, 1], 1);
  assert.throws(() => checkTaskSize(taskFootprint({ endpoint: 'jacobian', network: layers.network, inputs: layers.inputs, wrt: 'parameters' }), { ...DEFAULT_CONFIG, maxResultBytes: 1024 * 1024 }), (e: ServiceError) => {
    assert.equal(e.code, 'RESULT_TOO_LARGE');
    assert.match(e.detail, /fewer data points will not help \(N = 1\)/);
    assert.doesNotMatch(e.detail, /send fewer data points/);
    return true;
  });
  const many = problem([1000, 1000, 1000, 1], 100);
  assert.throws(() => checkTaskSize(taskFootprint({ endpoint: 'jacobian', network: many.network, inputs: many.inputs, wrt: 'parameters' }), { ...DEFAULT_CONFIG, maxResultBytes: 1024 * 1024 }),
    (e: ServiceError) => /send fewer data points per request/.test(e.detail));
});

test('the memory budget: 75 % of the cgroup v2 limit, else v1, else of the machine; holds add up, move and release once', () => {
  const files = (m: Record<string, string>) => (p: string) => { if (p in m) return m[p]; throw new Error('ENOENT'); };
  assert.equal(cgroupMemoryLimit(files({ '/sys/fs/cgroup/memory.max': '4831838208\n' })), 4831838208);
  assert.equal(cgroupMemoryLimit(files({ '/sys/fs/cgroup/memory.max': 'max\n' })), undefined);
  assert.equal(cgroupMemoryLimit(files({ '/sys/fs/cgroup/memory/memory.limit_in_bytes': '1073741824' })), 1073741824);
  assert.equal(cgroupMemoryLimit(files({ '/sys/fs/cgroup/memory/memory.limit_in_bytes': '9223372036854771712' })), undefined);
  assert.equal(cgroupMemoryLimit(files({})), undefined);
  assert.equal(defaultMemoryBudget(4608 * 2 ** 20, 24 * 2 ** 30), 3456 * 2 ** 20);
  assert.equal(defaultMemoryBudget(undefined, 24 * 2 ** 30), 18 * 2 ** 30);
  assert.equal(defaultMemoryBudget(64 * 2 ** 30, 24 * 2 ** 30), 18 * 2 ** 30, 'a limit above the machine is the machine');
  const b = new MemoryBudget(100);
  const a = b.tryHold('task', 60)!;
  assert.equal(b.tryHold('body', 50), undefined);
  const c = b.tryHold('body', 40)!;
  assert.equal(b.used(), 100);
  a.become('answer', 10);
  assert.deepEqual([b.used('task'), b.used('answer'), b.used('body'), b.count('answer')], [0, 10, 40, 1]);
  a.release();
  a.release();
  c.release();
  assert.equal(b.used(), 0);
  assert.equal(b.count('answer'), 0);
});
