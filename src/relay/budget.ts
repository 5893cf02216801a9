/**
 * The relay-wide budget for unsent bytes (CONNECTOR_RELAY_MAX_TOTAL_BUFFERED_BYTES).
 *
 * Per-client bounds alone do not bound the process: 1000 clients × 4 MiB is 4 GiB, ten times the
 * production heap, and 100–120 subscribed clients that never read crashed the daemon (issue 12). So
 * the relay also keeps a running total of what its sockets hold and, past the budget, cuts the
 * largest backlogs first; while the total is above LOW_WATERMARK of the budget, new clients get 503.
 *
 * The running total costs nothing on the hot path: #flush already reads the socket's writableLength
 * before writing, and records `buffered + written` here (a few additions). Sockets drain without
 * telling us, so the total only over-estimates; before acting on it, the relay reconciles it
 * (re-reads every socket, O(clients)). A write reconciles only once RECONCILE_FRACTION of the
 * budget has been recorded since the last reconciliation, so a total hovering at the budget does
 * not cost O(clients) per write, and the budget is overshot by at most that much plus one write (a
 * time-based throttle let a fast writer overshoot by megabytes). Upgrades reconcile at most every
 * RECONCILE_MS (a stale answer there only refuses a client a moment longer), the liveness sweep
 * always.
 *
 * Default budget: a quarter of V8's heap limit (`v8.getHeapStatistics().heap_size_limit`, which
 * follows --max-old-space-size). Queued bytes are partly off-heap (Buffers: frames, replies) and
 * partly on it (each queued write's bookkeeping, strings ws still holds); the overlays size the
 * container at about 1.33× the old space (384 MiB heap in a 512 MiB pod), so a quarter of the heap
 * limit (~100 MiB in production) fits in what the heap and the container leave over the daemon's
 * ~100 MB working set, with room for the garbage a burst of traffic makes. The per-client bound
 * stays the first line: the budget only decides who goes first when many are behind at once.
 */
import { getHeapStatistics } from 'node:v8';

/** The default budget as a fraction of V8's heap limit. */
export const DEFAULT_HEAP_FRACTION = 0.25;
/** Shedding stops, and new clients are admitted again, at or below this fraction of the budget. */
export const LOW_WATERMARK = 0.9;
/** Bytes recorded since the last reconciliation, as a fraction of the budget, before a write triggers another. */
export const RECONCILE_FRACTION = 0.01;
/** Least time between two reconciliations triggered by upgrades. */
export const RECONCILE_MS = 50;

/** What the ledger needs of a client: its socket and the bytes last recorded for it. */
export interface Backlog {
  accounted: number;
  readonly socket: { readonly writableLength: number; readonly destroyed: boolean };
}

export function heapLimitBytes(): number {
  return getHeapStatistics().heap_size_limit;
}

export function defaultBudget(heapLimit: number): number {
  return Math.floor(heapLimit * DEFAULT_HEAP_FRACTION);
}

function mib(bytes: number): string {
  return `${(bytes / (1024 * 1024)).toFixed(bytes < 10 * 1024 * 1024 ? 1 : 0)} MiB`;
}

export interface BudgetInputs {
  readonly maxClients: number;
  readonly maxBufferedBytes: number;
  readonly maxTotalBufferedBytes: number | undefined;
}

/**
 * What is worth telling the operator at start about these bounds against the heap, one sentence per
 * finding (logged as one warning line). Empty when the configuration fits.
 */
export function budgetFindings(config: BudgetInputs, budget: number, heapLimit: number): string[] {
  const findings: string[] = [];
  const worst = config.maxClients * config.maxBufferedBytes;
  if (worst > heapLimit) {
    findings.push(
      `CONNECTOR_RELAY_MAX_CLIENTS x CONNECTOR_RELAY_MAX_BUFFERED_BYTES = ${mib(worst)} cannot fit the ${mib(heapLimit)} heap: ` +
        `the relay-wide budget of ${mib(budget)} cuts the largest backlogs first when clients fall behind together`,
    );
  }
  if (config.maxTotalBufferedBytes !== undefined && budget > heapLimit / 2) {
    findings.push(
      `CONNECTOR_RELAY_MAX_TOTAL_BUFFERED_BYTES = ${mib(budget)} is more than half the ${mib(heapLimit)} heap limit: ` +
        `the process can run out of memory before the budget sheds anyone (unset it for ${mib(defaultBudget(heapLimit))})`,
    );
  }
  if (budget < config.maxBufferedBytes) {
    findings.push(
      `CONNECTOR_RELAY_MAX_TOTAL_BUFFERED_BYTES = ${mib(budget)} is below CONNECTOR_RELAY_MAX_BUFFERED_BYTES = ${mib(config.maxBufferedBytes)}: ` +
        `one slow client can fill the whole budget`,
    );
  }
  return findings;
}

/** The running total of unsent bytes across clients, against the budget. */
export class BufferLedger<S extends Backlog> {
  readonly limit: number;
  /** Admission reopens, and shedding stops, at or below this. */
  readonly low: number;
  readonly #step: number;
  #total = 0;
  /** Bytes added by record() since the last reconcile(). */
  #grown = 0;

  constructor(limit: number) {
    this.limit = limit;
    this.low = Math.floor(limit * LOW_WATERMARK);
    this.#step = Math.max(1, Math.floor(limit * RECONCILE_FRACTION));
  }

  /** Bytes recorded (an over-estimate between reconciliations). */
  get total(): number {
    return this.#total;
  }

  /**
   * Record that `s` now holds `bytes` unsent. True when the running total is past the limit and
   * enough was recorded since the last reconciliation to be worth another (RECONCILE_FRACTION).
   */
  record(s: S, bytes: number): boolean {
    const delta = bytes - s.accounted;
    this.#total += delta;
    s.accounted = bytes;
    if (delta > 0) this.#grown += delta;
    return this.#total > this.limit && this.#grown >= this.#step;
  }

  /** `s` holds nothing any more (destroyed or gone). */
  release(s: S): void {
    this.#total -= s.accounted;
    s.accounted = 0;
  }

  /** Re-read every socket (drains since the last write are not recorded). Returns the exact total. */
  reconcile(all: Iterable<S>): number {
    let total = 0;
    for (const s of all) {
      const bytes = s.socket.destroyed ? 0 : s.socket.writableLength;
      s.accounted = bytes;
      total += bytes;
    }
    this.#total = total;
    this.#grown = 0;
    return total;
  }

  /**
   * Who to cut to bring the total down to `target`, in order: clients already `doomed` (being closed:
   * their backlog will never be read), then the largest backlogs. Meant right after reconcile().
   */
  victims(all: Iterable<S>, target: number, doomed: (s: S) => boolean): S[] {
    if (this.#total <= target) return [];
    const candidates: S[] = [];
    for (const s of all) if (s.accounted > 0) candidates.push(s);
    candidates.sort((a, b) => Number(doomed(b)) - Number(doomed(a)) || b.accounted - a.accounted);
    const out: S[] = [];
    let total = this.#total;
    for (const s of candidates) {
      if (total <= target) break;
      out.push(s);
      total -= s.accounted;
    }
    return out;
  }
}
