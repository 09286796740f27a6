/** GET /health. */
import { z } from 'zod';

export const HealthResponseSchema = z.object({
  status: z.literal('ok'),
  version: z.string().describe('The service version (package.json).'),
  linalg: z.string().describe('The linear-algebra backend in use: typescript or openblas.'),
  uptimeSeconds: z.number(),
});
