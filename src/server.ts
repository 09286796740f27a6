/**
 * Boots the service: configuration from the environment, pino logs, listen, and a graceful close
 * on SIGTERM/SIGINT: stop accepting, let requests in flight finish; computations still running
 * near the end of SHUTDOWN_GRACE_MS are stopped and answered 503 (retry elsewhere), then exit 0.
 * Only a request still open at SHUTDOWN_GRACE_MS itself (say, a large answer streaming to a slow
 * client) makes the exit 1.
 */
import { loadConfig, type Config } from './config.ts';
import { ensureMallocSetting, MALLOC_VARIABLE } from './malloc.ts';

// first of all, before the app and its modules load: glibc's setting (src/malloc.ts)
ensureMallocSetting();
const { buildApp } = await import('./app.ts');
const { loggerOptions } = await import('./logging.ts');
const { STOP_GRACE_MS } = await import('./pool.ts');

let config: Config;
try {
  config = loadConfig();
} catch (err) {
  console.error(`curvature-service: ${(err as Error).message}`);
  process.exit(2);
}

// nothing secret in the logs: Authorization headers and query values censored (src/logging.ts)
const app = await buildApp({ config, logger: loggerOptions(config.logLevel) });
app.log.info({ [MALLOC_VARIABLE]: process.env[MALLOC_VARIABLE] ?? null }, process.env[MALLOC_VARIABLE] === undefined
  ? `${MALLOC_VARIABLE} is not set (not glibc, or no process.execve): memory freed after large answers may stay with the process`
  : `glibc's ${MALLOC_VARIABLE} is ${process.env[MALLOC_VARIABLE]}`);

/**
 * How long before the end of the shutdown grace period the computations still running are
 * stopped: the pool's own grace for a stopped task (then its worker is terminated), and a second
 * for the 503s to go out. 3 s.
 */
const STOP_MARGIN_MS = STOP_GRACE_MS + 1000;

let closing = false;
async function shutdown(signal: string): Promise<void> {
  if (closing) return;
  closing = true;
  const graceMs = config.shutdownTimeoutMs;
  app.log.info({ signal, graceMs }, 'shutting down: finishing requests in flight (SHUTDOWN_GRACE_MS)');
  const stopAt = graceMs - Math.min(STOP_MARGIN_MS, graceMs / 2);
  const stopper = setTimeout(() => {
    const stopped = app.computePool.stopAll();
    if (stopped > 0) app.log.warn({ stopped, graceMs }, 'grace period nearly over: stopping the computations still queued or running (503 to their callers)');
  }, stopAt);
  stopper.unref();
  const timer = setTimeout(() => {
    app.log.warn({ timeoutMs: graceMs }, 'shutdown timed out; exiting with requests still open');
    process.exit(1);
  }, graceMs);
  timer.unref();
  // Keep-alive sockets that go idle after their answer would hold close() open until the grace
  // period ends; close each as soon as it is idle.
  const idle = setInterval(() => app.server.closeIdleConnections(), 100);
  idle.unref();
  try {
    await app.close();
    app.log.info('closed');
    process.exit(0);
  } catch (err) {
    app.log.error({ err }, 'error while closing');
    process.exit(1);
  }
}
process.once('SIGTERM', () => void shutdown('SIGTERM'));
process.once('SIGINT', () => void shutdown('SIGINT'));

try {
  await app.listen({ host: config.host, port: config.port });
} catch (err) {
  app.log.fatal({ err }, `could not listen on ${config.host}:${config.port}`);
  process.exit(1);
}
