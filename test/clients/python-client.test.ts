/**
 * The Python client's pytest suite (clients/python/tests) against the real service listening on a
 * loopback port. numpy, requests and pytest must be there (CI installs them): their absence fails
 * this test with a message rather than skipping it. PyTorch is optional; pytest skips the torch
 * tests, with the reason, where it is missing.
 *
 * The Python is CURVATURE_PYTHON if set, else the first of Debian's /usr/bin/python3 and the
 * python3 on PATH that has numpy, requests and pytest, preferring one that also has torch.
 *
 * Four services: the default one, one with API keys (the Bearer header), a busy one (one worker, no
 * queue, a 1.5 s REQUEST_TIMEOUT_MS) for the client's retry of 503 OVERLOADED and its refusal to
 * retry 503 TIMEOUT, and a second default one in a process of its own (node src/server.ts), for
 * row slabs assembled from two service processes. The suite also pip-installs the client into fresh
 * virtualenvs (clients/python/tests/test_package.py), offline, and runs the worked examples
 * (clients/python/examples) against the default service.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { buildApp } from '../../src/app.ts';
import { spawnServer } from '../helpers/heavy.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const PROBE = [
  'import importlib.util as u, json',
  "print(json.dumps({m: u.find_spec(m) is not None for m in ['numpy', 'requests', 'pytest', 'torch']}))",
].join('\n');

interface Candidate { python: string; has: Record<string, boolean>; problem?: string }

function probe(python: string): Candidate {
  const r = spawnSync(python, ['-c', PROBE], { encoding: 'utf8', timeout: 60_000 });
  if (r.status !== 0) return { python, has: {}, problem: (r.error?.message ?? r.stderr.trim()) || `exit ${r.status}` };
  return { python, has: JSON.parse(r.stdout) as Record<string, boolean> };
}

function choosePython(): { chosen?: Candidate; tried: Candidate[] } {
  const names = process.env.CURVATURE_PYTHON ? [process.env.CURVATURE_PYTHON] : ['/usr/bin/python3', 'python3'];
  const tried = names.map(probe);
  const usable = tried.filter((c) => c.has.numpy && c.has.requests && c.has.pytest);
  return { chosen: usable.find((c) => c.has.torch) ?? usable[0], tried };
}

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv, timeoutMs: number): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (c: Buffer) => { output += c.toString('utf8'); });
    child.stderr.on('data', (c: Buffer) => { output += c.toString('utf8'); });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('close', (code) => { clearTimeout(timer); resolve({ code, output }); });
  });
}

test('the Python client passes its pytest suite against the live service (numpy, requests, pytest; torch where installed)', { timeout: 600_000 }, async (t) => {
  const { chosen, tried } = choosePython();
  assert.ok(chosen, 'no Python with numpy, requests and pytest: ' +
    tried.map((c) => `${c.python}: ${c.problem ?? `missing ${['numpy', 'requests', 'pytest'].filter((m) => !c.has[m]).join(', ')}`}`).join('; ') +
    ' (CI installs python3-numpy, python3-requests and python3-pytest; set CURVATURE_PYTHON to choose one)');
  console.log(`python client tests with ${chosen.python}${chosen.has.torch ? ' (with torch)' : ' (no torch: the torch tests will be skipped)'}`);

  const app = await buildApp();
  t.after(() => app.close());
  const url = await app.listen({ host: '127.0.0.1', port: 0 });
  // A second service that needs an API key, for the client's Bearer header.
  const apiKey = 'python-client-test-key';
  const keyed = await buildApp({ config: { apiKeys: [apiKey] } });
  t.after(() => keyed.close());
  const keyedUrl = await keyed.listen({ host: '127.0.0.1', port: 0 });
  // A third with one worker, no queue and a short REQUEST_TIMEOUT_MS: a second request while one
  // computes gets 503 OVERLOADED (retried by the client), a long computation 503 TIMEOUT (not retried).
  const busyTimeoutMs = 1500;
  // no cheap lane and nothing computed in the main thread (FAST_WORKERS=0, INLINE_TASK_MS=0): the
  // small second request must find the one worker busy
  const busy = await buildApp({ config: { workers: 1, queueLimit: 0, fastWorkers: 0, inlineTaskMs: 0, requestTimeoutMs: busyTimeoutMs } });
  t.after(() => busy.close());
  const busyUrl = await busy.listen({ host: '127.0.0.1', port: 0 });
  // A fourth, the real server in a child process: slabs of one Hessian computed by two processes.
  const second = await spawnServer(t, {});
  const started = Date.now();
  const { code, output } = await run(chosen.python, ['-m', 'pytest', 'clients/python/tests', '-q', '-rs', '-p', 'no:cacheprovider'], {
    ...process.env,
    CURVATURE_SERVICE_URL: url,
    CURVATURE_KEYED_SERVICE_URL: keyedUrl,
    CURVATURE_API_KEY: apiKey,
    CURVATURE_BUSY_SERVICE_URL: busyUrl,
    CURVATURE_BUSY_TIMEOUT_MS: String(busyTimeoutMs),
    CURVATURE_SECOND_SERVICE_URL: second.base,
    PYTHONDONTWRITEBYTECODE: '1',
  }, 540_000);
  const summary = output.trim().split('\n').pop() ?? '';
  console.log(output.trimEnd().split('\n').map((l) => `pytest: ${l}`).join('\n'));
  console.log(`pytest took ${((Date.now() - started) / 1000).toFixed(1)} s`);
  assert.equal(code, 0, `pytest exited with ${code}:\n${output}`);
  const passed = Number(/(\d+) passed/.exec(summary)?.[1] ?? 0);
  // 171 tests with torch, of which 24 in test_torch.py and the 3 examples' runs with PyTorch (skipped without it)
  const expected = chosen.has.torch ? 164 : 137;
  assert.ok(passed >= expected, `pytest ran ${passed} tests; expected the whole suite (at least ${expected}): ${summary}`);
});
