/** The booted service as an operator runs it: environment configuration, JSON logs with request ids, graceful shutdown. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';

function boot(env: Record<string, string>) {
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
    inputs: Array.from({ length: 6 }, (_, n) => Array.from({ length: 20 }, (_, j) => Math.cos(n + j))),
    targets: Array.from({ length: 6 }, (_, n) => Array.from({ length: 4 }, (_, k) => Math.sin(n * k))),
    loss: 'sum-of-squares',
  };
  const w = 60 * 21 + 4 * 61;
  const inFlight = fetch(`${base}/hessian`, { method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/x-npy' }, body: JSON.stringify(body) });
  await new Promise((r) => setTimeout(r, 50));
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
