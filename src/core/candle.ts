/**
 * The exchange-agnostic candle: what every upstream adapter produces and every sink consumes.
 *
 * Prices and volumes are kept as the exchange's own decimal strings, never floats, so a relay can
 * re-broadcast them byte-for-byte. `raw`, when present, is the exchange-native JSON of the event
 * exactly as it came off the wire; a sink that speaks that exchange's protocol forwards it instead of
 * serializing again (style habit 8: serialize once).
 */

/** One subscribed (exchange, symbol, interval) series. Interned: one object per stream for the process lifetime. */
export interface StreamRef {
  /** Dense numeric id, unique in the process; usable as an array index. */
  readonly id: number;
  readonly exchange: string;
  /** Exchange-native stream name, e.g. `btcusdt@kline_1m` (what relay clients subscribe to). */
  readonly name: string;
  /** Exchange-native symbol as it appears in events, e.g. `BTCUSDT`. */
  readonly symbol: string;
  /** Kline interval as the exchange spells it, e.g. `1m`. */
  readonly interval: string;
}

export interface Candle {
  readonly stream: StreamRef;
  /** Open time, ms since epoch (UTC). With the stream, the identity of the candle. */
  readonly openTime: number;
  /** Close time, ms since epoch (inclusive, e.g. openTime + 59_999 for 1m). */
  readonly closeTime: number;
  /** Exchange event time (ms); for REST-recovered candles, the time we recovered it. */
  readonly eventTime: number;
  readonly closed: boolean;
  readonly open: string;
  readonly high: string;
  readonly low: string;
  readonly close: string;
  readonly volume: string;
  readonly quoteVolume: string;
  readonly takerBuyBaseVolume: string;
  readonly takerBuyQuoteVolume: string;
  readonly trades: number;
  /** First / last trade id; -1 when unknown (REST rows carry none). */
  readonly firstTradeId: number;
  readonly lastTradeId: number;
  /** Binance's `B` ("ignore") field, kept for fidelity; "0" when unknown. */
  readonly ignore: string;
  /** Where the candle came from. */
  readonly source: 'ws' | 'rest';
  /** The exchange-native event JSON (`data` of a combined frame) exactly as received; undefined for REST. */
  readonly raw: Buffer | undefined;
  /** process.hrtime-free monotonic receive stamp in ms (performance.now()), for latency metrics. */
  readonly receivedAt: number;
}

/** A sink receives candles from the pipeline in delivery order. It never sees a duplicate. */
export interface CandleSink {
  readonly name: string;
  /**
   * Deliver one batch (closed candles first, in order; then the latest open updates).
   * Return a promise to apply backpressure: the pipeline will not hand over the next batch until it
   * settles, and its closed queue fills instead (which in turn pauses upstream reading).
   */
  deliver(batch: readonly Candle[]): void | Promise<void>;
}
