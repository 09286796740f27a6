/**
 * Writes the OpenAPI document's generated parts: schemas/answer-examples.ts, the service's own answers
 * to the request examples (each sent to the app in this process), then openapi/openapi.json, the
 * document GET /openapi.json serves (in a second process, which loads the answers just written).
 * `npm run openapi`; tests fail when either committed file is stale.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { buildApp } from '../src/app.ts';

/** The OpenAPI document as the committed file holds it. */
export async function openapiText(): Promise<string> {
  const app = await buildApp();
  await app.ready();
  const text = `${JSON.stringify(app.swagger(), null, 2)}\n`;
  await app.close();
  return text;
}

interface Doc {
  paths: Record<string, Record<string, {
    operationId?: string;
    requestBody?: { content?: Record<string, { examples?: Record<string, { value: unknown }> }> };
  }>>;
}

/** Every request example of the document: operationId, example name, method, path and body. */
export function requestExamples(doc: unknown): { operationId: string; name: string; method: string; path: string; body: unknown }[] {
  const out = [];
  for (const [path, item] of Object.entries((doc as Doc).paths)) {
    for (const [method, op] of Object.entries(item)) {
      for (const [name, ex] of Object.entries(op.requestBody?.content?.['application/json']?.examples ?? {})) {
        out.push({ operationId: op.operationId ?? `${method} ${path}`, name, method: method.toUpperCase(), path, body: ex.value });
      }
    }
  }
  return out;
}

/** Entries smaller than this part of their array's largest are rounding noise of a zero. */
const ZERO = 1e-12;

/** Numbers to 6 significant digits (integers as they are), each array's noise around zero set to 0. */
export function roundAnswer(v: unknown, scale = 0): unknown {
  if (typeof v === 'number') {
    if (Number.isInteger(v)) return v;
    return Math.abs(v) < ZERO * scale ? 0 : Number(v.toPrecision(6));
  }
  if (Array.isArray(v)) {
    let top = scale;
    if (scale === 0) {
      const walk = (x: unknown): void => {
        if (typeof x === 'number') top = Math.max(top, Math.abs(x));
        else if (Array.isArray(x)) x.forEach(walk);
      };
      walk(v);
    }
    return v.map((x) => roundAnswer(x, top));
  }
  if (typeof v === 'object' && v !== null) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, roundAnswer(x)]));
  return v;
}

/** schemas/answer-examples.ts as it should be: the app's answers to its request examples. */
export async function answerExamplesText(): Promise<string> {
  const app = await buildApp();
  await app.ready();
  const answers = new Map<string, [string, unknown][]>();
  try {
    for (const ex of requestExamples(app.swagger())) {
      const r = await app.inject({ method: ex.method as 'POST', url: ex.path, payload: ex.body as object });
      if (r.statusCode !== 200) throw new Error(`${ex.operationId} example '${ex.name}': ${r.statusCode} ${r.body}`);
      if (!answers.has(ex.operationId)) answers.set(ex.operationId, []);
      answers.get(ex.operationId)?.push([ex.name, roundAnswer(r.json())]);
    }
  } finally {
    await app.close();
  }
  const lines = [
    '/**',
    ' * Written by `npm run openapi` (scripts/write-openapi.ts); do not edit. The service\'s own answers to the',
    ' * request examples of the OpenAPI document, by operationId and example name, rounded to 6 significant',
    ' * digits (entries below 1e-12 of their array\'s largest set to 0). Swagger UI shows them beside the',
    ' * requests; test/routes/openapi.test.ts checks them against the live answers.',
    ' */',
    'export const ANSWER_EXAMPLES: Readonly<Record<string, Readonly<Record<string, unknown>>>> = {',
  ];
  for (const [operationId, list] of answers) {
    lines.push(`  ${operationId}: {`);
    for (const [name, value] of list) lines.push(`    ${name}: ${JSON.stringify(value)},`);
    lines.push('  },');
  }
  lines.push('};', '');
  return lines.join('\n');
}

if (import.meta.url === `file://${process.argv[1]}`) {
  if (process.argv[2] === '--document') {
    const out = new URL('../openapi/openapi.json', import.meta.url);
    mkdirSync(new URL('.', out), { recursive: true });
    writeFileSync(out, await openapiText());
    console.log(`wrote ${out.pathname}`);
  } else {
    const examples = new URL('../schemas/answer-examples.ts', import.meta.url);
    writeFileSync(examples, await answerExamplesText());
    console.log(`wrote ${examples.pathname}`);
    // the document imports the answers: a fresh process reads the file just written
    execFileSync(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), '--document'], { stdio: 'inherit' });
  }
}
