/**
 * Per-stream ordering of closed candles and gap recovery (contract §3–§4).
 *
 * Each stream has `next`: the open time of the next closed candle to deliver. A live closed candle
 *   - with openTime <  next  is a duplicate (already delivered);
 *   - with openTime == next  is delivered and `next` advances;
 *   - with openTime >  next  reveals a gap [next, openTime): the candle is HELD, and the missing range is
 *     fetched through the injected `fetch` (REST backfill); recovered candles are delivered in order,
 *     then the held ones. A range the exchange cannot fill (its own outage) is a hole: logged, counted,
 *     skipped, never invented.
 * `resync(stream)` (the source reports an interruption) recovers [next, current candle) right away
 * instead of waiting for the next live closed candle, which for a 1d stream could be a day later.
 *
 *        live closed ─► in order? ──yes──► deliver ─► next++
 *                          │ gap
 *                          ▼
 *                        HELD (bounded) ◄── live closed while recovering
 *                          │
 *       fetch [next, target) ──ok──► deliver recovered, then held (re-check: new gap → recover again)
 *             │ failed: retry with backoff (held stays; overflow → forget held, widen target: REST has them)
 *
 * The holding area is bounded: on overflow the held candles are forgotten and the recovery target
 * widened to cover them (they are recoverable from REST), so memory stays bounded and nothing is lost.
 */
import type { Candle, StreamRef } from '../core/candle.ts';
import type { Clock } from '../core/clock.ts';
import type { StatusStream } from '../core/status.ts';
import { errorMessage } from '../core/errors.ts';
import { candlesBetween, nextOpenTime, openTimeAt } from '../core/intervals.ts';

/** Fetch the CLOSED candles of `stream` with open time in [from, toExclusive), ascending. May return fewer (holes). */
export type RecoveryFetch = (stream: StreamRef, fromOpenTime: number, toOpenTimeExclusive: number, signal: AbortSignal) => Promise<Candle[]>;

export interface GapTrackerOptions {
  readonly fetch: RecoveryFetch;
  /** Hand a candle on in order (into the closed FIFO). Resolves when there is room for the next one. */
  readonly deliver: (candle: Candle) => void | Promise<void>;
  readonly status: StatusStream;
  readonly clock: Clock;
  readonly holdMax: number;
  /** Delays between retries of a failed recovery (ms); the last repeats. */
  readonly retryDelaysMs?: readonly number[];
  /** A missing tail younger than this may just not have reached REST yet: retry before calling it a hole. */
  readonly settleMs?: number;
  /** How many times to re-ask for an unsettled tail before declaring it a hole. */
  readonly tailRetries?: number;
}

interface StreamGapState {
  readonly stream: StreamRef;
  /** Open time of the next closed candle to deliver; undefined until the first one. */
  next: number | undefined;
  /** Live closed candles waiting for a recovery, ascending, unique. */
  held: Candle[];
  /** Recovery must reach at least this open time (exclusive). */
  target: number;
  recovering: boolean;
  attempt: number;
  tailAttempt: number;
  timer: NodeJS.Timeout | undefined;
}

export interface GapStats {
  backfills: number;
  backfillsFailed: number;
  candlesRecovered: number;
  holes: number;
  duplicates: number;
}

export class GapTracker {
  readonly #o: GapTrackerOptions;
  readonly #states: (StreamGapState | undefined)[] = [];
  readonly #abort = new AbortController();
  readonly #retry: readonly number[];
  #closed = false;
  #idleWaiters: Array<() => void> = [];
  readonly stats: GapStats = { backfills: 0, backfillsFailed: 0, candlesRecovered: 0, holes: 0, duplicates: 0 };

  constructor(options: GapTrackerOptions) {
    this.#o = options;
    this.#retry = options.retryDelaysMs ?? [1000, 2000, 5000, 10_000, 30_000, 60_000];
  }

  /** Open time of the next closed candle expected for the stream (undefined before the first). */
  nextExpected(streamId: number): number | undefined {
    return this.#states[streamId]?.next;
  }

  /** Streams currently waiting on a recovery. */
  get pending(): number {
    let n = 0;
    for (const s of this.#states) if (s !== undefined && (s.recovering || s.held.length > 0 || s.timer !== undefined)) n++;
    return n;
  }

  /** Total candles waiting in holding areas. */
  get held(): number {
    let n = 0;
    for (const s of this.#states) if (s !== undefined) n += s.held.length;
    return n;
  }

  /**
   * A live closed candle. Returns true when the caller should deliver it now (in order), false when it
   * was a duplicate or has been held for a recovery.
   */
  offer(candle: Candle): boolean {
    const st = this.#state(candle.stream);
    if (st.next === undefined) {
      st.next = nextOpenTime(candle.stream.interval, candle.openTime);
      return true;
    }
    if (candle.openTime < st.next) {
      this.stats.duplicates++;
      return false;
    }
    if (candle.openTime === st.next && !this.#busy(st)) {
      st.next = nextOpenTime(candle.stream.interval, candle.openTime);
      return true;
    }
    this.#hold(st, candle);
    if (candle.openTime > st.target) st.target = candle.openTime;
    this.#startRecovery(st, 0);
    return false;
  }

  /** The source lost data for this stream (reconnect, stale, breaker): recover up to the current candle. */
  resync(stream: StreamRef): void {
    const st = this.#state(stream);
    if (st.next === undefined || this.#closed) return;
    const current = openTimeAt(stream.interval, this.#o.clock.now());
    if (current > st.target) st.target = current;
    if (st.target > st.next) this.#startRecovery(st, 0);
  }

  /** Resolves once no stream is recovering, holding candles or waiting to retry (shutdown drains through this). */
  whenIdle(): Promise<void> {
    if (this.pending === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  #checkIdle(): void {
    if (this.#idleWaiters.length === 0 || this.pending > 0) return;
    const waiters = this.#idleWaiters;
    this.#idleWaiters = [];
    for (const w of waiters) w();
  }

  close(): void {
    this.#closed = true;
    this.#abort.abort();
    for (const s of this.#states) if (s?.timer !== undefined) clearTimeout(s.timer);
  }

  /** A method, not the field, so narrowing does not assume it unchanged across an await. */
  #isClosed(): boolean {
    return this.#closed;
  }

  #busy(st: StreamGapState): boolean {
    return st.recovering || st.held.length > 0 || st.timer !== undefined;
  }

  #state(stream: StreamRef): StreamGapState {
    let st = this.#states[stream.id];
    if (st === undefined) {
      st = { stream, next: undefined, held: [], target: 0, recovering: false, attempt: 0, tailAttempt: 0, timer: undefined };
      this.#states[stream.id] = st;
    }
    return st;
  }

  #hold(st: StreamGapState, candle: Candle): void {
    const held = st.held;
    // Usually appended in order; overlapping sockets may interleave, so insert sorted and unique.
    let i = held.length;
    while (i > 0 && (held[i - 1]?.openTime ?? -Infinity) > candle.openTime) i--;
    if (i > 0 && held[i - 1]?.openTime === candle.openTime) {
      this.stats.duplicates++;
      return;
    }
    held.splice(i, 0, candle);
    if (held.length > this.#o.holdMax) {
      // Forget the held candles and widen the recovery to cover them: REST has every one of them.
      const last = held[held.length - 1];
      if (last !== undefined) st.target = Math.max(st.target, nextOpenTime(st.stream.interval, last.openTime));
      st.held = [];
    }
  }

  #startRecovery(st: StreamGapState, delayMs: number): void {
    if (st.recovering || st.timer !== undefined || this.#closed) return;
    if (delayMs <= 0) {
      void this.#recover(st);
      return;
    }
    st.timer = setTimeout(() => {
      st.timer = undefined;
      void this.#recover(st);
    }, delayMs);
    st.timer.unref();
  }

  async #recover(st: StreamGapState): Promise<void> {
    try {
      await this.#recoverOnce(st);
    } finally {
      this.#checkIdle();
    }
  }

  async #recoverOnce(st: StreamGapState): Promise<void> {
    if (st.next === undefined || this.#closed) return;
    st.recovering = true;
    const stream = st.stream;
    const from = st.next;
    const to = st.target;
    const missing = candlesBetween(stream.interval, from, to);
    let recovered = 0;
    let holes = 0;
    let settled = true;
    const report = (outcome: 'ok' | 'partial' | 'failed', error?: string): void => {
      this.#o.status.emit({
        type: 'backfill',
        exchange: stream.exchange,
        stream: stream.name,
        fromOpenTime: from,
        toOpenTime: to,
        missing,
        recovered,
        holes,
        outcome,
        ...(error === undefined ? {} : { error }),
      });
    };
    try {
      if (missing > 0) {
        const rows = await this.#o.fetch(stream, from, to, this.#abort.signal);
        if (this.#isClosed()) return;
        let expect = from;
        for (const c of rows) {
          if (c.openTime < expect || c.openTime >= to) continue; // overlap or out of range
          if (c.openTime > expect) holes += candlesBetween(stream.interval, expect, c.openTime);
          await this.#o.deliver(c);
          recovered++;
          expect = nextOpenTime(stream.interval, c.openTime);
          st.next = expect;
        }
        if (expect < to) {
          // The tail is missing. If it is recent, REST may simply not have it yet: ask again before calling it a hole.
          const tailAgeMs = this.#o.clock.now() - to;
          if (tailAgeMs < (this.#o.settleMs ?? 10_000) && st.tailAttempt < (this.#o.tailRetries ?? 3)) {
            settled = false;
          } else {
            holes += candlesBetween(stream.interval, expect, to);
            st.next = to;
          }
        } else {
          st.next = to;
        }
        this.stats.backfills++;
        this.stats.candlesRecovered += recovered;
        this.stats.holes += holes;
        report(holes > 0 || !settled ? 'partial' : 'ok');
      }
      st.attempt = 0;
      if (!settled) {
        st.tailAttempt++;
        st.recovering = false;
        this.#startRecovery(st, this.#retry[Math.min(st.tailAttempt - 1, this.#retry.length - 1)] ?? 1000);
        return;
      }
      st.tailAttempt = 0;
      st.recovering = false;
      await this.#releaseHeld(st);
    } catch (err) {
      st.recovering = false;
      if (this.#isClosed()) return;
      this.stats.backfillsFailed++;
      report('failed', errorMessage(err));
      const delay = this.#retry[Math.min(st.attempt, this.#retry.length - 1)] ?? 60_000;
      st.attempt++;
      this.#startRecovery(st, delay);
    }
  }

  /** Deliver held candles that are now in order; a new discontinuity starts another recovery. */
  async #releaseHeld(st: StreamGapState): Promise<void> {
    while (st.held.length > 0 && !this.#closed) {
      const c = st.held[0];
      if (c === undefined || st.next === undefined) break;
      if (c.openTime < st.next) {
        st.held.shift();
        this.stats.duplicates++;
        continue;
      }
      if (c.openTime > st.next) {
        if (c.openTime > st.target) st.target = c.openTime;
        this.#startRecovery(st, 0);
        return;
      }
      st.held.shift();
      st.next = nextOpenTime(st.stream.interval, c.openTime);
      await this.#o.deliver(c);
    }
    if (st.next !== undefined && st.target > st.next) this.#startRecovery(st, 0);
  }
}
