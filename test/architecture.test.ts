/**
 * The house rules that a reader should be able to trust without reading every file: no import
 * cycle among src/, routes/ and schemas/ (type imports count), the compute core imports nothing
 * from outside itself but ml-matrix and Node's own modules, and every refusal code is documented
 * in the README and the OpenAPI document.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ERROR_CODES } from '../src/errors.ts';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

function sources(dir: string): string[] {
  const out: string[] = [];
  const walk = (p: string) => {
    if (statSync(p).isDirectory()) for (const e of readdirSync(p)) walk(join(p, e));
    else if (p.endsWith('.ts')) out.push(p);
  };
  walk(join(ROOT, dir));
  return out;
}

/** Every module specifier a file imports or re-exports, type-only ones included. */
function specifiers(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const found: string[] = [];
  for (const m of text.matchAll(/^\s*(?:import|export)\b[^'"]*?\bfrom\s+'([^']+)'/gms)) found.push(m[1]);
  for (const m of text.matchAll(/^\s*import\s+'([^']+)'/gm)) found.push(m[1]);
  return found;
}

const files = [...sources('src'), ...sources('routes'), ...sources('schemas')];
const graph = new Map<string, string[]>();
for (const f of files) {
  graph.set(f, specifiers(f).filter((s) => s.startsWith('.')).map((s) => resolve(dirname(f), s)));
}

test('no import cycle among src/, routes/ and schemas/ (type imports count)', () => {
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const cycles: string[] = [];
  const visit = (f: string) => {
    if (state.get(f) === 'done') return;
    if (state.get(f) === 'open') {
      cycles.push([...stack.slice(stack.indexOf(f)), f].map((p) => relative(ROOT, p)).join(' → '));
      return;
    }
    state.set(f, 'open');
    stack.push(f);
    for (const g of graph.get(f) ?? []) visit(g);
    stack.pop();
    state.set(f, 'done');
  };
  for (const f of graph.keys()) visit(f);
  assert.deepEqual(cycles, []);
});

test('src/core/ imports nothing from outside itself but ml-matrix and Node\'s own modules', () => {
  const core = join(ROOT, 'src', 'core');
  const outside: string[] = [];
  for (const f of sources('src/core')) {
    for (const s of specifiers(f)) {
      const ok = s.startsWith('.') ? resolve(dirname(f), s).startsWith(core + '/') : s === 'ml-matrix' || s.startsWith('node:');
      if (!ok) outside.push(`${relative(ROOT, f)} imports ${s}`);
    }
  }
  assert.deepEqual(outside, []);
});

test('every refusal code of the catalogue is in the README and in the OpenAPI document', () => {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const doc = readFileSync(join(ROOT, 'openapi', 'openapi.json'), 'utf8');
  assert.deepEqual(ERROR_CODES.filter((c) => !readme.includes(`\`${c}\``)), [], 'codes missing from the README');
  assert.deepEqual(ERROR_CODES.filter((c) => !doc.includes(`"${c}"`)), [], 'codes missing from openapi/openapi.json');
});
