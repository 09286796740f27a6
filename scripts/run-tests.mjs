#!/usr/bin/env node
// Runs every `*.test.ts` below the given folders (default: test/) with Node's own test runner
// through tsx, so that CI reads node:test's summary. Node 20 has no --test glob of its own.
//
// The core runs on two linear-algebra backends. When the default one is the native OpenBLAS
// backend, the tests under test/core run a second time with CURVATURE_LINALG=typescript, and a
// last line adds both runs up ("total: N passed, N failed, N skipped").
//
// Nothing here may hang CI: every test has a time limit (--test-timeout), and a whole run that
// passes TEST_RUN_LIMIT_MS (15 min) is killed with its process group and reported as a failure,
// naming the last test it had started.
import { readdirSync, statSync } from 'node:fs';
import { join, sep } from 'node:path';
import { spawn, spawnSync } from 'node:child_process';

const roots = process.argv.slice(2).length ? process.argv.slice(2) : ['test'];
const files = [];
const walk = (p) => {
  if (statSync(p).isDirectory()) for (const e of readdirSync(p).sort()) walk(join(p, e));
  else if (p.endsWith('.test.ts')) files.push(p);
};
roots.forEach(walk);

const ansi = new RegExp(`${String.fromCharCode(27)}\\[[0-9;]*m`, 'g');

/** Longest a single test may take (each test may set a shorter one of its own). */
const TEST_LIMIT_MS = 10 * 60_000;
/**
 * Longest one run of node:test may take; the whole suite takes about two minutes here. (Not
 * --test-force-exit against a test file whose process stays alive: on Node 20 it ended
 * test/core/identities.test.ts two tests early, silently.)
 */
const RUN_LIMIT_MS = Number(process.env.TEST_RUN_LIMIT_MS) || 15 * 60_000;

/** Runs node:test on `list`, echoing its output, and returns its exit code and summary counts. */
function runTests(list, env) {
  // The readable reporter for a person at a terminal, TAP when piped (CI, a log file), by name:
  // Node 20 chose TAP for a pipe by itself, Node 24 chooses spec everywhere, and the
  // watchdog below names the last test started from TAP's "# Subtest:" lines.
  const reporter = ['--test-reporter=' + (process.stdout.isTTY ? 'spec' : 'tap')];
  const args = ['--import', 'tsx', '--test', '--test-concurrency=1', `--test-timeout=${TEST_LIMIT_MS}`,
    ...reporter, ...list];
  // its own process group, so that the watchdog below can end the test files' processes too
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'], env, detached: true });
  const started = Date.now();
  let killed = false;
  let lastStarted = '(none yet)';
  const watchdog = setTimeout(() => {
    killed = true;
    console.log(`\n# run-tests: this run passed its limit of ${RUN_LIMIT_MS / 1000} s (TEST_RUN_LIMIT_MS) at ${Math.round((Date.now() - started) / 1000)} s; killing it. The last test started: ${lastStarted}`);
    try { process.kill(-child.pid, 'SIGKILL'); } catch { child.kill('SIGKILL'); }
  }, RUN_LIMIT_MS);
  const counts = { pass: 0, fail: 0, skipped: 0 };
  let tail = '';
  child.stdout.on('data', (chunk) => {
    process.stdout.write(chunk);
    const lines = (tail + chunk.toString('utf8')).split('\n');
    tail = lines.pop();
    for (const line of lines) {
      const plain = line.replace(ansi, '');
      const sub = /^\s*# Subtest: (.*)$/.exec(plain);
      if (sub) lastStarted = sub[1];
      const m = /^(?:# |\u2139 )(pass|fail|skipped) (\d+)$/.exec(plain);
      if (m) counts[m[1]] = Number(m[2]);
    }
  });
  return new Promise((resolve) => child.on('close', (code) => {
    clearTimeout(watchdog);
    if (killed) counts.fail += 1;
    resolve({ code: killed ? 1 : code ?? 1, counts });
  }));
}

/** The backend the core picks by default in this environment. */
function defaultBackend(env) {
  const r = spawnSync(process.execPath, ['--import', 'tsx', '-e',
    "import('./src/core/linalg/index.ts').then((m) => process.stdout.write(JSON.stringify(m.linalgInfo())))"],
  { env, encoding: 'utf8', timeout: 120_000 });
  try {
    return JSON.parse(r.stdout);
  } catch {
    return { backend: 'unknown', reason: r.stderr.trim().split('\n').slice(-3).join(' ') };
  }
}

const first = await runTests(files, process.env);
const runs = [first];
const core = files.filter((f) => f.startsWith(`test${sep}core${sep}`) || f.startsWith('test/core/'));
if (core.length) {
  const info = defaultBackend(process.env);
  if (info.backend === 'openblas') {
    console.log(`\n# core tests again on the TypeScript backend (CURVATURE_LINALG=typescript); first run: openblas, ${info.reason}`);
    runs.push(await runTests(core, { ...process.env, CURVATURE_LINALG: 'typescript' }));
  } else {
    console.log(`\n# the core tests ran on the ${info.backend} backend only: ${info.reason}`);
  }
}
if (runs.length > 1) {
  const sum = (k) => runs.reduce((s, r) => s + r.counts[k], 0);
  console.log(`total: ${sum('pass')} passed, ${sum('fail')} failed, ${sum('skipped')} skipped`);
}
process.exit(runs.every((r) => r.code === 0) ? 0 : 1);
