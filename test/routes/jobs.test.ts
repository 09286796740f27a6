/**
 * Jobs over real sockets (a listening server, fetch): a request sent with Prefer: respond-async is
 * refused as its synchronous twin would be or answered 202; its progress, polled while it runs,
 * only grows and ends at 1; its result is the synchronous answer byte for byte in every form; a
 * cancelled running job frees its worker within the bound of a client that disconnects (the pool's
 * counters); results expire, are evicted oldest first and are refused when too large; with API
 * keys a job is its key's alone.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { buildApp, type AppOptions } from '../../src/app.ts';
import { MAX_FINISHED_JOBS, newJobId } from '../../src/jobs.ts';
import { prefersAsync } from '../../src/http/jobs.ts';
import { problem, until } from '../helpers/heavy.ts';
import { multipart } from '../helpers/http.ts';
import { npyOf } from '../helpers/npy.ts';

interface Status {
  id: string; state: string; endpoint: string; progress: number; estimatedFlops: number; flopsBound: boolean;
  createdAt: string; startedAt?: string; finishedAt?: string; expiresAt?: string;
  result?: { href: string; bytes: number; mediaTypes: string[] };
  problem?: { status: number; code: string; detail: string };
}

async function listen(t: TestContext, options: AppOptions = {}) {
  const app = await buildApp(options);
  t.after(() => app.close());
  const base = await app.listen({ host: '127.0.0.1', port: 0 });
  return { app, base };
}

type Headers = Record<string, string>;

function post(base: string, path: string, body: unknown, headers: Headers = {}): Promise<Response> {
  return fetch(`${base}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body), signal: AbortSignal.timeout(60_000) });
}

/** Sends the request as a job; asserts the 202 and returns its location and first status. */
async function submit(base: string, path: string, body: unknown, headers: Headers = {}): Promise<{ location: string; status: Status }> {
  const r = await post(base, path, body, { prefer: 'respond-async', ...headers });
  const text = await r.text();
  assert.equal(r.status, 202, text);
  assert.equal(r.headers.get('preference-applied'), 'respond-async');
  const location = r.headers.get('location')!;
  const status = JSON.parse(text) as Status;
  assert.equal(location, `/jobs/${status.id}`);
  return { location, status };
}

async function getStatus(base: string, location: string, headers: Headers = {}): Promise<Status> {
  const r = await fetch(`${base}${location}`, { headers, signal: AbortSignal.timeout(10_000) });
  assert.equal(r.status, 200, await r.clone().text());
  return await r.json() as Status;
}

/** Polls until the job has finished; returns every status seen, in order. */
async function follow(base: string, location: string, everyMs = 15, headers: Headers = {}): Promise<Status[]> {
  const seen: Status[] = [];
  const end = Date.now() + 120_000;
  for (;;) {
    const s = await getStatus(base, location, headers);
    seen.push(s);
    if (s.state !== 'queued' && s.state !== 'running') return seen;
    assert.ok(Date.now() < end, `job still ${s.state} after 120 s`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

function assertProgress(seen: Status[]): void {
  let last = 0;
  for (const s of seen) {
    assert.ok(s.progress >= 0 && s.progress <= 1, `progress ${s.progress} in [0, 1]`);
    assert.ok(s.progress >= last, `progress went back from ${last} to ${s.progress}`);
    if (s.state !== 'done') assert.ok(s.progress < 1, `progress 1 only when done (${s.state} at ${s.progress})`);
    last = s.progress;
  }
  const final = seen.at(-1)!;
  assert.equal(final.state, 'done', JSON.stringify(final));
  assert.equal(final.progress, 1);
}

const ANSWER_HEADERS = ['content-type', 'content-length', 'x-array-shape', 'x-array-name', 'x-parameter-count', 'x-log-determinant', 'x-trace', 'x-method', 'x-iterations', 'x-residuals', 'x-row-start', 'x-row-end'];

/** The job's result in `accept` equals the synchronous answer: status, the answer's headers and every byte. */
async function assertSameAnswer(base: string, location: string, path: string, body: unknown, accept: string): Promise<Buffer> {
  const job = await fetch(`${base}${location}/result`, { headers: { accept }, signal: AbortSignal.timeout(60_000) });
  const sync = await post(base, path, body, { accept });
  assert.equal(job.status, 200, await job.clone().text());
  assert.equal(sync.status, 200);
  for (const h of ANSWER_HEADERS) assert.equal(job.headers.get(h), sync.headers.get(h), `${path} ${accept}: header ${h}`);
  const a = Buffer.from(await job.arrayBuffer()), b = Buffer.from(await sync.arrayBuffer());
  assert.equal(a.length, b.length, `${path} ${accept}: length`);
  assert.ok(a.equals(b), `${path} ${accept}: the bytes differ`);
  return a;
}

test('a long exact Hessian as a job: queued, then running with progress that only grows, then done at 1, its result the synchronous answer byte for byte in every form', { timeout: 300_000 }, async (t) => {
  const { base } = await listen(t, { config: { workers: 1 } });
  await post(base, '/hessian', problem(2, 3, 1, 1)); // the worker warm
  const body = { ...problem(20, 60, 4, 3000), method: 'exact' }; // W = 1504, about a second on one worker here
  const { location, status } = await submit(base, '/hessian', body);
  assert.equal(status.endpoint, 'POST /hessian');
  assert.ok(status.state === 'queued' || status.state === 'running');
  assert.equal(status.flopsBound, false);
  assert.ok(status.estimatedFlops > 1e9, `estimated ${status.estimatedFlops} flops`);
  assert.match(status.id, /^[A-Za-z0-9_-]{22}$/);
  const seen = await follow(base, location, 10);
  assertProgress(seen);
  const between = seen.filter((s) => s.state === 'running' && s.progress > 0 && s.progress < 1);
  assert.ok(between.length >= 2, `progress seen between 0 and 1 while running: ${between.map((s) => s.progress.toFixed(3)).join(', ')}`);
  t.diagnostic(`${seen.length} polls; progress ${seen.map((s) => s.progress.toFixed(2)).join(' ')}`);
  const done = seen.at(-1)!;
  for (const k of ['createdAt', 'startedAt', 'finishedAt', 'expiresAt'] as const) assert.ok(!Number.isNaN(Date.parse(done[k]!)), `${k} ${done[k]}`);
  assert.ok(Date.parse(done.createdAt) <= Date.parse(done.startedAt!) && Date.parse(done.startedAt!) <= Date.parse(done.finishedAt!));
  assert.equal(Date.parse(done.expiresAt!) - Date.parse(done.finishedAt!), 600_000, 'JOB_RESULT_TTL_MS by default');
  assert.equal(done.result?.href, `${location}/result`);
  assert.equal(done.result?.bytes, 1504 * 1504 * 8);
  assert.deepEqual(done.result?.mediaTypes, ['application/json', 'application/x-npy', 'application/octet-stream', 'application/x-npz']);
  const npy = await assertSameAnswer(base, location, '/hessian', body, 'application/x-npy');
  assert.equal(npy.length, 128 + 1504 * 1504 * 8);
  await assertSameAnswer(base, location, '/hessian', body, 'application/octet-stream');
  await assertSameAnswer(base, location, '/hessian', body, 'application/json');
  const refused = await fetch(`${base}${location}/result`, { headers: { accept: 'text/csv' } });
  assert.equal(refused.status, 406);
  assert.equal(((await refused.json()) as { code: string }).code, 'NOT_ACCEPTABLE');
});

test('jobs of the other endpoints (and a multipart body) end at progress 1 with the synchronous answer, byte for byte', { timeout: 300_000 }, async (t) => {
  const { base } = await listen(t, { config: { workers: 2 } });
  const p = problem(10, 30, 3, 400); // W = 423
  const w = 423;
  const cases: [string, object, string[], boolean][] = [
    ['/jacobian', { network: p.network, inputs: p.inputs, wrt: 'parameters' }, ['application/x-npy', 'application/json'], false],
    ['/hessian', { ...p, method: 'diagonal' }, ['application/x-npy', 'application/json'], false],
    ['/hessian', { ...p, method: 'outer-product', structure: 'block-diagonal' }, ['application/x-npz', 'application/json'], false],
    ['/hessian/vector-product', { ...p, vector: Array.from({ length: w }, (_, i) => Math.sin(i)) }, ['application/x-npy'], false],
    ['/hessian/inverse', { ...p, damping: 0.1, method: 'woodbury' }, ['application/x-npy', 'application/json'], false],
    ['/hessian/inverse', { ...p, damping: 0.1, method: 'cholesky', hessian: 'outer-product' }, ['application/octet-stream'], false],
    ['/hessian/kfac', { ...p, damping: 0.1 }, ['application/x-npz', 'application/json'], false],
    ['/hessian/eigen', { ...p, count: 3, method: 'lanczos', hessian: 'outer-product' }, ['application/x-npz', 'application/json'], true],
    ['/hessian/inverse-vector-product', { ...p, damping: 1, method: 'cg', vectors: [Array.from({ length: w }, (_, i) => Math.cos(i))] }, ['application/x-npy', 'application/json'], true],
  ];
  for (const [path, body, forms, bound] of cases) {
    const { location, status } = await submit(base, path, body, { accept: forms[0] });
    assert.equal(status.flopsBound, bound, `${path}: flopsBound`);
    const seen = await follow(base, location);
    assertProgress(seen);
    for (const accept of forms) await assertSameAnswer(base, location, path, body, accept);
    t.diagnostic(`${path} ${JSON.stringify(body).slice(-40)}: ${seen.length} polls, estimated ${status.estimatedFlops.toExponential(2)} flops`);
  }
  // a multipart body, its arrays as .npy parts
  const parts = await multipart({ request: { network: p.network, loss: p.loss, method: 'exact' }, inputs: npyOf(p.inputs), targets: npyOf(p.targets) });
  const sent = await fetch(`${base}/hessian`, { method: 'POST', headers: { 'content-type': parts.contentType, prefer: 'respond-async' }, body: new Uint8Array(parts.payload) });
  assert.equal(sent.status, 202, await sent.clone().text());
  const location = sent.headers.get('location')!;
  assertProgress(await follow(base, location));
  await assertSameAnswer(base, location, '/hessian', { ...p, method: 'exact' }, 'application/x-npy');
});

test('a request that would be refused synchronously is refused the same way with Prefer: respond-async, and no job is made', async (t) => {
  const { app, base } = await listen(t, { config: { workers: 1, maxResultBytes: 1 << 20, jobResultBytes: 1 << 20 } });
  const p = problem(3, 4, 2, 5); // W = 26
  const bad: [string, unknown, Headers][] = [
    ['/hessian', { ...p, method: 'nope' }, {}], // 400
    ['/hessian', { ...p, inputs: [[1, 2]] }, {}], // 422 shape mismatch, found by the core
    ['/hessian', { ...p, loss: 'cross-entropy' }, {}], // 422 pairing
    ['/hessian/inverse', { ...p, damping: 0.1, method: 'woodbury', hessian: 'exact' }, {}], // 422 unsupported
    ['/hessian/vector-product', { ...p, vector: [1, 2, 3] }, {}], // 422 vector length
    ['/hessian/eigen', { ...p, count: 27 }, {}], // 422 count
    ['/hessian', { ...p, method: 'exact', rows: [5, 3] }, {}], // 422 rows
    ['/hessian', { ...p, method: 'exact' }, { accept: 'text/csv' }], // 406
    ['/hessian', { ...problem(3, 400, 2, 5), method: 'exact' }, {}], // 413 over MAX_RESULT_BYTES
    ['/jacobian', { network: p.network, inputs: [[1, 2, 3]], parameters: { layers: [5] } }, {}], // 422 selection
  ];
  for (const [path, body, headers] of bad) {
    const sync = await post(base, path, body, headers);
    const job = await post(base, path, body, { ...headers, prefer: 'respond-async' });
    assert.ok(sync.status >= 400, `${path} ${JSON.stringify(body).slice(0, 60)}: refused synchronously (${sync.status})`);
    assert.equal(job.status, sync.status, `${path}: ${await job.clone().text()}`);
    assert.equal(job.headers.get('location'), null);
    assert.deepEqual(await job.json(), await sync.json(), `${path}: the same problem`);
  }
  assert.equal(app.jobs.stats().active + app.jobs.stats().finished, 0, 'no job was made');
  // content types: an unknown one is 415 both ways
  const sync415 = await fetch(`${base}/hessian`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'x' });
  const job415 = await fetch(`${base}/hessian`, { method: 'POST', headers: { 'content-type': 'text/plain', prefer: 'respond-async' }, body: 'x' });
  assert.equal(job415.status, sync415.status);
  assert.equal(sync415.status, 415);
});

test('a job whose answer alone is over JOB_RESULT_BYTES is refused with 413 naming it; the same request synchronously is answered', async (t) => {
  const { base } = await listen(t, { config: { workers: 1, jobResultBytes: 1 << 20 } });
  const body = { ...problem(3, 100, 2, 5), method: 'exact' }; // W = 602: 2.9 MB
  const r = await post(base, '/hessian', body, { prefer: 'respond-async' });
  assert.equal(r.status, 413);
  const p = await r.json() as { code: string; detail: string };
  assert.equal(p.code, 'LIMIT_EXCEEDED');
  assert.match(p.detail, /JOB_RESULT_BYTES/);
  assert.match(p.detail, /without Prefer: respond-async/);
  assert.equal((await post(base, '/hessian', body, { accept: 'application/x-npy' })).status, 200);
});

test('a failed job reports the refusal the synchronous request gets, and its result answers it', { timeout: 120_000 }, async (t) => {
  const { base } = await listen(t, { config: { workers: 1 } });
  // the exact Hessian of this network is indefinite: Cholesky with a tiny damping refuses it (422 NOT_POSITIVE_DEFINITE)
  const body = { ...problem(3, 6, 2, 10), damping: 1e-9, method: 'cholesky', hessian: 'exact' };
  const sync = await post(base, '/hessian/inverse', body);
  assert.equal(sync.status, 422);
  const expected = await sync.json() as { code: string };
  assert.equal(expected.code, 'NOT_POSITIVE_DEFINITE');
  const { location } = await submit(base, '/hessian/inverse', body);
  const final = (await follow(base, location)).at(-1)!;
  assert.equal(final.state, 'failed');
  assert.deepEqual(final.problem, expected);
  assert.equal(final.result, undefined);
  const result = await fetch(`${base}${location}/result`);
  assert.equal(result.status, 422);
  assert.deepEqual(await result.json(), expected);
});

test('a job past REQUEST_TIMEOUT_MS fails with the synchronous 503 TIMEOUT', { timeout: 120_000 }, async (t) => {
  const { base } = await listen(t, { config: { workers: 1, requestTimeoutMs: 300 } });
  await post(base, '/hessian', problem(2, 3, 1, 1));
  const { location } = await submit(base, '/hessian', { ...problem(20, 200, 10, 1000), method: 'exact' });
  const final = (await follow(base, location, 50)).at(-1)!;
  assert.equal(final.state, 'failed');
  assert.equal(final.problem?.status, 503);
  assert.equal(final.problem?.code, 'TIMEOUT');
});

test('DELETE of a running job frees its worker within a second, as a disconnect does; a queued one leaves the queue; the next job runs at once', { timeout: 120_000 }, async (t) => {
  const { base } = await listen(t, { config: { workers: 1 } });
  const stats = async () => ((await (await fetch(`${base}/health`)).json()) as { pool: Record<string, number> }).pool;
  await post(base, '/hessian', problem(2, 3, 1, 1));
  const long = { ...problem(20, 200, 10, 1000), method: 'exact' }; // W = 6210: tens of seconds on one worker
  const running = await submit(base, '/hessian', long);
  const queued = await submit(base, '/hessian', long);
  assert.ok(await until(async () => (await getStatus(base, running.location)).state === 'running', 10_000), 'the first job started');
  const second = await getStatus(base, queued.location);
  assert.equal(second.state, 'queued');
  assert.equal(second.startedAt, undefined);
  assert.equal(second.progress, 0);
  assert.ok(await until(async () => (await getStatus(base, running.location)).progress > 0, 10_000), 'the running job reports progress');
  // the queued one first: it leaves the queue at once
  const dq = await fetch(`${base}${queued.location}`, { method: 'DELETE' });
  assert.equal(dq.status, 200);
  assert.equal(((await dq.json()) as Status).state, 'cancelled');
  assert.ok(await until(async () => (await stats()).queued === 0, 1000), 'the queue is empty');
  const before = await stats();
  assert.equal(before.busyWorkers, 1);
  const cancelledAt = performance.now();
  const d = await fetch(`${base}${running.location}`, { method: 'DELETE' });
  assert.equal(d.status, 200);
  const cancelled = await d.json() as Status;
  assert.equal(cancelled.state, 'cancelled');
  assert.ok(cancelled.progress > 0 && cancelled.progress < 1);
  assert.ok(await until(async () => { const s = await stats(); return s.busyWorkers === 0 && s.abortedTasks === before.abortedTasks + 1; }, 1000), 'the worker is free within a second');
  const freedMs = performance.now() - cancelledAt;
  assert.equal((await stats()).terminatedWorkers, 0, 'it stopped at its next kernel call; the worker was not terminated');
  const after = await getStatus(base, running.location);
  assert.equal(after.state, 'cancelled');
  assert.equal(after.progress, cancelled.progress, 'its progress stays where it stopped');
  const noResult = await fetch(`${base}${running.location}/result`);
  assert.equal(noResult.status, 409);
  assert.equal(((await noResult.json()) as { code: string }).code, 'JOB_NOT_DONE');
  const next = await submit(base, '/hessian', { ...problem(3, 4, 2, 5), method: 'exact' });
  const nextAt = performance.now();
  assertProgress(await follow(base, next.location));
  t.diagnostic(`worker free ${Math.round(freedMs)} ms after DELETE; the next job done in ${Math.round(performance.now() - nextAt)} ms`);
});

test('the result of a job still running is 409 with its progress; DELETE of a finished job drops it (204), then 410', { timeout: 120_000 }, async (t) => {
  const { app, base } = await listen(t, { config: { workers: 1 } });
  await post(base, '/hessian', problem(2, 3, 1, 1));
  const long = await submit(base, '/hessian', { ...problem(20, 200, 10, 1000), method: 'exact' });
  const early = await fetch(`${base}${long.location}/result`);
  assert.equal(early.status, 409);
  assert.match(((await early.json()) as { detail: string }).detail, /is (queued|running) \(progress/);
  await fetch(`${base}${long.location}`, { method: 'DELETE' });
  const small = await submit(base, '/hessian', { ...problem(3, 4, 2, 5), method: 'exact' });
  await follow(base, small.location);
  assert.ok(app.jobs.stats().keptBytes > 0);
  const del = await fetch(`${base}${small.location}`, { method: 'DELETE' });
  assert.equal(del.status, 204);
  assert.equal(app.jobs.stats().keptBytes, 0, 'its bytes are given back');
  for (const path of [small.location, `${small.location}/result`]) {
    const gone = await fetch(`${base}${path}`);
    assert.equal(gone.status, 410);
    const p = await gone.json() as { code: string; detail: string };
    assert.equal(p.code, 'JOB_GONE');
    assert.match(p.detail, /was deleted/);
  }
  assert.equal((await fetch(`${base}${small.location}`, { method: 'DELETE' })).status, 410);
});

test('results expire JOB_RESULT_TTL_MS after the job finished (410 Gone), and an id never given is 404', { timeout: 60_000 }, async (t) => {
  const ttl = 400;
  const { app, base } = await listen(t, { config: { workers: 1, jobResultTtlMs: ttl } });
  const { location } = await submit(base, '/hessian', { ...problem(3, 4, 2, 5), method: 'exact' });
  const done = (await follow(base, location, 5)).at(-1)!;
  assert.equal(Date.parse(done.expiresAt!) - Date.parse(done.finishedAt!), ttl);
  assert.equal((await fetch(`${base}${location}/result`)).status, 200, 'fetched before it expires');
  await new Promise((r) => setTimeout(r, Math.max(0, Date.parse(done.expiresAt!) - Date.now()) + 100));
  for (const path of [location, `${location}/result`]) {
    const r = await fetch(`${base}${path}`);
    assert.equal(r.status, 410, path);
    const p = await r.json() as { code: string; detail: string };
    assert.equal(p.code, 'JOB_GONE');
    assert.match(p.detail, /JOB_RESULT_TTL_MS/);
  }
  assert.equal(app.jobs.stats().keptBytes, 0);
  assert.equal(app.jobs.stats().finished, 0);
  const unknown = await fetch(`${base}/jobs/${newJobId()}`);
  assert.equal(unknown.status, 404);
  assert.equal(((await unknown.json()) as { code: string }).code, 'JOB_NOT_FOUND');
  // ids the router refuses before any route (longer than a parameter may be, a malformed escape): problem+json 404 as well
  for (const id of ['x'.repeat(300), '%zz']) {
    for (const suffix of ['', '/result']) {
      const r = await fetch(`${base}/jobs/${id}${suffix}`);
      assert.equal(r.status, 404, `/jobs/${id.slice(0, 10)}${suffix}`);
      assert.match(String(r.headers.get('content-type')), /^application\/problem\+json/);
      assert.equal(((await r.json()) as { code: string }).code, 'JOB_NOT_FOUND');
      assert.ok(r.headers.get('x-request-id'));
    }
  }
  const put = await fetch(`${base}${location}`, { method: 'PUT' });
  assert.equal(put.status, 405);
  assert.equal(put.headers.get('allow'), 'GET, DELETE');
});

test('past JOB_RESULT_BYTES the oldest results are dropped first (410), and the account never holds more than the bound', { timeout: 120_000 }, async (t) => {
  const one = 602 * 602 * 8; // the exact Hessian of W = 602: 2.9 MB
  const { app, base } = await listen(t, { config: { workers: 1, jobResultBytes: 2 * one + 1000 } });
  const body = { ...problem(3, 100, 2, 5), method: 'exact' };
  const jobs: string[] = [];
  for (let i = 0; i < 4; i++) {
    const { location } = await submit(base, '/hessian', body);
    assertProgress(await follow(base, location, 5));
    jobs.push(location);
    assert.ok(app.jobs.stats().keptBytes <= 2 * one, `kept ${app.jobs.stats().keptBytes} bytes`);
  }
  for (const [i, location] of jobs.entries()) {
    const r = await fetch(`${base}${location}/result`, { headers: { accept: 'application/x-npy' } });
    if (i < 2) {
      assert.equal(r.status, 410, `job ${i} dropped`);
      const p = await r.json() as { code: string; detail: string };
      assert.equal(p.code, 'JOB_GONE');
      assert.match(p.detail, /JOB_RESULT_BYTES/);
    } else {
      assert.equal(r.status, 200, `job ${i} kept`);
      assert.equal((await r.arrayBuffer()).byteLength, 128 + one);
    }
  }
  assert.equal(app.jobs.stats().keptBytes, 2 * one);
});

test('a result streaming while it is dropped stays counted until its last byte has left', { timeout: 120_000 }, async (t) => {
  const one = 1504 * 1504 * 8; // 18 MB
  const { app, base } = await listen(t, { config: { workers: 1, jobResultBytes: one + 1000 } });
  const body = { ...problem(20, 60, 4, 50), method: 'outer-product' };
  const first = await submit(base, '/hessian', body);
  await follow(base, first.location, 5);
  const reader = await fetch(`${base}${first.location}/result`, { headers: { accept: 'application/octet-stream' } });
  assert.equal(reader.status, 200);
  const stream = reader.body!.getReader();
  let got = (await stream.read()).value?.byteLength ?? 0;
  // a second result needs the room: the first is dropped, but its stream still holds its bytes
  const second = await submit(base, '/hessian', body);
  await follow(base, second.location, 5);
  assert.equal((await fetch(`${base}${first.location}`)).status, 410);
  assert.equal(app.jobs.stats().keptBytes, 2 * one, 'both counted while the first still streams');
  for (;;) {
    const { value, done } = await stream.read();
    if (done) break;
    got += value.byteLength;
  }
  assert.equal(got, one, 'the dropped result streamed whole');
  assert.ok(await until(() => app.jobs.stats().keptBytes === one, 2000), `its bytes given back after the last one (${app.jobs.stats().keptBytes})`);
});

test('with API keys a job is visible only to the key that made it: 404 to another key, 401 without one', { timeout: 60_000 }, async (t) => {
  const { base } = await listen(t, { config: { workers: 1, apiKeys: ['key-a', 'key-b'] } });
  const a = { authorization: 'Bearer key-a' }, b = { authorization: 'Bearer key-b' };
  const { location } = await submit(base, '/hessian', { ...problem(3, 4, 2, 5), method: 'exact' }, a);
  await follow(base, location, 10, a);
  for (const [method, path] of [['GET', location], ['GET', `${location}/result`], ['DELETE', location]]) {
    const other = await fetch(`${base}${path}`, { method, headers: b });
    assert.equal(other.status, 404, `${method} ${path} with another key`);
    const p = await other.json() as { code: string };
    assert.equal(p.code, 'JOB_NOT_FOUND');
    const none = await fetch(`${base}${path}`, { method });
    assert.equal(none.status, 401, `${method} ${path} without a key`);
    assert.match(String(none.headers.get('www-authenticate')), /^Bearer/);
  }
  // another key's 404 is the same answer as for an id that does not exist
  const missing = await fetch(`${base}/jobs/${newJobId()}`, { headers: b });
  assert.equal(missing.status, 404);
  assert.equal((await fetch(`${base}${location}/result`, { headers: a })).status, 200);
  assert.equal((await fetch(`${base}${location}`, { method: 'DELETE', headers: a })).status, 204);
  const gone = await fetch(`${base}${location}`, { headers: b });
  assert.equal(gone.status, 404, 'a dropped job of another key is 404, not 410');
});

test('job ids are 128 random bits, base64url, never repeated', () => {
  const ids = new Set<string>();
  for (let i = 0; i < 10_000; i++) {
    const id = newJobId();
    assert.match(id, /^[A-Za-z0-9_-]{22}$/);
    assert.equal(Buffer.from(id, 'base64url').length, 16);
    ids.add(id);
  }
  assert.equal(ids.size, 10_000);
  assert.ok(MAX_FINISHED_JOBS >= 1000);
});

test('Prefer is read as RFC 7240 has it: respond-async among other preferences, with parameters, in any case', () => {
  assert.equal(prefersAsync('respond-async'), true);
  assert.equal(prefersAsync('Respond-Async'), true);
  assert.equal(prefersAsync('return=minimal, respond-async; foo=bar, wait=10'), true);
  assert.equal(prefersAsync(['wait=5', 'respond-async']), true);
  assert.equal(prefersAsync('wait=10'), false);
  assert.equal(prefersAsync('respond-asynchronously'), false);
  assert.equal(prefersAsync(undefined), false);
});

test('closing the app stops the jobs still running, without waiting for them', { timeout: 60_000 }, async () => {
  const app = await buildApp({ config: { workers: 1 } });
  const base = await app.listen({ host: '127.0.0.1', port: 0 });
  await post(base, '/hessian', problem(2, 3, 1, 1));
  const { location } = await submit(base, '/hessian', { ...problem(20, 200, 10, 1000), method: 'exact' });
  await until(async () => (await getStatus(base, location)).state === 'running', 10_000);
  const started = performance.now();
  await app.close();
  const ms = performance.now() - started;
  assert.ok(ms < 3000, `closed in ${Math.round(ms)} ms`);
  assert.equal(app.jobs.stats().active, 0);
});

test('the OpenAPI document lists the job operations and the 202 of every compute endpoint', async (t) => {
  const { base } = await listen(t);
  const doc = await (await fetch(`${base}/openapi.json`)).json() as { paths: Record<string, Record<string, { operationId: string; responses: Record<string, { headers?: Record<string, unknown> }>; parameters?: { name: string; in: string }[] }>> };
  assert.equal(doc.paths['/jobs/{id}'].get.operationId, 'getJob');
  assert.equal(doc.paths['/jobs/{id}'].delete.operationId, 'cancelJob');
  assert.equal(doc.paths['/jobs/{id}/result'].get.operationId, 'getJobResult');
  for (const path of ['/jacobian', '/hessian', '/hessian/vector-product', '/hessian/inverse', '/hessian/kfac', '/hessian/eigen', '/hessian/inverse-vector-product']) {
    const op = doc.paths[path].post;
    assert.ok(op.responses['202']?.headers?.Location, `${path}: 202 with Location`);
    assert.ok(op.parameters?.some((p) => p.in === 'header' && p.name === 'prefer'), `${path}: the Prefer header`);
  }
  assert.ok(doc.paths['/jobs/{id}/result'].get.responses['410'], '410 Gone documented');
});
