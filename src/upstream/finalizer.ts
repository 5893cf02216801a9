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
 * Per stream it keeps one number (the newest open time seen), in an array indexed by stream id.
 */
import type { Candle, StreamRef } from '../core/candle.ts';
import type { SourceHandlers } from '../core/source.ts';

/** Where the finalizer says "the candle at openTime has started" (Pipeline.opened). */
export type OpenedSink = (stream: StreamRef, openTime: number) => void;

export class NextOpenFinalizer implements SourceHandlers {
  readonly #inner: SourceHandlers;
  readonly #opened: OpenedSink;
  /** Per stream id: the newest open time seen, or undefined. */
  readonly #newest: (number | undefined)[] = [];

  constructor(inner: SourceHandlers, opened: OpenedSink) {
    this.#inner = inner;
    this.#opened = opened;
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
}
