/**
 * Boots the service: configuration from the environment, pino logs, listen, and a graceful close
 * on SIGTERM/SIGINT (stop accepting, finish requests in flight, then exit).
 */
import { buildApp } from './app.ts';
import { loadConfig, type Config } from './config.ts';

let config: Config;
try {
  config = loadConfig();
} catch (err) {
  console.error(`curvature-service: ${(err as Error).message}`);
  process.exit(2);
}

// API keys never reach the logs, whichever serializer logs the headers.
const redact = { paths: ['req.headers.authorization', 'headers.authorization', 'request.headers.authorization'], censor: '[redacted]' };
const app = await buildApp({ config, logger: { level: config.logLevel, redact } });

let closing = false;
async function shutdown(signal: string): Promise<void> {
  if (closing) return;
  closing = true;
  app.log.info({ signal, graceMs: config.shutdownTimeoutMs }, 'shutting down: finishing requests in flight (SHUTDOWN_GRACE_MS)');
  const timer = setTimeout(() => {
    app.log.warn({ timeoutMs: config.shutdownTimeoutMs }, 'shutdown timed out; exiting with requests still open');
    process.exit(1);
  }, config.shutdownTimeoutMs);
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
