/**
 * The block form's memory-bound kernels: the scatters (LinalgBackend.scatterOwnBlock,
 * scatterBlock, mirrorLower, populate), the TypeScript reference against an oracle written from
 * the formulas in types.ts, and the addon's against the reference bit for bit, at 1 and 3 threads
 * (its parts must not change a bit), on random layers with and without bias, whole targets, row
 * slabs, own-block targets (colOffset) and mirroring; the per-point row kernels (khatriRao,
 * symmetricKhatriRao, packLower, transposeEach, scaleColumns) and allFinite on every backend
 * against their formulas; and the addon refusing arguments that would reach outside a buffer.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { openBlasBackend, typescriptBackend, type LinalgBackend } from '../../src/core/linalg/index.ts';
import { openBlasAddon } from '../../src/core/linalg/openblas.ts';
import type { BlockLayer, BlockTarget } from '../../src/core/linalg/types.ts';
import { seededRandom } from '../helpers/random.ts';

let native: LinalgBackend | undefined;
let nativeMissing: string | undefined;
try {
  native = openBlasBackend();
} catch (e) {
  nativeMissing = (e as Error).message;
}

function layer(offset: number, inputs: number, out: number, bias: boolean): BlockLayer {
  return { offset, in: inputs, out, aug: inputs + (bias ? 1 : 0) };
}
const size = (l: BlockLayer) => l.out * l.aug;
const theta = (l: BlockLayer, i: number, j: number) => (j < l.in ? l.offset + i * l.in + j : l.offset + l.out * l.in + i);
const pairs = (r: number) => (r * (r + 1)) / 2;

function randomArray(n: number, rnd: () => number): Float64Array {
  return Float64Array.from({ length: n }, () => rnd() * 2 - 1);
}

/**
 * Runs `check` with each kernel set the tests compare (TypeScript, and the addon at 1 and 3
 * threads where it loads: its parts must not change a bit), OpenBLAS's thread count set for it,
 * and puts the count back.
 */
function onEveryKernel(check: (k: LinalgBackend, threads: number) => void): void {
  const addon = native ? openBlasAddon() : undefined;
  const before = addon?.getNumThreads();
  try {
    for (const [k, threads] of [[typescriptBackend, 1], ...(native ? [[native, 1], [native, 3]] : [])] as [LinalgBackend, number][]) {
      addon?.setNumThreads(threads);
      check(k, threads);
    }
  } finally {
    if (before !== undefined) addon!.setNumThreads(before);
  }
}

/** H[r][c] += v where the target stores row r (the oracle's one write). */
function add(h: BlockTarget, r: number, c: number, v: number): void {
  if (r >= h.rowStart && r < h.rowEnd) h.data[(r - h.rowStart) * h.stride + c - h.colOffset] += v;
}

function ownOracle(h: BlockTarget, l: BlockLayer, t: Float64Array, i0: number, i1: number): void {
  const yCols = pairs(l.aug);
  for (let i = i0; i < i1; i++) for (let p = 0; p <= i; p++) {
    const row = (pairs(i) + p - pairs(i0)) * yCols;
    for (let j = 0; j < l.aug; j++) for (let q = 0; q < l.aug; q++) {
      const v = t[row + pairs(Math.max(j, q)) + Math.min(j, q)];
      add(h, theta(l, i, j), theta(l, p, q), v);
      if (p < i) add(h, theta(l, p, j), theta(l, i, q), v);
    }
  }
}

function blockOracle(h: BlockTarget, l: BlockLayer, m: BlockLayer, t: Float64Array, a0: number, na: number, nb: number, aIsI: boolean): void {
  for (let a = 0; a < na; a++) for (let p = 0; p < m.out; p++) for (let b = 0; b < nb; b++) for (let q = 0; q < m.aug; q++) {
    const v = t[((a * m.out + p) * nb + b) * m.aug + q];
    const [i, j] = aIsI ? [a0 + a, b] : [b, a0 + a];
    add(h, theta(l, i, j), theta(m, p, q), v);
    if (h.mirror) add(h, theta(m, p, q), theta(l, i, j), v);
  }
}

interface Case {
  name: string;
  /** Runs one kernel on `h` through `k` (the oracle when k is undefined). */
  run(k: LinalgBackend | undefined, h: BlockTarget): void;
  target(data: Float64Array): BlockTarget;
  length: number;
}

/** Layers m (offset 0) and l above it, with or without bias; sizes from `big`. */
function cases(seed: number, big: boolean): Case[] {
  const rnd = seededRandom(seed);
  const dim = (lo: number, hi: number) => lo + Math.floor(rnd() * (hi - lo + 1));
  const out: Case[] = [];
  for (const [biasL, biasM] of [[true, true], [false, true], [true, false], [false, false]]) {
    // large: every kernel call has the work to be split in 3 parts (2^18 entries a part)
    const m = layer(0, big ? dim(40, 50) : dim(1, 5), big ? dim(15, 20) : dim(1, 4), biasM);
    const l = layer(size(m), big ? dim(60, 70) : dim(1, 5), big ? dim(20, 25) : dim(1, 4), biasL);
    const W = size(m) + size(l);
    const whole = (data: Float64Array): BlockTarget => ({ data, stride: W, rowStart: 0, rowEnd: W, colOffset: 0, mirror: false });
    const s0 = Math.floor(W / 3), s1 = Math.floor((2 * W) / 3) + 1;
    const slab = (data: Float64Array): BlockTarget => ({ data, stride: W, rowStart: s0, rowEnd: s1, colOffset: 0, mirror: true });
    const own = (data: Float64Array): BlockTarget => ({ data, stride: size(l), rowStart: l.offset, rowEnd: l.offset + size(l), colOffset: l.offset, mirror: false });
    const tag = `l ${l.out}×${l.in}${biasL ? '+b' : ''} over m ${m.out}×${m.in}${biasM ? '+b' : ''}`;
    // own block of l, in two tiles of i
    const iMid = Math.floor(l.out / 2);
    const tOwn = randomArray(pairs(l.out) * pairs(l.aug), rnd);
    for (const [tname, target, length] of [['whole', whole, W * W], ['slab', slab, (s1 - s0) * W], ['own-block', own, size(l) * size(l)]] as const) {
      out.push({
        name: `scatterOwnBlock ${tag}, ${tname}`, target, length,
        run: (k, h) => {
          const t0 = tOwn.subarray(0, pairs(iMid) * pairs(l.aug)), t1 = tOwn.subarray(pairs(iMid) * pairs(l.aug));
          if (k) { k.scatterOwnBlock(h, l, t0, 0, iMid); k.scatterOwnBlock(h, l, t1, iMid, l.out); } else { ownOracle(h, l, t0, 0, iMid); ownOracle(h, l, t1, iMid, l.out); }
        },
      });
    }
    // the curvature term (rows i of l, b = j) and the cross term (rows j < in_l, b = i), each in two tiles
    const tCurv = randomArray(l.out * m.out * l.aug * m.aug, rnd);
    const tCross = randomArray(l.in * m.out * l.out * m.aug, rnd);
    for (const [tname, target, length] of [['whole', whole, W * W], ['mirrored slab', slab, (s1 - s0) * W]] as const) {
      out.push({
        name: `scatterBlock ${tag}, ${tname}`, target, length,
        run: (k, h) => {
          const f = k ? k.scatterBlock.bind(k) : blockOracle;
          const aC = Math.floor(l.out / 2), aX = Math.floor(l.in / 2);
          const per = m.out * l.aug * m.aug, perX = m.out * l.out * m.aug;
          f(h, l, m, tCurv.subarray(0, aC * per), 0, aC, l.aug, true);
          f(h, l, m, tCurv.subarray(aC * per), aC, l.out - aC, l.aug, true);
          f(h, l, m, tCross.subarray(0, aX * perX), 0, aX, l.out, false);
          f(h, l, m, tCross.subarray(aX * perX), aX, l.in - aX, l.out, false);
        },
      });
    }
  }
  return out;
}

/** One case through `k` (or the oracle) on a copy of the same random start. */
function outcome(c: Case, k: LinalgBackend | undefined, start: Float64Array): Float64Array {
  const data = start.slice();
  c.run(k, c.target(data));
  return data;
}

test('the TypeScript scatter kernels write what the formulas say (oracle; additions to a random start)', () => {
  const rnd = seededRandom(7);
  for (const c of cases(11, false)) {
    const start = randomArray(c.length, rnd);
    const want = outcome(c, undefined, start), got = outcome(c, typescriptBackend, start);
    let worst = 0;
    for (let i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs(want[i] - got[i]));
    // the same sums, in another order where two terms meet in one entry (the own block's diagonal pairs)
    assert.ok(worst <= 1e-14, `${c.name}: differs from the oracle by ${worst}`);
    assert.notDeepEqual(got, start, `${c.name}: wrote nothing`);
  }
});

test('the addon scatter kernels equal the TypeScript ones bit for bit, at 1 and 3 threads', (t) => {
  if (!native) {
    t.skip(`native backend not tested: ${nativeMissing}`);
    return;
  }
  const addon = openBlasAddon();
  const before = addon.getNumThreads();
  const rnd = seededRandom(8);
  try {
    for (const big of [false, true]) {
      for (const c of cases(big ? 21 : 12, big)) {
        const start = randomArray(c.length, rnd);
        const want = outcome(c, typescriptBackend, start);
        for (const threads of [1, 3]) {
          addon.setNumThreads(threads);
          const got = outcome(c, native, start);
          assert.ok(Buffer.from(got.buffer).equals(Buffer.from(want.buffer)), `${c.name} (${big ? 'large' : 'small'}, ${threads} threads): not bit-identical`);
        }
      }
    }
  } finally {
    addon.setNumThreads(before);
  }
});

test('mirrorLower copies exactly the lower part of the rows asked for, on every backend and thread count', (t) => {
  const rnd = seededRandom(9);
  const n = 700, lda = 703;
  const start = randomArray(n * lda, rnd);
  for (const [r0, r1, c0, c1] of [[0, n, 0, n], [100, 650, 0, 100], [300, 301, 0, 300], [64, 640, 70, 500], [0, 0, 0, 0]]) {
    const want = start.slice();
    for (let i = r0; i < r1; i++) for (let j = c0; j < Math.min(c1, i); j++) want[j * lda + i] = want[i * lda + j];
    onEveryKernel((k, threads) => {
      const got = start.slice();
      k.mirrorLower(got, lda, r0, r1, c0, c1);
      assert.ok(Buffer.from(got.buffer).equals(Buffer.from(want.buffer)), `${k.name}/${threads}t rows ${r0}…${r1}, columns ${c0}…${c1}`);
    });
  }
  if (!native) t.diagnostic(`native backend not tested: ${nativeMissing}`);
});

test('populate leaves an array as it was: a fresh one zero, a written one its values', (t) => {
  if (!native) {
    t.skip(`native backend not tested: ${nativeMissing}`);
    return;
  }
  const fresh = new Float64Array(3 << 20);
  native.populate(fresh);
  assert.ok(fresh.every((v) => v === 0));
  const written = randomArray(1 << 20, seededRandom(10));
  const copy = written.slice();
  native.populate(written);
  native.populate(written.subarray(3, 100_003));
  assert.deepEqual(written, copy);
  assert.ok(openBlasAddon().populate(new Float64Array(2 << 20), 2) >= (2 << 20) * 8 - 8192, 'the whole pages inside the array are populated');
  typescriptBackend.populate(fresh); // a no-op there
});

test('the addon refuses scatter arguments that would reach outside a buffer, with a RangeError or TypeError', (t) => {
  if (!native) {
    t.skip(`native backend not tested: ${nativeMissing}`);
    return;
  }
  const x = openBlasAddon();
  // a layer of 2 outputs and 3 inputs with bias: 8 parameters
  const h = new Float64Array(64);
  const tOwn = new Float64Array(pairs(2) * pairs(4));
  x.scatterOwnBlock(h, 8, 0, 8, 0, 0, 3, 2, true, tOwn, 0, 2); // fits
  assert.throws(() => x.scatterOwnBlock(h, 8, 0, 9, 0, 0, 3, 2, true, tOwn, 0, 2), RangeError, 'a row past the target');
  assert.throws(() => x.scatterOwnBlock(h, 7, 0, 8, 0, 0, 3, 2, true, tOwn, 0, 2), RangeError, 'columns past the stride');
  assert.throws(() => x.scatterOwnBlock(h, 8, 0, 8, 1, 0, 3, 2, true, tOwn, 0, 2), RangeError, 'columns before the colOffset');
  assert.throws(() => x.scatterOwnBlock(h, 8, 0, 8, 0, 0, 3, 2, true, tOwn.subarray(1), 0, 2), RangeError, 'T too short');
  assert.throws(() => x.scatterOwnBlock(h, 8, 0, 8, 0, 0, 3, 2, true, tOwn, 0, 3), TypeError, 'i1 past the outputs');
  assert.throws(() => (x.scatterOwnBlock as (...a: unknown[]) => void)(h, 8, 0, 8, 0, 0, 3, 2, true, tOwn, 0), TypeError, 'an argument missing');
  // m: 1 output, 1 input with bias (offset 0); l: 2 outputs, 1 input, no bias (offset 2): W = 4
  const h4 = new Float64Array(16), tb = new Float64Array(2 * 1 * 1 * 2);
  x.scatterBlock(h4, 4, 0, 4, 0, true, 2, 1, 2, false, 0, 1, 1, true, tb, 0, 2, 1, true); // fits
  assert.throws(() => x.scatterBlock(h4, 4, 0, 4, 0, true, 2, 1, 2, false, 0, 1, 1, true, tb, 1, 2, 1, true), TypeError, 'rows past layer l');
  assert.throws(() => x.scatterBlock(h4, 4, 0, 4, 0, true, 3, 1, 2, false, 0, 1, 1, true, tb, 0, 2, 1, true), RangeError, "layer l's columns past the stride");
  assert.throws(() => x.scatterBlock(h4, 4, 0, 4, 0, true, 2, 1, 2, false, 0, 1, 1, true, tb.subarray(1), 0, 2, 1, true), RangeError, 'T too short');
  assert.throws(() => x.mirrorLower(h4, 4, 0, 5, 0, 5), RangeError, 'rows past the matrix');
  assert.throws(() => x.mirrorLower(h4, 4, 3, 2, 0, 2), TypeError, 'r1 below r0');
});

test('allFinite finds one NaN or ±Infinity anywhere, on every backend and thread count (a pass over parts)', (t) => {
  for (const length of [0, 1, 7, 4096, 4097, 3 << 20]) {
    const a = randomArray(length, seededRandom(length + 1));
    a[0] = Number.MAX_VALUE;
    if (length > 1) a[length - 1] = -Number.MAX_VALUE;
    onEveryKernel((k, threads) => {
      assert.equal(k.allFinite(a), true, `${k.name}/${threads}t: length ${length}, all finite`);
      const spots = length < 20 ? [...Array(length).keys()] : [0, 4095, 4096, Math.floor(length / 2), Math.floor((2 * length) / 3) + 1, length - 1].filter((i) => i < length);
      for (const at of spots) for (const bad of [Number.NaN, Infinity, -Infinity]) {
        const keep = a[at];
        a[at] = bad;
        assert.equal(k.allFinite(a), false, `${k.name}/${threads}t: ${bad} at ${at} of ${length}`);
        a[at] = keep;
      }
    });
  }
  if (!native) t.diagnostic(`native backend not tested: ${nativeMissing}`);
});

/** The row kernels' calls on random inputs: [name, run(kernels, out-or-in-place array), the array's length, oracle]. */
function rowCases(c: number, rnd: () => number): { name: string; length: number; run: (k: LinalgBackend, out: Float64Array) => void; oracle: (out: Float64Array) => void }[] {
  const nx = 13, ny = 33, r = 17, q = 5;
  const x = randomArray(c * nx, rnd), y = randomArray(c * ny, rnd), z = randomArray(c * ny, rnd), a = randomArray(c * r * r, rnd), b = randomArray(c * r * q, rnd), d = randomArray(c * q, rnd);
  return [
    { name: 'khatriRao', length: c * nx * ny, run: (k, out) => k.khatriRao(x, nx, y, ny, c, out), oracle: (out) => { for (let n = 0; n < c; n++) for (let j = 0; j < nx; j++) for (let p = 0; p < ny; p++) out[(n * nx + j) * ny + p] = x[n * nx + j] * y[n * ny + p]; } },
    { name: 'symmetricKhatriRao', length: c * pairs(ny), run: (k, out) => k.symmetricKhatriRao(z, ny, c, out), oracle: (out) => { for (let n = 0; n < c; n++) for (let j = 0; j < ny; j++) for (let p = 0; p <= j; p++) out[n * pairs(ny) + pairs(j) + p] = z[n * ny + j] * z[n * ny + p]; } },
    { name: 'packLower', length: c * pairs(r), run: (k, out) => k.packLower(a, r, c, out), oracle: (out) => { for (let n = 0; n < c; n++) for (let i = 0; i < r; i++) for (let p = 0; p <= i; p++) out[n * pairs(r) + pairs(i) + p] = a[(n * r + i) * r + p]; } },
    { name: 'transposeEach', length: c * r * q, run: (k, out) => k.transposeEach(b, c, r, q, out), oracle: (out) => { for (let n = 0; n < c; n++) for (let i = 0; i < r; i++) for (let j = 0; j < q; j++) out[(n * q + j) * r + i] = b[(n * r + i) * q + j]; } },
    // in place: the array starts as b
    { name: 'scaleColumns', length: c * r * q, run: (k, out) => { out.set(b); k.scaleColumns(out, c, r, q, d); }, oracle: (out) => { for (let n = 0; n < c; n++) for (let i = 0; i < r; i++) for (let j = 0; j < q; j++) out[(n * r + i) * q + j] = b[(n * r + i) * q + j] * d[n * q + j]; } },
  ];
}

test('the row kernels (khatriRao, symmetricKhatriRao, packLower, transposeEach, scaleColumns) write the formulas exactly, on every backend and thread count', (t) => {
  // 3 points, and 7,000 (over 2^19 entries for each kernel, so the addon splits them into parts)
  for (const c of [3, 7000]) {
    for (const rc of rowCases(c, seededRandom(c))) {
      const want = new Float64Array(rc.length);
      rc.oracle(want);
      onEveryKernel((k, threads) => {
        // every entry overwritten: a NaN start must not survive
        const got = new Float64Array(rc.length + 1).fill(Number.NaN);
        rc.run(k, got.subarray(0, rc.length));
        assert.ok(Buffer.from(got.buffer, 0, rc.length * 8).equals(Buffer.from(want.buffer)), `${rc.name} ${k.name}/${threads}t, ${c} points`);
        assert.ok(Number.isNaN(got[rc.length]), `${rc.name} ${k.name}/${threads}t wrote past its rows`);
      });
    }
  }
  if (!native) t.diagnostic(`native backend not tested: ${nativeMissing}`);
});

test('the addon refuses row-kernel arrays too short for their points, with a RangeError', (t) => {
  if (!native) {
    t.skip(`native backend not tested: ${nativeMissing}`);
    return;
  }
  const x = openBlasAddon();
  const a = new Float64Array(6), b = new Float64Array(12), out = new Float64Array(24);
  x.khatriRao(a, 3, b, 6, 2, new Float64Array(36)); // fits
  assert.throws(() => x.khatriRao(a, 3, b, 6, 2, out), RangeError, 'out too short');
  assert.throws(() => x.khatriRao(a, 4, b, 6, 2, new Float64Array(48)), RangeError, 'x too short');
  assert.throws(() => x.symmetricKhatriRao(a, 3, 2, new Float64Array(11)), RangeError, 'packed out too short');
  assert.throws(() => x.packLower(a, 3, 2, new Float64Array(12)), RangeError, 'x holds fewer than c r × r matrices');
  assert.throws(() => x.transposeEach(a, 2, 2, 2, out), RangeError, 'x too short');
  assert.throws(() => x.scaleColumns(b, 2, 3, 2, new Float64Array(3)), RangeError, 'd too short');
  assert.throws(() => (x.scaleColumns as (...a: unknown[]) => void)(b, 2, 3, 2), TypeError, 'an argument missing');
  assert.throws(() => x.packLower(a, -1, 2, out), TypeError, 'a negative size');
});

test('layerRows writes a layer\'s columns of Jacobian rows by the formula and nothing else, on every backend and thread count', (t) => {
  for (const [c, k, bias] of [[3, 2, true], [2500, 3, true], [2500, 1, false]] as const) {
    const rnd = seededRandom(c + k);
    const l = layer(7, 11, 13, bias);
    const width = 7 + size(l) + 5;
    const x = randomArray(c * k * l.out, rnd), z = randomArray(c * l.aug, rnd);
    const start = randomArray(c * k * width, rnd);
    const want = start.slice();
    for (let n = 0; n < c; n++) for (let r = 0; r < k; r++) for (let p = 0; p < l.out; p++) for (let q = 0; q < l.aug; q++) {
      want[(n * k + r) * width + theta(l, p, q)] = x[(n * k + r) * l.out + p] * z[n * l.aug + q];
    }
    onEveryKernel((kern, threads) => {
      const got = start.slice();
      kern.layerRows(x, c, k, l, z, got, width);
      assert.ok(Buffer.from(got.buffer).equals(Buffer.from(want.buffer)), `${kern.name}/${threads}t: ${c} points, k = ${k}, bias ${bias}`);
    });
  }
  if (!native) t.diagnostic(`native backend not tested: ${nativeMissing}`);
  if (native) {
    const x = openBlasAddon(), a = new Float64Array(6), z = new Float64Array(8), rows = new Float64Array(2 * 3 * 10);
    x.layerRows(a, 2, 3, 2, 3, 1, true, z, rows, 10); // one output, three inputs and a bias at columns 2 … 5 of 10: fits
    assert.throws(() => x.layerRows(a, 2, 3, 7, 3, 1, true, z, rows, 10), TypeError, "the layer's columns past the width");
    assert.throws(() => x.layerRows(a, 2, 3, 2, 3, 1, true, z.subarray(1), rows, 10), RangeError, 'z too short');
    assert.throws(() => x.layerRows(a, 2, 3, 2, 3, 1, true, z, rows.subarray(1), 10), RangeError, 'rows too short');
  }
});
