/**
 * The connection's limits and the HTTP parser's refusals, over bare TCP sockets against a
 * listening server: requests that stall (headers, body, the whole request), connections that idle,
 * malformed HTTP, and refusals written while the client is still sending its body.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import type { AddressInfo } from 'node:net';
import type { TestContext } from 'node:test';
import { buildApp, type AppOptions } from '../../src/app.ts';
import { compute, type ComputeResult, type CurvatureTask } from '../../src/core/index.ts';
import { parseAnswer, rawExchange, writeZeros, type RawAnswer } from '../helpers/raw-http.ts';
import { npyFile } from '../helpers/npy.ts';

const network = { layers: [{ weights: [[1, 1]], bias: [0], activation: 'identity' }] };
const jacobianBody = JSON.stringify({ network, inputs: [[0.5, -1]] });

async function serve(t: TestContext, options: AppOptions = {}): Promise<{ port: number; base: string }> {
  const app = await buildApp({ ...options, config: { workers: 0, ...options.config } });
  t.after(() => app.close());
  const base = await app.listen({ host: '127.0.0.1', port: 0 });
  return { port: (app.server.address() as AddressInfo).port, base };
}

/** The answer is a problem+json refusal with this status and code, closing the connection. */
function assertRefusal(a: RawAnswer, status: number, code: string, detail: RegExp): { detail: string } {
  assert.equal(a.status, status, a.text.slice(0, 400));
  assert.match(a.headers['content-type'] ?? '', /^application\/problem\+json/);
  assert.equal(a.headers.connection, 'close');
  assert.equal(Number(a.headers['content-length']), Buffer.byteLength(a.body), 'an exact Content-Length');
  const p = JSON.parse(a.body) as { status: number; code: string; detail: string; type: string; title: string };
  assert.equal(p.status, status);
  assert.equal(p.code, code);
  assert.match(p.detail, detail);
  return p;
}

test('headers that stop arriving get a 408 problem (HEADERS_TIMEOUT_MS) and the connection is closed', async (t) => {
  const { port } = await serve(t, { config: { headersTimeoutMs: 400, receiveTimeoutMs: 5000 } });
  const a = await rawExchange(port, { send: (s) => s.write('POST /jacobian HTTP/1.1\r\nHost: x\r\nContent-Type: appl') });
  a.socket.destroy();
  const p = assertRefusal(a, 408, 'REQUEST_TIMEOUT', /headers were not received in full within 400 ms \(HEADERS_TIMEOUT_MS\)/);
  assert.ok(a.ended, 'closed with a FIN, not a reset');
  assert.ok(a.firstByteMs >= 390 && a.firstByteMs < 2000, `answered after ${Math.round(a.firstByteMs)} ms`);
  t.diagnostic(`${Math.round(a.firstByteMs)} ms: ${p.detail}`);
});

test('a JSON body that stops arriving is cut with a 408 problem after BODY_TIMEOUT_MS, naming the bytes received', async (t) => {
  const { port, base } = await serve(t, { config: { bodyTimeoutMs: 500 } });
  const a = await rawExchange(port, {
    send: (s) => s.write(`POST /jacobian HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${jacobianBody.length}\r\n\r\n${jacobianBody.slice(0, 20)}`),
  });
  a.socket.destroy();
  const p = assertRefusal(a, 408, 'REQUEST_TIMEOUT', /no byte of the request body arrived for 500 ms \(BODY_TIMEOUT_MS\) after 20 bytes/);
  assert.ok(a.ended);
  assert.ok(a.firstByteMs >= 490 && a.firstByteMs < 2500, `answered after ${Math.round(a.firstByteMs)} ms`);
  t.diagnostic(`${Math.round(a.firstByteMs)} ms: ${p.detail}`);
  // the service goes on
  const ok = await fetch(`${base}/jacobian`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: jacobianBody });
  assert.equal(ok.status, 200);
});

test('a multipart body that stops arriving mid-part is cut with the same 408', async (t) => {
  const { port } = await serve(t, { config: { bodyTimeoutMs: 500 } });
  const B = 'XyZzY';
  const head = `--${B}\r\nContent-Disposition: form-data; name="request"\r\nContent-Type: application/json\r\n\r\n${JSON.stringify({ network })}\r\n` +
    `--${B}\r\nContent-Disposition: form-data; name="inputs"; filename="inputs.npy"\r\n\r\n`;
  const npy = npyFile([1, 2], [0.5, -1]);
  const a = await rawExchange(port, {
    send: (s) => {
      s.write(`POST /jacobian HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=${B}\r\nContent-Length: ${head.length + npy.length + 100}\r\n\r\n${head}`);
      s.write(npy.subarray(0, 70));
    },
  });
  a.socket.destroy();
  assertRefusal(a, 408, 'REQUEST_TIMEOUT', /BODY_TIMEOUT_MS/);
  assert.ok(a.firstByteMs >= 490 && a.firstByteMs < 2500, `answered after ${Math.round(a.firstByteMs)} ms`);
});

test('a body that keeps coming slowly is not cut by BODY_TIMEOUT_MS, but a request not received within RECEIVE_TIMEOUT_MS is (408)', async (t) => {
  const { port } = await serve(t, { config: { bodyTimeoutMs: 400, headersTimeoutMs: 1000, receiveTimeoutMs: 1500 } });
  let timer: NodeJS.Timeout | undefined;
  const a = await rawExchange(port, {
    send: (s) => {
      s.write(`POST /jacobian HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{"network":`);
      // a byte every 100 ms: under the body deadline each time, 15 bytes per receive limit
      timer = setInterval(() => { if (!s.destroyed && s.writable) s.write(' '); }, 100);
    },
  });
  clearInterval(timer);
  a.socket.destroy();
  const p = assertRefusal(a, 408, 'REQUEST_TIMEOUT', /not received in full within 1,500 ms \(RECEIVE_TIMEOUT_MS\)/);
  assert.ok(a.firstByteMs >= 1400 && a.firstByteMs < 3500, `answered after ${Math.round(a.firstByteMs)} ms (the limit, plus Node's check every 250 ms)`);
  t.diagnostic(`${Math.round(a.firstByteMs)} ms: ${p.detail}`);
});

test('an idle keep-alive connection is closed after KEEP_ALIVE_TIMEOUT_MS; one that sends nothing after HEADERS_TIMEOUT_MS', async (t) => {
  const { port } = await serve(t, { config: { keepAliveTimeoutMs: 300, headersTimeoutMs: 600, receiveTimeoutMs: 5000 } });
  const kept = await rawExchange(port, { send: (s) => s.write('GET /health HTTP/1.1\r\nHost: x\r\n\r\n') });
  kept.socket.destroy();
  assert.equal(kept.status, 200);
  assert.equal(kept.headers['keep-alive'], 'timeout=0', 'Node announces the keep-alive timeout in seconds');
  assert.ok(kept.ended);
  // Node adds up to a second to the announced timeout before it closes
  assert.ok(kept.endMs >= 290 && kept.endMs < 2500, `kept alive for ${Math.round(kept.endMs)} ms`);
  const silent = await rawExchange(port, { send: () => {} });
  silent.socket.destroy();
  assert.ok(silent.ended || silent.error !== undefined, 'the server closed it');
  assert.ok(silent.endMs >= 550 && silent.endMs < 2500, `closed after ${Math.round(silent.endMs)} ms`);
  assertRefusal(silent, 408, 'REQUEST_TIMEOUT', /HEADERS_TIMEOUT_MS/);
});

test('a computation longer than CONNECTION_TIMEOUT_MS keeps its quiet connection (it is computing); a stalled body with no body deadline is closed after it', async (t) => {
  const runTask = async (task: CurvatureTask): Promise<ComputeResult> => {
    await new Promise((r) => setTimeout(r, 1200));
    return compute(task);
  };
  const { port } = await serve(t, { runTask, config: { connectionTimeoutMs: 300, bodyTimeoutMs: 0 } });
  const a = await rawExchange(port, {
    send: (s) => s.write(`POST /jacobian HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${jacobianBody.length}\r\nConnection: close\r\n\r\n${jacobianBody}`),
    timeoutMs: 5000,
  });
  a.socket.destroy();
  assert.equal(a.status, 200, a.text);
  assert.ok(a.firstByteMs >= 1150, `answered after ${Math.round(a.firstByteMs)} ms`);
  assert.deepEqual((JSON.parse(a.body) as { jacobian: number[][][] }).jacobian, [[[1, 1]]]);
  const stalled = await rawExchange(port, {
    send: (s) => s.write(`POST /jacobian HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${jacobianBody.length}\r\n\r\n{"net`),
    timeoutMs: 5000,
  });
  stalled.socket.destroy();
  assert.notEqual(stalled.error, 'timeout', 'closed by the server');
  assert.ok(stalled.endMs >= 290 && stalled.endMs < 2000, `closed after ${Math.round(stalled.endMs)} ms`);
});

interface Malformed {
  name: string;
  request: string;
  status: number;
  code: string;
  detail: RegExp;
}

const MALFORMED: Malformed[] = [
  { name: 'a request line that is not one', request: 'HELLO THERE\r\n\r\n', status: 400, code: 'MALFORMED_HTTP', detail: /request line|method/ },
  { name: 'an unknown HTTP version', request: 'GET /health HTTP/9.9\r\nHost: x\r\n\r\n', status: 400, code: 'MALFORMED_HTTP', detail: /does not end in HTTP\/1\.1 or HTTP\/1\.0/ },
  { name: 'a space in the path', request: 'GET /he alth HTTP/1.1\r\nHost: x\r\n\r\n', status: 400, code: 'MALFORMED_HTTP', detail: /%20/ },
  { name: 'bare LF line ends', request: 'GET /health HTTP/1.1\nHost: x\n\n', status: 400, code: 'MALFORMED_HTTP', detail: /bare LF.*CRLF .*Expected CRLF after version/ },
  { name: 'a header ended by a bare LF', request: 'GET /health HTTP/1.1\r\nHost: x\n\r\n', status: 400, code: 'MALFORMED_HTTP', detail: /bare LF.*CRLF/ },
  { name: 'no Host header', request: 'GET /health HTTP/1.1\r\n\r\n', status: 400, code: 'MALFORMED_HTTP', detail: /needs a Host header/ },
  {
    name: 'Content-Length and Transfer-Encoding both',
    request: 'POST /jacobian HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n',
    status: 400, code: 'MALFORMED_HTTP', detail: /both Content-Length and Transfer-Encoding/,
  },
  {
    name: 'Transfer-Encoding and Content-Length both, in that order',
    request: 'POST /jacobian HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n5\r\nhello\r\n0\r\n\r\n',
    status: 400, code: 'MALFORMED_HTTP', detail: /both Content-Length and Transfer-Encoding/,
  },
  { name: 'Content-Length twice', request: 'POST /jacobian HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello', status: 400, code: 'MALFORMED_HTTP', detail: /Content-Length is given twice/ },
  { name: 'a Transfer-Encoding other than chunked', request: 'POST /jacobian HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n', status: 400, code: 'MALFORMED_HTTP', detail: /Transfer-Encoding is not chunked/ },
  { name: 'a control character in a header value', request: 'GET /health HTTP/1.1\r\nHost: x\r\nX-Note: a\u0001b\r\n\r\n', status: 400, code: 'MALFORMED_HTTP', detail: /control character/ },
  {
    name: 'a chunk size that is not hexadecimal',
    request: 'POST /jacobian HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n',
    status: 400, code: 'MALFORMED_HTTP', detail: /chunk .*hexadecimal/,
  },
  { name: 'a header line without a colon', request: 'GET /health HTTP/1.1\r\nHost: x\r\nNot a header\r\n\r\n', status: 400, code: 'MALFORMED_HTTP', detail: /Name: value/ },
  { name: 'a Content-Length that is not a number', request: 'POST /jacobian HTTP/1.1\r\nHost: x\r\nContent-Length: ten\r\n\r\n', status: 400, code: 'MALFORMED_HTTP', detail: /Content-Length is not/ },
  { name: 'headers over 16 KiB', request: `GET /health HTTP/1.1\r\nHost: x\r\nCookie: ${'a'.repeat(20_000)}\r\n\r\n`, status: 431, code: 'HEADERS_TOO_LARGE', detail: /headers are over 16,384 bytes/ },
];

test('requests Node\'s HTTP parser refuses get a problem+json with a catalogue code and Connection: close, not {"error":"Bad Request"}', async (t) => {
  const { port, base } = await serve(t);
  const seen: string[] = [];
  for (const m of MALFORMED) {
    const a = await rawExchange(port, { send: (s) => s.write(m.request), timeoutMs: 5000 });
    a.socket.destroy();
    assert.equal(a.error === 'timeout', false, `${m.name}: no answer`);
    const p = assertRefusal(a, m.status, m.code, m.detail);
    assert.ok(a.ended, `${m.name}: a FIN after the answer`);
    seen.push(`${m.status} ${m.name}: ${p.detail}`);
  }
  t.diagnostic(seen.join('\n'));
  assert.equal((await fetch(`${base}/health`)).status, 200);
});

/** A multipart body whose .npy part claims (10^9, 2) float64 (15 GiB), padded with zeros to `total` bytes. */
function hugeNpyUpload(total: number): { head: Buffer; boundary: string } {
  const boundary = 'bOuNdArY42';
  const head = Buffer.concat([
    Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="request"\r\nContent-Type: application/json\r\n\r\n${JSON.stringify({ network })}\r\n` +
      `--${boundary}\r\nContent-Disposition: form-data; name="inputs"; filename="inputs.npy"\r\nContent-Type: application/x-npy\r\n\r\n`),
    npyFile([1_000_000_000, 2], []),
  ]);
  return { head: Buffer.concat([Buffer.from(`POST /jacobian HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=${boundary}\r\nContent-Length: ${head.length + total}\r\n\r\n`), head]), boundary };
}

test('a multipart 413 written mid-upload reaches a client that keeps writing 10 MiB: the rest is read and dropped, then a clean close', async (t) => {
  const { port, base } = await serve(t);
  const total = 10 * 1024 * 1024;
  const { head } = hugeNpyUpload(total);
  let writing: Promise<{ written: number; failed?: string }> | undefined;
  const a = await rawExchange(port, { send: (s) => { writing = writeZeros(s, head, total); } });
  const p = assertRefusal(a, 413, 'PAYLOAD_TOO_LARGE', /inputs: the \.npy part has shape \(1000000000, 2\).*BODY_LIMIT/);
  // a server that stops reading leaves the writer waiting for ever: give it 10 s
  const w = await Promise.race([writing!, new Promise<{ written: number; failed?: string }>((r) => setTimeout(() => r({ written: -1, failed: 'the server stopped reading' }), 10_000))]);
  a.socket.end();
  assert.equal(w.failed, undefined, 'every byte written: no reset while the client still sends');
  assert.equal(w.written, total);
  t.diagnostic(`413 after ${Math.round(a.firstByteMs)} ms with the body still being written; FIN at ${Math.round(a.endMs)} ms; ${p.detail}`);
  assert.equal((await fetch(`${base}/health`)).status, 200);
});

test('a chunked multipart part over BODY_LIMIT gets its 413 while the client is still sending', async (t) => {
  const bodyLimit = 2 * 1024 * 1024;
  const { port } = await serve(t, { config: { bodyLimit } });
  const B = 'cHuNkEd';
  const start = `--${B}\r\nContent-Disposition: form-data; name="request"\r\nContent-Type: application/json\r\n\r\n${JSON.stringify({ network })}\r\n` +
    `--${B}\r\nContent-Disposition: form-data; name="inputs"; filename="inputs.npy"\r\n\r\n`;
  const chunk = (b: Buffer) => Buffer.concat([Buffer.from(`${b.length.toString(16)}\r\n`), b, Buffer.from('\r\n')]);
  let failed: string | undefined;
  let sent = 0;
  const a = await rawExchange(port, {
    send: (s) => {
      s.on('error', (e) => { failed = (e as NodeJS.ErrnoException).code; });
      s.write(`POST /jacobian HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=${B}\r\nTransfer-Encoding: chunked\r\n\r\n`);
      s.write(chunk(Buffer.concat([Buffer.from(start), npyFile([400_000, 2], [])])));
      const zeros = Buffer.alloc(256 * 1024);
      // 3 × BODY_LIMIT in all, as fast as the socket takes it
      const pump = () => {
        while (sent < 3 * bodyLimit && !s.destroyed) {
          sent += zeros.length;
          if (!s.write(chunk(zeros))) { s.once('drain', pump); return; }
        }
        if (!s.destroyed) s.end('0\r\n\r\n');
      };
      pump();
    },
  });
  a.socket.destroy();
  assertRefusal(a, 413, 'PAYLOAD_TOO_LARGE', /BODY_LIMIT/);
  assert.equal(failed, undefined, 'no reset while sending');
  t.diagnostic(`413 after ${Math.round(a.firstByteMs)} ms, ${sent} bytes sent by then or soon after`);
});

test('Python requests with timeout=(5, 20) sees the 413 of a 10 MiB upload refused from its .npy header, and of a chunked JSON body over BODY_LIMIT', async (t) => {
  const { base } = await serve(t, { config: { bodyLimit: 4 * 1024 * 1024 } });
  const script = [
    'import json, struct, sys, time, requests',
    'base = sys.argv[1]',
    'd = "{\'descr\': \'<f8\', \'fortran_order\': False, \'shape\': (1000000000, 2), }"',
    'n = -(-(11 + len(d)) // 64) * 64',
    'npy = b"\\x93NUMPY\\x01\\x00" + struct.pack("<H", n - 10) + d.encode() + b" " * (n - 11 - len(d)) + b"\\n"',
    'out = {}',
    'def attempt(name, **kw):',
    '    t = time.time()',
    '    try:',
    '        r = requests.post(base + "/jacobian", timeout=(5, 20), **kw)',
    '        out[name] = {"status": r.status_code, "code": r.json().get("code"), "connection": r.headers.get("connection"), "s": time.time() - t}',
    '    except Exception as e:',
    '        out[name] = {"error": repr(e), "s": time.time() - t}',
    `request = json.dumps({"network": ${JSON.stringify(network)}})`,
    'attempt("npy", files={"request": (None, request, "application/json"), "inputs": ("inputs.npy", npy + b"\\0" * (10 << 20), "application/x-npy")})',
    'def body():',
    '    yield b\'{"network": \' + request.encode() + b\', "inputs": [\'',
    '    for i in range(12):',
    '        yield b"0," * (1 << 19)',
    '    yield b"0]}"',
    'attempt("chunked", data=body(), headers={"content-type": "application/json"})',
    'print(json.dumps(out))',
  ].join('\n');
  const py = spawn('python3', ['-c', script, base], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '', stderr = '';
  py.stdout.setEncoding('utf8').on('data', (d: string) => { stdout += d; });
  py.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d; });
  const code = await new Promise<number | null>((resolve) => py.on('close', resolve));
  if (code !== 0 && /No module named 'requests'/.test(stderr)) {
    t.skip('python3 has no requests module');
    return;
  }
  assert.equal(code, 0, stderr);
  const out = JSON.parse(stdout) as Record<string, { status?: number; code?: string; connection?: string; error?: string; s: number }>;
  t.diagnostic(JSON.stringify(out));
  for (const name of ['npy', 'chunked']) {
    assert.equal(out[name].error, undefined, `${name}: ${out[name].error}`);
    assert.equal(out[name].status, 413, name);
    assert.equal(out[name].code, 'PAYLOAD_TOO_LARGE', name);
    assert.equal(out[name].connection, 'close', name);
    assert.ok(out[name].s < 5, `${name} took ${out[name].s} s`);
  }
});

test('parseAnswer splits a raw answer', () => {
  const p = parseAnswer('HTTP/1.1 408 Request Timeout\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}');
  assert.deepEqual(p, { status: 408, headers: { 'content-length': '2', connection: 'close' }, body: '{}' });
});
