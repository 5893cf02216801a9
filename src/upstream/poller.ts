/**
 * The REST-polled source: a venue without a kline WebSocket (PolledVenueAdapter, `source:
 * 'rest-poll'`) gets its closed candles from REST, one poll per stream just after each candle closes.
 * Venue-agnostic: the adapter supplies the page and rows (`rest`), the wait after a close and the
 * share of its per-second budget polls may plan on (`poll`); it takes the place of the UpstreamPool
 * for that venue, so the pipeline, the relay, sinks, /ready and metrics see one more UpstreamSource.
 *
 * - Schedule: a stream's poll is due `poll.lagMs` after its current candle closes (wall clock: candle
 *   boundaries are moments, and the fast clock of the chaos suite moves them); a retry is due after a
 *   delay (monotonic: durations stay real). At start every stream is due at once and its first poll
 *   fetches its last closed candle.
 * - Pacing: every poll goes through the venue's RestClient (`fetch`), so through its RestGate (a 429
 *   ban closes it for the whole window, grown by the venue's per-request penalty, and no request
 *   leaves inside it) and its per-second window (`rest.requestsPerSecond`); polls wait there, in due
 *   order, at most `CONCURRENCY` at a time, so gap recovery and resume replays on the same client are
 *   never queued behind a whole boundary's polls.
 * - One hole rule: a poll asks for [cursor, current candle) and settles the answer with core/recovery.ts
 *   `settleRange`, like gap recovery. The final candles are handed on in order as closed REST candles;
 *   a candle REST has not sealed yet (it serves no later row, REST lags) is asked for again after
 *   1, 2, 5, 10 s; a hole (REST moved past it, or it is past the hole horizon) is stepped over, and the
 *   pipeline's gap tracker, seeing the jump, asks REST once more and counts and reports it the one way
 *   holes are reported. A failed poll keeps its cursor and is retried with back-off; the next poll
 *   after any outage (a ban, the venue down) asks for everything since the cursor, so nothing is lost.
 * - Open candles: none (the venue publishes no kline stream). The closed candle is always the venue's
 *   own REST row.
 * - Backpressure: while the pipeline's closed queue is full (`pause`), no new poll starts.
 * - Liveness: a stream is live once a poll has been answered and stale when its oldest undelivered
 *   candle closed more than `lagMs + CONNECTOR_STALE_STREAM_MS` ago (one `stream.stale` / `stream.live`
 *   event per change); the snapshot's `poll` has the figures /ready and metrics show (lag, last poll).
 *
 *   waiting ──due──► queued ──slot free, not paused──► polling ──answer──► hand on finals ─► waiting (next close)
 *                                                        │ REST lags ─► waiting (1, 2, 5, 10 s)
 *                                                        └ failed   ─► waiting (back-off)
 */
import type { Candle, StreamRef } from '../core/candle.ts';
import { systemClock, type Clock } from '../core/clock.ts';
import { errorMessage } from '../core/errors.ts';
import { nextOpenTime, nominalMs, openTimeAt } from '../core/intervals.ts';
import { settleRange, type RecoveryFetch } from '../core/recovery.ts';
import type { SourceHandlers, UpstreamSnapshot, UpstreamSource, UpstreamStats } from '../core/source.ts';
import type { BreakerState, StatusStream } from '../core/status.ts';
import type { Config } from '../config/schema.ts';
import type { Logger } from '../ops/logger.ts';
import { burstSeconds } from './poll-budget.ts';
import type { PolledVenueAdapter } from './venue.ts';

/** Polls in flight at once (each may be waiting at the REST gate or its pacing). */
const CONCURRENCY = 4;
/** While REST has not sealed a candle yet, ask again at most this far apart (gap recovery's cap too). */
const LAG_RETRY_MAX_MS = 10_000;
/**
 * The scheduler looks at the clock at least this often (real ms). Due times are moments on the
 * injected wall clock, which need not run at real speed (the chaos suite's is 60×), so a timer
 * cannot be set for "the moment"; between due times a look is one comparison.
 */
const TICK_MS = 100;
/** How often staleness is evaluated (real ms). */
const STALE_CHECK_MS = 1000;

export interface RestPollerOptions {
  readonly config: Config;
  readonly venue: PolledVenueAdapter;
  /** The venue's configured streams. */
  readonly streams: readonly StreamRef[];
  /** The venue's REST fetch with its frontier (RestClient.fetchRange: its gate, pacing, breaker and retries). */
  readonly fetch: RecoveryFetch;
  /** The REST client's breaker, shown as the source's breaker. */
  readonly breaker?: () => BreakerState;
  readonly handlers: SourceHandlers;
  readonly status: StatusStream;
  readonly log: Logger;
  readonly clock?: Clock;
  /** Delays between retries of a failed poll (ms); the last repeats (default 1, 2, 5, 10, 30, 60 s). Re-asks while REST lags use them too, capped at 10 s. */
  readonly retryDelaysMs?: readonly number[];
}

type PollState = 'waiting' | 'queued' | 'polling';

interface PolledStream {
  readonly ref: StreamRef;
  /** Open time of the next closed candle to hand on; undefined until the first poll settled one. */
  next: number | undefined;
  state: PollState;
  /** Due once the wall clock reaches this (a candle boundary plus the lag)… */
  dueWall: number;
  /** …and the monotonic clock this (a retry's delay). */
  dueMono: number;
  /** Failed polls in a row (back-off). */
  failures: number;
  /** Answers in a row that left a candle to a lagging REST. */
  lagAsks: number;
  /** Wall ms of its last answered poll. */
  lastOkAt: number | undefined;
  /** Close → handed on, of its newest candle (ms). */
  lagMs: number;
  stale: boolean;
}

export class RestPoller implements UpstreamSource {
  readonly venue: string;
  readonly #o: RestPollerOptions;
  readonly #clock: Clock;
  readonly #lagMs: number;
  readonly #staleMs: number;
  readonly #horizonMs: number;
  readonly #retry: readonly number[];
  readonly #streams: PolledStream[];
  readonly #queue: PolledStream[] = [];
  readonly #abort = new AbortController();
  #inFlight = 0;
  #tick: NodeJS.Timeout | undefined;
  #staleTimer: NodeJS.Timeout | undefined;
  #started = false;
  #closed = false;
  #paused = false;
  /** Earliest due times among waiting streams (a look at the clock compares only these). */
  #nextWall = Number.POSITIVE_INFINITY;
  #nextMono = Number.POSITIVE_INFINITY;
  #lastPollAt: number | undefined;
  #polls = 0;
  #failures = 0;
  /** Streams whose last poll failed (a failing spell of the venue is logged once). */
  #failingStreams = 0;
  #lagRetries = 0;
  #candles = 0;
  #bodyErrors = 0;
  #staleEvents = 0;

  constructor(options: RestPollerOptions) {
    this.venue = options.venue.id;
    this.#o = options;
    this.#clock = options.clock ?? systemClock;
    this.#lagMs = options.venue.poll.lagMs;
    this.#staleMs = options.config.heartbeat.staleStreamMs;
    this.#horizonMs = options.config.pipeline.holeHorizonMs;
    this.#retry = options.retryDelaysMs ?? [1000, 2000, 5000, 10_000, 30_000, 60_000];
    this.#streams = options.streams.map((ref) => ({
      ref,
      next: undefined,
      state: 'waiting',
      dueWall: 0,
      dueMono: 0,
      failures: 0,
      lagAsks: 0,
      lastOkAt: undefined,
      lagMs: 0,
      stale: false,
    }));
  }

  start(): Promise<void> {
    if (this.#started || this.#closed) return Promise.resolve();
    this.#started = true;
    this.#warnBurst();
    this.#nextWall = 0;
    this.#nextMono = 0;
    this.#tick = setInterval(() => {
      this.#onTick();
    }, TICK_MS);
    this.#tick.unref();
    this.#staleTimer = setInterval(() => {
      this.#checkStale();
    }, STALE_CHECK_MS);
    this.#staleTimer.unref();
    this.#onTick();
    return Promise.resolve();
  }

  pause(): void {
    this.#paused = true;
  }

  resume(): void {
    if (!this.#paused) return;
    this.#paused = false;
    this.#pump();
  }

  /** Idempotent: stops the timers and abandons the polls in flight (their answers are not handed on). */
  close(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    this.#closed = true;
    clearInterval(this.#tick);
    clearInterval(this.#staleTimer);
    this.#abort.abort();
    this.#queue.length = 0;
    return Promise.resolve();
  }

  snapshot(): UpstreamSnapshot {
    let live = 0;
    let polled = 0;
    let due = 0;
    let lagMs = 0;
    const stale: string[] = [];
    for (const st of this.#streams) {
      if (st.lastOkAt !== undefined) polled++;
      if (st.state !== 'waiting') due++;
      if (st.stale) stale.push(st.ref.name);
      else if (st.next !== undefined) live++;
      if (st.lagMs > lagMs) lagMs = st.lagMs;
    }
    return {
      venue: this.venue,
      connections: [],
      streamsConfigured: this.#streams.length,
      streamsLive: live,
      staleStreams: stale,
      lastMessageAt: this.#lastPollAt,
      breaker: this.#o.breaker?.() ?? 'closed',
      paused: this.#paused,
      poll: {
        streamsPolled: polled,
        lastPollAt: this.#lastPollAt,
        lagMs,
        due,
        polls: this.#polls,
        failures: this.#failures,
        lagRetries: this.#lagRetries,
      },
    };
  }

  stats(): UpstreamStats {
    return {
      messages: this.#polls,
      bytes: 0,
      candles: this.#candles,
      parseErrors: this.#bodyErrors,
      unknownStreamFrames: 0,
      connectionAttempts: 0,
      connectionErrors: 0,
      reconnections: 0,
      rotations: 0,
      staleEvents: this.#staleEvents,
    };
  }

  /** Boundaries where every stream closes at once (UTC midnight) drain at the paced rate: say how long that takes. */
  #warnBurst(): void {
    const rps = this.#o.venue.rest.requestsPerSecond;
    if (rps === undefined || this.#streams.length === 0) return;
    const shortest = Math.min(...this.#streams.map((s) => nominalMs(s.ref.interval)));
    const burst = burstSeconds(this.#streams.length, rps);
    if (burst * 1000 <= shortest / 2) return;
    this.#o.log.warn(
      { event: 'config.warning', venue: this.venue, streams: this.#streams.length, requestsPerSecond: rps, burstSeconds: burst },
      `${this.#o.venue.title}: ${this.#streams.length} streams at ${rps} REST requests/s: where all of them close at once, the last poll leaves ` +
        `${burst.toFixed(1)} s after the close (more than half of the shortest interval); fewer streams per IP poll sooner`,
    );
  }

  #onTick(): void {
    if (this.#closed) return;
    const now = this.#clock.now();
    const mono = this.#clock.monotonic();
    if (now < this.#nextWall && mono < this.#nextMono) return;
    // Due streams queue in due order (a boundary's streams in configuration order).
    const due: PolledStream[] = [];
    let nextWall = Number.POSITIVE_INFINITY;
    let nextMono = Number.POSITIVE_INFINITY;
    for (const st of this.#streams) {
      if (st.state !== 'waiting') continue;
      if (st.dueWall <= now && st.dueMono <= mono) due.push(st);
      else if (st.dueMono > mono) nextMono = Math.min(nextMono, st.dueMono);
      else nextWall = Math.min(nextWall, st.dueWall);
    }
    this.#nextWall = nextWall;
    this.#nextMono = nextMono;
    due.sort((a, b) => a.dueWall - b.dueWall || a.dueMono - b.dueMono);
    for (const st of due) {
      st.state = 'queued';
      this.#queue.push(st);
    }
    this.#pump();
  }

  #pump(): void {
    while (!this.#paused && !this.#closed && this.#inFlight < CONCURRENCY) {
      const st = this.#queue.shift();
      if (st === undefined) return;
      st.state = 'polling';
      this.#inFlight++;
      void this.#poll(st).finally(() => {
        this.#inFlight--;
        this.#pump();
      });
    }
  }

  /** Wait in `waiting` until the wall clock reaches `wall` and the monotonic clock `mono`. */
  #schedule(st: PolledStream, wall: number, mono: number): void {
    st.state = 'waiting';
    st.dueWall = wall;
    st.dueMono = mono;
    if (mono > this.#clock.monotonic()) this.#nextMono = Math.min(this.#nextMono, mono);
    else this.#nextWall = Math.min(this.#nextWall, wall);
  }

  async #poll(st: PolledStream): Promise<void> {
    const ref = st.ref;
    const interval = ref.interval;
    const now = this.#clock.now();
    // Candles before the one forming now have closed; the first poll takes the last of them.
    const to = openTimeAt(interval, now);
    const from = st.next ?? openTimeAt(interval, to - 1);
    const nextPoll = nextOpenTime(interval, to) + this.#lagMs;
    if (to <= from) {
      this.#schedule(st, nextPoll, 0);
      return;
    }
    let answer: Awaited<ReturnType<RecoveryFetch>>;
    try {
      answer = await this.#o.fetch(ref, from, to, this.#abort.signal);
    } catch (err) {
      if (this.#closed) return;
      this.#failed(st, err);
      return;
    }
    if (this.#closed) return;
    const at = this.#clock.now();
    const settled = settleRange(interval, from, to, answer, at, this.#horizonMs);
    this.#polls++;
    this.#lastPollAt = at;
    st.lastOkAt = at;
    if (st.failures > 0) {
      st.failures = 0;
      if (--this.#failingStreams === 0) this.#o.log.info({ event: 'poll.recovered', venue: this.venue }, `${this.#o.venue.title}: every poll answered again`);
    }
    let newest: Candle | undefined;
    for (const c of settled.final) {
      this.#o.handlers.candle(c);
      this.#candles++;
      newest = c;
    }
    if (newest !== undefined) st.lagMs = Math.max(0, at - (newest.closeTime + 1));
    // Past holes too (the pipeline's gap tracker asks REST again, then counts and reports them).
    if (settled.reached > from) st.next = settled.reached;
    if (settled.reached < to) {
      // REST has not sealed the rest yet: ask again soon, not at the next close.
      st.lagAsks++;
      this.#lagRetries++;
      const delay = Math.min(LAG_RETRY_MAX_MS, this.#retry[Math.min(st.lagAsks - 1, this.#retry.length - 1)] ?? LAG_RETRY_MAX_MS);
      this.#schedule(st, 0, this.#clock.monotonic() + delay);
      return;
    }
    st.lagAsks = 0;
    this.#schedule(st, nextPoll, 0);
  }

  #failed(st: PolledStream, err: unknown): void {
    this.#failures++;
    if (st.failures++ === 0) this.#failingStreams++;
    const code = typeof err === 'object' && err !== null && 'code' in err ? String(err.code) : '';
    if (code === 'CONNECTOR_ERR_REST_BODY') {
      // The venue answered something that is not its klines body: counted and skipped like a bad frame.
      this.#bodyErrors++;
      this.#o.status.emit({ type: 'parse.error', venue: this.venue, reason: errorMessage(err), sample: '' });
    } else if (st.failures === 1 && this.#failingStreams === 1) {
      // Once per failing spell of the venue (not one line per stream when it is down); the REST client's
      // breaker and gate events, and the poll failure counter, carry the rest.
      this.#o.log.warn({ event: 'poll.failed', venue: this.venue, stream: st.ref.name, error: errorMessage(err) }, `${this.#o.venue.title}: polls failing (first ${st.ref.name}), retrying with back-off`);
    }
    const delay = this.#retry[Math.min(st.failures - 1, this.#retry.length - 1)] ?? 60_000;
    this.#schedule(st, 0, this.#clock.monotonic() + delay);
  }

  /** A stream whose oldest undelivered candle closed more than lagMs + CONNECTOR_STALE_STREAM_MS ago is stale. */
  #checkStale(): void {
    if (this.#closed || this.#paused) return;
    const now = this.#clock.now();
    for (const st of this.#streams) {
      if (st.next === undefined) continue;
      const overdue = now - (nextOpenTime(st.ref.interval, st.next) + this.#lagMs);
      const stale = overdue > this.#staleMs;
      if (stale === st.stale) continue;
      st.stale = stale;
      const connId = `${this.venue}-poll`;
      if (stale) {
        this.#staleEvents++;
        this.#o.status.emit({ type: 'stream.stale', venue: this.venue, stream: st.ref.name, silentMs: Math.round(now - (st.lastOkAt ?? now)), connId });
      } else {
        this.#o.status.emit({ type: 'stream.live', venue: this.venue, stream: st.ref.name, connId });
      }
    }
  }
}
