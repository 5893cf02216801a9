/**
 * What every Binance market's adapter shares (spot, USD-M futures): combined-stream URLs and
 * SUBSCRIBE frames, the kline event parser (protocol.ts), server WebSocket pings, the 1008 / 429 / 418
 * rate-limit signals, and `/klines` REST rows (oldest first, 12 columns, the last one still forming).
 * A market is these plus its own figures (`BinanceMarket`); spot.ts and usdm.ts are one call each.
 */
import * as z from 'zod';
import type { Candle, StreamRef } from '../../core/candle.ts';
import type { CanonicalInterval } from '../../core/intervals.ts';
import { batchBySize, prefixedStreamName, type RestPage, type StreamSpec, type VenueAdapter, type VenueEnv, symbolMajor } from '../../upstream/venue.ts';
import { KlineFrameParser, klineStreamName } from './protocol.ts';

/** Binance answers nothing to URLs past ~8 KB (binance-protocol.md §2); stay under with margin. */
export const MAX_URL_BYTES = 8000;
/** SUBSCRIBE frames above 4096 bytes got no reply; keep each one under. */
export const MAX_SUBSCRIBE_BYTES = 4000;
/** The SUBSCRIBE frame around its params, with the largest id we send (u32). */
const SUBSCRIBE_OVERHEAD = '{"method":"SUBSCRIBE","params":[],"id":4294967295}'.length;
/** After a 1008 "Too many requests" close Binance penalises the IP; wait at least this long (binance-protocol.md §3). */
export const RATE_LIMIT_PENALTY_MS = 120_000;
/** A 429 / 418 without Retry-After (at upgrade or on REST): wait this long. */
const DEFAULT_RETRY_AFTER_MS = 60_000;
/** A 403 is Binance's WAF: it gives no Retry-After; back off 5 minutes. */
const WAF_BACKOFF_MS = 5 * 60_000;

export interface BinanceMarket {
  readonly id: string;
  readonly title: string;
  readonly env: VenueEnv;
  /** Relay names: spot keeps Binance's own (`btcusdt@kline_1m`), other markets carry their id (contract §5). */
  readonly relayNames: 'binance' | 'prefixed';
  readonly maxStreamsPerConnection: number;
  /** Of the market's inbound messages per second per socket, how many we use (margin for what we cannot time). */
  readonly controlBudgetPerSecond: number;
  readonly subscribeSpacingMs: number;
  /** `/api/v3/klines`, `/fapi/v1/klines`. */
  readonly klinesPath: string;
  /** Rows to ask for when `wanted` would cover the range (never above the market's cap). */
  readonly limitFor: (wanted: number) => number;
  /** Request weight of a page of `limit` rows. */
  readonly weightOf: (limit: number) => number;
  /** REST weight per minute per IP (spot 6000, USD-M 2400). */
  readonly weightLimitPerMinute: number;
}

/** One `/klines` row: prices and volumes stay strings (byte-faithful re-broadcast). */
const Row = z.tuple([
  z.number().int(), // open time
  z.string(), // open
  z.string(), // high
  z.string(), // low
  z.string(), // close
  z.string(), // volume
  z.number().int(), // close time
  z.string(), // quote volume
  z.number().int(), // trades
  z.string(), // taker buy base
  z.string(), // taker buy quote
  z.string(), // ignore
]);
const Rows = z.array(Row);

export function binanceMarket(m: BinanceMarket): VenueAdapter {
  return {
    id: m.id,
    title: m.title,
    env: m.env,
    streams: (symbols, intervals) => symbolMajor(symbols, intervals, (symbol, interval) => spec(m, symbol, interval)),
    ws: {
      maxStreamsPerConnection: m.maxStreamsPerConnection,
      controlBudgetPerSecond: m.controlBudgetPerSecond,
      subscribeSpacingMs: m.subscribeSpacingMs,
      // Binance pings every 20 s (spot) / 3 min (USD-M) and ws answers with the same payload.
      heartbeat: { kind: 'ws-ping' },
      rateLimit: { closeCodes: [1008], closePenaltyMs: RATE_LIMIT_PENALTY_MS, upgradeStatuses: [429, 418], defaultRetryAfterMs: DEFAULT_RETRY_AFTER_MS },
      connectUrl,
      subscribeBatches: (topics) => batchBySize(topics, (t) => t.length + 3, SUBSCRIBE_OVERHEAD, MAX_SUBSCRIBE_BYTES),
      subscribeFrame: (topics, id) => JSON.stringify({ method: 'SUBSCRIBE', params: topics, id }),
      createParser: (context) => new KlineFrameParser(context),
    },
    rest: {
      order: 'oldest-first',
      page(stream: StreamRef, startTime: number, endTime: number, wanted: number): RestPage {
        const limit = m.limitFor(wanted);
        const query = `symbol=${encodeURIComponent(stream.symbol)}&interval=${encodeURIComponent(stream.nativeInterval)}&startTime=${startTime}&endTime=${endTime}&limit=${limit}`;
        return { path: `${m.klinesPath}?${query}`, limit, weight: m.weightOf(limit) };
      },
      parse(body, stream, nowWall, nowMono) {
        const r = Rows.safeParse(body);
        if (!r.success) return `unexpected ${m.klinesPath} body: ${z.prettifyError(r.error).slice(0, 300)}`;
        return r.data.map((row) => rowToCandle(stream, row, nowWall, nowMono));
      },
      usedWeightHeader: 'x-mbx-used-weight-1m',
      weightLimitPerMinute: m.weightLimitPerMinute,
      // 429: back off (Retry-After); 418: the IP is auto-banned for Retry-After; 403: the WAF (rest-api.md "LIMITS").
      gateStatuses: { 429: DEFAULT_RETRY_AFTER_MS, 418: DEFAULT_RETRY_AFTER_MS, 403: WAF_BACKOFF_MS },
      banStatuses: [418, 403],
    },
  };
}

function spec(m: BinanceMarket, symbol: string, interval: CanonicalInterval): StreamSpec {
  // Binance spells every canonical interval as we do; the map only says which ones the market has.
  const nativeInterval = m.env.intervals[interval] ?? interval;
  const topic = klineStreamName(symbol, nativeInterval);
  return {
    name: m.relayNames === 'binance' ? topic : prefixedStreamName(m.id, symbol, interval),
    topic,
    symbol: symbol.toUpperCase(),
    interval,
    nativeInterval,
  };
}

/**
 * `<base>/stream?streams=a/b/…` with as many topics as fit under MAX_URL_BYTES (the rest are
 * SUBSCRIBEd after open). A spare without streams opens bare `/stream`: combined mode with nothing
 * subscribed yet (binance-protocol.md §1 "Bare paths").
 */
function connectUrl(baseUrl: string, topics: readonly string[]): { url: string; carried: number } {
  if (topics.length === 0) return { url: `${baseUrl}/stream`, carried: 0 };
  let url = `${baseUrl}/stream?streams=`;
  let carried = 0;
  for (const topic of topics) {
    if (url.length + topic.length + 1 > MAX_URL_BYTES) break;
    url += carried === 0 ? topic : `/${topic}`;
    carried++;
  }
  return { url, carried };
}

/**
 * A REST row as a candle. REST rows carry no trade ids and no `B`: the relay shows them as Binance
 * shows "none", f and L = -1 and B = "0" (contract §5: recovered candles look like that).
 */
function rowToCandle(stream: StreamRef, r: z.infer<typeof Row>, now: number, monotonic: number): Candle {
  return {
    stream,
    openTime: r[0],
    closeTime: r[6],
    eventTime: now,
    closed: true,
    open: r[1],
    high: r[2],
    low: r[3],
    close: r[4],
    volume: r[5],
    quoteVolume: r[7],
    trades: r[8],
    takerBuyBaseVolume: r[9],
    takerBuyQuoteVolume: r[10],
    firstTradeId: -1,
    lastTradeId: -1,
    ignore: '0',
    source: 'rest',
    raw: undefined,
    receivedAt: monotonic,
  };
}
