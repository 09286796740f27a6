/** The booted service as an operator runs it: environment configuration, JSON logs with request ids, graceful shutdown. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { SERVICE_MALLOC_MMAP_THRESHOLD } from '../../src/config.ts';

function boot(env: Record<string, string | undefined>) {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/server.ts'], {
    cwd: new URL('../../', import.meta.url),
    env: { ...process.env, HOST: '127.0.0.1', PORT: '0', LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => { out += d; });
  child.stderr.setEncoding('utf8').on('data', (d: string) => { out += d; });
  const address = new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no listening line in 60 s:\n${out}`)), 60_000);
    child.stdout.on('data', () => {
      const m = /listening at (http:\/\/127\.0\.0\.1:\d+)/.exec(out);
      if (m) { clearTimeout(timer); resolve(m[1]); }
    });
    child.on('exit', () => { clearTimeout(timer); reject(new Error(`exited before listening:\n${out}`)); });
  });
  return { child, address, log: () => out };
}

test('the server boots from the environment, logs JSON lines with the request id, and exits cleanly on SIGTERM after finishing the answer in flight', async (t) => {
  const s = boot({});
  t.after(() => { if (s.child.exitCode === null) s.child.kill('SIGKILL'); });
  const base = await s.address;
  const health = await fetch(`${base}/health`, { headers: { 'x-request-id': 'boot-test-1' } });
  assert.equal(health.status, 200);
  assert.equal(health.headers.get('x-request-id'), 'boot-test-1');

  const layer = (out: number, inp: number, activation: string) => ({
    weights: Array.from({ length: out }, (_, i) => Array.from({ length: inp }, (_, j) => Math.sin(i * inp + j) / Math.sqrt(inp))),
    bias: Array.from({ length: out }, (_, i) => 0.1 * Math.cos(i)),
    activation,
  });
  const body = {
    network: { layers: [layer(60, 20, 'tanh'), layer(4, 60, 'identity')] },
    inputs: Array.from({ length: 400 }, (_, n) => Array.from({ length: 20 }, (_, j) => Math.cos(n + j))),
    targets: Array.from({ length: 400 }, (_, n) => Array.from({ length: 4 }, (_, k) => Math.sin(n * k))),
    loss: 'sum-of-squares',
  };
  const w = 60 * 21 + 4 * 61;
  const inFlight = fetch(`${base}/hessian`, { method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/x-npy' }, body: JSON.stringify(body) });
  // SIGTERM once the computation runs (a fixed 50 ms could come before the request arrived on a
  // loaded machine: a connection without a request is closed at shutdown, and one still being read
  // is refused 503 shutting down); the computation takes long enough to be seen (N = 400)
  let busy = false;
  for (const until = Date.now() + 10_000; !busy && Date.now() < until;) {
    const h = await (await fetch(`${base}/health`)).json() as { pool: { busyWorkers: number } };
    busy = h.pool.busyWorkers > 0;
    if (!busy) await new Promise((r) => setTimeout(r, 5));
  }
  assert.ok(busy, 'the computation was seen running');
  s.child.kill('SIGTERM');
  const res = await inFlight;
  assert.equal(res.status, 200);
  assert.equal((await res.arrayBuffer()).byteLength, Number(res.headers.get('content-length')));
  assert.ok(Number(res.headers.get('content-length')) > w * w * 8);

  const [code] = await once(s.child, 'exit');
  assert.equal(code, 0, s.log());
  const lines = s.log().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.ok(lines.some((l) => l.reqId === 'boot-test-1'), 'the request id is in the logs');
  assert.ok(lines.some((l) => l.signal === 'SIGTERM'), 'the shutdown is logged');
});

test('the server refuses to start on a nonsensical setting, naming it', async () => {
  const s = boot({ PORT: 'eighty' });
  const [code] = await once(s.child, 'exit');
  assert.notEqual(code, 0);
  assert.match(s.log(), /PORT=eighty/);
  await s.address.catch(() => undefined);
});

/** The environment the kernel gave the process's current program (after any execve). */
function environOf(pid: number): Record<string, string> {
  const out: Record<string, string> = {};
  for (const kv of readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0')) {
    const i = kv.indexOf('=');
    if (i > 0) out[kv.slice(0, i)] = kv.slice(i + 1);
  }
  return out;
}

test('started without MALLOC_MMAP_THRESHOLD_, the server re-executes itself once with it (same PID), so glibc applies it; an operator\'s own value is kept', { skip: process.platform !== 'linux' && 'needs /proc and glibc' }, async (t) => {
  const plain = boot({ MALLOC_MMAP_THRESHOLD_: undefined });
  t.after(() => { if (plain.child.exitCode === null) plain.child.kill('SIGKILL'); });
  const base = await plain.address;
  assert.equal((await fetch(`${base}/health`)).status, 200);
  // the process the test started is the one serving, its program image started with the variable
  assert.equal(environOf(plain.child.pid!).MALLOC_MMAP_THRESHOLD_, SERVICE_MALLOC_MMAP_THRESHOLD);
  assert.match(plain.log(), new RegExp(`glibc's MALLOC_MMAP_THRESHOLD_ is ${SERVICE_MALLOC_MMAP_THRESHOLD}`));
  plain.child.kill('SIGTERM');
  assert.equal((await once(plain.child, 'exit'))[0], 0, plain.log());

  const own = boot({ MALLOC_MMAP_THRESHOLD_: '8388608' });
  t.after(() => { if (own.child.exitCode === null) own.child.kill('SIGKILL'); });
  await own.address;
  assert.equal(environOf(own.child.pid!).MALLOC_MMAP_THRESHOLD_, '8388608');
  own.child.kill('SIGTERM');
  assert.equal((await once(own.child, 'exit'))[0], 0);
});
