/**
 * Bybit v5 public market data, two venues from one adapter (as binance/market.ts serves spot and
 * USD-M): `bybit-spot` (category `spot`) and `bybit-linear` (category `linear`: USDT/USDC perpetuals
 * and futures). They differ only in their data: the category, the socket endpoint, the symbol form.
 *
 * Facts, each from bybit-exchange/docs @072c197 (exchanges.md §1 [BYB]):
 * - Connect (`docs/v5/websocket/wss-authentication.mdx`): `wss://stream.bybit.com/v5/public/spot|linear`;
 *   nothing goes in the URL, topics are subscribed with `{"req_id":…,"op":"subscribe","args":[…]}`;
 *   spot takes at most 10 args per subscribe request, linear has "no args limit for now"; the `args` of
 *   one public connection may not exceed 21,000 characters; at most 500 connections per 5 minutes per
 *   WebSocket domain; the client sends `{"op":"ping"}` (20 s recommended), answered
 *   `{"success":true,"ret_msg":"pong",…}`; with neither ping-pong nor data the server cuts the
 *   connection after 10 minutes.
 * - Kline (`docs/v5/websocket/public/kline.mdx`): topic `kline.{interval}.{symbol}`, intervals
 *   `1 3 5 15 30 60 120 240 360 720 D W M`, `confirm` marks the closed candle (protocol.ts).
 * - Get Kline (`docs/v5/market/kline.mdx`): `GET /v5/market/kline?category&symbol&interval&start&end&limit`,
 *   `limit` 1–1000, `result.list` "sorted in reverse by startTime", rows `[start, o, h, l, c, volume,
 *   turnover]` all strings, the newest row possibly still forming ("the last traded price when the
 *   candle is not closed"). Hummingbot sends `startTime`/`endTime` here, which are not the documented
 *   names (exchanges.md §1 "What peers got wrong"): we send `start`/`end`.
 * - Rate limits (`docs/v5/rate-limit/rate-limit.mdx`): 600 requests per 5 s per IP across
 *   `api.bybit.com`; HTTP 403 "access too frequent" = terminate all HTTP sessions and wait at least
 *   10 minutes; at most 500 WebSocket connections per 5 minutes per domain, 1,000 market-data
 *   connections per IP counted per market.
 *
 * Both venues share one WebSocket domain and one REST host, so each takes half of every per-IP or
 * per-domain limit (the pool and the REST client count per venue; the REST gate is shared per origin
 * by app.ts, so a 403 to either stops both).
 */
import * as z from 'zod';
import type { Candle, StreamRef } from '../../core/candle.ts';
import { closeTimeOf, openTimeAt, type CanonicalInterval } from '../../core/intervals.ts';
import { batchBySize, prefixedStreamName, type RestPage, type StreamSpec, type VenueAdapter, type VenueEnv, symbolMajor } from '../../upstream/venue.ts';
import { BybitFrameParser, decimal, klineTopic } from './protocol.ts';

/** The canonical intervals Bybit has, with its names for them (kline.mdx "Available intervals"; no 1s, 8h, 3d). */
export const BYBIT_INTERVALS: Readonly<Partial<Record<CanonicalInterval, string>>> = {
  '1m': '1',
  '3m': '3',
  '5m': '5',
  '15m': '15',
  '30m': '30',
  '1h': '60',
  '2h': '120',
  '4h': '240',
  '6h': '360',
  '12h': '720',
  '1d': 'D',
  '1w': 'W',
  '1M': 'M',
};

/**
 * Args per subscribe request. Spot's documented cap is 10; linear has "no args limit for now", and
 * tardis-node batches 10 per message for every category (exchanges.md §1 [TAR]): the stricter reading,
 * 10, for both, so a limit Bybit introduces later does not refuse our subscriptions.
 */
export const MAX_ARGS_PER_SUBSCRIBE = 10;
/** Connect "Public channel - Args limits": the `args` of one public connection, at most 21,000 characters. */
export const MAX_ARGS_CHARS_PER_CONNECTION = 21_000;
/** Get Kline: `limit` is [1, 1000]. */
export const MAX_PAGE_ROWS = 1000;
/** 500 connections per 5 minutes per domain, shared by bybit-spot and bybit-linear: 250 each. */
const ATTEMPTS_PER_5MIN = 250;
/**
 * 600 REST requests per 5 s per IP: one window for both venues (same origin, so the same RestGate
 * counts it for bybit-spot and bybit-linear together), 500 of the 600 (a sixth left for other clients
 * of the IP and for requests already in flight). Per minute each venue stays under 3000.
 */
export const REST_WINDOW = { key: 'bybit:rest', limit: 500, windowMs: 5000 } as const;
const REST_PER_MINUTE = 3000;
/** rate-limit.mdx: after a 403 "access too frequent", stop every REST call for at least 10 minutes. */
export const REST_BAN_MS = 10 * 60_000;
/**
 * error.mdx: 429 is "system level frequency protection, please retry": no wait is documented (nor a
 * Retry-After); one 5 s window.
 */
const REST_THROTTLE_MS = 5000;
/**
 * A refused upgrade with 403 / 429: Bybit documents no WebSocket answer for its connection limit, so
 * the REST answers' meaning is taken, at its strictest: wait 10 minutes unless told otherwise.
 */
const WS_REFUSAL_WAIT_MS = 10 * 60_000;
/** Connect: "we recommend that you send the ping heartbeat packet every 20 seconds". */
export const PING_INTERVAL_MS = 20_000;
/** Both pong shapes of public spot and linear begin so (Connect "Pong message example of public channels"). */
export const PONG_PREFIX = '{"success":true,"ret_msg":"pong"';
/** The subscribe frame around its args, with the largest request id we send (u32). */
const SUBSCRIBE_OVERHEAD = '{"req_id":"4294967295","op":"subscribe","args":[]}'.length;

export interface BybitCategory {
  readonly id: string;
  readonly title: string;
  /** The `category` of Get Kline. */
  readonly category: 'spot' | 'linear';
  readonly env: VenueEnv;
  /** The longest symbol the symbol pattern admits (sizes the per-connection args cap). */
  readonly maxSymbolLength: number;
}

/**
 * Streams per socket so that even the longest topics the configuration admits stay within the
 * 21,000-character args cap: `"kline.720.<symbol>",` per stream, as the args array is written.
 */
export function maxStreamsFor(maxSymbolLength: number): number {
  const longestTopic = klineTopic('720', 'X'.repeat(maxSymbolLength)).length;
  return Math.floor((MAX_ARGS_CHARS_PER_CONNECTION - 2) / (longestTopic + 3));
}

/** One Get Kline row: seven strings, the start time first. */
const Row = z.tuple([
  z.string().regex(/^\d{1,15}$/, { message: 'expected a start time in ms' }),
  decimal, // open
  decimal, // high
  decimal, // low
  decimal, // close
  decimal, // volume
  decimal, // turnover
]);
const KlineBody = z.object({
  retCode: z.int(),
  retMsg: z.string().optional(),
  result: z.unknown(),
});
const KlineResult = z.object({
  category: z.string().optional(),
  symbol: z.string().optional(),
  list: z.array(Row),
});

export function bybitMarket(c: BybitCategory): VenueAdapter {
  return {
    id: c.id,
    title: c.title,
    env: c.env,
    streams: (symbols, intervals) => symbolMajor(symbols, intervals, (symbol, interval) => spec(c, symbol, interval)),
    ws: {
      maxStreamsPerConnection: maxStreamsFor(c.maxSymbolLength),
      // Bybit documents no inbound message rate for public sockets; we keep Binance spot's 4/s, which
      // pings every 20 s and paced subscribes never come near.
      controlBudgetPerSecond: 4,
      subscribeSpacingMs: 300,
      heartbeat: { kind: 'client-json', intervalMs: PING_INTERVAL_MS, ping: '{"op":"ping"}', pongPrefix: PONG_PREFIX, maxFrameBytes: 256 },
      rateLimit: { closeCodes: [], closePenaltyMs: WS_REFUSAL_WAIT_MS, upgradeStatuses: [403, 429], defaultRetryAfterMs: WS_REFUSAL_WAIT_MS },
      maxConnectionAttemptsPer5Min: ATTEMPTS_PER_5MIN,
      // Public topics are never in the URL: every socket opens bare and subscribes.
      connectUrl: (baseUrl) => ({ url: baseUrl, carried: 0 }),
      subscribeBatches: (topics) => batchBySize(topics, (t) => t.length + 3, SUBSCRIBE_OVERHEAD, Number.POSITIVE_INFINITY, MAX_ARGS_PER_SUBSCRIBE),
      subscribeFrame: (topics, id) => JSON.stringify({ req_id: String(id), op: 'subscribe', args: topics }),
      createParser: (context) => new BybitFrameParser(context),
    },
    rest: {
      order: 'newest-first',
      page(stream: StreamRef, startTime: number, endTime: number, wanted: number): RestPage {
        // Every request counts 1 against the IP's 600 per 5 s whatever its size: ask for what covers the range.
        const limit = Math.min(MAX_PAGE_ROWS, Math.max(1, wanted));
        const query = `category=${c.category}&symbol=${encodeURIComponent(stream.symbol)}&interval=${encodeURIComponent(stream.nativeInterval)}&start=${startTime}&end=${endTime}&limit=${limit}`;
        return { path: `/v5/market/kline?${query}`, limit, weight: 1, window: REST_WINDOW };
      },
      parse: (body, stream, nowWall, nowMono) => parseKlines(c, body, stream, nowWall, nowMono),
      // X-Bapi-Limit-Status is the UID's remaining per-endpoint allowance (rate-limit.mdx), not IP usage.
      usedWeightHeader: undefined,
      weightLimitPerMinute: REST_PER_MINUTE,
      gateStatuses: { 403: REST_BAN_MS, 429: REST_THROTTLE_MS },
      banStatuses: [403],
    },
  };
}

function spec(c: BybitCategory, symbol: string, interval: CanonicalInterval): StreamSpec {
  const nativeInterval = c.env.intervals[interval];
  // The configuration admits only intervals of the env map (config/schema.ts venueIntervals).
  if (nativeInterval === undefined) throw new Error(`${c.title} has no ${interval} klines`);
  const native = symbol.toUpperCase();
  return { name: prefixedStreamName(c.id, native, interval), topic: klineTopic(nativeInterval, native), symbol: native, interval, nativeInterval };
}

/** A Get Kline answer's rows as closed REST candles, or what is wrong with it. */
function parseKlines(c: BybitCategory, body: unknown, stream: StreamRef, nowWall: number, nowMono: number): readonly Candle[] | string {
  const b = KlineBody.safeParse(body);
  if (!b.success) return `unexpected /v5/market/kline body: ${z.prettifyError(b.error).slice(0, 300)}`;
  // retCode 0 is OK (error.mdx); 10006 "Too many visits" and 10001 "params error" come as 200 too.
  if (b.data.retCode !== 0) return `/v5/market/kline retCode ${b.data.retCode}: ${(b.data.retMsg ?? '').slice(0, 200)}`;
  const r = KlineResult.safeParse(b.data.result);
  if (!r.success) return `unexpected /v5/market/kline result: ${z.prettifyError(r.error).slice(0, 300)}`;
  const { symbol, category, list } = r.data;
  if (symbol !== undefined && symbol !== '' && symbol !== stream.symbol) return `/v5/market/kline answered ${symbol} for ${stream.symbol}`;
  if (category !== undefined && category !== '' && category !== c.category) return `/v5/market/kline answered category ${category} for ${c.category}`;
  const out: Candle[] = [];
  for (const row of list) {
    const openTime = Number(row[0]);
    if (openTimeAt(stream.interval, openTime) !== openTime) return `/v5/market/kline row start ${row[0]} is not a ${stream.interval} open time`;
    out.push({
      stream,
      openTime,
      closeTime: closeTimeOf(stream.interval, openTime),
      eventTime: nowWall,
      closed: true,
      open: row[1],
      high: row[2],
      low: row[3],
      close: row[4],
      volume: row[5],
      quoteVolume: row[6],
      source: 'rest',
      raw: undefined,
      receivedAt: nowMono,
    });
  }
  return out;
}

/** Spot symbols: 2-30 capitals or digits (enum.mdx "symbol": `BTCUSDT`, `ETHUSDC`). */
const SPOT_SYMBOL = /^[A-Z0-9]{2,30}$/;
/**
 * Linear symbols (enum.mdx "symbol"): USDT perpetuals `BTCUSDT`, USDC perpetuals `BTCPERP`, USDT
 * futures `BTCUSDT-21FEB25`, USDC futures `BTC-24MAR23`.
 */
const LINEAR_SYMBOL = /^[A-Z0-9]{2,30}(-\d{1,2}[A-Z]{3}\d{2})?$/;

function env(prefix: string, category: 'spot' | 'linear', pattern: RegExp, form: string): VenueEnv {
  return {
    vars: { symbols: `${prefix}SYMBOLS`, intervals: `${prefix}INTERVALS`, wsUrl: `${prefix}WS_URL`, restUrl: `${prefix}REST_URL` },
    defaults: { intervals: ['1m'], wsUrl: `wss://stream.bybit.com/v5/public/${category}`, restUrl: 'https://api.bybit.com' },
    symbolPattern: pattern,
    symbolCase: 'upper',
    symbolForm: form,
    intervals: BYBIT_INTERVALS,
  };
}

export const bybitSpot = bybitMarket({
  id: 'bybit-spot',
  title: 'Bybit spot',
  category: 'spot',
  env: env('CONNECTOR_BYBIT_SPOT_', 'spot', SPOT_SYMBOL, '2-30 letters or digits, e.g. BTCUSDT'),
  maxSymbolLength: 30,
});

export const bybitLinear = bybitMarket({
  id: 'bybit-linear',
  title: 'Bybit linear',
  category: 'linear',
  env: env('CONNECTOR_BYBIT_LINEAR_', 'linear', LINEAR_SYMBOL, '2-30 letters or digits, a dated future with -DDMMMYY, e.g. BTCUSDT or BTCUSDT-21FEB25'),
  // 30 and `-21FEB25`.
  maxSymbolLength: 38,
});
