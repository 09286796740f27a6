/**
 * The container image, built and run by a real Docker engine: the base image made locally
 * (scripts/container/base-image.sh: Docker Hub does not answer here), `docker build` of the
 * Dockerfile, then the image run twice, once as `docker run` starts it and once as the Kubernetes
 * pod of deploy/deployment.yaml does (its env, limits, read-only root filesystem, no
 * capabilities). Each run: the image's own HEALTHCHECK says healthy, no process is root, tini is
 * PID 1, GET /health names the OpenBLAS backend, POST /hessian answers the numbers the service
 * computes in-process and PyTorch's, and SIGTERM ends the container with exit code 0.
 *
 * A cold build takes minutes, so `npm test` skips this suite; `npm run test:container` runs it
 * (CURVATURE_CONTAINER_TEST=1; as root, with docker.io and debootstrap installed: the engine is
 * started when none answers), and .ci/run does that as a step of its own.
 */
import { after, describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { createRequire } from 'node:module';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import { SERVICE_MALLOC_MMAP_THRESHOLD } from '../../src/config.ts';
import { build, flatten, referenceCases, relativeError } from '../helpers/http.ts';

const repo = fileURLToPath(new URL('../../', import.meta.url));
const pkg = JSON.parse(readFileSync(`${repo}package.json`, 'utf8')) as { scripts: Record<string, string> };
const versions = Object.fromEntries([...readFileSync(`${repo}scripts/container/versions.sh`, 'utf8').matchAll(/^(\w+)=(\S+)/gm)].map((m) => [m[1], m[2]]));

test('.dockerignore sends sources and the native addon sources, and keeps out tests, .git and host builds', () => {
  const ignore = createRequire(import.meta.url)('@balena/dockerignore') as () => { add(p: string): { ignores(p: string): boolean } };
  const ig = ignore().add(readFileSync(`${repo}.dockerignore`, 'utf8'));
  for (const p of ['package.json', 'package-lock.json', 'tsconfig.build.json', 'src/server.ts', 'routes/health.ts', 'schemas/common.ts', 'native/src/addon.cc', 'native/binding.gyp']) {
    assert.equal(ig.ignores(p), false, `${p} must be in the build context`);
  }
  for (const p of ['node_modules/fastify/package.json', 'native/node_modules/node-addon-api/napi.h', 'native/build/Release/curvature_openblas.node', 'dist/src/server.js', '.git/HEAD', 'test/fixtures/single-point.json', 'deploy/deployment.yaml', 'server.log']) {
    assert.equal(ig.ignores(p), true, `${p} must stay out of the build context`);
  }
});

const enabled = process.env.CURVATURE_CONTAINER_TEST === '1';
const SUITE = 'the container image, built and run by Docker';
// One skipped test, so that the summary counts it (a skipped suite is not counted).
if (!enabled) {
  test(SUITE, { skip: 'builds and runs the Docker image (minutes): `npm run test:container` runs it (as root, with docker.io and debootstrap), as .ci/run does' }, () => {});
}

const IMAGE = 'curvature-service:test';
const containers: string[] = [];
const logFile = join(tmpdir(), 'curvature-container-build.log');

interface Run { status: number | null; out: string; err: string; ms: number }

/** Runs a command to its end (bounded), returning its exit status, output and duration. */
function run(cmd: string, args: string[], timeoutMs = 60_000, env: NodeJS.ProcessEnv = process.env): Run {
  const t0 = Date.now();
  const r = spawnSync(cmd, args, { cwd: repo, encoding: 'utf8', timeout: timeoutMs, env, maxBuffer: 256 * 1024 * 1024 });
  return { status: r.status, out: r.stdout ?? '', err: `${r.stderr ?? ''}${r.error ? `\n${r.error.message}` : ''}`, ms: Date.now() - t0 };
}

function docker(args: string[], timeoutMs = 60_000): string {
  const r = run('docker', args, timeoutMs);
  assert.equal(r.status, 0, `docker ${args.join(' ')}: exit ${r.status}\n${r.out.slice(-3000)}${r.err.slice(-3000)}`);
  return r.out.trim();
}

const mb = (bytes: number): string => `${(bytes / 1e6).toFixed(0)} MB`;
const secs = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;

/** The README's example network: 2 → 3 (tanh) → 1, W = 13. */
const readmeBody = {
  network: {
    layers: [
      { weights: [[0.1, -0.2], [0.3, 0.4], [0.5, -0.6]], bias: [0.0, 0.1, -0.1], activation: 'tanh' },
      { weights: [[0.2, -0.1, 0.3]], bias: [0.05], activation: 'identity' },
    ],
  },
  inputs: [[0.5, -1.0], [1.5, 0.2]],
  targets: [[0.3], [-0.2]],
  loss: 'sum-of-squares',
};

interface Started { name: string; base: string; startedAt: number }

/** Starts the image detached with the port published on loopback only. */
function start(name: string, extra: string[] = []): Started {
  docker(['rm', '-f', name]);
  containers.push(name);
  const startedAt = Date.now();
  docker(['run', '-d', '--name', name, '-p', '127.0.0.1::3000', ...extra, IMAGE]);
  const hostPort = docker(['port', name, '3000/tcp']).split('\n')[0].trim();
  return { name, base: `http://${hostPort}`, startedAt };
}

function state(name: string): { Status: string; Running: boolean; ExitCode: number; Health?: { Status: string; Log: { ExitCode: number; Output: string }[] } } {
  return JSON.parse(docker(['inspect', '--format', '{{json .State}}', name]));
}

/** Waits for the image's own HEALTHCHECK to report healthy; returns the seconds it took. */
async function healthy(c: Started, limitMs = 120_000): Promise<number> {
  for (;;) {
    const s = state(c.name);
    if (s.Health?.Status === 'healthy') return Date.now() - c.startedAt;
    if (!s.Running || s.Health?.Status === 'unhealthy' || Date.now() - c.startedAt > limitMs) {
      assert.fail(`${c.name}: ${s.Status}, health ${s.Health?.Status}, exit ${s.ExitCode}; health log ${JSON.stringify(s.Health?.Log?.slice(-2))}\n${run('docker', ['logs', '--tail', '40', c.name]).err}`);
    }
    await sleep(500);
  }
}

/** The processes inside the container, read from its /proc as its own user sees them. */
function processes(name: string): { pid: number; uid: number; argv: string }[] {
  const out = docker(['exec', name, 'sh', '-c', 'for p in /proc/[0-9]*; do echo "${p#/proc/} $(stat -c %u "$p") $(tr "\\0" " " <"$p/cmdline")"; done']);
  return out.split('\n').map((l) => /^(\d+) (\d+) ?(.*)$/.exec(l.trim())!).map(([, pid, uid, argv]) => ({ pid: Number(pid), uid: Number(uid), argv: argv.trim() }));
}

async function post(base: string, body: unknown): Promise<{ status: number; json: Record<string, unknown> }> {
  const r = await fetch(`${base}/hessian`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), signal: AbortSignal.timeout(30_000) });
  return { status: r.status, json: await r.json() as Record<string, unknown> };
}

/** Sends SIGTERM as `docker stop` and Kubernetes do, and returns the exit code and seconds to exit. */
function terminate(name: string): { code: number; ms: number; logs: string } {
  const t0 = Date.now();
  docker(['kill', '--signal', 'SIGTERM', name]);
  const code = Number(docker(['wait', name], 90_000));
  const ms = Date.now() - t0;
  return { code, ms, logs: run('docker', ['logs', name]).out };
}

if (enabled) describe(SUITE, { concurrency: false }, () => {
  let built = false;
  after(() => {
    for (const c of containers) run('docker', ['rm', '-f', c]);
  });
  const needImage = (): void => assert.ok(built, 'the image was not built (see the build test above)');

  test('the base image is made locally (debootstrap, Node and npm from the npm registry), or found up to date', { timeout: 15 * 60_000 }, (t: TestContext) => {
    const r = run('bash', [`${repo}scripts/container/base-image.sh`], 14 * 60_000);
    assert.equal(r.status, 0, `base-image.sh failed:\n${r.out.slice(-4000)}${r.err.slice(-4000)}`);
    for (const line of r.out.trim().split('\n')) t.diagnostic(line);
    const base = docker(['image', 'inspect', '--format', '{{.Size}}', 'node:24-bookworm-slim']);
    t.diagnostic(`base image node:24-bookworm-slim: ${mb(Number(base))}, made or checked in ${secs(r.ms)}`);
  });

  test('docker build succeeds, and compiles and loads the OpenBLAS addon in the image', { timeout: 15 * 60_000 }, (t: TestContext) => {
    const r = run('docker', ['build', '-t', IMAGE, '.'], 14 * 60_000);
    writeFileSync(logFile, `${r.out}\n${r.err}`);
    assert.equal(r.status, 0, `docker build failed (whole log: ${logFile}):\n${r.out.slice(-5000)}${r.err.slice(-3000)}`);
    built = true;
    const size = Number(docker(['image', 'inspect', '--format', '{{.Size}}', IMAGE]));
    const base = Number(docker(['image', 'inspect', '--format', '{{.Size}}', 'node:24-bookworm-slim']));
    t.diagnostic(`image ${IMAGE}: ${mb(size)} (${mb(size - base)} over the base image), docker build took ${secs(r.ms)}; log: ${logFile}`);
    // The runtime stage adds the OpenBLAS libraries (~45 MB), tini, node_modules (~45 MB) and
    // dist/: a compiler or the dev dependencies leaking in would add hundreds of MB.
    assert.ok(size - base < 150e6, `the runtime stage adds ${mb(size - base)} to the base image`);
  });

  test('the image runs as uid 1000 under tini, with the env, port, health check and command the deployment relies on', () => {
    needImage();
    const config = JSON.parse(docker(['image', 'inspect', '--format', '{{json .Config}}', IMAGE])) as {
      User: string; Env: string[]; Entrypoint: string[]; Cmd: string[]; ExposedPorts: Record<string, object>;
      Healthcheck?: { Test: string[]; Interval: number };
    };
    const env = Object.fromEntries(config.Env.map((e) => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)]));
    assert.equal(config.User, '1000:1000', 'a numeric non-root USER, so that runAsNonRoot can verify it');
    assert.deepEqual(config.Entrypoint, ['/usr/bin/tini', '--']);
    assert.equal(config.Cmd.join(' '), pkg.scripts.start, "CMD is package.json's start script");
    assert.ok(config.ExposedPorts['3000/tcp'], 'EXPOSE 3000');
    assert.equal(env.HOST, '0.0.0.0');
    assert.equal(env.PORT, '3000');
    assert.equal(env.NODE_ENV, 'production');
    assert.equal(env.CURVATURE_LINALG, 'openblas', 'refuses to start without the addon');
    assert.equal(env.MALLOC_MMAP_THRESHOLD_, SERVICE_MALLOC_MMAP_THRESHOLD);
    assert.equal(config.Healthcheck?.Test[0], 'CMD');
    assert.match(config.Healthcheck.Test.join(' '), /\/health/);

    // What the runtime stage holds: the project's Node, no compiler, no dev dependencies, files
    // the service cannot write.
    const probe = docker(['run', '--rm', '--entrypoint', 'sh', IMAGE, '-c', [
      'node -p process.versions.node',
      'for c in gcc g++ cc make python3; do command -v $c; done',
      'ls node_modules/typescript node_modules/eslint 2>/dev/null',
      'test -w dist/src/server.js && echo dist-writable',
      'node -p "require(\'curvature-openblas\').config().split(\' \')[0]"',
      'id -u',
    ].join('; ')]);
    assert.deepEqual(probe.split('\n'), [versions.NODE_VERSION, 'OpenBLAS', '1000']);
    assert.equal(versions.NODE_VERSION.split('.')[0], process.versions.node.split('.')[0], 'the image runs the Node major the tests ran on');
  });

  const deployment = parseAllDocuments(readFileSync(`${repo}deploy/deployment.yaml`, 'utf8')).map((d) => d.toJS()).find((d) => d?.kind === 'Deployment');
  const podSecurity = deployment.spec.template.spec.securityContext as { runAsUser?: number; runAsGroup?: number };
  const pod = deployment.spec.template.spec.containers[0] as {
    env: { name: string; value: string }[]; resources: { limits: { cpu: string; memory: string } };
    securityContext: { readOnlyRootFilesystem: boolean; allowPrivilegeEscalation: boolean; capabilities: { drop: string[] } };
  };

  const runs: { title: string; name: string; args: string[]; workers?: number }[] = [
    { title: 'as `docker run` starts it', name: `curvature-test-${process.pid}`, args: [] },
    {
      title: "as deploy/deployment.yaml's pod runs it (its env and limits, read-only root, no capabilities)",
      name: `curvature-test-pod-${process.pid}`,
      workers: Number(pod.env.find((e) => e.name === 'WORKERS')?.value),
      args: [
        ...pod.env.flatMap((e) => ['-e', `${e.name}=${e.value}`]),
        ...(podSecurity.runAsUser !== undefined ? ['--user', `${podSecurity.runAsUser}:${podSecurity.runAsGroup ?? podSecurity.runAsUser}`] : []),
        '--memory', pod.resources.limits.memory.replace(/Mi$/, 'm'), '--cpus', pod.resources.limits.cpu,
        ...(pod.securityContext.readOnlyRootFilesystem ? ['--read-only', '--tmpfs', '/tmp:size=64m'] : []),
        ...(pod.securityContext.allowPrivilegeEscalation === false ? ['--security-opt', 'no-new-privileges'] : []),
        ...pod.securityContext.capabilities.drop.flatMap((c) => ['--cap-drop', c]),
      ],
    },
  ];

  for (const r of runs) {
    test(`${r.title}: healthy, not root, /health on OpenBLAS, POST /hessian right, SIGTERM exits 0`, { timeout: 5 * 60_000 }, async (t: TestContext) => {
      needImage();
      const c = start(r.name, r.args);
      const healthyMs = await healthy(c);
      t.diagnostic(`${r.name}: healthy ${secs(healthyMs)} after docker run (the image's HEALTHCHECK, every 15 s)`);

      const procs = processes(c.name);
      assert.equal(procs.find((p) => p.pid === 1)?.argv, `/usr/bin/tini -- ${pkg.scripts.start}`, `PID 1 is tini: ${JSON.stringify(procs)}`);
      assert.ok(procs.some((p) => p.pid !== 1 && p.argv === pkg.scripts.start), `the service runs under it: ${JSON.stringify(procs)}`);
      assert.deepEqual(procs.filter((p) => p.uid === 0), [], 'no process in the container runs as root');
      assert.ok(procs.every((p) => p.uid === 1000), `every process runs as uid 1000: ${JSON.stringify(procs)}`);

      const health = await (await fetch(`${c.base}/health`, { signal: AbortSignal.timeout(10_000) })).json() as { status: string; linalg: { backend: string; openblas?: string }; pool: { workers: number } };
      assert.equal(health.status, 'ok');
      assert.equal(health.linalg.backend, 'openblas', JSON.stringify(health.linalg));
      if (r.workers) assert.equal(health.pool.workers, r.workers);
      t.diagnostic(`${r.name}: ${health.linalg.openblas}, ${health.pool.workers} workers`);

      // The README's example: the container's answers against the same requests to the app in
      // this process, and the diagonal against the README's own numbers.
      const app = await build(t, { config: { workers: 1 } });
      for (const method of ['exact', 'diagonal'] as const) {
        const body = { ...readmeBody, method };
        const got = await post(c.base, body);
        assert.equal(got.status, 200, JSON.stringify(got.json));
        const want = (await app.inject({ method: 'POST', url: '/hessian', payload: body })).json() as Record<string, unknown>;
        assert.equal(got.json.parameterCount, 13);
        const key = method === 'exact' ? 'hessian' : 'diagonal';
        const g = flatten(got.json[key] as number[]);
        assert.deepEqual(g.shape, method === 'exact' ? [13, 13] : [13]);
        assert.ok(relativeError(g.data, flatten(want[key] as number[]).data) <= 1e-12, `${method}: container and in-process answers differ`);
        if (method === 'diagonal') {
          assert.ok(relativeError([g.data[0], g.data[1], g.data[12]], [0.061348494524669006, 0.03587371679156169, 2]) <= 1e-12, `the README's numbers: ${g.data}`);
        }
      }
      // One of the PyTorch reference cases (float64 autograd), to 1e-10 as the core tests hold it.
      const ref = referenceCases().find((rc) => rc.name === 'two-layer-tanh-regression') ?? referenceCases()[0];
      const exact = await post(c.base, { ...ref.request, method: 'exact' });
      assert.equal(exact.status, 200, JSON.stringify(exact.json));
      assert.ok(relativeError(flatten(exact.json.hessian as number[]).data, flatten(ref.expected.hessian).data) <= 1e-10, `${ref.name}: the exact Hessian differs from PyTorch's`);

      if (r.args.length === 0) {
        // The HEALTHCHECK's own command fails on a closed port (in the container) and on a 503
        // (run here against a stand-in that answers 503).
        const hc = (JSON.parse(docker(['image', 'inspect', '--format', '{{json .Config.Healthcheck.Test}}', IMAGE])) as string[]).slice(1);
        assert.notEqual(run('docker', ['exec', '-e', 'PORT=1', c.name, ...hc]).status, 0, 'fails on a closed port');
        assert.equal(run('docker', ['exec', c.name, ...hc]).status, 0, 'passes on the live service');
        const sick = createServer((_req, res) => { res.statusCode = 503; res.end('{}'); }).listen(0, '127.0.0.1');
        await once(sick, 'listening');
        try {
          const port = (sick.address() as { port: number }).port;
          // spawn, not spawnSync: the stand-in answers from this process's event loop
          const child = spawn(hc[0] === 'node' ? process.execPath : hc[0], hc.slice(1), { env: { ...process.env, PORT: String(port) }, stdio: 'ignore', timeout: 30_000 });
          const [code] = await once(child, 'exit') as [number | null];
          assert.equal(code, 1, 'fails on a 503');
        } finally {
          sick.close();
        }
      }

      const stop = terminate(c.name);
      t.diagnostic(`${r.name}: SIGTERM → exit ${stop.code} in ${secs(stop.ms)}`);
      assert.equal(stop.code, 0, stop.logs.slice(-3000));
      assert.match(stop.logs, /"signal":"SIGTERM"/);
      assert.match(stop.logs, /"msg":"closed"/);
    });
  }
});
