/**
 * glibc's MALLOC_MMAP_THRESHOLD_ for the service, wherever it is started (npm start, node
 * dist/src/server.js, the container): blocks over SERVICE_MALLOC_MMAP_THRESHOLD (4 MiB: chunks,
 * answers) are mapped and unmapped when freed instead of staying in glibc's arenas, so the RSS
 * comes back after a burst of large answers (idle at 2.2 GB without it, in issue 14's load test).
 *
 * glibc reads the variable once, when the process starts, so setting process.env later does
 * nothing. The service therefore re-executes itself once with it (process.execve: the same PID,
 * descriptors and arguments, so signals, pipes and supervisors see one process), before it loads
 * anything else. The alternatives were weaker: a start script that sets it covers `npm start`
 * only; mallopt(M_MMAP_THRESHOLD) from the native addon covers only where the optional addon
 * builds; a child process would put a second process in front of the service's signals.
 *
 * Nothing happens where the variable is set already (the operator's value, or the container's,
 * or this re-execution's), off glibc (musl ignores it), or on a Node without process.execve
 * (before 22.15): there the start-up log says it is not set.
 */
import { SERVICE_MALLOC_MMAP_THRESHOLD } from './config.ts';

export const MALLOC_VARIABLE = 'MALLOC_MMAP_THRESHOLD_';

/** True where the C library is glibc (Node's report names its version). */
function onGlibc(): boolean {
  if (process.platform !== 'linux') return false;
  const header = (process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined)?.header;
  return typeof header?.glibcVersionRuntime === 'string';
}

/** Re-executes this process with MALLOC_MMAP_THRESHOLD_ set, where it is not; returns only when it did not. */
export function ensureMallocSetting(): void {
  if (process.env[MALLOC_VARIABLE] !== undefined) return;
  const execve = (process as { execve?: (file: string, args: string[], env: NodeJS.ProcessEnv) => never }).execve;
  if (typeof execve !== 'function' || !onGlibc()) return;
  execve(process.execPath, [process.execPath, ...process.execArgv, ...process.argv.slice(1)], { ...process.env, [MALLOC_VARIABLE]: SERVICE_MALLOC_MMAP_THRESHOLD });
}
