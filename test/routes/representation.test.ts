import { test } from 'node:test';
import assert from 'node:assert/strict';
import { negotiate } from '../../src/http/representation.ts';
import { CHUNK_BYTES, npyHeader, float64Stream } from '../../src/http/npy.ts';
import { parseNpy } from '../helpers/npy.ts';
import { loadConfig, DEFAULT_CONFIG } from '../../src/config.ts';

test('Accept negotiation gives JSON by default and for wildcards, and honours q-values', () => {
  assert.equal(negotiate(undefined), 'json');
  assert.equal(negotiate(''), 'json');
  assert.equal(negotiate('*/*'), 'json');
  assert.equal(negotiate('application/*'), 'json');
  assert.equal(negotiate('application/json'), 'json');
  assert.equal(negotiate('application/x-npy'), 'npy');
  assert.equal(negotiate('application/octet-stream'), 'raw');
  assert.equal(negotiate('application/x-npy;q=0.5, application/json;q=0.9'), 'json');
  assert.equal(negotiate('application/json;q=0.2, application/x-npy'), 'npy');
  assert.equal(negotiate('text/html, */*;q=0.1'), 'json');
  assert.equal(negotiate('Application/X-NPY'), 'npy');
  assert.equal(negotiate('application/x-npy, */*'), 'npy', 'a type named outright beats a wildcard at equal q');
  assert.equal(negotiate('application/octet-stream, application/*;q=0.9'), 'raw');
  assert.equal(negotiate('application/x-npy, application/json'), 'json', 'at a tie, JSON');
  assert.throws(() => negotiate('text/html'), /Accept: text\/html/);
  assert.throws(() => negotiate('*/*;q=0'), /application\/json/);
});

test('the .npy preamble is a multiple of 64 bytes and writes 1-D shapes with a trailing comma', () => {
  for (const shape of [[7], [13, 13], [2762, 2762], [5, 3, 3], [1]]) {
    const h = npyHeader(shape);
    assert.equal(h.length % 64, 0);
    assert.equal(h.readUInt16LE(8), h.length - 10);
    assert.equal(h[h.length - 1], 0x0a);
    const text = h.subarray(10).toString('latin1');
    assert.match(text, shape.length === 1 ? new RegExp(`'shape': \\(${shape[0]},\\)`) : new RegExp(`'shape': \\(${shape.join(', ')}\\)`));
  }
});

test('a streamed .npy reads back to the same values', async () => {
  const data = Float64Array.from({ length: 300_000 }, (_, i) => Math.sin(i) * 1e-3 + i);
  const chunks: Buffer[] = [];
  for await (const c of float64Stream(data, npyHeader([600, 500]))) chunks.push(c as Buffer);
  assert.ok(chunks.length > 2, 'streamed in several chunks');
  const back = parseNpy(Buffer.concat(chunks));
  assert.deepEqual(back.shape, [600, 500]);
  assert.deepEqual(back.data, data);
});

test('a streamed array is produced only as fast as it is read (backpressure)', async () => {
  const data = new Float64Array(4 * 1024 * 1024); // 32 MiB
  const stream = float64Stream(data, npyHeader([data.length]));
  let produced = 0;
  stream.on('data', (c: Buffer) => { produced += c.length; stream.pause(); });
  await new Promise((r) => setTimeout(r, 50));
  assert.ok(produced + stream.readableLength <= 3 * CHUNK_BYTES, `buffered ${produced + stream.readableLength} bytes for a paused reader`);
  stream.destroy();
});

test('configuration comes from the environment with defaults, and nonsense is refused naming the variable', () => {
  assert.deepEqual(loadConfig({}), DEFAULT_CONFIG);
  const c = loadConfig({ HOST: '0.0.0.0', PORT: '8080', LOG_LEVEL: 'debug', BODY_LIMIT: '1048576', MAX_RESULT_BYTES: '4096' });
  const { host, port, logLevel, bodyLimit, maxResultBytes } = c;
  assert.deepEqual({ host, port, logLevel, bodyLimit, maxResultBytes }, { host: '0.0.0.0', port: 8080, logLevel: 'debug', bodyLimit: 1048576, maxResultBytes: 4096 });
  assert.throws(() => loadConfig({ PORT: 'eighty' }), /PORT=eighty/);
  assert.throws(() => loadConfig({ PORT: '70000' }), /PORT/);
  assert.throws(() => loadConfig({ LOG_LEVEL: 'loud' }), /LOG_LEVEL/);
});
