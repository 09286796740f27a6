/**
 * The global memory budget: one account of everything the service holds for its requests, so
 * that concurrent tasks and answers cannot together exceed the pod. Three kinds of holding:
 *
 * - `body`: a request body being read and parsed, before its task is sized (Content-Length times
 *   a factor for what parsing makes of it; BODY_LIMIT's worth when the length is not known);
 * - `task`: a task queued or running, its whole footprint (inputs, passes, scratch, answer:
 *   src/core/operations.ts), reserved when it is admitted so that no order of running can exceed
 *   the budget;
 * - `answer`: a computed answer from the moment its task ends until the last byte of it has
 *   left (or the connection is cut).
 *
 * A holding that does not fit is refused (503 OVERLOADED with Retry-After, src/pool.ts), except
 * a task's answer, which only ever shrinks what its task held.
 *
 * The default budget is 75 % of the container's memory limit (cgroup v2 memory.max, else v1's
 * memory.limit_in_bytes), else 75 % of the machine's memory: the rest is Node itself (about
 * 130–200 MiB with the workers), V8's heaps, the allocator's fragmentation and the kernel's
 * socket buffers.
 */
import { readFileSync } from 'node:fs';
import { totalmem } from 'node:os';

export type HoldKind = 'body' | 'task' | 'answer';
export const HOLD_KINDS: readonly HoldKind[] = ['body', 'task', 'answer'];

/** The share of the container's (or machine's) memory that the budget takes by default. */
export const DEFAULT_BUDGET_FRACTION = 0.75;

/** Limits at or above this are "no limit" (cgroup v1 writes 2⁶³ − 4096 rounded to pages). */
const UNLIMITED = 2 ** 60;

/** The memory limit of the cgroup this process runs in, in bytes, or undefined when there is none. */
export function cgroupMemoryLimit(read: (path: string) => string = (p) => readFileSync(p, 'utf8')): number | undefined {
  for (const path of ['/sys/fs/cgroup/memory.max', '/sys/fs/cgroup/memory/memory.limit_in_bytes']) {
    let text: string;
    try {
      text = read(path).trim();
    } catch {
      continue;
    }
    if (text === 'max') return undefined;
    const v = Number(text);
    if (Number.isFinite(v) && v > 0 && v < UNLIMITED) return v;
    return undefined;
  }
  return undefined;
}

/** The default budget: DEFAULT_BUDGET_FRACTION of the cgroup's limit, else of the machine's memory. */
export function defaultMemoryBudget(limit: number | undefined = cgroupMemoryLimit(), machine = totalmem()): number {
  return Math.floor(DEFAULT_BUDGET_FRACTION * Math.min(limit ?? machine, machine));
}

/** Bytes held against the budget; `release` is idempotent. */
export interface Hold {
  readonly kind: HoldKind;
  readonly bytes: number;
  /** Changes what it holds (a task's footprint becoming its answer), never refused. */
  become(kind: HoldKind, bytes: number): void;
  release(): void;
}

export class MemoryBudget {
  private readonly held: Record<HoldKind, number> = { body: 0, task: 0, answer: 0 };
  private readonly counts: Record<HoldKind, number> = { body: 0, task: 0, answer: 0 };

  constructor(readonly limit: number) {}

  /** Bytes held now, in all or of one kind. */
  used(kind?: HoldKind): number {
    return kind ? this.held[kind] : this.held.body + this.held.task + this.held.answer;
  }

  /** Holdings of one kind now. */
  count(kind: HoldKind): number {
    return this.counts[kind];
  }

  free(): number {
    return Math.max(0, this.limit - this.used());
  }

  /** Whether `bytes` more would fit now. */
  fits(bytes: number): boolean {
    return this.used() + bytes <= this.limit;
  }

  /** Holds `bytes` of `kind` if they fit, else undefined. */
  tryHold(kind: HoldKind, bytes: number): Hold | undefined {
    if (!this.fits(bytes)) return undefined;
    return this.hold(kind, bytes);
  }

  /** Holds `bytes` of `kind` whether or not they fit (what is already in memory). */
  hold(kind: HoldKind, bytes: number): Hold {
    let k = kind;
    let b = Math.max(0, bytes);
    let live = true;
    this.held[k] += b;
    this.counts[k]++;
    const move = (kind2: HoldKind, bytes2: number) => {
      this.held[k] -= b;
      this.counts[k]--;
      k = kind2;
      b = Math.max(0, bytes2);
      this.held[k] += b;
      this.counts[k]++;
    };
    return {
      get kind() { return k; },
      get bytes() { return b; },
      become: (kind2, bytes2) => { if (live) move(kind2, bytes2); },
      release: () => {
        if (!live) return;
        live = false;
        this.held[k] -= b;
        this.counts[k]--;
      },
    };
  }
}
