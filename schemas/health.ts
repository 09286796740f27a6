/** GET /health. */
import { z } from 'zod';

export const HealthResponseSchema = z.object({
  status: z.literal('ok'),
  version: z.string().describe('The service version (package.json).'),
  linalg: z
    .object({
      backend: z.enum(['typescript', 'openblas']),
      threads: z.number().int().describe('Threads one kernel call may use.'),
      reason: z.string().describe('Why this backend (the CURVATURE_LINALG setting, or why OpenBLAS did not load).'),
      openblas: z.string().optional().describe("OpenBLAS's build and kernel set, when it is in use."),
    })
    .describe('The linear-algebra backend in use.'),
  uptimeSeconds: z.number(),
});
