/**
 * Writes openapi/openapi.json from the app, the same document GET /openapi.json serves.
 * `npm run openapi`; a test fails when the committed file differs.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { buildApp } from '../src/app.ts';

/** The OpenAPI document as the committed file holds it. */
export async function openapiText(): Promise<string> {
  const app = await buildApp();
  await app.ready();
  const text = `${JSON.stringify(app.swagger(), null, 2)}\n`;
  await app.close();
  return text;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const out = new URL('../openapi/openapi.json', import.meta.url);
  mkdirSync(new URL('.', out), { recursive: true });
  writeFileSync(out, await openapiText());
  console.log(`wrote ${out.pathname}`);
}
