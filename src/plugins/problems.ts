/**
 * Refusals for the whole app: the one error handler (src/http/problem.ts), and for a request no
 * route takes, a 404 naming the endpoints or, where the path exists with other methods, a 405 with
 * Allow. Both come from the routes as registered (an onRoute hook), so the endpoint list exists
 * only in the route files.
 */
import fp from 'fastify-plugin';
import { ServiceError } from '../errors.ts';
import { errorHandler, sendProblem } from '../http/problem.ts';

/** Swagger UI's own assets under /docs/ are not endpoints a user calls. */
const listed = (url: string): boolean => !url.startsWith('/docs/') && !url.includes('*');

/** A route's path as the list shows it (`/jobs/{id}`), and a matcher for the paths it takes. */
function pattern(url: string): { shown: string; matches: (path: string) => boolean } {
  if (!url.includes(':')) return { shown: url, matches: (path) => path === url };
  const re = new RegExp(`^${url.split('/').map((part) => (part.startsWith(':') ? '[^/]+' : part.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))).join('/')}$`);
  return { shown: url.replace(/:(\w+)/g, '{$1}'), matches: (path) => re.test(path) };
}

export const problemsPlugin = fp<{ readonly bodyLimit: number }>(async (app, opts) => {
  const methods = new Map<string, Set<string>>();
  const patterns = new Map<string, ReturnType<typeof pattern>>();
  app.addHook('onRoute', (route) => {
    if (!listed(route.url)) return;
    const p = pattern(route.url);
    patterns.set(p.shown, p);
    const set = methods.get(p.shown) ?? new Set<string>();
    for (const m of [route.method].flat()) if (m !== 'HEAD') set.add(m);
    methods.set(p.shown, set);
  });
  app.setErrorHandler(errorHandler(opts.bodyLimit));
  app.setNotFoundHandler((req, reply) => {
    const path = req.url.split('?')[0].replace(/(.)\/$/, '$1');
    let allow = methods.get(path);
    for (const [shown, p] of patterns) if (!allow && p.matches(path)) allow = methods.get(shown);
    if (allow && !allow.has(req.method)) {
      return sendProblem(reply, new ServiceError('METHOD_NOT_ALLOWED', { method: req.method, path, allow: [...allow] }));
    }
    const endpoints = [...methods].flatMap(([url, ms]) => [...ms].map((m) => `${m} ${url}`));
    // POST endpoints first, in the order registered, then the rest
    endpoints.sort((a, b) => Number(!a.startsWith('POST')) - Number(!b.startsWith('POST')));
    return sendProblem(reply, new ServiceError('NOT_FOUND', { method: req.method, path, endpoints }));
  });
}, { name: 'problems' });
