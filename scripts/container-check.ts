#!/usr/bin/env node
/**
 * `npm run container:check`: proves the container image's steps on a machine without a Docker
 * engine.
 *
 * 1. Lints the Dockerfile (dockerfile-utils, dockerfilelint) and checks the properties the
 *    deployment relies on (multi-stage, Node 22/24 slim, non-root numeric USER, tini, HEALTHCHECK
 *    on /health with node, HOST=0.0.0.0, `npm ci --omit=dev`, CMD = `npm start`'s command).
 * 2. Copies the build context as `docker build .` would send it (the work tree filtered by
 *    .dockerignore, with Docker's own pattern rules) into a temporary folder.
 * 3. Replays the stages the final stage needs, in order, each in a folder of its own that stands
 *    for its root filesystem: WORKDIR, ENV, COPY (from the context or `--from` a stage) and the
 *    npm/node commands of RUN are carried out; apt-get steps are not (the packages they name are
 *    checked to be installed here instead); any other RUN command fails the check.
 * 4. Starts the final stage as the image would: ENTRYPOINT + CMD (tini, where it is installed
 *    here) in its WORKDIR, with its ENV and only that, as its USER when this runs as root, and
 *    with HOST=127.0.0.1 and a free PORT, as `docker run -e HOST=... -e PORT=...` would.
 * 5. Runs the HEALTHCHECK's own command until it passes, sends one real request (POST /hessian
 *    with the network from API.md) and checks a 200 with a symmetric Hessian, then sends SIGTERM
 *    and checks that the service exits with 0 within its grace period.
 * 6. Does 4-5 again with the literal env of deploy/deployment.yaml on top of the image's ENV, as
 *    the Kubernetes pod runs it.
 *
 * What it cannot prove: the base image's Node (the replay uses this machine's Node) and the
 * apt-get steps themselves. Options: --keep (leave the temporary folder), --lint-only.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, cpSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { basename, dirname, isAbsolute, join, posix, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  aptPackages, checkImageProperties, durationMs, envPairs, execForm, healthcheckOf, lintDockerfile,
  parseDockerfile, shellWords, splitFlags, stageNamed, type Dockerfile, type Stage,
} from './container/dockerfile.ts';
import { loadConfig } from '../src/config.ts';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const args = new Set(process.argv.slice(2));
const started = Date.now();
const secs = (t0: number): string => `${((Date.now() - t0) / 1000).toFixed(1)} s`;
const say = (msg: string): void => console.log(`[container:check] ${msg}`);

class CheckFailed extends Error {}
const fail = (msg: string): never => {
  throw new CheckFailed(msg);
};

/** Runs one timed step, printing its name and duration. */
async function step<T>(name: string, fn: () => T | Promise<T>): Promise<T> {
  const t0 = Date.now();
  const v = await fn();
  say(`ok   ${name} (${secs(t0)})`);
  return v;
}

// ---------------------------------------------------------------- 1. lint and properties

function lintAndProperties(): Dockerfile {
  const text = readFileSync(join(repo, 'Dockerfile'), 'utf8');
  const df = parseDockerfile(text);
  const findings = lintDockerfile(text, repo);
  for (const f of findings) console.error(`  Dockerfile:${f.line} [${f.linter}] ${f.message}`);
  if (findings.length) fail(`${findings.length} lint finding(s) in the Dockerfile`);
  const pkg = JSON.parse(readFileSync(join(repo, 'package.json'), 'utf8')) as { scripts?: Record<string, string> };
  const problems = checkImageProperties(df, pkg.scripts?.start);
  for (const p of problems) console.error(`  Dockerfile: ${p}`);
  if (problems.length) fail(`${problems.length} required propert${problems.length === 1 ? 'y is' : 'ies are'} missing from the Dockerfile`);
  return df;
}

// ---------------------------------------------------------------- 2. the build context

interface DockerIgnore {
  ignores(path: string): boolean;
}

/** Copies the work tree as Docker sends it: everything not excluded by .dockerignore. */
function copyContext(to: string): { files: number; bytes: number } {
  const require = createRequire(import.meta.url);
  const ignore = require('@balena/dockerignore') as (opts?: object) => DockerIgnore & { add(p: string): DockerIgnore };
  const file = join(repo, '.dockerignore');
  const text = existsSync(file) ? readFileSync(file, 'utf8') : '';
  const ig = ignore().add(text);
  const exceptions = text.split(/\r?\n/).map((l) => l.trim()).filter((l) => l.startsWith('!')).map((l) => l.slice(1).replace(/^\/+/, ''));
  let files = 0;
  let bytes = 0;
  const walk = (rel: string): void => {
    for (const name of readdirSync(join(repo, rel)).sort()) {
      const r = rel ? `${rel}/${name}` : name;
      const st = lstatSync(join(repo, r));
      if (st.isDirectory()) {
        // As Docker does: skip an excluded folder unless an exception could re-include something in it.
        if (ig.ignores(r) && !exceptions.some((e) => e.startsWith(`${r}/`))) continue;
        walk(r);
      } else if (!ig.ignores(r)) {
        mkdirSync(join(to, rel), { recursive: true });
        cpSync(join(repo, r), join(to, r), { verbatimSymlinks: true, preserveTimestamps: true });
        files++;
        bytes += st.size;
      }
    }
  };
  walk('');
  return { files, bytes };
}

// ---------------------------------------------------------------- 3. the stages

interface StageState {
  root: string;
  workdir: string;
  env: Map<string, string>;
  user?: string;
  expose?: number;
  entrypoint: string[];
  cmd: string[];
  healthcheck?: ReturnType<typeof healthcheckOf>;
}

/** The stages the last one needs (its base and its `COPY --from` sources), in file order. */
function neededStages(df: Dockerfile): Stage[] {
  const need = new Set<number>();
  const visit = (s: Stage): void => {
    if (need.has(s.index)) return;
    need.add(s.index);
    const base = stageNamed(df, s.base, s.index);
    if (base) visit(base);
    for (const c of s.instructions.filter((i) => i.keyword === 'COPY')) {
      const from = splitFlags(c.args).flags.get('from');
      if (from === undefined) continue;
      const src = stageNamed(df, from, s.index);
      if (!src) fail(`Dockerfile line ${c.line}: COPY --from=${from} names no earlier stage (copies from other images are not replayed)`);
      else visit(src);
    }
  };
  visit(df.stages.at(-1)!);
  return df.stages.filter((s) => need.has(s.index));
}

/** This machine's environment for build steps, without what `npm run` adds (npm_*, INIT_CWD). */
function hostEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v !== undefined && !/^npm_/i.test(k) && k !== 'INIT_CWD' && k !== 'NODE_ENV') env[k] = v;
  }
  return env;
}

function dpkgInstalled(pkg: string): boolean {
  return spawnSync('dpkg-query', ['-W', '-f=${Status}', pkg], { encoding: 'utf8' }).stdout?.includes('install ok installed') ?? false;
}

function replayStage(df: Dockerfile, stage: Stage, states: Map<number, StageState>, context: string, stagesDir: string): StageState {
  const root = join(stagesDir, `${stage.index}-${stage.name}`);
  const base = stageNamed(df, stage.base, stage.index);
  let st: StageState;
  if (base) {
    const b = states.get(base.index)!;
    cpSync(b.root, root, { recursive: true, verbatimSymlinks: true });
    st = { ...b, root, env: new Map(b.env), entrypoint: [...b.entrypoint], cmd: [...b.cmd] };
  } else {
    mkdirSync(root, { recursive: true });
    st = { root, workdir: '/', env: new Map(), entrypoint: [], cmd: [] };
  }
  const inRoot = (p: string): string => join(root, posix.resolve(st.workdir, p));

  const missing = aptPackages(stage).filter((p) => !dpkgInstalled(p));
  if (missing.length) {
    fail(`stage ${stage.name} installs ${missing.join(', ')} with apt-get, not installed on this machine: apt-get install -y ${missing.join(' ')}`);
  }

  for (const ins of stage.instructions) {
    const where = `Dockerfile line ${ins.line} (${stage.name})`;
    switch (ins.keyword) {
      case 'WORKDIR':
        st.workdir = posix.resolve(st.workdir, ins.args);
        mkdirSync(join(root, st.workdir), { recursive: true });
        break;
      case 'ENV':
        for (const [k, v] of envPairs(ins.args)) {
          if (v.includes('$')) fail(`${where}: ENV ${k} uses a variable, which the replay does not expand`);
          st.env.set(k, v);
        }
        break;
      case 'USER':
        st.user = ins.args.trim();
        break;
      case 'EXPOSE':
        st.expose = Number(ins.args.split(/\s+/)[0].split('/')[0]);
        break;
      case 'ENTRYPOINT':
        st.entrypoint = execForm(ins.args) ?? fail(`${where}: ENTRYPOINT in shell form`);
        st.cmd = [];
        break;
      case 'CMD':
        st.cmd = execForm(ins.args) ?? fail(`${where}: CMD in shell form`);
        break;
      case 'HEALTHCHECK':
        st.healthcheck = healthcheckOf(ins.args);
        break;
      case 'COPY': {
        const { flags, rest } = splitFlags(ins.args);
        for (const f of flags.keys()) if (!['from', 'chown', 'chmod', 'link'].includes(f)) fail(`${where}: COPY --${f} is not replayed`);
        const words = execForm(rest) ?? shellWords(rest);
        if (words.length < 2) fail(`${where}: COPY needs a source and a destination`);
        const dest = words.at(-1)!;
        const sources = words.slice(0, -1);
        const fromName = flags.get('from');
        const fromRoot = fromName === undefined ? undefined : states.get(stageNamed(df, fromName, stage.index)!.index)!;
        for (const src of sources) {
          if (/[*?[]/.test(src)) fail(`${where}: wildcards in COPY sources are not replayed`);
          const from = fromRoot ? join(fromRoot.root, posix.resolve(fromRoot.workdir, src)) : join(context, posix.normalize(src));
          if (!fromRoot && relative(context, from).startsWith('..')) fail(`${where}: ${src} is outside the build context`);
          if (!existsSync(from)) {
            fail(`${where}: COPY ${src}: not found in ${fromRoot ? `stage ${fromName}` : 'the build context (check .dockerignore)'}`);
          }
          const toDir = dest.endsWith('/') || sources.length > 1;
          const target = statSync(from).isDirectory() ? inRoot(dest) : toDir ? join(inRoot(dest), basename(src)) : inRoot(dest);
          mkdirSync(statSync(from).isDirectory() ? target : dirname(target), { recursive: true });
          cpSync(from, target, { recursive: true, verbatimSymlinks: true });
        }
        break;
      }
      case 'RUN':
        runStep(ins.args, st, where);
        break;
      default:
        fail(`${where}: ${ins.keyword} is not replayed`);
    }
  }
  return st;
}

/** Carries out the npm/node commands of a RUN; skips apt-get and apt list clean-ups; refuses the rest. */
function runStep(args: string, st: StageState, where: string): void {
  if (execForm(args)) fail(`${where}: RUN in exec form is not replayed`);
  if (/[;|<>`]|\$\(/.test(args.replace(/&&/g, ''))) fail(`${where}: RUN uses shell syntax other than && (not replayed): ${args}`);
  for (const part of args.split('&&').map((p) => p.trim())) {
    const argv = shellWords(part);
    const cmd = argv[0];
    if (cmd === 'apt-get') continue; // packages checked in replayStage
    if (cmd === 'rm' && argv.slice(1).every((a) => a.startsWith('-') || a.startsWith('/var/lib/apt/') || a.startsWith('/var/cache/apt/'))) continue;
    if (cmd !== 'npm' && cmd !== 'node') fail(`${where}: "${part}" is not replayed (only npm and node commands, and apt-get)`);
    const t0 = Date.now();
    const cwd = join(st.root, st.workdir);
    const r = spawnSync(cmd, argv.slice(1), {
      cwd,
      env: { ...hostEnv(), ...Object.fromEntries(st.env) },
      encoding: 'utf8',
      maxBuffer: 64 * 1024 * 1024,
      timeout: 10 * 60_000,
    });
    if (r.status !== 0) {
      console.error(r.stdout?.slice(-4000), r.stderr?.slice(-4000));
      fail(`${where}: "${part}" failed (${r.error?.message ?? `exit ${r.status}`})`);
    }
    say(`     RUN ${part} (${secs(t0)})`);
  }
}

// ---------------------------------------------------------------- 4-5. run the image

function freePort(): Promise<number> {
  return new Promise((ok, ko) => {
    const s = createServer();
    s.once('error', ko);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      const port = typeof a === 'object' && a ? a.port : 0;
      s.close(() => ok(port));
    });
  });
}

function idsOf(user: string | undefined): { uid?: number; gid?: number } {
  if (!user || process.getuid?.() !== 0) return {};
  const [u, g] = user.split(':');
  if (!/^\d+$/.test(u)) return {};
  return { uid: Number(u), gid: g !== undefined && /^\d+$/.test(g) ? Number(g) : Number(u) };
}

/** The literal env of the first container of deploy/deployment.yaml (values from Secrets are left out). */
function deploymentEnv(): Record<string, string> {
  const require = createRequire(import.meta.url);
  const { parse } = require('yaml') as { parse(text: string): unknown };
  const doc = parse(readFileSync(join(repo, 'deploy', 'deployment.yaml'), 'utf8')) as {
    spec?: { template?: { spec?: { containers?: { env?: { name: string; value?: unknown }[] }[] } } };
  };
  const env = doc.spec?.template?.spec?.containers?.[0]?.env ?? fail('deploy/deployment.yaml has no container env');
  return Object.fromEntries(env.filter((e) => e.value !== undefined).map((e) => [e.name, String(e.value)]));
}

/** The small network from API.md, 3 data points; W = 3·2 + 3 + 1·3 + 1 = 13. */
const HESSIAN_REQUEST = {
  network: {
    layers: [
      { weights: [[0.1, -0.2], [0.3, 0.4], [0.5, -0.6]], bias: [0.0, 0.1, -0.1], activation: 'tanh' },
      { weights: [[0.2, -0.1, 0.3]], bias: [0.05], activation: 'identity' },
    ],
  },
  inputs: [[0.5, -1.0], [1.5, 0.25], [-0.75, 0.8]],
  targets: [[0.3], [-0.2], [0.9]],
  loss: 'sum-of-squares',
  method: 'exact',
};

async function runImage(st: StageState, tmp: string, as: string, overrides: Record<string, string> = {}): Promise<void> {
  let argv = [...st.entrypoint, ...st.cmd];
  const env: Record<string, string> = { PATH: process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin' };
  // This machine's OpenBLAS settings for its processor (see the environment notes), not the image's.
  for (const [k, v] of Object.entries(process.env)) if (k.startsWith('OPENBLAS_') && v !== undefined) env[k] = v;
  Object.assign(env, Object.fromEntries(st.env), overrides);
  const port = await freePort();
  env.HOST = '127.0.0.1';
  env.PORT = String(port);
  if (argv[0] && isAbsolute(argv[0]) && !existsSync(argv[0])) {
    if (!/(^|\/)tini$/.test(argv[0])) fail(`ENTRYPOINT ${argv[0]} does not exist on this machine`);
    say(`note ${argv[0]} is not installed here (apt-get install tini): starting CMD without it`);
    argv = st.cmd;
  } else if (/(^|\/)tini$/.test(argv[0] ?? '')) {
    // In the container tini is PID 1; here it is not, and registers as a subreaper instead.
    env.TINI_SUBREAPER = '1';
  }
  const ids = idsOf(st.user);
  const cwd = join(st.root, st.workdir);
  say(`     start (${as}): ${argv.join(' ')} in ${st.workdir}${ids.uid !== undefined ? ` as ${ids.uid}:${ids.gid}` : ''}, HOST=127.0.0.1 PORT=${port}`);
  const logFile = join(tmp, 'server.log');
  const log: string[] = [];
  const child: ChildProcess = spawn(argv[0], argv.slice(1), { cwd, env, ...ids, stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout?.on('data', (b: Buffer) => log.push(b.toString()));
  child.stderr?.on('data', (b: Buffer) => log.push(b.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((ok) => child.on('exit', (code, signal) => ok({ code, signal })));
  let exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  void exited.then((e) => (exit = e));
  const dumpLog = (): void => {
    writeFileSync(logFile, log.join(''));
    console.error(`--- service output (last 40 lines; all in ${logFile}) ---\n${log.join('').split('\n').slice(-40).join('\n')}`);
  };

  try {
    await step(`${as}: HEALTHCHECK passes`, async () => {
      const hc = st.healthcheck ?? fail('no HEALTHCHECK');
      const f = hc.flags;
      const interval = durationMs(f.get('interval') ?? '30s');
      const timeout = durationMs(f.get('timeout') ?? '30s');
      const deadline = Date.now() + durationMs(f.get('start-period') ?? '0s') + interval * Number(f.get('retries') ?? 3);
      for (let n = 1; ; n++) {
        if (exit) fail(`the service exited before it was healthy (code ${exit.code}, signal ${exit.signal})`);
        const r = spawnSync(hc.argv[0], hc.argv.slice(1), { cwd, env, ...ids, timeout, encoding: 'utf8' });
        if (r.status === 0) {
          say(`     healthy after ${n} run(s) of: ${hc.argv.map((a) => (/\s/.test(a) ? JSON.stringify(a) : a)).join(' ').slice(0, 100)}…`);
          return;
        }
        if (Date.now() > deadline) fail(`HEALTHCHECK still failing after start-period + retries × interval (${r.stderr?.trim() || `exit ${r.status}`})`);
        await sleep(250);
      }
    });

    await step(`${as}: GET /health reports the linear-algebra backend the image promises`, async () => {
      const res = await fetch(`http://127.0.0.1:${port}/health`, { signal: AbortSignal.timeout(10_000) });
      const body = (await res.json()) as { linalg?: string | { backend?: string } };
      say(`     /health: ${JSON.stringify(body)}`);
      const got = typeof body.linalg === 'string' ? body.linalg : body.linalg?.backend;
      const want = env.CURVATURE_LINALG;
      if (want && want !== 'auto' && got !== want) fail(`/health reports the ${got} backend; the image sets CURVATURE_LINALG=${want}`);
    });

    await step(`${as}: POST /hessian answers 200 with a symmetric 13 × 13 Hessian`, async () => {
      const res = await fetch(`http://127.0.0.1:${port}/hessian`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/json' },
        body: JSON.stringify(HESSIAN_REQUEST),
        signal: AbortSignal.timeout(30_000),
      });
      const text = await res.text();
      if (res.status !== 200) fail(`POST /hessian answered ${res.status}: ${text.slice(0, 500)}`);
      const body = JSON.parse(text) as { parameterCount?: number; hessian?: number[][] };
      const H = body.hessian;
      if (body.parameterCount !== 13 || !Array.isArray(H) || H.length !== 13 || !H.every((r) => Array.isArray(r) && r.length === 13)) {
        fail(`unexpected answer shape: ${text.slice(0, 300)}`);
      }
      let scale = 0;
      let asym = 0;
      for (let i = 0; i < 13; i++) {
        for (let j = 0; j < 13; j++) {
          if (!Number.isFinite(H![i][j])) fail(`H[${i}][${j}] = ${H![i][j]}`);
          scale = Math.max(scale, Math.abs(H![i][j]));
          asym = Math.max(asym, Math.abs(H![i][j] - H![j][i]));
        }
      }
      if (scale === 0) fail('the Hessian is all zeros');
      if (asym > 1e-12 * Math.max(1, scale)) fail(`the Hessian is not symmetric: max |H - Hᵀ| = ${asym}`);
    });

    await step(`${as}: SIGTERM, the service exits with 0`, async () => {
      // The service's own grace period for this environment, plus 5 s to exit.
      const grace = loadConfig(env).shutdownTimeoutMs + 5_000;
      child.kill('SIGTERM');
      const e = await Promise.race([exited, sleep(grace, undefined, { ref: false })]);
      if (!e) {
        child.kill('SIGKILL');
        fail(`still running ${grace} ms after SIGTERM`);
      } else if (e.code !== 0) {
        fail(`exited with code ${e.code} (signal ${e.signal}) after SIGTERM: expected 0`);
      }
    });
  } catch (e) {
    if (!exit) child.kill('SIGKILL');
    dumpLog();
    throw e;
  }
}

// ---------------------------------------------------------------- main

async function main(): Promise<void> {
  say(`Dockerfile and .dockerignore of ${repo}; Node ${process.version} on this machine`);
  const df = await step('lint (dockerfile-utils, dockerfilelint) and required properties', lintAndProperties);
  if (args.has('--lint-only')) return;

  const tmp = mkdtempSync(join(tmpdir(), 'container-check-'));
  // The service runs as the image's USER, which must be able to reach (not write) its files.
  chmodSync(tmp, 0o755);
  try {
    const context = join(tmp, 'context');
    const { files, bytes } = await step('build context from .dockerignore', () => copyContext(context));
    say(`     ${files} files, ${(bytes / 1024).toFixed(0)} KiB`);
    if (bytes > 16 * 1024 * 1024) fail(`the build context is ${(bytes / 1048576).toFixed(1)} MiB: .dockerignore lets too much in`);

    const states = new Map<number, StageState>();
    const stages = neededStages(df);
    for (const s of stages) {
      const bases = s.base === stageNamed(df, s.base, s.index)?.name ? `stage ${s.base}` : `${s.base}, replayed with this machine's Node ${process.version}`;
      const st = await step(`stage ${s.name} (FROM ${bases})`, () => replayStage(df, s, states, context, join(tmp, 'stages')));
      states.set(s.index, st);
    }
    const final = states.get(stages.at(-1)!.index)!;
    const dev = ['typescript', 'eslint', 'tsx'].filter((d) => existsSync(join(final.root, final.workdir, 'node_modules', d)));
    if (dev.length) fail(`the runtime stage has dev dependencies: ${dev.join(', ')}`);
    await runImage(final, tmp, 'docker run');
    // Then as the Kubernetes Deployment runs it: the image's ENV overridden by the pod's env.
    const podEnv = deploymentEnv();
    say(`     the Deployment's env: ${Object.entries(podEnv).map(([k, v]) => `${k}=${v}`).join(' ')}`);
    await runImage(final, tmp, 'deploy/deployment.yaml', podEnv);
  } finally {
    if (args.has('--keep')) say(`kept ${tmp}`);
    else rmSync(tmp, { recursive: true, force: true });
  }
}

main().then(
  () => say(`passed in ${secs(started)}`),
  (e: unknown) => {
    console.error(`[container:check] FAILED: ${e instanceof CheckFailed ? e.message : e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
    process.exitCode = 1;
  },
);
