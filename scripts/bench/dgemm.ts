/**
 * The service's own dgemm rate, for `npm run bench`: float64 n × n GEMMs (default n = 2000) through
 * the OpenBLAS addon the service loads, with CURVATURE_BLAS_THREADS as the service's pool sets it.
 * Prints one JSON line: { n, threads, gflops (best of 5, 2n³ flops each), openblas }.
 * Run it in the environment the service gets (bench.ts does), since OpenBLAS reads
 * OPENBLAS_CORETYPE once, when it loads.
 */
import { linalgInfo, openBlasBackend, setBlasThreads } from '../../src/core/linalg/index.ts';
import { seededRandom } from '../../test/helpers/random.ts';

const n = Number(process.argv[2] ?? 2000);
const threads = Number(process.env.CURVATURE_BLAS_THREADS ?? 2);
let out: Record<string, unknown>;
try {
  const be = openBlasBackend();
  setBlasThreads(threads);
  const r = seededRandom(1);
  const a = new Float64Array(n * n).map(() => r() - 0.5), b = new Float64Array(n * n).map(() => r() - 0.5), c = new Float64Array(n * n);
  be.gemm(false, false, n, n, n, 1, a, n, b, n, 0, c, n); // warm-up: threads started, pages touched
  let best = Infinity;
  for (let i = 0; i < 5; i++) {
    const t = performance.now();
    be.gemm(false, false, n, n, n, 1, a, n, b, n, 0, c, n);
    best = Math.min(best, (performance.now() - t) / 1000);
  }
  const info = linalgInfo();
  out = { n, threads, gflops: (2 * n ** 3) / best / 1e9, openblas: 'openblas' in info ? info.openblas : undefined };
} catch (err) {
  out = { n, threads, error: (err as Error).message };
}
console.log(JSON.stringify(out));
