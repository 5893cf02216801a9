/**
 * What BingX spot and USDT-M perpetual swap share (exchanges.md §3), as one adapter builder:
 *
 * - every frame is a GZIP member in a binary message, pings included (encoding `gzip`; spot doc
 *   "Data Compression", swap v2 doc the same);
 * - the server pings every 5 s ("the frequency might change") and wants an answer: spot JSON
 *   `{"ping":"<id>","time":"…"}` → `{"pong":"<id>","time":"…"}`, swap the text `Ping` → `Pong`
 *   (ccxt `pro/bingx.ts` pong(); BingX.Net `BingXPingSubscription.cs`, `BingXFuturesPingSubscription.cs`);
 * - one `{"id":"…","reqType":"sub","dataType":"BTC-USDT@kline_1min"}` per topic (the docs show one
 *   dataType per request; ccxt sends `reqType` only on swap, BingX's own examples on both: sent on both);
 * - no closed flag (closes `next-open`: finalizer.ts; the closed candle is REST's row);
 * - REST klines `GET /openApi/spot/v2/quote/klines` (rows `[t,o,h,l,c,v,T,q]`, BingX.Net
 *   `BingXRestClientSpotApiExchangeData.cs` GetKlinesAsync, max 1440) and `/openApi/swap/v3/quote/klines`
 *   (rows `{open,close,high,low,volume,time}`, BingX.Net
 *   `BingXRestClientPerpetualFuturesApiExchangeData.cs:174`); both within `{"code":0,"data":[…]}`.
 *
 * Limits, each the stricter reading where the sources differ or are silent:
 * - REST: all market data shares 500 requests per 10 s per IP (bingx.com support article
 *   31103871611289); the swap v2 doc's older "20 per second" is the same order. We keep to 400 per
 *   10 s, counted over spot and swap together (they share the origin, so the RestGate); every request
 *   costs 1. Pages of at most 1000 rows (spot's cap is 1440, swap's unconfirmed; BingX.Net pages by
 *   1000 on both). Row order is undocumented: pages are walked oldest first and sorted anyway; with a
 *   startTime BingX serves the rows from it on ("return the data in the case of startTime + limit", swap v2
 *   doc), so a full page is followed by the next one.
 * - 429 (rate limit) and 418 (IP banned after more requests past a 429; swap v2 doc "Error Codes")
 *   close the IP's gate for Retry-After; without one, 5 minutes, the recovery time a secondary summary
 *   of BingX's base-info gives (docs.atwallets.com/rcxt/bingx), rather than a shorter guess.
 * - WebSocket: no per-socket topic cap or connect rate is documented; BingX.Net combines 10
 *   subscriptions per socket (`BingXSocketOptions.cs`, a client default), which we take as the cap.
 *   No inbound message limit is documented either (error 100410 FREQUENCY_LIMIT exists): at most 5 of
 *   our messages a second, subscribes 250 ms apart. A 1008 close or a 429 / 418 upgrade is treated as
 *   a rate limit (unconfirmed for BingX; the usual signals, honoured rather than ignored).
 */
import type { StreamRef } from '../../core/candle.ts';
import { prefixedStreamName, type HeartbeatKind, type RestPage, type VenueAdapter, type VenueEnv, symbolMajor } from '../../upstream/venue.ts';
import { BingxFrameParser, parseRestBody } from './protocol.ts';

/** Rows per REST page (see above). */
export const PAGE_ROWS = 1000;
/** Our share of BingX's 500 market-data requests per 10 s per IP, shared by spot and swap (one origin, one RestGate). */
export const MARKET_DATA_WINDOW = { key: 'bingx:market-data', limit: 400, windowMs: 10_000 } as const;
/** A 429 / 418 without Retry-After: BingX restricts an over-limit IP for 5 minutes (see above). */
export const RATE_LIMIT_WAIT_MS = 5 * 60_000;
/** After a 1008 close or a refused upgrade without Retry-After. */
const WS_PENALTY_MS = 60_000;

/**
 * BingX answers some refusals with HTTP 200 and a business code (the spot doc's error list; ccxt maps
 * 100410 to DDoSProtection): 100410 FREQUENCY_LIMIT is a rate limit (a 429: the IP's gate closes),
 * 100500 INTERNAL_SERVER_ERROR and 100503 SERVER_BUSY are the venue's trouble (retried like a 5xx).
 */
const BODY_STATUSES: Readonly<Record<number, number>> = { 100410: 429, 100500: 500, 100503: 503 };

function bodyStatusOf(body: unknown): number | undefined {
  if (typeof body !== 'object' || body === null || !('code' in body) || typeof body.code !== 'number') return undefined;
  return BODY_STATUSES[body.code];
}

export interface BingxMarket {
  readonly id: string;
  readonly title: string;
  readonly market: 'spot' | 'swap';
  readonly env: VenueEnv;
  readonly heartbeat: HeartbeatKind;
  /** `/openApi/spot/v2/quote/klines`, `/openApi/swap/v3/quote/klines`. */
  readonly klinesPath: string;
  /** The REST spelling of each interval the market has (spot REST says `1m` where its socket says `1min`). */
  readonly restIntervals: Readonly<Record<string, string>>;
}

export function bingxMarket(m: BingxMarket): VenueAdapter {
  return {
    id: m.id,
    title: m.title,
    env: m.env,
    streams: (symbols, intervals) =>
      symbolMajor(symbols, intervals, (symbol, interval) => {
        const nativeInterval = m.env.intervals[interval];
        // The configuration admits only the intervals the market has: any other is a programming error.
        if (nativeInterval === undefined) throw new Error(`${m.title} has no ${interval} klines`);
        return { name: prefixedStreamName(m.id, symbol, interval), topic: `${symbol}@kline_${nativeInterval}`, symbol, interval, nativeInterval };
      }),
    ws: {
      maxStreamsPerConnection: 10,
      // BingX documents no inbound rate; we hold ourselves to 5/s (the simulator's audit), sending at most
      // 4 (pongs included) so frames that arrive bunched still count 5 in any of its seconds.
      controlBudgetPerSecond: 4,
      subscribeSpacingMs: 250,
      heartbeat: m.heartbeat,
      encoding: 'gzip',
      closes: 'next-open',
      rateLimit: { closeCodes: [1008], closePenaltyMs: WS_PENALTY_MS, upgradeStatuses: [429, 418], defaultRetryAfterMs: WS_PENALTY_MS },
      // Everything is subscribed after open: the URL carries no topics.
      connectUrl: (baseUrl) => ({ url: baseUrl, carried: 0 }),
      subscribeBatches: (topics) => topics.map((t) => [t]),
      subscribeFrame: (topics, id) => JSON.stringify({ id: String(id), reqType: 'sub', dataType: topics[0] ?? '' }),
      createParser: (context) => new BingxFrameParser(context, m.market),
    },
    rest: {
      order: 'oldest-first',
      page(stream: StreamRef, startTime: number, endTime: number, wanted: number, nowWall?: number): RestPage {
        const limit = Math.max(1, Math.min(PAGE_ROWS, wanted));
        const interval = m.restIntervals[stream.interval] ?? stream.interval;
        let query = `symbol=${encodeURIComponent(stream.symbol)}&interval=${encodeURIComponent(interval)}&startTime=${startTime}&endTime=${endTime}&limit=${limit}`;
        if (nowWall !== undefined) query += `&timestamp=${Math.round(nowWall)}`;
        return { path: `${m.klinesPath}?${query}`, limit, weight: 1, window: MARKET_DATA_WINDOW };
      },
      parse: (body, stream, nowWall, nowMono) => parseRestBody(m.market, m.klinesPath, body, stream, nowWall, nowMono),
      usedWeightHeader: undefined,
      // 500 per 10 s is 3000 a minute; the request window is the binding cap.
      weightLimitPerMinute: 3000,
      gateStatuses: { 429: RATE_LIMIT_WAIT_MS, 418: RATE_LIMIT_WAIT_MS },
      banStatuses: [418],
      bodyStatus: bodyStatusOf,
    },
  };
}
