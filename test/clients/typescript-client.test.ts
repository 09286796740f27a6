/**
 * A TypeScript client generated from the OpenAPI document, as a user would make one: openapi-typescript
 * turns openapi/openapi.json into types (one per component, one entry per operationId), a small
 * usage file calls the main operations with bodies typed by them, tsc type-checks both in strict mode
 * (with lines that must not compile, so that loose `any` types would fail), and the usage file then
 * runs against the live service.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import openapiTS, { astToString } from 'openapi-typescript';
import { buildApp } from '../../src/app.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** What a user writes against the generated types: a typed POST by operationId, and calls of the main operations. */
const USAGE = `import type { components, operations } from './api.ts';

type Schemas = components['schemas'];
type JsonBody<O extends keyof operations> = operations[O] extends { requestBody: { content: { 'application/json': infer B } } } ? B : never;
type JsonAnswer<O extends keyof operations> = operations[O]['responses'][200] extends { content: { 'application/json': infer A } } ? A : never;
/** The compute operations; the GETs are health, the probes and /metrics (text). */
type PostOperation = Exclude<keyof operations, 'health' | 'checkLiveness' | 'checkReadiness' | 'getMetrics'>;

const PATHS = {
  computeJacobian: '/jacobian',
  computeHessian: '/hessian',
  hessianVectorProduct: '/hessian/vector-product',
  inverseHessian: '/hessian/inverse',
  kfacFactors: '/hessian/kfac',
  hessianEigen: '/hessian/eigen',
  inverseVectorProduct: '/hessian/inverse-vector-product',
} as const satisfies Record<PostOperation, string>;

export async function run(base: string) {
  async function post<O extends PostOperation>(operation: O, body: JsonBody<O>): Promise<JsonAnswer<O>> {
    const r = await fetch(base + PATHS[operation], { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    if (!r.ok) {
      const problem = (await r.json()) as Schemas['Problem'];
      throw new Error(\`\${operation}: \${problem.status} \${problem.code ?? ''} \${problem.detail}\`);
    }
    return (await r.json()) as JsonAnswer<O>;
  }

  const network: Schemas['Network'] = {
    layers: [
      { weights: [[0.1, -0.2], [0.3, 0.4], [0.5, -0.6]], bias: [0.0, 0.1, -0.1], activation: 'tanh' },
      { weights: [[0.2, -0.1, 0.3]], bias: null, activation: 'identity' },
    ],
  };
  const inputs: Schemas['Inputs'] = [[0.5, -1.0], [1.5, 0.2], [-0.3, 0.8]];
  const targets: Schemas['Targets'] = [[0.3], [-0.2], [0.1]];
  const loss: Schemas['Loss'] = 'sum-of-squares';

  const jacobian = await post('computeJacobian', { network, inputs, wrt: 'parameters' });
  const hessian = await post('computeHessian', { network, inputs, targets, loss, method: 'exact' });
  const diagonal = await post('computeHessian', { network, inputs, targets, loss, method: 'diagonal', reduction: 'mean' });
  const product = await post('hessianVectorProduct', { network, inputs, targets, loss, vector: [1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0] });
  const inverse = await post('inverseHessian', { network, inputs, targets, loss, damping: 0.1, method: 'cholesky' });
  const eigen = await post('hessianEigen', { network, inputs, targets, loss, count: 2, which: 'largest' });
  const solve = await post('inverseVectorProduct', { network, inputs, targets, loss, damping: 0.1, vectors: [[1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]], method: 'cg' });
  const kfac = await post('kfacFactors', { network, inputs, targets, loss, parameters: { layers: [-1] }, damping: 0.1 });
  const health = (await (await fetch(base + '/health')).json()) as JsonAnswer<'health'>;
  const readiness = (await (await fetch(base + '/health/ready')).json()) as JsonAnswer<'checkReadiness'>;

  // the /hessian answer is one of its variants: narrowed by its fields
  const matrix: number[][] = 'hessian' in hessian ? hessian.hessian : [];
  const diag: number[] = 'diagonal' in diagonal ? diagonal.diagonal : [];
  const trace: number | undefined = 'diagonal' in diagonal ? diagonal.trace : undefined;
  const firstFactor: number[][] = kfac.layers[0].inputFactor;
  const eigenMethod: 'lanczos' | 'dense' = eigen.method;
  const workers: number = health.pool.workers;
  const ready: boolean = readiness.ready;

  // @ts-expect-error an unknown loss is not a Loss
  const wrongLoss: Schemas['Loss'] = 'mse';
  // @ts-expect-error a request needs its network
  const noNetwork: JsonBody<'computeHessian'> = { inputs, targets, loss };
  // @ts-expect-error no method of this name
  const wrongMethod: JsonBody<'computeHessian'> = { network, inputs, targets, loss, method: 'newton' };
  // @ts-expect-error a /hessian answer need not hold a diagonal: narrow it first
  const unnarrowed: number[] = hessian.diagonal;
  // @ts-expect-error no such operation
  const noOperation: keyof operations = 'computeEverything';
  void [wrongLoss, noNetwork, wrongMethod, unnarrowed, noOperation];

  const retryAfter: components['headers']['Retry-After'] = 1;
  return { jacobian, matrix, diag, trace, product, inverse, eigen, solve, firstFactor, eigenMethod, workers, ready, retryAfter };
}
`;

test('a TypeScript client generated from the document by openapi-typescript type-checks, with typed bodies for the main operations, and runs against the service', { timeout: 180_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'curvature-ts-client-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const doc = JSON.parse(readFileSync(join(ROOT, 'openapi', 'openapi.json'), 'utf8'));
  // defaultNonNullable: false, as docs/api-conventions.md says: a request field with a default is optional
  // (openapi-typescript's default makes it required, since it cannot tell a request's schema from an answer's)
  const types = astToString(await openapiTS(doc, { defaultNonNullable: false }));
  // one type per component, one entry per operationId
  for (const name of ['Network', 'Layer', 'HessianRequest', 'HessianAnswer', 'HessianDiagonalAnswer', 'Problem', 'Health']) assert.match(types, new RegExp(`\\b${name}: `), name);
  for (const id of ['computeHessian', 'computeJacobian', 'hessianEigen', 'inverseVectorProduct', 'health']) assert.match(types, new RegExp(`\\b${id}: \\{`), id);
  writeFileSync(join(dir, 'api.ts'), types);
  writeFileSync(join(dir, 'usage.ts'), USAGE);
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ type: 'module' }));
  writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify({
    compilerOptions: {
      target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, noEmit: true, noUnusedLocals: true,
      allowImportingTsExtensions: true, verbatimModuleSyntax: true, skipLibCheck: true, lib: ['ES2022'],
      types: ['node'], typeRoots: [join(ROOT, 'node_modules', '@types')],
    },
    files: ['api.ts', 'usage.ts'],
  }));
  try {
    execFileSync(process.execPath, [join(ROOT, 'node_modules', 'typescript', 'lib', 'tsc.js'), '-p', dir], { encoding: 'utf8', stdio: 'pipe' });
  } catch (err) {
    assert.fail(`tsc rejects the generated client or its use:\n${(err as { stdout?: string }).stdout ?? err}`);
  }

  // the same calls, run: the types describe what the service answers
  const app = await buildApp();
  t.after(() => app.close());
  const base = await app.listen({ host: '127.0.0.1', port: 0 });
  const { run } = await import(pathToFileURL(join(dir, 'usage.ts')).href) as { run(base: string): Promise<Record<string, unknown>> };
  const out = await run(base);
  const w = 3 * 2 + 3 + 3; // the output layer has no bias
  assert.equal((out.matrix as number[][]).length, w);
  assert.equal((out.diag as number[]).length, w);
  assert.ok(Math.abs((out.diag as number[]).reduce((a, b) => a + b, 0) - (out.trace as number)) < 1e-12);
  assert.equal((out.firstFactor as number[][]).length, 3);
  assert.equal(out.eigenMethod, 'dense');
  assert.equal(typeof out.workers, 'number');
  assert.equal(typeof out.ready, 'boolean');
});
