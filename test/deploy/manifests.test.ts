import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import { loadConfig } from '../../src/config.ts';
import { defaultMemoryBudget } from '../../src/budget.ts';
import { BODY_FACTOR } from '../../src/plugins/admission.ts';

// The fields the README's deployment guide relies on, read from deploy/*.yaml as kubectl would
// apply them. Typed loosely on purpose: a missing field must fail an assertion, not the compiler.
/* eslint-disable @typescript-eslint/no-explicit-any */
type Doc = any;

const repo = fileURLToPath(new URL('../../', import.meta.url));
const deployDir = `${repo}deploy/`;
const files = readdirSync(deployDir).filter((f) => /\.ya?ml$/.test(f)).sort();
const docs: { file: string; doc: Doc }[] = files.flatMap((file) =>
  parseAllDocuments(readFileSync(deployDir + file, 'utf8')).map((d) => {
    if (d.errors.length) throw new Error(`${file}: ${d.errors.map((e) => e.message).join('; ')}`);
    return { file, doc: d.toJS() as Doc };
  }).filter((d) => d.doc !== null),
);
const one = (kind: string): Doc => {
  const found = docs.filter((d) => d.doc.kind === kind);
  assert.equal(found.length, 1, `deploy/ must hold exactly one ${kind}`);
  return found[0].doc;
};

const deployment = one('Deployment');
const pod = deployment.spec.template.spec;
const container = pod.containers[0];
const env: Record<string, string> = Object.fromEntries((container.env ?? []).map((e: Doc) => [e.name, String(e.value)]));
const podLabels: Record<string, string> = deployment.spec.template.metadata.labels;
/** The Dockerfile's last (runtime) stage; test/deploy/container.test.ts checks the built image itself. */
const dockerfile = readFileSync(`${repo}Dockerfile`, 'utf8');
const runtimeStage = dockerfile.slice(dockerfile.search(/^FROM\s(?![\s\S]*^FROM\s)/m));
const exposed = [...runtimeStage.matchAll(/^EXPOSE\s+(.+)$/gm)].flatMap((m) => m[1].trim().split(/\s+/).map((p) => p.split('/')[0]));
const imageUser = [...runtimeStage.matchAll(/^USER\s+(\S+)/gm)].at(-1)?.[1].split(':')[0];

/** A Kubernetes quantity in bytes (memory) or cores (cpu). */
function quantity(q: string | number): number {
  const m = /^(\d+(?:\.\d+)?)(m|Ki|Mi|Gi|Ti|k|M|G|T)?$/.exec(String(q));
  assert.ok(m, `not a quantity: ${q}`);
  const f: Record<string, number> = { m: 1e-3, Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, k: 1e3, M: 1e6, G: 1e9, T: 1e12 };
  return Number(m[1]) * (m[2] ? f[m[2]] : 1);
}

const matches = (selector: Record<string, string>, labels: Record<string, string>): boolean =>
  Object.keys(selector).length > 0 && Object.entries(selector).every(([k, v]) => labels[k] === v);

test('deploy/ holds a Deployment, a Service, an autoscaling/v2 HorizontalPodAutoscaler and a PodDisruptionBudget, each valid YAML with the API versions kubectl expects', () => {
  const want: Record<string, string> = { Deployment: 'apps/v1', Service: 'v1', HorizontalPodAutoscaler: 'autoscaling/v2', PodDisruptionBudget: 'policy/v1' };
  for (const { file, doc } of docs) {
    assert.ok(doc.kind in want, `${file}: unexpected kind ${doc.kind}`);
    assert.equal(doc.apiVersion, want[doc.kind], `${file}: ${doc.kind} apiVersion`);
    assert.match(doc.metadata?.name ?? '', /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, `${file}: metadata.name`);
  }
  for (const kind of Object.keys(want)) one(kind);
});

test('the selectors agree: Deployment, Service and PodDisruptionBudget all select the pod template labels', () => {
  assert.ok(matches(deployment.spec.selector.matchLabels, podLabels), 'Deployment selector must match its pod template');
  assert.ok(matches(one('Service').spec.selector, podLabels), 'Service selector must match the pods');
  assert.ok(matches(one('PodDisruptionBudget').spec.selector.matchLabels, podLabels), 'PodDisruptionBudget selector must match the pods');
});

test('the probes call GET /health/live (startup, liveness) and /health/ready (readiness) on the container port, which is the PORT the service listens on and the port the image EXPOSEs; Prometheus scrapes /metrics there', () => {
  const port = container.ports.find((p: Doc) => p.name === 'http');
  assert.ok(port, 'the container names its port http');
  assert.equal(String(port.containerPort), env.PORT ?? '3000');
  assert.ok(exposed.includes(String(port.containerPort)), `the Dockerfile EXPOSEs ${exposed.join(', ')}`);
  const paths: Record<string, string> = { startupProbe: '/health/live', readinessProbe: '/health/ready', livenessProbe: '/health/live' };
  for (const probe of ['startupProbe', 'readinessProbe', 'livenessProbe']) {
    const get = container[probe]?.httpGet;
    assert.ok(get, `${probe} is an httpGet probe`);
    assert.equal(get.path, paths[probe], `${probe} path`);
    assert.ok(get.port === port.name || get.port === port.containerPort, `${probe} port ${get.port} is the container port`);
  }
  // Liveness must not restart a pod that is only busy: it tolerates more silence than readiness.
  const silence = (p: Doc): number => p.periodSeconds * p.failureThreshold;
  assert.ok(silence(container.livenessProbe) > silence(container.readinessProbe));
  const annotations: Record<string, string> = deployment.spec.template.metadata.annotations ?? {};
  assert.equal(annotations['prometheus.io/scrape'], 'true');
  assert.equal(annotations['prometheus.io/path'], '/metrics');
  assert.equal(annotations['prometheus.io/port'], String(port.containerPort));
  const svcPort = one('Service').spec.ports[0];
  assert.ok(svcPort.targetPort === port.name || svcPort.targetPort === port.containerPort, 'Service targetPort is the container port');
});

test('the HorizontalPodAutoscaler scales the Deployment on CPU, which the pods request', () => {
  const hpa = one('HorizontalPodAutoscaler');
  assert.deepEqual(hpa.spec.scaleTargetRef, { apiVersion: 'apps/v1', kind: 'Deployment', name: deployment.metadata.name });
  assert.ok(hpa.spec.minReplicas >= 1 && hpa.spec.minReplicas <= hpa.spec.maxReplicas);
  const cpu = hpa.spec.metrics.find((m: Doc) => m.type === 'Resource' && m.resource.name === 'cpu');
  assert.ok(cpu?.resource.target.averageUtilization > 0, 'a CPU utilisation target');
  assert.ok(container.resources.requests.cpu, 'utilisation is relative to the CPU request, so there must be one');
  assert.equal(deployment.spec.replicas, undefined, 'the HPA owns replicas; the Deployment must not set them');
});

test('resources follow the memory arithmetic of deployment.yaml: the memory budget the service takes from the pod limit holds both workers at their task limit with their previous answers and a body, and leaves room for Node itself', () => {
  const { requests, limits } = container.resources;
  for (const r of ['cpu', 'memory']) {
    assert.ok(requests[r] && limits[r], `requests and limits of ${r}`);
    assert.ok(quantity(requests[r]) <= quantity(limits[r]), `${r} request <= limit`);
  }
  const config = loadConfig(env);
  const MiB = 2 ** 20;
  const idle = 192 * MiB; // Node + Fastify + workers + addon (measured ~125 MiB) and OpenBLAS buffers
  const body = BODY_FACTOR.json * config.bodyLimit; // what the budget holds for a body being parsed
  assert.equal(env.MEMORY_BUDGET_BYTES, undefined, 'the budget comes from the pod limit (the cgroup), as the comment says');
  // the service's own default, from the container's limit (cgroup memory.max)
  const budget = defaultMemoryBudget(quantity(limits.memory), Number.MAX_SAFE_INTEGER);
  const busiest = config.workers * (config.maxTaskBytes + config.maxResultBytes) + body;
  assert.ok(config.workers >= 1, 'WORKERS >= 1: computations off the main thread, so /health answers while busy');
  assert.ok(budget >= busiest, `the memory budget ${budget / MiB} MiB (75 % of ${limits.memory}) < ${busiest / MiB} MiB: both workers at MAX_TASK_BYTES, their answers and a body`);
  assert.ok(quantity(limits.memory) - budget >= idle, `${limits.memory} leaves ${(quantity(limits.memory) - budget) / MiB} MiB beside the budget for Node itself`);
  const busy = idle + config.maxTaskBytes + body;
  assert.ok(quantity(requests.memory) >= busy, `memory request ${requests.memory} < ${busy / MiB} MiB`);
  const heap = /--max-old-space-size=(\d+)/.exec(env.NODE_OPTIONS ?? '');
  assert.ok(heap, 'NODE_OPTIONS sets --max-old-space-size');
  assert.ok(Number(heap[1]) * MiB >= 2 * body, 'the V8 heap holds a parsed body with room to spare');
  // Node and OpenBLAS count the node's cores, not the pod's: both must be set, to fit the CPU limit.
  assert.ok(env.WORKERS && env.CURVATURE_BLAS_THREADS, 'WORKERS and CURVATURE_BLAS_THREADS are set explicitly');
  assert.ok(config.workers * Number(env.CURVATURE_BLAS_THREADS) <= Math.ceil(quantity(limits.cpu)), 'workers x BLAS threads <= CPU limit');
});

test("the service accepts the Deployment's environment (config, NODE_OPTIONS)", () => {
  assert.doesNotThrow(() => loadConfig(env));
  const r = spawnSync(process.execPath, ['-e', '0'], { env: { PATH: process.env.PATH, NODE_OPTIONS: env.NODE_OPTIONS }, encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.status, 0, r.stderr);
});

test('graceful shutdown fits the pod: REQUEST_TIMEOUT_MS < SHUTDOWN_GRACE_MS, and preStop sleep + SHUTDOWN_GRACE_MS < terminationGracePeriodSeconds', () => {
  const grace = pod.terminationGracePeriodSeconds;
  const preStop = container.lifecycle?.preStop;
  const sleep = preStop?.sleep?.seconds ?? Number(preStop?.exec?.command?.at(-1));
  assert.ok(sleep > 0, 'a preStop sleep, so that endpoints drop the pod before SIGTERM');
  const config = loadConfig(env);
  const appGrace = config.shutdownTimeoutMs / 1000;
  assert.ok(env.SHUTDOWN_GRACE_MS ?? env.SHUTDOWN_TIMEOUT_MS, 'the shutdown grace is set explicitly');
  assert.ok(sleep + appGrace < grace, `${sleep} s + ${appGrace} s must stay under ${grace} s`);
  // A computation ends (or is aborted) within REQUEST_TIMEOUT_MS of arriving: the shutdown waits that long.
  assert.ok(config.requestTimeoutMs > 0 && config.requestTimeoutMs < config.shutdownTimeoutMs, 'REQUEST_TIMEOUT_MS < SHUTDOWN_GRACE_MS');
});

test("the pod runs as the image's non-root user on a read-only root filesystem, with no privilege escalation", () => {
  assert.equal(pod.securityContext.runAsNonRoot, true);
  assert.equal(String(pod.securityContext.runAsUser), imageUser);
  assert.equal(container.securityContext.readOnlyRootFilesystem, true);
  assert.equal(container.securityContext.allowPrivilegeEscalation, false);
  assert.deepEqual(container.securityContext.capabilities.drop, ['ALL']);
});
