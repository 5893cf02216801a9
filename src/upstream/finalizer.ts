/**
 * Closed-by-next-open (venue.ts CloseSignal `next-open`, contract §3): for a venue whose frames carry
 * no closed flag (BingX, exchanges.md §0.1 and §3), a candle is closed once a later candle of its
 * stream has started, and its final values come from REST, never from the last WebSocket update (the
 * venue may trade after its last push, so that update need not be the candle's final state).
 *
 * This sits between a venue's pool and the pipeline: every update passes on as an open update, and
 * the first update of a later open time tells the pipeline `opened(stream, openTime)`. The pipeline's
 * gap tracker then delivers the superseded candles from REST through the stream's RestClient (its IP
 * gate, request window, breaker): batched (one ranged request covers every candle the stream has
 * waiting, and a later start joins a request still waiting), REST that has not got the final row yet
 * asked again with back-off (core/recovery.ts settleRange: REST's newest row is final only once it has
 * a later one), nothing invented, a hole only by the one hole rule. Open updates keep flowing
 * meanwhile; the pipeline drops any that is older than a candle it has delivered closed.
 *
 * A quiet stream may send nothing for a while (BingX pushes a kline on updates, so a symbol without
 * trades is silent): its next candle has started all the same once the clock is past the boundary.
 * A tick closes, `graceMs` after each boundary, the candles of every stream that has not shown a later
 * update by then (the grace covers the skew between our clock and the venue's; REST's final-row rule
 * covers the rest). Per stream one number is kept (the newest open time known), in an array indexed by
 * stream id.
 */
import type { Candle, StreamRef } from '../core/candle.ts';
import type { Clock } from '../core/clock.ts';
import { nextOpenTime, openTimeAt } from '../core/intervals.ts';
import type { SourceHandlers } from '../core/source.ts';

/** Where the finalizer says "the candle at openTime has started" (Pipeline.opened). */
export type OpenedSink = (stream: StreamRef, openTime: number) => void;

export interface NextOpenFinalizerOptions {
  /** The pipeline's handlers: every update goes on to them unchanged. */
  readonly inner: SourceHandlers;
  readonly opened: OpenedSink;
  readonly clock: Clock;
  /** The venue's streams: the tick closes their candles by the clock. */
  readonly streams: readonly StreamRef[];
  /** How long after a boundary a stream's next candle counts as started without an update (default 2000 ms). */
  readonly graceMs?: number;
  /** How often the tick runs (default 1000 ms). */
  readonly tickMs?: number;
}

export class NextOpenFinalizer implements SourceHandlers {
  readonly #inner: SourceHandlers;
  readonly #opened: OpenedSink;
  readonly #clock: Clock;
  readonly #streams: readonly StreamRef[];
  readonly #graceMs: number;
  readonly #tickMs: number;
  /** Per stream id: the newest open time known to have started, or undefined before the first update. */
  readonly #newest: (number | undefined)[] = [];
  #timer: NodeJS.Timeout | undefined;

  constructor(options: NextOpenFinalizerOptions) {
    this.#inner = options.inner;
    this.#opened = options.opened;
    this.#clock = options.clock;
    this.#streams = options.streams;
    this.#graceMs = options.graceMs ?? 2000;
    this.#tickMs = options.tickMs ?? 1000;
  }

  candle(candle: Candle): void {
    const id = candle.stream.id;
    const newest = this.#newest[id];
    if (newest === undefined || candle.openTime > newest) {
      this.#newest[id] = candle.openTime;
      // Before the update itself, so the superseded candles are asked for at once.
      this.#opened(candle.stream, candle.openTime);
    }
    // The venue's parser emits every update as an open one (it has no flag to say otherwise).
    this.#inner.candle(candle);
  }

  resync(stream: StreamRef, reason: string): void {
    this.#inner.resync(stream, reason);
  }

  /** Start the clock's tick. Idempotent. */
  start(): void {
    if (this.#timer !== undefined) return;
    this.#timer = setInterval(() => {
      this.tick();
    }, this.#tickMs);
    this.#timer.unref();
  }

  /** Stop the tick (shutdown). Idempotent. */
  close(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** Close, by the clock, the candles of every stream whose next one started more than graceMs ago. */
  tick(): void {
    const at = this.#clock.now() - this.#graceMs;
    for (const stream of this.#streams) {
      const newest = this.#newest[stream.id];
      if (newest === undefined || at < nextOpenTime(stream.interval, newest)) continue;
      const started = openTimeAt(stream.interval, at);
      this.#newest[stream.id] = started;
      this.#opened(stream, started);
    }
  }
}
