import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { createRequire } from 'node:module';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import {
  aptPackages, checkImageProperties, healthcheckOf, last, lintDockerfile, parseDockerfile,
} from '../../scripts/container/dockerfile.ts';

const repo = fileURLToPath(new URL('../../', import.meta.url));
const dockerfile = readFileSync(new URL('Dockerfile', `file://${repo}`), 'utf8');
const startScript = (JSON.parse(readFileSync(`${repo}package.json`, 'utf8')) as { scripts: Record<string, string> }).scripts.start;

test('the Dockerfile passes both linters (dockerfile-utils, dockerfilelint)', () => {
  assert.deepEqual(lintDockerfile(dockerfile, repo), []);
});

test('the Dockerfile has every property the deployment relies on', () => {
  assert.deepEqual(checkImageProperties(parseDockerfile(dockerfile), startScript), []);
});

test('the property check names what an image that runs as root, without tini or a health check, lacks', () => {
  const bad = dockerfile
    .replace(/^USER .*$/m, '')
    .replace(/^ENTRYPOINT .*$/m, 'ENTRYPOINT ["node"]')
    .replace(/^HEALTHCHECK[^\n]*\\\n[^\n]*\n/m, '')
    .replace(/HOST=0\.0\.0\.0/, 'HOST=127.0.0.1')
    .replace(/MALLOC_MMAP_THRESHOLD_=\d+/, 'MALLOC_ARENA_MAX=2')
    .replace(/--omit=dev/g, '')
    .replace(/node:24-bookworm-slim AS runtime/, 'node:20 AS runtime');
  const problems = checkImageProperties(parseDockerfile(bad), startScript).join('\n');
  for (const want of [/no USER/, /ENTRYPOINT is not tini/, /no HEALTHCHECK/, /HOST=0\.0\.0\.0/, /MALLOC_MMAP_THRESHOLD_=4194304/, /npm ci --omit=dev/, /FROM node:20/]) {
    assert.match(problems, want);
  }
  const single = 'FROM node:24-bookworm-slim\nUSER 0\nCMD ["node", "x.js"]\n';
  assert.match(checkImageProperties(parseDockerfile(single), startScript).join('\n'), /not a multi-stage build[\s\S]*runs as 0[\s\S]*differs from package.json's start script/);
});

test('the linters flag a real mistake, and only the two known false positives are dropped', () => {
  const findings = lintDockerfile(`${dockerfile}\nEXPOSE http\nRUN apt-get update && apt-get install -y curl\n`, repo);
  const text = findings.map((f) => `${f.linter}: ${f.message}`).join('\n');
  assert.match(text, /dockerfile-utils: Invalid containerPort: http/);
  assert.match(text, /dockerfilelint: .*apt-get_recommends/);
  assert.doesNotMatch(text, /missing_tag|HEALTHCHECK/);
});

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

async function serve(status: number): Promise<Server> {
  const s = createServer((req, res) => {
    res.statusCode = req.url === '/health' ? status : 404;
    res.end('{}');
  });
  s.listen(0, '127.0.0.1');
  await once(s, 'listening');
  return s;
}

function runHealthcheck(port: number): Promise<number | null> {
  const runtime = parseDockerfile(dockerfile).stages.at(-1)!;
  const hc = healthcheckOf(last(runtime, 'HEALTHCHECK')!.args)!;
  const child = spawn(hc.argv[0], hc.argv.slice(1), { env: { ...process.env, PORT: String(port) }, stdio: 'ignore' });
  return once(child, 'exit').then(([code]) => code as number | null);
}

test("the HEALTHCHECK's node one-liner passes on a 200 from /health and fails on a 503 or a closed port", async () => {
  const ok = await serve(200);
  const sick = await serve(503);
  try {
    const port = (s: Server): number => (s.address() as { port: number }).port;
    assert.equal(await runHealthcheck(port(ok)), 0);
    assert.equal(await runHealthcheck(port(sick)), 1);
    const closed = port(ok);
    ok.close();
    await once(ok, 'close');
    assert.equal(await runHealthcheck(closed), 1);
  } finally {
    ok.close();
    sick.close();
  }
});

/** The Debian packages the image's stages install that this machine lacks (tini is optional: the replay starts CMD without it). */
function missingPackages(): string[] {
  const pkgs = parseDockerfile(dockerfile).stages.flatMap((s) => aptPackages(s)).filter((p) => p !== 'tini');
  return pkgs.filter((p) => !spawnSync('dpkg-query', ['-W', '-f=${Status}', p], { encoding: 'utf8', timeout: 60_000 }).stdout?.includes('install ok installed'));
}

test('npm run container:check replays the image: clean context, npm ci, build, production install, start as CMD under tini, health, one request, SIGTERM exits 0', { timeout: 300_000 }, (t) => {
  // CI (.ci/run) installs them; a laptop without them skips, saying what to install.
  const missing = missingPackages();
  if (missing.length) {
    t.skip(`the image's packages are not installed here: apt-get install -y ${missing.join(' ')}`);
    return;
  }
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'scripts/container-check.ts'], {
    cwd: repo,
    encoding: 'utf8',
    timeout: 290_000,
  });
  const out = `${r.stdout}\n${r.stderr}`;
  assert.equal(r.status, 0, out.slice(-6000));
  assert.match(out, /passed in/);
});
