/**
 * Swagger UI in a real browser: Debian's Chromium, headless, driven by playwright-core (no browser
 * download). For POST /hessian and POST /hessian/inverse it does what a person exploring the API
 * does: opens /docs, expands the operation, presses "Try it out" and "Execute" with the example
 * body as it stands, and expects a 200 whose body holds the matrix. A second test reads every
 * operation as rendered: its operationId shown, and every example (each one of every examples list,
 * and Swagger UI's own generated ones) free of the safe-integer bound 9007199254740991, the /hessian
 * answers never showing hessian and diagonal together.
 *
 * CHROMIUM (default /usr/bin/chromium) names the browser; CI installs Debian's chromium package.
 * SWAGGER_SCREENSHOTS=dir keeps a screenshot of each answered operation; on a failure one is
 * always written to the temp folder and named in the message.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type Locator, type Page } from 'playwright-core';
import { buildApp } from '../../src/app.ts';

const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
// The flags this machine needs (no network but loopback; root; no GPU): see the machine notes.
const FLAGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];

/** Expands `operation`'s block (its id is the tag and the operationId), tries it out with its first example body and returns the live answer's status and body text. */
async function tryItOut(page: Page, operation: string): Promise<{ status: string; body: string }> {
  const block = page.locator(`#operations-hessian-${operation}`);
  await block.locator('.opblock-summary').first().click();
  await block.locator('button.try-out__btn').click();
  const editor = block.locator('textarea.body-param__text');
  await editor.waitFor();
  assert.match(await editor.inputValue(), /"network"/, `${operation}: the example body is in the editor`);
  await block.locator('button.execute').click();
  const live = block.locator('.live-responses-table .response');
  await live.first().waitFor({ timeout: 60_000 });
  const status = (await live.first().locator('.response-col_status').innerText()).trim();
  const body = await block.locator('.live-responses-table .response-col_description .microlight, .live-responses-table .response-col_description pre').first().innerText();
  return { status, body };
}

test('Swagger UI in headless Chromium: Try it out on POST /hessian and POST /hessian/inverse answers 200 with the matrix', { timeout: 180_000 }, async (t) => {
  assert.ok(existsSync(CHROMIUM), `no browser at ${CHROMIUM}: install Debian's chromium (apt-get install chromium), or set CHROMIUM`);
  const app = await buildApp();
  t.after(() => app.close());
  const url = await app.listen({ host: '127.0.0.1', port: 0 });

  // Playwright starts Chromium with a fresh, empty --user-data-dir of its own and removes it on close.
  const browser: Browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: FLAGS });
  t.after(() => browser.close());
  const page = await browser.newPage({ viewport: { width: 1280, height: 1600 } });
  const shots = process.env.SWAGGER_SCREENSHOTS;
  if (shots) mkdirSync(shots, { recursive: true });

  await page.goto(`${url}/docs`);
  await page.locator('#operations-hessian-computeHessian').waitFor({ timeout: 60_000 });

  const checks: [string, RegExp, string][] = [
    ['computeHessian', /"hessian"\s*:\s*\[\s*\[\s*-?\d/, 'hessian'],
    ['inverseHessian', /"inverse"\s*:\s*\[\s*\[\s*-?\d[\s\S]*"logDeterminant"|"logDeterminant"[\s\S]*"inverse"\s*:\s*\[\s*\[/, 'inverse'],
  ];
  for (const [operation, shape, name] of checks) {
    let answer: { status: string; body: string } | undefined;
    try {
      answer = await tryItOut(page, operation);
      assert.equal(answer.status, '200', `${operation}: status ${answer.status}, body ${answer.body.slice(0, 500)}`);
      assert.match(answer.body, shape, `${operation}: the answer holds the ${name} matrix`);
      const json = JSON.parse(answer.body) as Record<string, unknown>;
      const matrix = json[name] as number[][];
      assert.equal(matrix.length, json.parameterCount);
      assert.equal(matrix[0].length, json.parameterCount);
      if (shots) await page.screenshot({ path: join(shots, `${operation}.png`), fullPage: true });
    } catch (err) {
      const shot = join(tmpdir(), `swagger-ui-${operation}-failure.png`);
      await page.screenshot({ path: shot, fullPage: true }).catch(() => undefined);
      throw new Error(`${(err as Error).message} (screenshot: ${shot})`, { cause: err });
    }
  }
});

/** The text of every example `block` shows now: request body and answers, JSON and problem+json. */
async function exampleTexts(block: Locator): Promise<string[]> {
  return block.locator('.highlight-code, .example.microlight, .body-param__example').allInnerTexts();
}

test('Swagger UI in headless Chromium: every operation shows its operationId, and no example shows 9007199254740991 or both hessian and diagonal', { timeout: 240_000 }, async (t) => {
  assert.ok(existsSync(CHROMIUM), `no browser at ${CHROMIUM}: install Debian's chromium (apt-get install chromium), or set CHROMIUM`);
  const app = await buildApp();
  t.after(() => app.close());
  const url = await app.listen({ host: '127.0.0.1', port: 0 });

  // the document Swagger UI loads
  const served = await (await fetch(`${url}/docs/json`)).text();
  assert.doesNotMatch(served, /9007199254740991/);
  const doc = JSON.parse(served) as { paths: Record<string, Record<string, { operationId?: string; tags?: string[] }>> };
  const operations = Object.entries(doc.paths).flatMap(([path, item]) => Object.entries(item).map(([method, op]) => ({ name: `${method.toUpperCase()} ${path}`, ...op })));
  assert.deepEqual(operations.filter((o) => !o.operationId).map((o) => o.name), [], 'every operation has an operationId');

  const browser: Browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: FLAGS });
  t.after(() => browser.close());
  const page = await browser.newPage({ viewport: { width: 1280, height: 1600 } });
  await page.goto(`${url}/docs`);
  await page.locator('.opblock').first().waitFor({ timeout: 60_000 });

  // as rendered: one block per operation, showing its operationId (displayOperationId)
  const rendered = await page.locator('.opblock').evaluateAll((els) => els.map((e) => ({ id: e.id, shown: e.querySelector('.opblock-summary-operation-id')?.textContent ?? '' })));
  assert.deepEqual(rendered.map((r) => r.shown).sort(), operations.map((o) => String(o.operationId)).sort());
  for (const r of rendered) assert.ok(r.id.endsWith(`-${r.shown}`), `${r.id} is named after its operationId ${r.shown}`);

  let seen = 0;
  for (const o of operations) {
    const block = page.locator(`#operations-${o.tags?.[0] ?? 'default'}-${o.operationId}`);
    try {
      await block.locator('.opblock-summary').first().click();
      await block.locator('.responses-wrapper').waitFor();
      // every option of every examples list (the request's and each response's), one at a time
      const lists = block.locator('select.examples-select-element');
      const shown = await exampleTexts(block);
      for (let i = 0; i < await lists.count(); i++) {
        const list = lists.nth(i);
        const inAnswer200 = await list.evaluate((e) => e.closest('tr.response')?.getAttribute('data-code') === '200');
        for (const option of await list.locator('option').evaluateAll((els) => els.map((e) => (e as HTMLOptionElement).value))) {
          await list.selectOption(option);
          const texts = await exampleTexts(block);
          shown.push(...texts);
          if (inAnswer200 && o.operationId === 'computeHessian') {
            const answer = await block.locator('tr.response[data-code="200"] .example.microlight').first().innerText();
            assert.match(answer, /"parameterCount"/, `${o.name} example ${option} is shown`);
            assert.ok(!(/"hessian"/.test(answer) && /"diagonal"/.test(answer)), `${o.name} answer example ${option} shows both hessian and diagonal`);
          }
        }
      }
      assert.ok(shown.length > 0, `${o.name} shows examples`);
      for (const text of shown) assert.doesNotMatch(text, /9007199254740991/, `${o.name}: an example shows the safe-integer bound`);
      seen += shown.length;
    } catch (err) {
      const shot = join(tmpdir(), `swagger-ui-${o.operationId}-examples-failure.png`);
      await page.screenshot({ path: shot, fullPage: true }).catch(() => undefined);
      throw new Error(`${(err as Error).message} (screenshot: ${shot})`, { cause: err });
    }
  }
  assert.ok(seen > 50, `${seen} examples read`);

  // the 401's text keeps its placeholder: <key> is not swallowed as an HTML tag
  const unauthorized = await page.locator('#operations-hessian-computeHessian tr.response[data-code="401"] .response-col_description').first().innerText();
  assert.match(unauthorized, /Authorization: Bearer <key>/);
});
