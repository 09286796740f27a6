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
  /** Largest dense answer (and working matrix) a request may need, in bytes (413 above). */
  readonly maxResultBytes: number;
  /** How long a graceful shutdown waits for requests in flight before exiting, in ms. */
  readonly shutdownTimeoutMs: number;
}

const MiB = 1024 * 1024;

export const DEFAULT_CONFIG: Config = {
  host: '127.0.0.1',
  port: 3000,
  logLevel: 'info',
  bodyLimit: 64 * MiB,
  maxResultBytes: 2048 * MiB,
  shutdownTimeoutMs: 10_000,
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
  const logLevel = (env.LOG_LEVEL ?? DEFAULT_CONFIG.logLevel).trim().toLowerCase() || DEFAULT_CONFIG.logLevel;
  if (!LOG_LEVELS.includes(logLevel)) {
    throw new Error(`LOG_LEVEL=${env.LOG_LEVEL} is not valid: use one of ${LOG_LEVELS.join(', ')}`);
  }
  return {
    host: env.HOST?.trim() || DEFAULT_CONFIG.host,
    port: int('PORT', DEFAULT_CONFIG.port, 0, 65535),
    logLevel,
    bodyLimit: int('BODY_LIMIT', DEFAULT_CONFIG.bodyLimit, 1024),
    maxResultBytes: int('MAX_RESULT_BYTES', DEFAULT_CONFIG.maxResultBytes, 1024),
    shutdownTimeoutMs: int('SHUTDOWN_TIMEOUT_MS', DEFAULT_CONFIG.shutdownTimeoutMs, 0),
  };
}
