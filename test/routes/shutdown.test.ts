/** SIGTERM on the real server: the answer in flight completes, new connections are refused, exit 0; keys stay out of the logs. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { poolStats, problem, spawnServer, until } from '../helpers/heavy.ts';

const KEY = 'shutdown-test-key-8f3a9c';

test('SIGTERM during a long computation: that answer completes, new connections are refused, the process exits 0, and the API key never reaches the logs', { timeout: 120_000 }, async (t) => {
  const server = await spawnServer(t, { WORKERS: '1', SHUTDOWN_GRACE_MS: '20000', API_KEYS: KEY, LOG_LEVEL: 'trace' });
  const { base, child } = server;
  const body = { ...problem(5, 100, 5, 2500), method: 'exact' }; // about a second on one worker
  const inFlight = fetch(`${base}/hessian`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/x-npy', authorization: `Bearer ${KEY}` },
    body: JSON.stringify(body),
  });
  assert.ok(await until(async () => (await poolStats(base)).busyWorkers === 1, 10_000), 'the computation started');
  const signalledAt = performance.now();
  child.kill('SIGTERM');
  await new Promise((r) => setTimeout(r, 100));
  await assert.rejects(fetch(`${base}/health`), 'a new connection is refused while the answer finishes');

  const res = await inFlight;
  assert.equal(res.status, 200);
  const bytes = (await res.arrayBuffer()).byteLength;
  assert.equal(bytes, Number(res.headers.get('content-length')));
  assert.ok(bytes > 1105 * 1105 * 8);
  const [code] = await once(child, 'exit');
  const exitMs = performance.now() - signalledAt;
  assert.equal(code, 0, server.log());
  assert.ok(!server.log().includes(KEY), 'the key is not in the logs');
  assert.match(server.log(), /SHUTDOWN_GRACE_MS/);
  t.diagnostic(`exited 0 ${Math.round(exitMs)} ms after SIGTERM, after the answer in flight (${bytes} bytes)`);
});

test('SIGTERM with a computation longer than SHUTDOWN_GRACE_MS: it is stopped before the deadline, its caller gets 503 with Retry-After, and the process exits 0 within the grace period', { timeout: 120_000 }, async (t) => {
  const server = await spawnServer(t, { WORKERS: '1', SHUTDOWN_GRACE_MS: '2000' });
  const { base, child } = server;
  const body = { ...problem(20, 200, 10, 1000), method: 'exact' }; // several seconds
  const inFlight = fetch(`${base}/hessian`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  assert.ok(await until(async () => (await poolStats(base)).busyWorkers === 1, 10_000));
  const signalledAt = performance.now();
  child.kill('SIGTERM');
  const res = await inFlight;
  const answeredMs = performance.now() - signalledAt;
  assert.equal(res.status, 503);
  assert.equal(res.headers.get('retry-after'), '1');
  const p = await res.json() as { code: string; detail: string };
  assert.equal(p.code, 'OVERLOADED');
  assert.match(p.detail, /shutting down.*SHUTDOWN_GRACE_MS.*retry on another instance/);
  const [code] = await once(child, 'exit');
  const ms = performance.now() - signalledAt;
  assert.equal(code, 0, server.log());
  // stopped at 2000 − min(3000, 1000) = 1000 ms, the exit before the 2000 ms deadline
  assert.ok(answeredMs >= 900 && ms < 2100, `answered ${Math.round(answeredMs)} ms and exited ${Math.round(ms)} ms after SIGTERM`);
  assert.match(server.log(), /stopping the computations still queued or running/);
  t.diagnostic(`503 sent ${Math.round(answeredMs)} ms after SIGTERM, exit 0 at ${Math.round(ms)} ms (grace 2000 ms)`);
});
