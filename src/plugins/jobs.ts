/**
 * The job store (src/jobs.ts) as a decoration of the app, on the app's compute pool: its jobs are
 * stopped when the app closes (before the pool waits for what is in flight), since a job outlives
 * no restart.
 */
import fp from 'fastify-plugin';
import type { Config } from '../config.ts';
import { JobStore } from '../jobs.ts';

declare module 'fastify' {
  interface FastifyInstance {
    /** The jobs of requests sent with Prefer: respond-async. */
    jobs: JobStore;
  }
}

export const jobsPlugin = fp<{ readonly config: Config }>(async (app, opts) => {
  const store = new JobStore(app.computePool, opts.config, opts.config.apiKeys.length > 0);
  app.decorate('jobs', store);
  app.addHook('onClose', async () => store.close());
}, { name: 'jobs', dependencies: ['pool'] });
