/** A short property-based run in the gate: valid and near-valid requests never get a 5xx or an undocumented answer. */
import { test } from 'node:test';
import { build } from '../helpers/http.ts';
import { fuzz, type Tally } from '../helpers/fuzz.ts';

test('200 generated requests, valid and near-valid, get only statuses and content types the OpenAPI document lists, never a 5xx', async (t) => {
  const app = await build(t, { config: { workers: 2 } });
  const tally: Tally = new Map();
  await fuzz(app, 200, undefined, tally);
  t.diagnostic([...tally].sort().map(([k, v]) => `${v}\t${k}`).join('\n'));
});
