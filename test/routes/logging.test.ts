/** Nothing secret in the logs: keys put in the URL's query or in Authorization are censored, as the booted server logs them. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { CENSOR, loggerOptions, redactQuery } from '../../src/logging.ts';
import { build } from '../helpers/http.ts';
import { spawnServer, until } from '../helpers/heavy.ts';

const SECRETS = ['s3cr3t-api-key', 'T0KEN-value', 'plain-key-9', 'sig%2Fwith%3Dencoding'];

test('redactQuery censors every query value and keeps the path and the names', () => {
  assert.equal(redactQuery('/hessian'), '/hessian');
  assert.equal(redactQuery('/hessian?api_key=abc&token=x%20y&flag&key='), `/hessian?api_key=${CENSOR}&token=${CENSOR}&flag=${CENSOR}&key=${CENSOR}`);
  assert.equal(redactQuery('/health?'), '/health?');
  assert.equal(redactQuery('/a?x=1=2'), `/a?x=${CENSOR}`);
});

test('a key in the query string or in Authorization never reaches the log lines, whatever the answer (200, 401, 404, 400)', async (t) => {
  let logged = '';
  const stream = new Writable({ write(chunk: Buffer, _e, cb) { logged += chunk.toString('utf8'); cb(); } });
  const app = await build(t, { config: { workers: 0, apiKeys: ['right-key'] }, logger: { ...loggerOptions('info'), stream } });
  const q = `?api_key=${SECRETS[0]}&token=${SECRETS[1]}&key=${SECRETS[2]}&X-Amz-Signature=${SECRETS[3]}`;
  const answers = [
    await app.inject({ method: 'GET', url: `/health${q}` }),
    await app.inject({ method: 'POST', url: `/hessian${q}`, payload: {}, headers: { authorization: `Bearer ${SECRETS[0]}` } }),
    await app.inject({ method: 'GET', url: `/nowhere${q}` }),
    await app.inject({ method: 'POST', url: `/jacobian${q}`, payload: '{"network":', headers: { 'content-type': 'application/json', authorization: 'Bearer right-key' } }),
  ];
  assert.deepEqual(answers.map((r) => r.statusCode), [200, 401, 404, 400]);
  const lines = logged.trim().split('\n').map((l) => JSON.parse(l) as { req?: { url: string }; msg: string });
  assert.ok(lines.length >= 8, `${lines.length} lines`);
  for (const s of SECRETS) assert.ok(!logged.includes(s) && !logged.includes(decodeURIComponent(s)), `${s} was logged:\n${logged}`);
  const urls = lines.flatMap((l) => (l.req ? [l.req.url] : []));
  assert.ok(urls.includes(`/health?api_key=${CENSOR}&token=${CENSOR}&key=${CENSOR}&X-Amz-Signature=${CENSOR}`), urls.join('\n'));
  // the refusals still say which endpoint was asked for (without the query)
  assert.match(answers[2].body, /no endpoint GET \/nowhere;/);
  assert.doesNotMatch(answers[2].body, /s3cr3t/);
});

test('the booted server (npm start\'s logger) censors a key in the query string', async (t) => {
  const server = await spawnServer(t, { WORKERS: '1' });
  const r = await fetch(`${server.base}/health?api_key=${SECRETS[0]}`, { headers: { 'x-request-id': 'query-secret-1' } });
  assert.equal(r.status, 200);
  assert.ok(await until(() => server.log().includes('query-secret-1') && /request completed/.test(server.log()), 5000));
  assert.ok(!server.log().includes(SECRETS[0]), 'the key is not in the log');
  assert.match(server.log(), /"url":"\/health\?api_key=\[redacted\]"/);
});
