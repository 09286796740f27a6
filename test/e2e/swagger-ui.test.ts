/**
 * Swagger UI in a real browser: Debian's Chromium, headless, driven by playwright-core (no browser
 * download). For POST /hessian and POST /hessian/inverse it does what a person exploring the API
 * does: opens /docs, expands the operation, presses "Try it out" and "Execute" with the example
 * body as it stands, and expects a 200 whose body holds the matrix.
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
import { chromium, type Browser, type Page } from 'playwright-core';
import { buildApp } from '../../src/app.ts';

const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
// The flags this machine needs (no network but loopback; root; no GPU): see the machine notes.
const FLAGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];

/** Expands `operationId`'s block, tries it out with its example body and returns the live answer's status and body text. */
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
  await page.locator('#operations-hessian-post_hessian').waitFor({ timeout: 60_000 });

  const checks: [string, RegExp, string][] = [
    ['post_hessian', /"hessian"\s*:\s*\[\s*\[\s*-?\d/, 'hessian'],
    ['post_hessian_inverse', /"inverse"\s*:\s*\[\s*\[\s*-?\d[\s\S]*"logDeterminant"|"logDeterminant"[\s\S]*"inverse"\s*:\s*\[\s*\[/, 'inverse'],
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
