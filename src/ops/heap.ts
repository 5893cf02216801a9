/**
 * Heap-pressure monitor: samples V8's heap against its limit and emits `heap.pressure` on the status
 * stream when use crosses HIGH_RATIO (`high`, logged at warn) and when it falls back below
 * NORMAL_RATIO (`normal`). Two jobs:
 *  - Shed before V8 dies: the relay listens and refuses new clients, and cuts its largest backlogs,
 *    while the heap is under pressure (relay/server.ts).
 *  - Leave a trace: V8's out-of-memory abort writes no structured line (issue 12: two crashes, no
 *    log), so an OOM that still happens is preceded by this warning, with the figures.
 *
 * What is measured: the old generation, against its limit. V8 dies when the old generation cannot
 * grow (--max-old-space-size); `heap_size_limit` also counts the young generation's reserve, three
 * semi-spaces, which is 192 MiB on Node 24 by default: with a 48 MiB old space the plain
 * used/heap_size_limit ratio never passed 50 % before the abort. So the limit is the
 * --max-old-space-size the process was started with (NODE_OPTIONS or the command line; the image and
 * every overlay set it), and only without one heap_size_limit, which V8 then sizes from the machine's
 * memory, so the young reserve is a small part of it. Young-generation objects are not counted
 * (scavenges free them without touching the old generation).
 *
 * Not relay-specific, hence here: any component can listen. A reading is two V8 statistics calls
 * (microseconds) per interval on an unref'd timer. The gap between the two ratios keeps a heap
 * hovering at the threshold from flapping.
 *
 * Limit: a heap that grows from HIGH_RATIO to the limit within one interval is not seen in time;
 * the 1 s default is small against the tens of seconds the attacks in issue 12 took.
 */
import { getHeapSpaceStatistics, getHeapStatistics } from 'node:v8';
import type { StatusStream } from '../core/status.ts';

export const HIGH_RATIO = 0.85;
export const NORMAL_RATIO = 0.75;

export interface HeapReading {
  readonly usedBytes: number;
  readonly limitBytes: number;
}

const MIB = 1024 * 1024;

/** The last `--max-old-space-size` (MiB) in these flags, in bytes; `_` spellings too, as V8 accepts them. */
export function maxOldSpaceFromFlags(flags: readonly string[]): number | undefined {
  let found: number | undefined;
  for (let i = 0; i < flags.length; i++) {
    const m = /^--max[-_]old[-_]space[-_]size(?:=(\d+))?$/.exec(flags[i] ?? '');
    if (m === null) continue;
    const value = m[1] ?? flags[i + 1];
    if (value !== undefined && /^\d+$/.test(value)) found = Number(value) * MIB;
  }
  return found;
}

/** The old generation's limit for this process: its --max-old-space-size, else V8's heap_size_limit. */
export function oldGenerationLimit(): number {
  // What V8 was started with (process introspection, like execArgv; not configuration, which
  // config/schema.ts alone reads). NODE_OPTIONS is applied first, so a flag on the command line wins.
  const flags = [...(process.env.NODE_OPTIONS ?? '').split(/\s+/).filter((f) => f.length > 0), ...process.execArgv];
  return maxOldSpaceFromFlags(flags) ?? getHeapStatistics().heap_size_limit;
}

export function readHeap(limitBytes = oldGenerationLimit()): HeapReading {
  let young = 0;
  for (const space of getHeapSpaceStatistics()) {
    if (space.space_name === 'new_space' || space.space_name === 'new_large_object_space') young += space.space_used_size;
  }
  return { usedBytes: getHeapStatistics().used_heap_size - young, limitBytes };
}

export interface HeapMonitorOptions {
  readonly status: StatusStream;
  /** Default 1000 ms. */
  readonly intervalMs?: number;
  readonly highRatio?: number;
  readonly normalRatio?: number;
  /** Seam for tests. Default readHeap against oldGenerationLimit(). */
  readonly read?: () => HeapReading;
}

export class HeapMonitor {
  readonly #status: StatusStream;
  readonly #intervalMs: number;
  readonly #high: number;
  readonly #normal: number;
  readonly #read: () => HeapReading;
  #timer: NodeJS.Timeout | undefined;
  #state: 'high' | 'normal' = 'normal';

  constructor(options: HeapMonitorOptions) {
    this.#status = options.status;
    this.#intervalMs = options.intervalMs ?? 1000;
    this.#high = options.highRatio ?? HIGH_RATIO;
    this.#normal = options.normalRatio ?? NORMAL_RATIO;
    if (options.read === undefined) {
      const limit = oldGenerationLimit();
      this.#read = () => readHeap(limit);
    } else {
      this.#read = options.read;
    }
  }

  get state(): 'high' | 'normal' {
    return this.#state;
  }

  start(): void {
    if (this.#timer !== undefined) return;
    this.#timer = setInterval(() => {
      this.check();
    }, this.#intervalMs);
    this.#timer.unref();
    this.check();
  }

  /** Take one reading now (the timer calls this). */
  check(): void {
    const r = this.#read();
    const ratio = r.usedBytes / r.limitBytes;
    const next = this.#state === 'normal' ? (ratio >= this.#high ? 'high' : 'normal') : ratio < this.#normal ? 'normal' : 'high';
    if (next === this.#state) return;
    this.#state = next;
    this.#status.emit({ type: 'heap.pressure', state: next, usedBytes: r.usedBytes, limitBytes: r.limitBytes });
  }

  close(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
  }
}
