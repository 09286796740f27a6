import { availableParallelism } from 'node:os';
import { defaultMemoryBudget } from './budget.ts';

/**
 * The service's configuration, read once from the environment. Every setting has a default that
 * works on a laptop; the README's configuration table lists the same names and defaults.
 */

export interface Config {
  /** Interface to listen on; the container sets 0.0.0.0. */
  readonly host: string;
  readonly port: number;
  /** pino level: fatal, error, warn, info, debug, trace or silent. */
  readonly logLevel: string;
  /** Largest request body accepted, in bytes (413 above). */
  readonly bodyLimit: number;
  /** Largest answer (its principal array and outputs) a request may ask for, in bytes (413 above). */
  readonly maxResultBytes: number;
  /** Largest memory one computation may need, answer plus working set, in bytes (413 above). */
  readonly maxTaskBytes: number;
  /** Most data points N in one request (413 above). */
  readonly maxPoints: number;
  /** Most network parameters W in one request (413 above). */
  readonly maxParameters: number;
  /** Largest N·W² a finite-difference Hessian may cost (2W gradient passes over N points; 413 above). */
  readonly maxFiniteDifferenceCost: number;
  /** Worker threads computing answers; 0 computes in the main thread (no cancellation; for debugging). */
  readonly workers: number;
  /** Requests that may wait for a worker; past workers + queueLimit in flight, 503 with Retry-After. */
  readonly queueLimit: number;
  /** A computation running (or waiting) longer than this is aborted and answered 503, in ms; 0 = no limit. */
  readonly requestTimeoutMs: number;
  /** How long a graceful shutdown waits for requests in flight before exiting, in ms (SHUTDOWN_GRACE_MS). */
  readonly shutdownTimeoutMs: number;
  /** Bearer keys of which a computing request must present one; empty = open service. Never logged. */
  readonly apiKeys: readonly string[];
  /**
   * Bytes the service may hold for requests at once: bodies being parsed, tasks queued and
   * running (their whole footprint), answers until their last byte has left (src/budget.ts).
   * Default: 75 % of the container's memory limit (cgroup), else of the machine's memory.
   */
  readonly memoryBudgetBytes: number;
  /** Tasks estimated at most this many ms (src/cost.ts) are cheap: they have a lane of their own and never wait behind heavy ones. */
  readonly cheapTaskMs: number;
  /** Worker threads of the cheap lane, besides WORKERS (which take cheap tasks too when free); 0: no lane of their own. */
  readonly fastWorkers: number;
  /** Tasks estimated at most this many ms (fractions allowed) are computed at once in the main thread, on the TypeScript kernels; 0: never. */
  readonly inlineTaskMs: number;
  /** An answer none of whose bytes leave for this long (the client stopped reading) is cut off, in ms; 0 = never. */
  readonly answerStallMs: number;
  /** Every cost estimate times this (a slower or faster machine than the rates of src/cost.ts were measured on). */
  readonly costScale: number;
  /** A request's headers must have arrived this long after its first byte, in ms (Node's headersTimeout; 408 after). */
  readonly headersTimeoutMs: number;
  /** A whole request, headers and body, must have arrived within this, in ms (Node's requestTimeout; 408 after); 0 = no limit. */
  readonly receiveTimeoutMs: number;
  /** Body progress: a body of which no byte arrives for this long is cut with a 408, in ms; 0 = no limit. */
  readonly bodyTimeoutMs: number;
  /** An idle keep-alive connection is closed after this, in ms (Node's keepAliveTimeout). */
  readonly keepAliveTimeoutMs: number;
  /** A connection on which no byte moves either way for this long is closed, unless its request is being computed, in ms (Fastify's connectionTimeout); 0 = no limit. */
  readonly connectionTimeoutMs: number;
}

const MiB = 1024 * 1024;

/**
 * glibc's MALLOC_MMAP_THRESHOLD_ for the service (4 MiB): blocks over it (chunks, answers) are
 * mapped and unmapped when freed instead of kept in glibc's arenas, so RSS comes back after a
 * burst of large answers. The container sets it; so do the tests and the bench that start servers.
 */
export const SERVICE_MALLOC_MMAP_THRESHOLD = String(4 * 1024 * 1024);
const GiB = 1024 * MiB;
const CORES = availableParallelism();

/**
 * Defaults for a 24 GiB, 2-core machine: each worker may hold a 4 GiB answer in a 5 GiB
 * computation while the main thread still streams the previous answer of each worker, so
 * 2 × 5 + 2 × 4 = 18 GiB at worst, leaving room for Node, the queue's parsed bodies and the OS.
 */
export const DEFAULT_CONFIG: Config = {
  host: '127.0.0.1',
  port: 3000,
  logLevel: 'info',
  bodyLimit: 64 * MiB,
  maxResultBytes: 4 * GiB,
  maxTaskBytes: 5 * GiB,
  maxPoints: 1_000_000,
  maxParameters: 10_000_000,
  maxFiniteDifferenceCost: 2e9,
  workers: CORES,
  queueLimit: 4 * CORES,
  requestTimeoutMs: 120_000,
  shutdownTimeoutMs: 25_000,
  apiKeys: [],
  memoryBudgetBytes: defaultMemoryBudget(),
  cheapTaskMs: 50,
  fastWorkers: 1,
  inlineTaskMs: 1,
  answerStallMs: 30_000,
  costScale: 1,
  headersTimeoutMs: 60_000,
  receiveTimeoutMs: 300_000,
  bodyTimeoutMs: 30_000,
  keepAliveTimeoutMs: 72_000,
  connectionTimeoutMs: 300_000,
};

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

/** Reads the configuration from `env`, refusing values that make no sense with a message naming the variable. */
export function loadConfig(env: Readonly<Record<string, string | undefined>> = process.env): Config {
  const int = (name: string, fallback: number, min: number, max = Number.MAX_SAFE_INTEGER): number => {
    const raw = env[name];
    if (raw === undefined || raw.trim() === '') return fallback;
    const v = Number(raw);
    if (!Number.isInteger(v) || v < min || v > max) {
      throw new Error(`${name}=${raw} is not valid: expected an integer from ${min} to ${max}`);
    }
    return v;
  };
  const positive = (name: string, fallback: number): number => {
    const raw = env[name];
    if (raw === undefined || raw.trim() === '') return fallback;
    const v = Number(raw);
    if (!(Number.isFinite(v) && v > 0 && v <= 1000)) throw new Error(`${name}=${raw} is not valid: expected a number greater than 0 and at most 1000`);
    return v;
  };
  const nonNegative = (name: string, fallback: number, max: number): number => {
    const raw = env[name];
    if (raw === undefined || raw.trim() === '') return fallback;
    const v = Number(raw);
    if (!(Number.isFinite(v) && v >= 0 && v <= max)) throw new Error(`${name}=${raw} is not valid: expected a number from 0 to ${max}`);
    return v;
  };
  const logLevel = (env.LOG_LEVEL ?? DEFAULT_CONFIG.logLevel).trim().toLowerCase() || DEFAULT_CONFIG.logLevel;
  if (!LOG_LEVELS.includes(logLevel)) {
    throw new Error(`LOG_LEVEL=${env.LOG_LEVEL} is not valid: use one of ${LOG_LEVELS.join(', ')}`);
  }
  const workers = int('WORKERS', DEFAULT_CONFIG.workers, 0, 256);
  return {
    host: env.HOST?.trim() || DEFAULT_CONFIG.host,
    port: int('PORT', DEFAULT_CONFIG.port, 0, 65535),
    logLevel,
    bodyLimit: int('BODY_LIMIT', DEFAULT_CONFIG.bodyLimit, 1024),
    maxResultBytes: int('MAX_RESULT_BYTES', DEFAULT_CONFIG.maxResultBytes, 1024),
    maxTaskBytes: int('MAX_TASK_BYTES', DEFAULT_CONFIG.maxTaskBytes, 1024),
    maxPoints: int('MAX_POINTS', DEFAULT_CONFIG.maxPoints, 1),
    maxParameters: int('MAX_PARAMETERS', DEFAULT_CONFIG.maxParameters, 1),
    maxFiniteDifferenceCost: int('MAX_FINITE_DIFFERENCE_COST', DEFAULT_CONFIG.maxFiniteDifferenceCost, 1),
    workers,
    queueLimit: int('QUEUE_LIMIT', 4 * Math.max(1, workers), 0),
    requestTimeoutMs: int('REQUEST_TIMEOUT_MS', DEFAULT_CONFIG.requestTimeoutMs, 0),
    // SHUTDOWN_TIMEOUT_MS is the earlier name, still read when SHUTDOWN_GRACE_MS is not set.
    shutdownTimeoutMs: env.SHUTDOWN_GRACE_MS?.trim()
      ? int('SHUTDOWN_GRACE_MS', DEFAULT_CONFIG.shutdownTimeoutMs, 0)
      : int('SHUTDOWN_TIMEOUT_MS', DEFAULT_CONFIG.shutdownTimeoutMs, 0),
    apiKeys: (env.API_KEYS ?? '').split(',').map((k) => k.trim()).filter((k) => k !== ''),
    memoryBudgetBytes: int('MEMORY_BUDGET_BYTES', DEFAULT_CONFIG.memoryBudgetBytes, 1024 * 1024),
    cheapTaskMs: int('CHEAP_TASK_MS', DEFAULT_CONFIG.cheapTaskMs, 0, 60_000),
    fastWorkers: int('FAST_WORKERS', DEFAULT_CONFIG.fastWorkers, 0, 64),
    inlineTaskMs: nonNegative('INLINE_TASK_MS', DEFAULT_CONFIG.inlineTaskMs, 10),
    answerStallMs: int('ANSWER_STALL_MS', DEFAULT_CONFIG.answerStallMs, 0),
    costScale: positive('COST_SCALE', DEFAULT_CONFIG.costScale),
    ...socketTimeouts(int),
  };
}

/** The socket timeouts; Node wants headersTimeout ≤ requestTimeout, so HEADERS_TIMEOUT_MS ≤ RECEIVE_TIMEOUT_MS (unless the latter is 0). */
function socketTimeouts(int: (name: string, fallback: number, min: number, max?: number) => number) {
  const headersTimeoutMs = int('HEADERS_TIMEOUT_MS', DEFAULT_CONFIG.headersTimeoutMs, 1);
  const receiveTimeoutMs = int('RECEIVE_TIMEOUT_MS', DEFAULT_CONFIG.receiveTimeoutMs, 0);
  if (receiveTimeoutMs > 0 && headersTimeoutMs > receiveTimeoutMs) {
    throw new Error(`HEADERS_TIMEOUT_MS=${headersTimeoutMs} is not valid: it must not exceed RECEIVE_TIMEOUT_MS=${receiveTimeoutMs} (the whole request's limit includes its headers)`);
  }
  return {
    headersTimeoutMs,
    receiveTimeoutMs,
    bodyTimeoutMs: int('BODY_TIMEOUT_MS', DEFAULT_CONFIG.bodyTimeoutMs, 0),
    keepAliveTimeoutMs: int('KEEP_ALIVE_TIMEOUT_MS', DEFAULT_CONFIG.keepAliveTimeoutMs, 1),
    connectionTimeoutMs: int('CONNECTION_TIMEOUT_MS', DEFAULT_CONFIG.connectionTimeoutMs, 0),
  };
}
