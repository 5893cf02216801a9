/**
 * Pionex spot (venue `pionex`, contract §2a; exchanges.md §4). Sources, all from Pionex's own docs:
 * [OA] github.com/pionex-official/pionex-open-api `openapi.yaml` ("Rate Limits", `/api/v1/market/klines`,
 * schema `Kline`), [WS] the same repository's `websocketapi.yaml`, [GB] the GitBook pages of the same
 * docs (pionex-doc.gitbook.io/apidocs: restful/markets/get-klines, restful/general/rate-limit,
 * websocket/general-info), [FUT] `openapi_futures.yaml` for what spot leaves unstated.
 *
 * - **No kline WebSocket.** The public socket `wss://ws.pionex.com/wsPub` carries only `TRADE` and
 *   `DEPTH` [WS], so this is a REST-polled venue (`source: 'rest-poll'`, src/upstream/poller.ts): every
 *   stream is polled just after each of its candles closes, and the closed candle is always Pionex's
 *   own REST row. No open candles are published (building them from `TRADE` is not done here).
 * - Klines: `GET /api/v1/market/klines?symbol=BTC_USDT&interval=1M&endTime=<ms>&limit=<1..500>`,
 *   weight 1, "Maximum 10,000 records" [OA]. There is no `startTime`: pages are walked backwards from
 *   `endTime`, which is inclusive [FUT: "Returned klines include this time"; spot says nothing, so we
 *   assume the same and the client filters the range either way]. The order of spot rows is not
 *   stated; futures rows are "sorted by time in descending order" [FUT] and Pionex.Net pages spot as
 *   descending, so we declare `newest-first` (the client sorts and de-duplicates every page anyway).
 * - Rows: `{time, open, close, high, low, volume}`, `time` the open time in ms, prices and volume
 *   strings [OA `Kline`]; no quote volume, trade count, trade ids or taker volumes (the relay writes
 *   `null`). The newest row is the candle still forming: the docs' example answer at 06:34:31 carries
 *   the row of 06:34:00 [GB get-klines], so the poller's "is it sealed" test (REST serves a later row)
 *   holds on the real venue.
 * - Intervals `1M 5M 15M 30M 60M 4H 8H 12H 1D`, where `1M` is ONE MINUTE [OA enum]; there is no month.
 *   Daily bars start at 00:00 UTC [FUT], like the canonical `1d`.
 * - Limits: "All endpoints share the 10 per second limit based on IP"; past it HTTP 429 and a 60 s ban,
 *   "extend 10 seconds per request" for every further one [OA "Rate Limits", GB rate-limit]. No
 *   `Retry-After` or usage header is documented: the gate is closed for 61 s (a second of margin for
 *   our clock against theirs) plus 10 s for every 429 that arrives while it is closed (requests that
 *   were in flight; `repeatPenaltyMs`), and a `Retry-After`, should one come, is honoured too.
 * - Symbols: `BTC_USDT` (base, underscore, quote, upper case) [OA example].
 */
import * as z from 'zod';
import type { Candle, StreamRef } from '../../core/candle.ts';
import { closeTimeOf, openTimeAt, type CanonicalInterval } from '../../core/intervals.ts';
import { prefixedStreamName, type PolledVenueAdapter, type RestPage, type StreamSpec, symbolMajor } from '../../upstream/venue.ts';

/** The canonical intervals Pionex spot has, with its own names [OA]: `1M` is one minute, `60M` one hour. */
export const PIONEX_INTERVALS: Readonly<Partial<Record<CanonicalInterval, string>>> = {
  '1m': '1M',
  '5m': '5M',
  '15m': '15M',
  '30m': '30M',
  '1h': '60M',
  '4h': '4H',
  '8h': '8H',
  '12h': '12H',
  '1d': '1D',
};

export const KLINES_PATH = '/api/v1/market/klines';
/** `limit`: 1–500, default 100 [OA]. */
export const MAX_LIMIT = 500;
/** "All endpoints share the 10 per second limit based on IP" [OA]. */
export const REQUESTS_PER_SECOND_LIMIT = 10;
/** What we let out: 2 of the 10 left for arrival jitter (requests sent 1 s apart may land closer) and other clients on the IP. */
export const REQUESTS_PER_SECOND = 8;
/** Of those, what polls plan on; the other 2/s are for gap recovery and resume replays (poll-budget.ts). */
export const POLLS_PER_SECOND = 6;
/** The ban after a 429 is 60 s [OA]; one more second for our clock against theirs. */
export const BAN_MS = 61_000;
/** "extend 10 seconds per request" inside the ban [OA, GB]. */
export const BAN_EXTENSION_MS = 10_000;
/**
 * After a close, wait this long before polling. Pionex says nothing about how soon a row is sealed; a
 * poll that comes too early finds no later row, leaves the candle unsealed and asks again after
 * 1, 2, 5, 10 s, so this only trades a re-ask against latency.
 */
export const POLL_LAG_MS = 1500;

const Kline = z.object({
  time: z.number().int().nonnegative(),
  open: z.string().min(1),
  close: z.string().min(1),
  high: z.string().min(1),
  low: z.string().min(1),
  volume: z.string().min(1),
});
/** A success: `{"result":true,"data":{"klines":[…]},"timestamp":…}`; a failure `{"result":false,"code","message"}` [OA "Response Format"]. */
const Body = z.union([
  z.object({ result: z.literal(true), data: z.object({ klines: z.array(Kline) }) }),
  z.object({ result: z.literal(false), code: z.string().optional(), message: z.string().optional() }),
]);

export const pionexSpot: PolledVenueAdapter = {
  id: 'pionex',
  title: 'Pionex spot',
  source: 'rest-poll',
  env: {
    vars: { symbols: 'CONNECTOR_PIONEX_SYMBOLS', intervals: 'CONNECTOR_PIONEX_INTERVALS', wsUrl: 'CONNECTOR_PIONEX_WS_URL', restUrl: 'CONNECTOR_PIONEX_REST_URL' },
    // The WebSocket URL is the documented public socket (contract §2a); no kline stream is read from it.
    defaults: { intervals: ['1m'], wsUrl: 'wss://ws.pionex.com/wsPub', restUrl: 'https://api.pionex.com' },
    symbolPattern: /^[A-Z0-9]{1,20}_[A-Z0-9]{1,20}$/,
    symbolCase: 'upper',
    symbolForm: 'BASE_QUOTE in letters and digits, e.g. BTC_USDT',
    intervals: PIONEX_INTERVALS,
  },
  streams: (symbols, intervals) => symbolMajor(symbols, intervals, spec),
  poll: { lagMs: POLL_LAG_MS, pollsPerSecond: POLLS_PER_SECOND },
  rest: {
    order: 'newest-first',
    page(stream: StreamRef, _startTime: number, endTime: number, wanted: number): RestPage {
      // No startTime on Pionex: the newest `limit` rows up to endTime (inclusive); weight 1 whatever the limit.
      const limit = Math.min(MAX_LIMIT, Math.max(1, wanted));
      const query = `symbol=${encodeURIComponent(stream.symbol)}&interval=${encodeURIComponent(stream.nativeInterval)}&endTime=${endTime}&limit=${limit}`;
      return { path: `${KLINES_PATH}?${query}`, limit, weight: 1 };
    },
    parse(body, stream, nowWall, nowMono) {
      const r = Body.safeParse(body);
      if (!r.success) return `unexpected ${KLINES_PATH} body: ${z.prettifyError(r.error).slice(0, 300)}`;
      if (!r.data.result) return `${KLINES_PATH} refused: ${r.data.code ?? '?'} ${r.data.message ?? ''}`.trim();
      const klines = r.data.data.klines;
      // A row off the interval's grid is not a candle of this stream: the body is wrong, not the row alone.
      const off = klines.find((k) => openTimeAt(stream.interval, k.time) !== k.time);
      if (off !== undefined) return `${KLINES_PATH} row time ${off.time} is not a ${stream.nativeInterval} boundary`;
      return klines.map((k) => rowToCandle(stream, k, nowWall, nowMono));
    },
    usedWeightHeader: undefined,
    weightLimitPerMinute: REQUESTS_PER_SECOND_LIMIT * 60,
    requestsPerSecond: REQUESTS_PER_SECOND,
    gateStatuses: { 429: BAN_MS },
    // A 429 is a ban on Pionex (60 s and growing), not a back-off: /ready and metrics say so.
    banStatuses: [429],
    repeatPenaltyMs: BAN_EXTENSION_MS,
  },
};

function spec(symbol: string, interval: CanonicalInterval): StreamSpec {
  const nativeInterval = PIONEX_INTERVALS[interval];
  // The schema admits only intervals in the map: anything else here is a programming error.
  if (nativeInterval === undefined) throw new Error(`Pionex has no ${interval} klines`);
  return {
    name: prefixedStreamName('pionex', symbol, interval),
    // Unique per stream (the registry interns by topic): the REST identity, symbol and native interval.
    topic: `${symbol}@${nativeInterval}`,
    symbol,
    interval,
    nativeInterval,
  };
}

/** A row as a closed REST candle: what Pionex does not publish is left out (the relay writes null). */
function rowToCandle(stream: StreamRef, k: z.infer<typeof Kline>, nowWall: number, nowMono: number): Candle {
  return {
    stream,
    openTime: k.time,
    closeTime: closeTimeOf(stream.interval, k.time),
    eventTime: nowWall,
    closed: true,
    open: k.open,
    high: k.high,
    low: k.low,
    close: k.close,
    volume: k.volume,
    source: 'rest',
    raw: undefined,
    receivedAt: nowMono,
  };
}
