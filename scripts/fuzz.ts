/**
 * npm run fuzz: the property of test/routes/fuzz.test.ts over many requests (FUZZ_RUNS, default
 * 10,000; FUZZ_SEED to replay a failure) against the app on its worker pool. Prints a tally of
 * route, status and content type; exits 1 on the first violation, with fast-check's shrunk case.
 */
import { buildApp } from '../src/app.ts';
import { fuzz, type Tally } from '../test/helpers/fuzz.ts';

const runs = Number(process.env.FUZZ_RUNS ?? 10_000);
const seed = process.env.FUZZ_SEED ? Number(process.env.FUZZ_SEED) : Date.now() % 2 ** 31;
const app = await buildApp({});
await app.ready();
const tally: Tally = new Map();
const started = performance.now();
let failed = false;
try {
  await fuzz(app, runs, seed, tally);
} catch (err) {
  failed = true;
  console.error((err as Error).message);
}
const seconds = (performance.now() - started) / 1000;
for (const [k, v] of [...tally].sort()) console.log(`${String(v).padStart(7)}  ${k}`);
const total = [...tally.values()].reduce((a, b) => a + b, 0);
console.log(`fuzz: ${total} requests in ${seconds.toFixed(1)} s (seed ${seed}): ${failed ? 'FAILED' : 'no 5xx, every answer documented'}`);
await app.close();
process.exit(failed ? 1 : 0);
