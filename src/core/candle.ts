/**
 * The canonical candle: what every venue adapter produces and every sink consumes (contract §2a, §5).
 *
 * Prices and volumes are kept as the venue's own decimal strings, never floats, so a relay can
 * re-broadcast them byte-for-byte. A candle carries what every venue has (open and close time, OHLC,
 * base volume) and, as optional fields, what only some publish (quote volume, trade count, trade ids,
 * taker volumes, Binance's `B`): absent when the venue does not publish it, never invented. The relay
 * writes `null` for an absent field.
 *
 * `raw`, when present, is the event's bytes exactly as they came off the wire, for venues whose native
 * event already is a Binance kline event as the relay sends it (Binance spot and USD-M): the relay
 * forwards them instead of serializing again (style habit 8: serialize once; its fast path).
 */

import type { SinkCounters } from './stats.ts';

/**
 * One subscribed (venue, native symbol, canonical interval) series. Interned: one object per stream
 * for the process lifetime.
 */
export interface StreamRef {
  /** Dense numeric id, unique in the process; usable as an array index. */
  readonly id: number;
  /** The venue id (`binance`, `binance-usdm`, …; contract §2a). */
  readonly venue: string;
  /**
   * The relay name, unique across venues (what relay clients subscribe to, contract §5): Binance spot
   * keeps Binance's own `btcusdt@kline_1m`; other venues `binance-usdm:btcusdt@kline_1m`.
   */
  readonly name: string;
  /** The venue's own name for the stream on its wire (Binance `btcusdt@kline_1m`; Bybit `kline.1.BTCUSDT`). */
  readonly topic: string;
  /** Native symbol as the venue writes it in events, e.g. `BTCUSDT`, `BTC-USDT`. */
  readonly symbol: string;
  /** Canonical kline interval (Binance spelling, UTC-aligned; core/intervals.ts), e.g. `1m`. */
  readonly interval: string;
  /** The venue's spelling of the interval where its wire needs it (`1m`; Bybit `1`, OKX `1Dutc`). */
  readonly nativeInterval: string;
}

export interface Candle {
  readonly stream: StreamRef;
  /** Open time, ms since epoch (UTC). With the stream, the identity of the candle. */
  readonly openTime: number;
  /** Close time, ms since epoch (inclusive, e.g. openTime + 59_999 for 1m). */
  readonly closeTime: number;
  /** Venue event time (ms); for REST-recovered candles, the time we recovered it. */
  readonly eventTime: number;
  readonly closed: boolean;
  readonly open: string;
  readonly high: string;
  readonly low: string;
  readonly close: string;
  /** Base-asset volume. */
  readonly volume: string;
  /** Quote-asset volume, where the venue publishes it. */
  readonly quoteVolume?: string;
  /** Taker buy volumes (base, quote), where published. */
  readonly takerBuyBaseVolume?: string;
  readonly takerBuyQuoteVolume?: string;
  /** Trade count, where published. */
  readonly trades?: number;
  /** First / last trade id, where published (Binance: -1 when there is none, and on REST-recovered candles, contract §5). */
  readonly firstTradeId?: number;
  readonly lastTradeId?: number;
  /** Binance's `B` ("ignore") field, kept for fidelity where the venue has one. */
  readonly ignore?: string;
  /** Where the candle came from. */
  readonly source: 'ws' | 'rest';
  /**
   * The event as a Binance kline event (`data` of a combined frame) exactly as received, for venues
   * whose native event is one (the relay forwards it as is); undefined otherwise and for REST.
   */
  readonly raw: Buffer | undefined;
  /** process.hrtime-free monotonic receive stamp in ms (performance.now()), for latency metrics. */
  readonly receivedAt: number;
}

/**
 * The hot-path sink: called inline by the pipeline's drain with every batch, before anything else.
 * It must be synchronous and never throw (a throw is a programming error and crashes the daemon), and
 * it must never wait for a peer: this is the relay (`RelayServer.deliver` writes to socket buffers and
 * cuts its own slow consumers). Nothing is copied or queued for it.
 */
export interface InlineSink {
  readonly name: string;
  deliver(batch: readonly Candle[]): void;
}

/**
 * Every other consumer (a broker publisher, an archive, a test recorder). The pipeline puts each one
 * behind its own runner (src/pipeline/sinks.ts), so a slow, failing or absent sink never slows the
 * relay, the other sinks or upstream reading:
 *
 * - **Order**: closed candles in the pipeline's order (per stream: increasing open time, each once),
 *   then, in the same batch, the latest open update per stream (latest wins; never older than one
 *   already handed over, never for a candle already handed over closed). `closedOnly` sinks get no
 *   open updates at all. The sink never sees a duplicate.
 * - **Delivery**: `deliver` may return nothing (done) or a promise (done when it resolves). The runner
 *   hands over the next batch only after the previous one is done, so a sink has at most one batch in
 *   flight. A runner that is idle calls `deliver` within the drain step, right after the relay: what a
 *   sink does synchronously is event-loop time everyone waits for, so I/O goes behind the promise.
 * - **Failure**: a throw or a rejection means "not delivered, none of it": the runner retries the same
 *   batch, unchanged, after a jittered exponential back-off, counts every failure
 *   (`connector_sink_errors_total`) and emits `sink.state` once per change (ok → failing with the
 *   error, failing → ok with the attempts it took), not once per retry. Nothing behind the batch
 *   overtakes it. A sink that cannot take a candle at all must drop it itself and resolve: a batch that
 *   can never succeed is retried for ever (visible as a sink that stays `failing`).
 * - **Bound and overflow policy SHED-AND-RESUME**: the runner queues at most `maxPending` closed
 *   candles (default 10,000) beside the batch in flight. A closed candle that arrives when the queue is
 *   full is shed (not queued), and the runner keeps shedding every closed candle until the queue is
 *   back down to half its bound; then it queues again. Per stream, what the sink receives is therefore
 *   an unbroken run, one contiguous missing range per episode, then an unbroken run again. The first
 *   time an episode sheds a candle of a stream, the runner calls `onGap(stream, fromOpenTime)`: that
 *   candle and the ones after it, up to the next one `deliver` hands over for that stream, will not
 *   come through `deliver`. A sink with catch-up (its own position per stream, filled from the daemon's
 *   history or the venue's REST) implements `onGap` and loses nothing; for a sink without it the shed
 *   candles are lost, counted (`connector_sink_shed_total`) and logged as one `sink.gap` per episode.
 *   `onGap` is called synchronously from the drain: it must only record the position (a throw is
 *   counted as a sink error and ignored).
 * - **Shutdown**: `Pipeline.drain` gives the runners what is left of the grace budget to flush (a
 *   runner waiting out a back-off retries at once), then stops them: no retry after that, no timer
 *   left; what was still queued is reported in the `sink.state` → `stopped` event.
 */
export interface CandleSink {
  readonly name: string;
  /** True: closed candles only (no open updates are queued for this sink). Default false. */
  readonly closedOnly?: boolean;
  /** Bound of this sink's closed-candle queue (see the overflow policy above). Default 10,000. */
  readonly maxPending?: number;
  deliver(batch: readonly Candle[]): void | Promise<void>;
  /** The sink will not receive `stream`'s closed candles from `fromOpenTime` on, up to the next one it is handed. */
  onGap?(stream: StreamRef, fromOpenTime: number): void;
  /** The sink's own figures (a broker's acks, duplicates, …), read by /metrics; cheap, never throws. */
  counters?(): SinkCounters;
}
