/**
 * One peer's Python process for the bench (sweep.ts, scale.ts): run with stdout piped and the
 * last 20,000 characters of stderr kept, killed (SIGKILL) past its wall-clock bound, its answer the
 * last line of stdout as JSON. The callers turn each way it can end into their own rows.
 */
import { spawn } from 'node:child_process';

export type PeerProcessEnd =
  | { answer: unknown }
  | { failed: 'spawn'; message: string }
  | { failed: 'timeout' }
  | { failed: 'signal'; signal: NodeJS.Signals }
  | { failed: 'exit'; code: number | null; stderrTail: string }
  | { failed: 'unreadable'; message: string };

export function runPeerProcess(python: string, args: readonly string[], env: NodeJS.ProcessEnv, wallMs: number): Promise<PeerProcessEnd> {
  return new Promise((resolve) => {
    const child = spawn(python, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '', stderr = '', timedOut = false;
    child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr = (stderr + c).slice(-20_000)));
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, wallMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      resolve({ failed: 'spawn', message: err.message });
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (timedOut) return resolve({ failed: 'timeout' });
      if (signal) return resolve({ failed: 'signal', signal });
      if (code !== 0) return resolve({ failed: 'exit', code, stderrTail: stderr.trim().split('\n').slice(-3).join(' | ') });
      try {
        resolve({ answer: JSON.parse(stdout.trim().split('\n').pop()!) });
      } catch (err) {
        resolve({ failed: 'unreadable', message: (err as Error).message });
      }
    });
  });
}
