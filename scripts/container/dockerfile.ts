/**
 * Reads the project's Dockerfile into stages and instructions, lints it with two linters from npm,
 * and checks the properties the deployment guide relies on. No Docker engine runs on the
 * project's machines, so `scripts/container-check.ts` replays the stages read here.
 *
 * The reader covers the subset of the Dockerfile syntax this project uses (FROM, RUN, COPY, ENV,
 * WORKDIR, USER, EXPOSE, HEALTHCHECK, ENTRYPOINT, CMD; line continuations; exec and shell forms)
 * and refuses anything else by name, so that the image and its replay cannot drift apart silently.
 */
import { createRequire } from 'node:module';

export interface Instruction {
  /** Upper-case keyword, e.g. `COPY`. */
  readonly keyword: string;
  /** Everything after the keyword, continuation lines joined with a space. */
  readonly args: string;
  /** 1-based line of the keyword. */
  readonly line: number;
}

export interface Stage {
  readonly index: number;
  /** The `AS` name, or the index as a string when there is none. */
  readonly name: string;
  /** Image or earlier stage named by FROM. */
  readonly base: string;
  readonly line: number;
  readonly instructions: Instruction[];
}

export interface Dockerfile {
  readonly stages: Stage[];
}

const KNOWN = new Set(['FROM', 'RUN', 'COPY', 'ENV', 'WORKDIR', 'USER', 'EXPOSE', 'HEALTHCHECK', 'ENTRYPOINT', 'CMD']);

export function parseDockerfile(text: string): Dockerfile {
  const stages: Stage[] = [];
  const lines = text.split(/\r?\n/);
  let pending = '';
  let pendingLine = 0;
  const flush = (): void => {
    const body = pending.trim();
    pending = '';
    if (!body) return;
    const m = /^(\S+)\s*([\s\S]*)$/.exec(body);
    if (!m) return;
    const keyword = m[1].toUpperCase();
    const args = m[2].trim();
    if (!KNOWN.has(keyword)) {
      throw new Error(`Dockerfile line ${pendingLine}: ${keyword} is not replayed by scripts/container-check.ts; extend it or avoid the instruction`);
    }
    if (keyword === 'FROM') {
      const f = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(args);
      if (!f) throw new Error(`Dockerfile line ${pendingLine}: cannot read FROM ${args}`);
      stages.push({ index: stages.length, name: f[2] ?? String(stages.length), base: f[1], line: pendingLine, instructions: [] });
      return;
    }
    const stage = stages.at(-1);
    if (!stage) throw new Error(`Dockerfile line ${pendingLine}: ${keyword} before the first FROM`);
    stage.instructions.push({ keyword, args, line: pendingLine });
  };
  lines.forEach((raw, i) => {
    const line = raw.trim();
    // Comment lines are dropped, also inside a continued instruction, as Docker does.
    if (line.startsWith('#')) return;
    if (!pending && !line) return;
    if (/<<-?["']?[A-Za-z_]/.test(line) && /^(RUN|COPY)\b/i.test(pending + line)) {
      throw new Error(`Dockerfile line ${i + 1}: heredocs are not replayed by scripts/container-check.ts`);
    }
    if (!pending) pendingLine = i + 1;
    if (line.endsWith('\\')) {
      pending += line.slice(0, -1) + ' ';
      return;
    }
    pending += line;
    flush();
  });
  flush();
  if (stages.length === 0) throw new Error('Dockerfile has no FROM');
  return { stages };
}

/** The JSON (exec) form of CMD, ENTRYPOINT, RUN or HEALTHCHECK CMD, or undefined for the shell form. */
export function execForm(args: string): string[] | undefined {
  const t = args.trim();
  if (!t.startsWith('[')) return undefined;
  const v: unknown = JSON.parse(t);
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) throw new Error(`not a JSON array of strings: ${t}`);
  return v as string[];
}

/** Splits leading `--flag=value` options from the rest of an instruction's arguments. */
export function splitFlags(args: string): { flags: Map<string, string>; rest: string } {
  const flags = new Map<string, string>();
  let rest = args.trim();
  for (;;) {
    const m = /^--([a-z-]+)(?:=(\S*))?\s*/.exec(rest);
    if (!m) break;
    flags.set(m[1], m[2] ?? 'true');
    rest = rest.slice(m[0].length);
  }
  return { flags, rest };
}

/**
 * Splits a shell word list: whitespace separates words, except inside single or double quotes;
 * a backslash escapes the next character outside single quotes. Quotes are removed.
 */
export function shellWords(s: string): string[] {
  const words: string[] = [];
  let cur = '';
  let inWord = false;
  let quote: '"' | "'" | undefined;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (quote) {
      if (c === quote) quote = undefined;
      else if (c === '\\' && quote === '"' && i + 1 < s.length) cur += s[++i];
      else cur += c;
    } else if (c === '"' || c === "'") {
      quote = c;
      inWord = true;
    } else if (c === '\\' && i + 1 < s.length) {
      cur += s[++i];
      inWord = true;
    } else if (/\s/.test(c)) {
      if (inWord) words.push(cur);
      cur = '';
      inWord = false;
    } else {
      cur += c;
      inWord = true;
    }
  }
  if (quote) throw new Error(`unterminated ${quote} in: ${s}`);
  if (inWord) words.push(cur);
  return words;
}

/** ENV in both forms: `ENV A=1 B="two words"` and the legacy `ENV A some value`. */
export function envPairs(args: string): [string, string][] {
  const words = shellWords(args);
  if (words.length > 0 && !words[0].includes('=')) return [[words[0], words.slice(1).join(' ')]];
  return words.map((w) => {
    const eq = w.indexOf('=');
    if (eq <= 0) throw new Error(`ENV ${args}: cannot read ${w}`);
    return [w.slice(0, eq), w.slice(eq + 1)];
  });
}

export interface Healthcheck {
  readonly flags: Map<string, string>;
  /** argv to run: the exec form as it is, the shell form through `/bin/sh -c`. */
  readonly argv: string[];
}

export function healthcheckOf(args: string): Healthcheck | undefined {
  const { flags, rest } = splitFlags(args);
  if (/^NONE$/i.test(rest)) return undefined;
  const m = /^CMD\s+([\s\S]+)$/i.exec(rest);
  if (!m) throw new Error(`HEALTHCHECK ${args}: expected CMD`);
  return { flags, argv: execForm(m[1]) ?? ['/bin/sh', '-c', m[1]] };
}

/** Docker's duration syntax as used in HEALTHCHECK flags (`15s`, `1m30s`, `500ms`), in ms. */
export function durationMs(s: string): number {
  const units: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
  let total = 0;
  let rest = s;
  while (rest) {
    const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)/.exec(rest);
    if (!m) throw new Error(`not a duration: ${s}`);
    total += Number(m[1]) * units[m[2]];
    rest = rest.slice(m[0].length);
  }
  return total;
}

/** The instructions of one keyword in a stage, in order. */
export function all(stage: Stage, keyword: string): Instruction[] {
  return stage.instructions.filter((i) => i.keyword === keyword);
}

/** The last instruction of a keyword in a stage (the one that takes effect), if any. */
export function last(stage: Stage, keyword: string): Instruction | undefined {
  return all(stage, keyword).at(-1);
}

/** The stage named by `name` (an `AS` name or an index), if it is an earlier stage. */
export function stageNamed(df: Dockerfile, name: string, before: number): Stage | undefined {
  return df.stages.find((s) => s.index < before && (s.name === name || String(s.index) === name));
}

/** The packages an `apt-get install` in the RUN instructions of a stage installs. */
export function aptPackages(stage: Stage): string[] {
  const pkgs: string[] = [];
  for (const run of all(stage, 'RUN')) {
    for (const part of run.args.split('&&')) {
      const w = shellWords(part.trim());
      if (w[0] === 'apt-get' && w.includes('install')) pkgs.push(...w.slice(w.indexOf('install') + 1).filter((x) => !x.startsWith('-')));
    }
  }
  return pkgs;
}

/** ENV of a stage after its instructions (not including its base image's). */
export function stageEnv(stage: Stage): Map<string, string> {
  const env = new Map<string, string>();
  for (const i of all(stage, 'ENV')) for (const [k, v] of envPairs(i.args)) env.set(k, v);
  return env;
}

/** The glibc mmap threshold the image runs the service with (README, Configuration). */
import { SERVICE_MALLOC_MMAP_THRESHOLD } from '../../src/config.ts';
export { SERVICE_MALLOC_MMAP_THRESHOLD };

/**
 * The properties issue 6 and the deployment guide rely on. Returns one sentence per violation;
 * an empty list means the Dockerfile has them all.
 */
export function checkImageProperties(df: Dockerfile, startScript: string | undefined): string[] {
  const problems: string[] = [];
  const final = df.stages.at(-1)!;
  const external = df.stages.filter((s) => !stageNamed(df, s.base, s.index));
  if (df.stages.length < 2) problems.push('not a multi-stage build: the toolchain would ship in the image');
  for (const s of external) {
    if (!/^node:(22|24)(\.[\d.]+)?-[a-z]+-slim$/.test(s.base)) {
      problems.push(`stage ${s.name} starts FROM ${s.base}: use a maintained Node slim image with a Debian release tag, e.g. node:24-bookworm-slim (Node 22 or 24)`);
    }
  }
  if (stageNamed(df, final.base, final.index)) problems.push(`the runtime stage builds on stage ${final.base}: start it from a clean Node image`);

  const user = last(final, 'USER')?.args.split(':')[0];
  if (!user) problems.push('the runtime stage has no USER: the service would run as root');
  else if (user === 'root' || user === '0') problems.push(`the runtime stage runs as ${user}`);
  else if (!/^\d+$/.test(user)) problems.push(`USER ${user} is a name: use the numeric id so that Kubernetes' runAsNonRoot can verify it`);

  const env = stageEnv(final);
  if (env.get('HOST') !== '0.0.0.0') problems.push('the runtime stage does not set ENV HOST=0.0.0.0: the service would listen on loopback only');
  if (env.get('NODE_ENV') !== 'production') problems.push('the runtime stage does not set ENV NODE_ENV=production');
  if (env.get('MALLOC_MMAP_THRESHOLD_') !== SERVICE_MALLOC_MMAP_THRESHOLD) {
    problems.push(`the runtime stage does not set ENV MALLOC_MMAP_THRESHOLD_=${SERVICE_MALLOC_MMAP_THRESHOLD}: freed answers would stay in glibc's arenas and the RSS would not come back`);
  }

  const expose = last(final, 'EXPOSE')?.args.split(/\s+/)[0]?.split('/')[0];
  if (!expose) problems.push('the runtime stage EXPOSEs no port');
  else if (env.get('PORT') !== undefined && env.get('PORT') !== expose) problems.push(`EXPOSE ${expose} differs from ENV PORT=${env.get('PORT')}`);

  const entry = last(final, 'ENTRYPOINT');
  const entryArgv = entry ? execForm(entry.args) : undefined;
  if (!entryArgv || !/(^|\/)tini$/.test(entryArgv[0] ?? '')) problems.push('ENTRYPOINT is not tini in exec form: SIGTERM would not reach Node as PID 1');
  if (!aptPackages(final).includes('tini')) problems.push('the runtime stage does not install tini');
  const buildTools = aptPackages(final).filter((p) => /^(g\+\+|gcc|make|python3|build-essential)$|-dev$/.test(p));
  if (buildTools.length) problems.push(`the runtime stage installs build tools: ${buildTools.join(', ')}`);
  if (!aptPackages(final).some((p) => p.startsWith('libopenblas'))) problems.push('the runtime stage does not install the OpenBLAS runtime library (libopenblas0)');

  const cmd = last(final, 'CMD');
  const cmdArgv = cmd ? execForm(cmd.args) : undefined;
  if (!cmdArgv) problems.push('CMD is missing or not in exec form');
  else if (startScript !== undefined && cmdArgv.join(' ') !== startScript.trim()) {
    problems.push(`CMD ${JSON.stringify(cmdArgv)} differs from package.json's start script "${startScript}"`);
  }

  const hc = last(final, 'HEALTHCHECK');
  const health = hc ? healthcheckOf(hc.args) : undefined;
  if (!health) problems.push('the runtime stage has no HEALTHCHECK');
  else {
    if (!health.argv.join(' ').includes('/health')) problems.push('the HEALTHCHECK does not call /health');
    if (/\b(curl|wget)\b/.test(health.argv.join(' '))) problems.push('the HEALTHCHECK uses curl or wget, which the slim image lacks: use node');
  }

  const runs = df.stages.flatMap((s) => all(s, 'RUN').map((r) => r.args));
  if (!runs.some((r) => /\bnpm (ci|prune|install)\b[^&]*--omit=dev/.test(r))) {
    problems.push('no stage installs production dependencies only (npm ci --omit=dev)');
  }
  return problems;
}

export interface LintFinding {
  readonly linter: string;
  readonly line: number;
  readonly message: string;
}

interface DockerfilelintItem {
  title: string;
  description: string;
  line: number | string;
  rule: string;
}

/**
 * Lints with two linters from npm: dockerfile-utils (the validator of the VS Code Docker
 * extension: instruction syntax, flags, durations, ports, stage names) and dockerfilelint (best
 * practice: apt-get hygiene, sudo, untagged or `latest` images). Two dockerfilelint findings are
 * known false positives and dropped, each only where it is false: `missing_tag` on a FROM that
 * names an earlier build stage, and `invalid_format` on a HEALTHCHECK whose flags are all valid
 * (its flag pattern stops at the hyphen of `--start-period`).
 */
export function lintDockerfile(text: string, configDir: string): LintFinding[] {
  const require = createRequire(import.meta.url);
  const utils = require('dockerfile-utils') as { validate(content: string): { message: string; severity?: number; range: { start: { line: number } } }[] };
  const dfl = require('dockerfilelint') as { run(configPath: string, content: string): DockerfilelintItem[] };
  const findings: LintFinding[] = [];
  for (const d of utils.validate(text)) {
    findings.push({ linter: 'dockerfile-utils', line: d.range.start.line + 1, message: d.message });
  }
  const df = parseDockerfile(text);
  const byLine = new Map<number, Instruction | { keyword: 'FROM'; args: string; line: number }>();
  for (const s of df.stages) {
    byLine.set(s.line, { keyword: 'FROM', args: `${s.base}`, line: s.line });
    for (const i of s.instructions) byLine.set(i.line, i);
  }
  for (const item of dfl.run(configDir, text)) {
    const line = Number(item.line);
    const at = byLine.get(line);
    if (item.rule === 'missing_tag' && at?.keyword === 'FROM') {
      const stage = df.stages.find((s) => s.line === line);
      if (stage && stageNamed(df, stage.base, stage.index)) continue;
    }
    if (item.rule === 'invalid_format' && at?.keyword === 'HEALTHCHECK') {
      const { flags } = splitFlags(at.args);
      const valid = [...flags].every(([k, v]) => ['interval', 'timeout', 'start-period', 'start-interval', 'retries'].includes(k) && v !== 'true');
      if (valid && healthcheckOf(at.args)) continue;
    }
    findings.push({ linter: 'dockerfilelint', line, message: `${item.title} (${item.rule}): ${item.description}` });
  }
  return findings.sort((a, b) => a.line - b.line);
}
