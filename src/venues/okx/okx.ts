/**
 * OKX v5 (venue `okx`, exchanges.md §2; [OKXD] = OKX's v5 docs as copied in
 * arakinyemi/exchange-api-docs `OKX/…`, [NAUT] = nautechsystems/nautilus_trader's OKX adapter):
 * spot (`BTC-USDT`) and perpetuals (`BTC-USDT-SWAP`) on one socket kind, one venue.
 *
 * - Candles only on `wss://ws.okx.com:8443/ws/v5/business` since 2023-06-20 (OKX notice "Changes to V5
 *   API WebSocket subscription parameter and URL"); `/public` answers 64001 or 60018, which arrive as
 *   control errors naming the URL. Nothing is carried in the URL: every stream is subscribed after open
 *   with `{"op":"subscribe","args":[{"channel":"candle1m","instId":"BTC-USDT"},…]}`.
 * - Limits [OKXD Introduction/WebSocket/Overview.md, Subscribe.md; NAUT websocket/client.rs]: 3
 *   connection attempts per second per IP (`connectRate`), 480 subscribe/unsubscribe/login requests
 *   per hour per connection (`subscribeRate`), at most 64 KB of args in one request.
 * - Heartbeat [OKXD Overview.md]: the server cuts a socket without data for 30 s; the client sends the
 *   text `ping` (< 30 s) and gets `pong`. 20 s as Nautilus and ccxt do.
 * - 64008 "closed soon for a service upgrade" 60 s ahead [OKXD Notification.md] → SERVER_SHUTDOWN, a
 *   make-before-break rotation. The docs say public/private "for now"; the parser honours it on any socket.
 * - REST [OKXD Get_Candlesticks.md, Get_Candlesticks_History.md, Rate_Limits/Overview.md,
 *   Error_Code/Rest_API/Public.md]: `GET /api/v5/market/candles` (the latest 1,440 bars, limit ≤ 300, 40
 *   requests per 2 s per IP) and `/api/v5/market/history-candles` (recent years, limit ≤ 100, 20 per
 *   2 s), newest first, `after` = older than, `before` = newer than (both exclusive). Rate-limit refusals
 *   are code 50011, documented both with HTTP 200 and with HTTP 429: either closes the REST gate.
 * - Bars: the UTC-aligned `6Hutc/12Hutc/1Dutc/1Wutc/1Mutc` for the canonical 6h/12h/1d/1w/1M (the plain
 *   `6H/12H/1D/1W/1M` open at 00:00 UTC+8, exchanges.md §0.5). OKX has no 8h bar. `3Dutc` exists but
 *   OKX does not say where its 3-day bars start, and the canonical 3d is aligned to the epoch: left out
 *   (the stricter reading) rather than risk every bar failing the alignment check. That `1Wutc` opens on
 *   Monday 00:00 UTC (the canonical week) is likely but not stated either: should it not, every such
 *   bar is a counted parse error (protocol.ts `misaligned`), never a candle at the wrong time.
 */
import * as z from 'zod';
import type { Candle, StreamRef } from '../../core/candle.ts';
import { candlesBetween, openTimeAt, type CanonicalInterval } from '../../core/intervals.ts';
import { batchBySize, prefixedStreamName, type RestPage, type StreamSpec, type VenueAdapter, symbolMajor } from '../../upstream/venue.ts';
import { OkxFrameParser, RowSchema, candleChannel, misaligned, okxTopic, rowCandle } from './protocol.ts';

export const OKX_ID = 'okx';

/** Canonical → OKX bar names [OKXD Get_Candlesticks.md; Hummingbot okx_spot_candles/constants.py maps to the …utc bars]. */
export const OKX_INTERVALS: Readonly<Partial<Record<CanonicalInterval, string>>> = {
  // 1s: WebSocket `candle1s` and `/history-candles` only (the last 3 months); `/candles` lists no 1s.
  '1s': '1s',
  '1m': '1m',
  '3m': '3m',
  '5m': '5m',
  '15m': '15m',
  '30m': '30m',
  '1h': '1H',
  '2h': '2H',
  '4h': '4H',
  '6h': '6Hutc',
  '12h': '12Hutc',
  '1d': '1Dutc',
  '1w': '1Wutc',
  '1M': '1Mutc',
};

/** "The total length of multiple channels cannot exceed 64 KB" [OKXD Subscribe.md]: the whole frame stays under, with margin. */
export const MAX_REQUEST_BYTES = 60_000;
const SUBSCRIBE_OVERHEAD = '{"id":"4294967295","op":"subscribe","args":[]}'.length;
/**
 * OKX documents no cap on public channels per connection, only close codes 4008/4009 when "the number
 * of subscribed channels exceeds the limit" [OKXD Error_Code/WebSocket/Public.md]; peers stay at 200.
 */
export const MAX_STREAMS_PER_CONNECTION = 200;

/** `/market/candles` serves only the latest 1,440 bars; ranges starting further back than this many go to `/history-candles` (margin for clock skew). */
export const RECENT_BARS = 1400;
export const CANDLES_PATH = '/api/v5/market/candles';
export const HISTORY_PATH = '/api/v5/market/history-candles';
export const CANDLES_PAGE_LIMIT = 300;
export const HISTORY_PAGE_LIMIT = 100;
/**
 * 40 and 20 requests per 2 s per IP. Whether OKX counts the two apart is not stated; read strictly
 * (one budget in which a history request weighs two), both windows full at once stay under it:
 * 20 + 2 × 9 = 38 of 40.
 */
const CANDLES_WINDOW = { key: 'okx:candles', limit: 20, windowMs: 2000 } as const;
const HISTORY_WINDOW = { key: 'okx:history-candles', limit: 9, windowMs: 2000 } as const;
/** OKX sends no Retry-After: after a 50011 / 429, wait out one 2-second rate window. */
export const REST_BACKOFF_MS = 2000;
/** The code of a rate-limit refusal, in a 200 or a 429 body. */
export const RATE_LIMIT_CODE = '50011';

const Body = z.object({ code: z.string(), msg: z.string().optional(), data: z.unknown() });
const Rows = z.array(RowSchema);

function spec(symbol: string, interval: CanonicalInterval): StreamSpec {
  const instId = symbol.toUpperCase();
  const nativeInterval = OKX_INTERVALS[interval] ?? interval;
  return {
    name: prefixedStreamName(OKX_ID, instId, interval),
    topic: okxTopic(candleChannel(nativeInterval), instId),
    symbol: instId,
    interval,
    nativeInterval,
  };
}

/**
 * The page for [startTime, endTime]: `/candles` while the range starts within its latest bars,
 * `/history-candles` otherwise (and always for 1s, and when the time is not known). Nautilus switches
 * at 100 days [NAUT http/client.rs]; OKX's own text says 1,440 bars, which is stricter for 1m: that.
 */
function page(stream: StreamRef, startTime: number, endTime: number, wanted: number, nowWall?: number): RestPage {
  const recent = nowWall !== undefined && stream.interval !== '1s' && candlesBetween(stream.interval, startTime, openTimeAt(stream.interval, nowWall)) < RECENT_BARS;
  const limit = Math.max(1, Math.min(recent ? CANDLES_PAGE_LIMIT : HISTORY_PAGE_LIMIT, wanted));
  // after/before are exclusive: [startTime, endTime] is (startTime - 1, endTime + 1).
  const query = `instId=${encodeURIComponent(stream.symbol)}&bar=${encodeURIComponent(stream.nativeInterval)}&after=${endTime + 1}&before=${startTime - 1}&limit=${limit}`;
  return { path: `${recent ? CANDLES_PATH : HISTORY_PATH}?${query}`, limit, weight: 1, window: recent ? CANDLES_WINDOW : HISTORY_WINDOW };
}

function parse(body: unknown, stream: StreamRef, nowWall: number, nowMono: number): readonly Candle[] | string {
  const b = Body.safeParse(body);
  if (!b.success) return `unexpected OKX candles body: ${z.prettifyError(b.error).slice(0, 300)}`;
  if (b.data.code !== '0') return `OKX candles answered code ${b.data.code}: ${(b.data.msg ?? '').slice(0, 200)}`;
  const rows = Rows.safeParse(b.data.data);
  if (!rows.success) return `unexpected OKX candle rows: ${z.prettifyError(rows.error).slice(0, 300)}`;
  const out: Candle[] = [];
  for (const row of rows.data) {
    const openTime = Number(row[0]);
    const wrong = misaligned(stream, openTime);
    if (wrong !== undefined) return `OKX candle row for ${stream.name}: ${wrong}`;
    // The forming bar (confirm "0") comes first; it stays in as the frontier, and the loop drops it
    // while its close time is ahead (gap recovery's hole rule never takes REST's newest row as final).
    out.push(rowCandle(stream, openTime, row, true, 'rest', nowWall, nowMono));
  }
  return out;
}

/** 50011 in a 200 body is the rate-limit refusal a 429 is (OKX documents both forms). */
function bodyStatus(body: unknown): number | undefined {
  return typeof body === 'object' && body !== null && 'code' in body && body.code === RATE_LIMIT_CODE ? 429 : undefined;
}

export const okx: VenueAdapter = {
  id: OKX_ID,
  title: 'OKX',
  env: {
    vars: { symbols: 'CONNECTOR_OKX_SYMBOLS', intervals: 'CONNECTOR_OKX_INTERVALS', wsUrl: 'CONNECTOR_OKX_WS_URL', restUrl: 'CONNECTOR_OKX_REST_URL' },
    defaults: { intervals: ['1m'], wsUrl: 'wss://ws.okx.com:8443/ws/v5/business', restUrl: 'https://www.okx.com' },
    symbolPattern: /^[A-Z0-9]{1,20}-[A-Z0-9]{1,20}(-SWAP)?$/,
    symbolCase: 'upper',
    symbolForm: 'BASE-QUOTE (spot) or BASE-QUOTE-SWAP (perpetual), e.g. BTC-USDT or BTC-USDT-SWAP',
    intervals: OKX_INTERVALS,
  },
  streams: (symbols, intervals) => symbolMajor(symbols, intervals, spec),
  ws: {
    maxStreamsPerConnection: MAX_STREAMS_PER_CONNECTION,
    // OKX documents no inbound messages/s for public sockets; Nautilus paces its requests at 3/s.
    controlBudgetPerSecond: 3,
    subscribeSpacingMs: 500,
    heartbeat: { kind: 'client-text', intervalMs: 20_000, ping: 'ping', pong: 'pong' },
    // No close code means "too many requests" on OKX; an upgrade over the attempt rate is refused 429.
    rateLimit: { closeCodes: [], closePenaltyMs: 0, upgradeStatuses: [429], defaultRetryAfterMs: 2000 },
    // 3 attempts per second per IP; 2 leaves one for whatever else shares the IP.
    connectRate: { limit: 2, windowMs: 1000 },
    // 480 subscribe/unsubscribe/login an hour per connection; 400 leaves margin.
    subscribeRate: { limit: 400, windowMs: 3_600_000 },
    connectUrl: (baseUrl) => ({ url: baseUrl, carried: 0 }),
    subscribeBatches: (topics) => batchBySize(topics, (t) => t.length + 1, SUBSCRIBE_OVERHEAD, MAX_REQUEST_BYTES),
    // Topics are the args' JSON already (okxTopic): joined, not serialized again.
    subscribeFrame: (topics, id) => `{"id":"${id}","op":"subscribe","args":[${topics.join(',')}]}`,
    createParser: (context) => new OkxFrameParser(context),
  },
  rest: {
    order: 'newest-first',
    page,
    parse,
    bodyStatus,
    usedWeightHeader: undefined,
    // 40 requests per 2 s on /candles is 1,200 a minute; the 2-second windows above do the pacing.
    weightLimitPerMinute: 1200,
    gateStatuses: { 429: REST_BACKOFF_MS },
    banStatuses: [],
  },
};
