/**
 * GET /metrics in Prometheus's text format (prom-client), one registry per app:
 *
 * - process and Node metrics (prom-client's defaults: CPU, resident memory, heap, event-loop lag,
 *   file descriptors, GC);
 * - `http_request_duration_seconds{method,route,status_code}`: every request, by route pattern
 *   (`unmatched` for a path no route takes);
 * - `curvature_refusals_total{code,status}`: every problem+json answer, by catalogue code;
 * - `curvature_tasks_total{endpoint,lane,outcome}` and `curvature_task_duration_seconds`, and
 *   `curvature_task_estimate_ratio` (measured over estimated seconds of each completed task: how
 *   well the cost rates of src/cost.ts fit this machine; near 1 is good, see docs/admission.md);
 * - `curvature_shed_total{lane,reason}`: requests refused for want of room;
 * - gauges read at each scrape: workers, busy workers, queued tasks and their estimated seconds,
 *   the memory budget and the bytes held by kind, answers in transit, readiness;
 * - `curvature_answers_stalled_total`: answers cut off because the client stopped reading.
 *
 * Like /health, /metrics needs no API key when API_KEYS is set: it holds counts and timings, no
 * request data and no keys, and Prometheus's annotation-based discovery (deploy/deployment.yaml)
 * scrapes without credentials. Keep the port inside the cluster (the Service), or put /metrics
 * behind a NetworkPolicy, where that matters.
 */
import fp from 'fastify-plugin';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { MetricsResponseSchema } from '../../schemas/health.ts';
import { notReadyReasons } from '../../routes/health.ts';
import { HOLD_KINDS } from '../budget.ts';

export const metricsPlugin = fp(async (app) => {
  const register = new Registry();
  collectDefaultMetrics({ register });
  const pool = app.computePool;

  const duration = new Histogram({
    name: 'http_request_duration_seconds', help: 'Time from a request arriving to its answer sent, by route pattern and status.',
    labelNames: ['method', 'route', 'status_code'], buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120], registers: [register],
  });
  const refusals = new Counter({ name: 'curvature_refusals_total', help: 'problem+json answers, by catalogue code (src/errors.ts) and status.', labelNames: ['code', 'status'], registers: [register] });
  const tasks = new Counter({ name: 'curvature_tasks_total', help: 'Tasks admitted to the pool, by endpoint, lane and outcome (completed, refused by the core, timedOut, aborted, stopped, failed).', labelNames: ['endpoint', 'lane', 'outcome'], registers: [register] });
  const taskSeconds = new Histogram({
    name: 'curvature_task_duration_seconds', help: 'Seconds a task ran on its worker (queueing not included), by endpoint and lane.',
    labelNames: ['endpoint', 'lane'], buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120], registers: [register],
  });
  const ratio = new Histogram({
    name: 'curvature_task_estimate_ratio', help: 'Measured over estimated seconds of each completed task (src/cost.ts): the cost rates fit this machine when it stays near 1.',
    labelNames: ['lane'], buckets: [0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 4, 10], registers: [register],
  });
  const shed = new Counter({ name: 'curvature_shed_total', help: 'Requests refused with 503 for want of room, by lane (request: before the body was read) and reason.', labelNames: ['lane', 'reason'], registers: [register] });
  pool.observe((e) => {
    if (e.type === 'shed') { shed.inc({ lane: e.lane, reason: e.reason }); return; }
    tasks.inc({ endpoint: e.endpoint, lane: e.lane, outcome: e.outcome });
    if (e.outcome === 'completed') {
      taskSeconds.observe({ endpoint: e.endpoint, lane: e.lane }, e.seconds);
      if (e.estimatedSeconds > 0) ratio.observe({ lane: e.lane }, e.seconds / e.estimatedSeconds);
    }
  });

  const gauge = (name: string, help: string, read: (g: Gauge) => void, labelNames: string[] = []) =>
    new Gauge({ name, help, labelNames, registers: [register], collect() { read(this); } });
  gauge('curvature_workers', 'Worker threads, by lane (general: WORKERS; cheap: FAST_WORKERS).', (g) => {
    const s = pool.stats();
    g.set({ lane: 'general' }, s.workers);
    g.set({ lane: 'cheap' }, s.fastWorkers);
  }, ['lane']);
  gauge('curvature_busy_workers', 'Workers computing now.', (g) => g.set(pool.stats().busyWorkers));
  gauge('curvature_queued_tasks', 'Tasks waiting for a worker, by lane.', (g) => {
    const s = pool.stats();
    g.set({ lane: 'cheap' }, s.queuedCheap);
    g.set({ lane: 'heavy' }, s.queued - s.queuedCheap);
  }, ['lane']);
  gauge('curvature_queued_seconds', 'Estimated seconds of computing the waiting tasks need.', (g) => g.set(pool.stats().queuedSeconds));
  gauge('curvature_running_seconds', 'Estimated seconds the running tasks still need.', (g) => g.set(pool.stats().runningSeconds));
  gauge('curvature_memory_budget_bytes', 'The memory budget for everything in flight (MEMORY_BUDGET_BYTES).', (g) => g.set(pool.budget.limit));
  gauge('curvature_memory_held_bytes', 'Bytes held against the memory budget, by kind: bodies being read, tasks queued and running, answers in transit.', (g) => {
    for (const kind of HOLD_KINDS) g.set({ kind }, pool.budget.used(kind));
  }, ['kind']);
  gauge('curvature_answers_in_transit', 'Answers computed and not yet sent to their last byte.', (g) => g.set(pool.budget.count('answer')));
  gauge('curvature_ready', '1 when GET /health/ready says ready.', (g) => g.set(notReadyReasons(pool).length === 0 ? 1 : 0));
  new Counter({
    name: 'curvature_answers_stalled_total', help: 'Answers cut off because the client read nothing for ANSWER_STALL_MS.', registers: [register],
    collect() { this.reset(); this.inc(app.answers.stalled); },
  });

  app.decorateReply('problemCode', undefined);
  app.addHook('onResponse', async (req, reply) => {
    const status = reply.statusCode;
    duration.observe({ method: req.method, route: req.routeOptions.url ?? 'unmatched', status_code: String(status) }, reply.elapsedTime / 1000);
    if (reply.problemCode) refusals.inc({ code: reply.problemCode, status: String(status) });
  });

  app.withTypeProvider<ZodTypeProvider>().get('/metrics', {
    schema: {
      operationId: 'getMetrics',
      tags: ['operations'],
      summary: 'Prometheus metrics',
      description: 'Process, HTTP, pool, memory-budget and refusal metrics in the Prometheus text format. Open like /health (no API key): counts and timings only.',
      security: [],
      response: { 200: { description: 'Prometheus text exposition format 0.0.4', content: { 'text/plain': { schema: MetricsResponseSchema } } } },
    },
  }, async (_req, reply) => reply.type(register.contentType).send(await register.metrics()));
}, { name: 'metrics', dependencies: ['pool'] });
