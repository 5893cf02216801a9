/**
 * Pionex spot as a dialect of the venue simulator engine (src/simulator/dialect.ts). The facts, each
 * from Pionex's own docs (exchanges.md §4; pionex-official/pionex-open-api `openapi.yaml`, `websocketapi.yaml`):
 *
 * - No kline WebSocket: `wss://ws.pionex.com/wsPub` carries only TRADE and DEPTH, so the dialect has
 *   no `ws` and every upgrade gets 404 (the daemon must not open one).
 * - `GET /api/v1/market/klines?symbol=BTC_USDT&interval=1M&endTime=&limit=`: `interval` one of
 *   `1M 5M 15M 30M 60M 4H 8H 12H 1D` (`1M` = one minute); `endTime` in ms, inclusive; `limit` 1–500,
 *   default 100; no `startTime`: the newest `limit` rows up to endTime (or now). Rows
 *   `{time, open, close, high, low, volume}` newest first (futures: "sorted by time in descending
 *   order"; spot unstated), the newest one the candle still forming. Body
 *   `{"result":true,"data":{"klines":[…]},"timestamp":…}`; errors `{"result":false,"code","message",…}`.
 * - Rate model: all endpoints share 10 requests per second per IP (weight 1 for klines). Past it:
 *   HTTP 429 and a 60 s ban of the IP, extended by 10 s for every further request. No Retry-After or
 *   usage header is documented, so none is sent: the daemon has to derive the ban itself.
 * - Error codes of an invalid request are not listed for market endpoints; the ones here
 *   (`MARKET_INVALID_SYMBOL`, `MARKET_PARAMETER_ERROR`, `TOO_MANY_REQUESTS`, `NOT_FOUND`) are this
 *   simulator's stand-ins in Pionex's error shape.
 */
import type { GateContext, InjectedStatus, KlinesQuery, RestAnswer, RestEndpoint, SeriesCandle, SeriesStyle, VenueDialect } from '../../../simulator/dialect.ts';
import { PIONEX_INTERVALS, KLINES_PATH, MAX_LIMIT } from '../spot.ts';

/** Pionex's interval names → canonical (`1M` is one minute, `60M` one hour). */
const CANONICAL: ReadonlyMap<string, string> = new Map(Object.entries(PIONEX_INTERVALS).map(([canonical, native]) => [native, canonical]));

export const PIONEX_SERIES: SeriesStyle = {
  // Pionex's own series: the same symbol on another venue has other candles.
  salt: 0x9104e7,
  priceDecimals: 'tick',
  baseDecimals: 4,
  quoteDecimals: 4,
  intervals: new Set(Object.keys(PIONEX_INTERVALS)),
};

/** 10 requests per second per IP; a 60 s ban, + 10 s per request inside it. */
export const RATE_WINDOW_MS = 1000;
export const RATE_CAPACITY = 10;
export const BAN_MS = 60_000;
export const BAN_EXTEND_MS = 10_000;

const SYMBOL_RE = /^[A-Z0-9]{1,20}_[A-Z0-9]{1,20}$/;

function error(status: number, code: string, message: string, now: number): RestAnswer {
  return { status, body: `{"result":false,"code":${JSON.stringify(code)},"message":${JSON.stringify(message)},"timestamp":${now}}` };
}

/** One query parameter as a positive integer, or undefined when absent; NaN when malformed. */
function intParam(params: URLSearchParams, name: string): number | undefined {
  const v = params.get(name);
  if (v === null) return undefined;
  return /^\d{1,16}$/.test(v) ? Number(v) : Number.NaN;
}

/** `GET /api/v1/market/klines` as a venue-neutral query, or Pionex's error answer. */
function parseKlines(params: URLSearchParams, now: number): KlinesQuery | RestAnswer {
  const symbol = params.get('symbol');
  if (symbol === null || !SYMBOL_RE.test(symbol)) return error(400, 'MARKET_INVALID_SYMBOL', 'Invalid symbol', now);
  const interval = CANONICAL.get(params.get('interval') ?? '');
  if (interval === undefined) return error(400, 'MARKET_PARAMETER_ERROR', 'Invalid interval', now);
  const endTime = intParam(params, 'endTime');
  const limit = intParam(params, 'limit') ?? 100;
  if (Number.isNaN(endTime) || !Number.isInteger(limit) || limit < 1 || limit > MAX_LIMIT) return error(400, 'MARKET_PARAMETER_ERROR', 'Parameter error', now);
  // Zero-valued numbers are disregarded (openapi.yaml "Request Format"): endTime=0 means now.
  return endTime === undefined || endTime === 0 ? { symbol, interval, limit, take: 'newest' } : { symbol, interval, to: endTime, limit, take: 'newest' };
}

/** Rows newest first, as Pionex's futures docs state and clients read spot. */
function rows(candles: readonly SeriesCandle[], now: number): string {
  let out = '{"result":true,"data":{"klines":[';
  for (let i = candles.length - 1; i >= 0; i--) {
    const c = candles[i];
    if (c === undefined) continue;
    if (i !== candles.length - 1) out += ',';
    out += `{"time":${c.openTime},"open":"${c.open}","close":"${c.close}","high":"${c.high}","low":"${c.low}","volume":"${c.volume}"}`;
  }
  return `${out}]},"timestamp":${now}}`;
}

/** The ban answer: 429, no Retry-After (none is documented); the back-off it stands for is the ban. */
function bannedAnswer(ctx: GateContext, now: number): RestAnswer {
  return { ...error(429, 'TOO_MANY_REQUESTS', `IP banned until ${ctx.untilWall}`, now), backoffMs: ctx.retryAfterSeconds * 1000 };
}

/**
 * Malformed klines answers in Pionex's flavour (HTTP 200, so only the body is wrong): what the `garbage`
 * fault serves on a venue that has no socket to send garbage frames on (index.ts).
 */
export const GARBAGE_BODIES: readonly string[] = [
  '{"result":true,"data":{"klines":[{"time":"soon","open":1}]},"timestamp":0}',
  '{"result":true,"data":{},"timestamp":0}',
  '{"result":true,"data":{"klines":[{"time":1700000000000,"open":"1","close":"1","high":"1","low":"1"',
  '<html><body>502 Bad Gateway</body></html>',
  'null',
  '{"result":true,"data":{"klines":[{"time":1700000000001,"open":"1","close":"1","high":"1","low":"1","volume":"1"}]},"timestamp":0}',
];

/** The REST garbage the `garbage` fault has queued (shared by the dialect and its module's faults). */
export interface RestGarbage {
  /** Klines answers still to be served malformed. */
  left: number;
  /** Malformed answers served so far (the next one is GARBAGE_BODIES[served % length]). */
  served: number;
}

/** The Pionex dialect; `now` is the simulator's wall clock (the `timestamp` of every body); `garbage` queues malformed answers. */
export function pionexDialect(now: () => number = Date.now, garbage: RestGarbage = { left: 0, served: 0 }): VenueDialect {
  const klines: RestEndpoint = { kind: 'klines' };
  return {
    id: 'pionex',
    title: 'Pionex spot',
    series: PIONEX_SERIES,
    ws: undefined,
    rest: {
      endpoint: (path) => (path === KLINES_PATH ? klines : undefined),
      parse: (params, _path, wallNow) => parseKlines(params, wallNow),
      rows: (candles) => {
        if (garbage.left <= 0) return rows(candles, now());
        garbage.left--;
        return GARBAGE_BODIES[garbage.served++ % GARBAGE_BODIES.length] ?? 'null';
      },
      rate: {
        windowMs: RATE_WINDOW_MS,
        capacity: RATE_CAPACITY,
        cost: () => 1,
        // Over 10/s: 429 and the IP is banned for 60 s (banMs below), which is the back-off announced.
        limited: () => ({ ...error(429, 'TOO_MANY_REQUESTS', 'Too many requests', now()), backoffMs: BAN_MS }),
        banMs: BAN_MS,
        banExtendMs: BAN_EXTEND_MS,
        banned: (ctx) => bannedAnswer(ctx, now()),
      },
      injected: (status: InjectedStatus, retryAfter, retryAfterMs) => {
        switch (status) {
          case 429:
            // Retry-After 0: Pionex's own answer, no header, and the 60 s ban it stands for (the daemon
            // must derive it). Otherwise the fault's window as a Retry-After, so tests and chaos runs
            // can keep it short.
            if (retryAfterMs === 0) return { ...error(429, 'TOO_MANY_REQUESTS', 'Too many requests', now()), backoffMs: BAN_MS };
            return { ...error(429, 'TOO_MANY_REQUESTS', 'Too many requests', now()), headers: { 'Retry-After': retryAfter }, backoffMs: retryAfterMs };
          case 418:
          case 403:
            return error(status, 'FORBIDDEN', 'Forbidden', now());
          case 500:
            return error(500, 'SERVER_ERROR', 'Internal error', now());
        }
      },
      notFound: error(404, 'NOT_FOUND', 'Not found', 0),
      methodNotAllowed: error(405, 'METHOD_NOT_ALLOWED', 'Method not allowed', 0),
      internalError: (message) => error(500, 'SERVER_ERROR', message, now()),
    },
  };
}
