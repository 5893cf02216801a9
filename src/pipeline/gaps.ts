/**
 * Per-stream ordering of closed candles and gap recovery (contract §3–§4).
 *
 * Each stream has `next`: the open time of the next closed candle to deliver. A live closed candle
 *   - with openTime <  next  is a duplicate (already delivered);
 *   - with openTime == next  is delivered and `next` advances;
 *   - with openTime >  next  reveals a gap [next, openTime): the candle is HELD, and the missing range is
 *     fetched through the injected `fetch` (REST backfill); recovered candles are delivered in order,
 *     then the held ones.
 * `resync(stream)` (the source reports an interruption) recovers [next, current candle) right away
 * instead of waiting for the next live closed candle, which for a 1d stream could be a day later.
 *
 * Holes and lag (contract §3). REST lags the stream at times (seen: 20 s behind after a 5 s outage), so
 * a candle missing from an answer is not yet a hole. It is one only once REST has served a later
 * candle of the stream (the answer's `frontier` is past it: REST moved on, Binance never had it), or it
 * closed more than `holeHorizonMs` ago. Until then the range is asked for again, with back-off, and the
 * live candles after it wait (the holding area's bound and widening still apply). A hole is logged,
 * counted, skipped, never invented. REST's newest row is taken as final only once a later one exists
 * (or past the horizon): a lagging REST's "current" candle may already be closed by our clock and
 * still partial in REST's.
 *
 *        live closed ─► in order? ──yes──► deliver ─► next++
 *                          │ gap
 *                          ▼
 *                        HELD (bounded) ◄── live closed while recovering
 *                          │
 *     fetch [next, first held) ──► deliver what REST has; a missing candle before REST's frontier
 *          │                       or the horizon is a hole ──► all there? deliver held (re-check)
 *          │                                                        │ not yet (REST lags)
 *          │                                                        └─► ask again, back-off ──┐
 *          │ failed: retry with backoff (held stays; overflow → forget held, widen: REST has them) ◄┘
 *
 * A gap is counted and reported (one `backfill` event: ok or partial) once, when it is closed, however
 * many asks it took; each failed attempt is reported as it happens (outcome `failed`, a retry follows).
 * The holding area is bounded: on overflow the held candles are forgotten and the recovery target
 * widened to cover them (they are recoverable from REST), so memory stays bounded and nothing is lost.
 *
 * Venues without a closed flag (venue.ts CloseSignal `next-open`, BingX): `opened(stream, t)` says a
 * candle opening at t has started, so every candle before it is closed and its final values are
 * REST's. That is a recovery of [next, t) like any other (same fetch through the venue's REST gate,
 * same hole rule and lag re-asks, batched with whatever else the stream is missing), counted as
 * `finalized` rather than as a gap: it is how such a venue closes every candle, not a loss. It turns
 * into a gap (a `backfill`) only if it has holes or a resync joins it.
 */
import type { Candle, StreamRef } from '../core/candle.ts';
import type { Clock } from '../core/clock.ts';
import type { StatusStream } from '../core/status.ts';
import { DEFAULT_HOLE_HORIZON_MS, settleRange, type RecoveryFetch } from '../core/recovery.ts';
import { errorMessage } from '../core/errors.ts';
import { candlesBetween, nextOpenTime, openTimeAt } from '../core/intervals.ts';

export type { RecoveredRange, RecoveryFetch } from '../core/recovery.ts';

/** While REST lags, a range is asked for again at most this far apart (the retry schedule, capped). */
const LAG_RETRY_MAX_MS = 10_000;

export interface GapTrackerOptions {
  readonly fetch: RecoveryFetch;
  /** Hand a candle on in order (into the closed FIFO). Resolves when there is room for the next one. */
  readonly deliver: (candle: Candle) => void | Promise<void>;
  readonly status: StatusStream;
  readonly clock: Clock;
  readonly holdMax: number;
  /** Delays between retries of a failed recovery (ms); the last repeats. Re-asks while REST lags use them too, capped at 10 s. */
  readonly retryDelaysMs?: readonly number[];
  /** A missing range that closed longer ago than this is a hole even if REST never moved past it (default 300 000). */
  readonly holeHorizonMs?: number;
}

/** The gap being recovered: reported and counted once, when it is closed. */
interface GapEpisode {
  readonly from: number;
  recovered: number;
  holes: number;
  /** Only candles a later one superseded on a venue without a closed flag (opened()): no gap, no event. */
  finalizing: boolean;
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
  /** Failed attempts in a row (error back-off). */
  attempt: number;
  /** Answers in a row that left part of the range to a lagging REST (lag back-off). */
  lagAsks: number;
  /** The recovery target comes from opened() alone (no resync, no held live candle since the last gap closed). */
  finalizing: boolean;
  gap: GapEpisode | undefined;
  timer: NodeJS.Timeout | undefined;
}

export interface GapStats {
  /** Gaps closed (each once, however many asks it took). */
  backfills: number;
  /** Failed attempts (each followed by a retry). */
  backfillsFailed: number;
  candlesRecovered: number;
  holes: number;
  duplicates: number;
  /** Candles closed by their successor's start and delivered as REST's final row (venues without a closed flag). */
  finalized: number;
}

export class GapTracker {
  readonly #o: GapTrackerOptions;
  readonly #states: (StreamGapState | undefined)[] = [];
  readonly #abort = new AbortController();
  readonly #retry: readonly number[];
  readonly #horizonMs: number;
  #closed = false;
  #idleWaiters: Array<() => void> = [];
  readonly stats: GapStats = { backfills: 0, backfillsFailed: 0, candlesRecovered: 0, holes: 0, duplicates: 0, finalized: 0 };

  constructor(options: GapTrackerOptions) {
    this.#o = options;
    this.#retry = options.retryDelaysMs ?? [1000, 2000, 5000, 10_000, 30_000, 60_000];
    this.#horizonMs = options.holeHorizonMs ?? DEFAULT_HOLE_HORIZON_MS;
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
    this.#notFinalizing(st);
    this.#startRecovery(st, 0);
    return false;
  }

  /**
   * A venue without a closed flag saw the stream's candle opening at `openTime` start: every candle
   * before it is closed, and is delivered as REST's row. The first one seen starts the stream there.
   */
  opened(stream: StreamRef, openTime: number): void {
    const st = this.#state(stream);
    if (this.#closed) return;
    if (st.next === undefined) {
      st.next = openTime;
      return;
    }
    if (openTime <= st.target || openTime <= st.next) return;
    if (!this.#busy(st)) st.finalizing = true;
    st.target = openTime;
    this.#startRecovery(st, 0);
  }

  #notFinalizing(st: StreamGapState): void {
    st.finalizing = false;
    if (st.gap !== undefined) st.gap.finalizing = false;
  }

  /** The source lost data for this stream (reconnect, stale, breaker): recover up to the current candle. */
  resync(stream: StreamRef): void {
    const st = this.#state(stream);
    if (st.next === undefined || this.#closed) return;
    this.#notFinalizing(st);
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
      st = { stream, next: undefined, held: [], target: 0, recovering: false, attempt: 0, lagAsks: 0, finalizing: false, gap: undefined, timer: undefined };
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
    const stream = st.stream;
    const from = st.next;
    // The gap ends at the first held candle: the live ones after it are in hand, never asked for.
    const to = st.held[0]?.openTime ?? st.target;
    if (to <= from) {
      this.#closeGap(st);
      await this.#releaseHeld(st);
      return;
    }
    st.recovering = true;
    const gap = (st.gap ??= { from, recovered: 0, holes: 0, finalizing: st.finalizing });
    try {
      const answer = await this.#o.fetch(stream, from, to, this.#abort.signal);
      if (this.#isClosed()) return;
      const settled = settleRange(stream.interval, from, to, answer, this.#o.clock.now(), this.#horizonMs);
      let recovered = 0;
      for (const c of settled.final) {
        await this.#o.deliver(c);
        recovered++;
        st.next = nextOpenTime(stream.interval, c.openTime);
      }
      const holes = settled.holes;
      const expect = settled.reached;
      if (expect > from) st.next = expect;
      gap.recovered += recovered;
      gap.holes += holes;
      if (gap.finalizing && holes === 0) this.stats.finalized += recovered;
      else {
        gap.finalizing = false;
        this.stats.candlesRecovered += recovered;
      }
      this.stats.holes += holes;
      st.attempt = 0;
      st.recovering = false;
      if (expect < to) {
        // REST has not got there yet: ask again (the live candles after the gap keep waiting).
        st.lagAsks++;
        const delay = Math.min(LAG_RETRY_MAX_MS, this.#retry[Math.min(st.lagAsks - 1, this.#retry.length - 1)] ?? LAG_RETRY_MAX_MS);
        this.#startRecovery(st, delay);
        return;
      }
      this.#closeGap(st);
      await this.#releaseHeld(st);
    } catch (err) {
      st.recovering = false;
      if (this.#isClosed()) return;
      this.stats.backfillsFailed++;
      this.#o.status.emit({
        type: 'backfill',
        venue: stream.venue,
        stream: stream.name,
        fromOpenTime: from,
        toOpenTime: to,
        missing: candlesBetween(stream.interval, from, to),
        recovered: 0,
        holes: 0,
        outcome: 'failed',
        error: errorMessage(err),
      });
      const delay = this.#retry[Math.min(st.attempt, this.#retry.length - 1)] ?? 60_000;
      st.attempt++;
      this.#startRecovery(st, delay);
    }
  }

  /** The gap is filled up to `next` (recovered or holes): count and report it, once. */
  #closeGap(st: StreamGapState): void {
    const gap = st.gap;
    st.gap = undefined;
    st.lagAsks = 0;
    if (gap === undefined || st.next === undefined) return;
    // Closing the candles a later one superseded is how a venue without a closed flag closes them: not a gap.
    if (gap.finalizing) return;
    const missing = candlesBetween(st.stream.interval, gap.from, st.next);
    if (missing === 0) return;
    this.stats.backfills++;
    this.#o.status.emit({
      type: 'backfill',
      venue: st.stream.venue,
      stream: st.stream.name,
      fromOpenTime: gap.from,
      toOpenTime: st.next,
      missing,
      recovered: gap.recovered,
      holes: gap.holes,
      outcome: gap.holes > 0 ? 'partial' : 'ok',
    });
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
