/**
 * BingX's wire dialect for the venue simulator engine (src/simulator/dialect.ts), one per market (spot,
 * USDT-M perpetual swap), each behaviour from a fact of exchanges.md §3 (sources named beside it):
 *
 * - one endpoint per market: `/market` (spot), `/swap-market` (swap); no stream names in the URL;
 * - every server frame gzip-compressed and sent binary, pings included (spot doc "Data Compression");
 * - the server pings every 5 s ("might change"): spot `{"ping":"<id>","time":"…"}` answered by
 *   `{"pong":"<id>",…}` with the same id, swap the text `Ping` answered by `Pong`; a socket that leaves
 *   3 pings in a row unanswered is closed (the count is not documented; the docs only say to answer);
 * - `{"id","reqType":"sub"|"unsub","dataType"}` (spot also takes a request without `reqType` as a sub,
 *   as its doc's example shows), answered `{"id","code":0,"msg":""}`; a dataType that is no kline topic of
 *   the market: code 100400 ILLEGAL_ARGUMENT; a socket past its topic cap: 100410 (the error list);
 * - kline pushes about every second ("push updates to the (current) kline … every second"), spot
 *   `{"code":0,"dataType","data":{"e":"kline","E","s","K":{t,T,s,i,o,h,l,c,v,q,n}},"success":true}`,
 *   swap `{"code":0,"dataType","s","data":[{o,h,l,c,v,T}]}` with `T` the open time (ccxt PR #20516);
 * - no closed flag (engine `closed: 'none'`): the first update of the next candle tells a client the
 *   previous one closed, and its final values are REST's. A push is the candle as it stood when it was
 *   sent, so the last push of a candle is never its final row (trades after it are in REST only): the
 *   series' partial candles have fewer trades, so less volume, than the final one;
 * - REST `GET /openApi/spot/v2/quote/klines` (rows `[t,o,h,l,c,v,T,q]`, oldest first, at most 1440)
 *   and `GET /openApi/swap/v3/quote/klines` (rows `{open,close,high,low,volume,time}`, at most 1440 as
 *   the v2 doc says; returned newest first here, since the order is undocumented: the daemon must sort),
 *   both in `{"code":0,"msg":"","data":[…]}` (timestamp on spot); with startTime the oldest `limit` rows
 *   from it ("return the data in the case of startTime + limit", swap v2 doc), without it the newest;
 *   the forming candle is the last row; a bad parameter is HTTP 200 with code 100400;
 * - 500 market-data requests per 10 s per IP over both markets (bingx.com support article
 *   31103871611289): past it 429 with code 100410 and Retry-After (BingX's header is unconfirmed; the
 *   429 and the 418 for an IP that keeps going are the swap v2 doc's "Error Codes"); the usage headers
 *   `X-RateLimit-Requests-Remain` / `-Expire` of a secondary summary (docs.atwallets.com/rcxt/bingx).
 *   Each simulator counts its own requests (a test gives each market its own port, so its own IP budget).
 * - no per-socket topic cap or connect rate is documented: the simulator allows 200 topics per socket
 *   and 300 upgrades per 5 minutes (Binance's figures), and counts inbound frames without closing.
 */
import type { ControlOp, GateContext, KlinesQuery, RestAnswer, RestEndpoint, SeriesCandle, SeriesStyle, StreamRef, VenueDialect, WsRoute } from '../../../simulator/dialect.ts';

export type BingxMarketId = 'bingx-spot' | 'bingx-swap';

/** A market's wire figures (the adapter's env tables, seen from the exchange's side). */
export interface BingxSimMarket {
  readonly id: BingxMarketId;
  readonly title: string;
  readonly path: string;
  /** Canonical interval → the socket's name (`1min` on spot). */
  readonly wsIntervals: Readonly<Record<string, string>>;
  /** Canonical interval → REST's name (`1m` on both). */
  readonly restIntervals: Readonly<Record<string, string>>;
  readonly klinesPath: string;
  readonly maxLimit: number;
  readonly series: SeriesStyle;
}

const SPOT_WS: Readonly<Record<string, string>> = { '1m': '1min', '5m': '5min', '15m': '15min', '30m': '30min' };
const SPOT_REST: Readonly<Record<string, string>> = { '1m': '1m', '5m': '5m', '15m': '15m', '30m': '30m' };
const SWAP: Readonly<Record<string, string>> = Object.fromEntries(
  ['1m', '3m', '5m', '15m', '30m', '1h', '2h', '4h', '6h', '8h', '12h', '1d', '3d', '1w', '1M'].map((i) => [i, i]),
);

export const BINGX_MARKETS: Readonly<Record<BingxMarketId, BingxSimMarket>> = {
  'bingx-spot': {
    id: 'bingx-spot',
    title: 'BingX spot (simulated)',
    path: '/market',
    wsIntervals: SPOT_WS,
    restIntervals: SPOT_REST,
    klinesPath: '/openApi/spot/v2/quote/klines',
    maxLimit: 1440,
    // Prices at the symbol's tick, base volumes with 6 decimals (the spot doc's `"v":"0.067295"`).
    series: { salt: 0xb1a9_5907, priceDecimals: 'tick', baseDecimals: 6, quoteDecimals: 6, intervals: new Set(Object.keys(SPOT_WS)) },
  },
  'bingx-swap': {
    id: 'bingx-swap',
    title: 'BingX swap (simulated)',
    path: '/swap-market',
    wsIntervals: SWAP,
    restIntervals: SWAP,
    klinesPath: '/openApi/swap/v3/quote/klines',
    maxLimit: 1440,
    // `"v":"27.6919"` in ccxt's swap example: 4 decimals.
    series: { salt: 0xb1a9_5a09, priceDecimals: 'tick', baseDecimals: 4, quoteDecimals: 4, intervals: new Set(Object.keys(SWAP)) },
  },
};

/** The simulated server's ping interval (spot and swap docs: every 5 seconds). */
export const PING_INTERVAL_MS = 5000;
const REST_WINDOW_MS = 10_000;
const REST_CAPACITY = 500;

/** Malformed frames in BingX's flavour, for the `garbage` fault (each sent gzipped, like every frame). */
const GARBAGE_FRAMES: readonly string[] = [
  'this is not json',
  '{"code":0,"dataType":"BTC-USDT@kline_1min","data":{"e":"kline","E":"soon","K":[]}}',
  '{"code":0,"dataType":"BTC-USDT@kline_1m","data":[{"o":"1","T":"tomorrow"}]}',
  '{"code":0,"dataType":"BTC-USDT@kline_1m","data":',
  '[1,2,3]',
  'null',
  '{"id":17}',
];

const toCanonical = (table: Readonly<Record<string, string>>): Map<string, string> => new Map(Object.entries(table).map(([canonical, native]) => [native, canonical]));

function reply(id: string, code: number, msg: string): string {
  return `{"id":${JSON.stringify(id)},"code":${code},"msg":${JSON.stringify(msg)},"timestamp":${Date.now()}}`;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function bodyOf(code: number, msg: string): string {
  return `{"code":${code},"msg":${JSON.stringify(msg)}}`;
}

function refused(status: number, code: number, msg: string, retryAfter: string | undefined, backoffMs: number | undefined): RestAnswer {
  return {
    status,
    body: bodyOf(code, msg),
    ...(retryAfter === undefined ? {} : { headers: { 'Retry-After': retryAfter } }),
    ...(backoffMs === undefined ? {} : { backoffMs }),
  };
}

/** The spot push of one update (built by concatenation: once per tick). */
function spotFrame(stream: string, c: SeriesCandle, nativeInterval: string, eventTime: number): string {
  const s = JSON.stringify(c.symbol);
  return (
    `{"code":0,"dataType":${JSON.stringify(stream)},"data":{"e":"kline","E":${eventTime},"s":${s},"K":{"t":${c.openTime},"T":${c.closeTime},"s":${s},` +
    `"i":"${nativeInterval}","o":"${c.open}","h":"${c.high}","l":"${c.low}","c":"${c.close}","v":"${c.volume}","q":"${c.quoteVolume}","n":${c.trades}}},"success":true}`
  );
}

function swapFrame(stream: string, c: SeriesCandle): string {
  return `{"code":0,"dataType":${JSON.stringify(stream)},"s":${JSON.stringify(c.symbol)},"data":[{"c":"${c.close}","o":"${c.open}","h":"${c.high}","l":"${c.low}","v":"${c.volume}","T":${c.openTime}}]}`;
}

function parseInt10(v: string | null): number | undefined | 'bad' {
  if (v === null) return undefined;
  return /^\d{1,16}$/.test(v) ? Number(v) : 'bad';
}

export function bingxDialect(id: BingxMarketId): VenueDialect {
  const m = BINGX_MARKETS[id];
  const spot = id === 'bingx-spot';
  const wsCanonical = toCanonical(m.wsIntervals);
  const restCanonical = toCanonical(m.restIntervals);
  const streamRefs = new Map<string, StreamRef | undefined>();
  const klines: RestEndpoint = { kind: 'klines' };
  const time: RestEndpoint = { kind: 'static', body: (now) => `{"code":0,"msg":"","data":{"serverTime":${now}}}` };
  const route: WsRoute = { streams: [], form: 0, delivers: true };

  const streamOf = (key: string): StreamRef | undefined => {
    if (streamRefs.has(key)) return streamRefs.get(key);
    const at = key.indexOf('@kline_');
    const symbol = at > 0 ? key.slice(0, at) : '';
    const interval = at > 0 ? wsCanonical.get(key.slice(at + 7)) : undefined;
    // Symbols are uppercase with a dash ("The symbol must all be capitalized").
    const ref = interval !== undefined && /^[A-Z0-9]{1,12}-[A-Z]{2,7}$/.test(symbol) ? { symbol, interval } : undefined;
    if (streamRefs.size < 100_000) streamRefs.set(key, ref);
    return ref;
  };

  const control = (text: string): ControlOp => {
    if (!spot && text === 'Pong') return { kind: 'pong' };
    let v: unknown;
    try {
      v = JSON.parse(text);
    } catch {
      // Not JSON: BingX's "illegal argument", no id to echo.
      return { kind: 'reply', replies: [reply('', 100400, 'ILLEGAL_ARGUMENT')] };
    }
    if (!isRecord(v)) return { kind: 'reply', replies: [reply('', 100400, 'ILLEGAL_ARGUMENT')] };
    if (spot && typeof v['pong'] === 'string') return { kind: 'pong', answers: v['pong'] };
    const rid = typeof v['id'] === 'string' ? v['id'] : typeof v['id'] === 'number' ? String(v['id']) : '';
    const dataType = v['dataType'];
    const reqType = v['reqType'] ?? (spot ? 'sub' : undefined);
    if (typeof dataType !== 'string' || (reqType !== 'sub' && reqType !== 'unsub')) return { kind: 'reply', replies: [reply(rid, 100400, 'ILLEGAL_ARGUMENT')] };
    if (streamOf(dataType) === undefined) return { kind: 'reply', replies: [reply(rid, 100400, `ILLEGAL_ARGUMENT: unknown dataType ${dataType}`)] };
    const ok = [reply(rid, 0, '')];
    const reject = (): { replies: readonly string[] } => ({ replies: [reply(rid, 100410, 'FREQUENCY_LIMIT')] });
    return reqType === 'sub' ? { kind: 'subscribe', streams: [dataType], ok, reject } : { kind: 'unsubscribe', streams: [dataType], ok, reject };
  };

  const parse = (params: URLSearchParams): KlinesQuery | RestAnswer => {
    const symbol = params.get('symbol') ?? '';
    const interval = restCanonical.get(params.get('interval') ?? '');
    const start = parseInt10(params.get('startTime'));
    const end = parseInt10(params.get('endTime'));
    const limit = parseInt10(params.get('limit'));
    const bad = (what: string): RestAnswer => ({ status: 200, body: bodyOf(100400, `Invalid parameter: ${what}`) });
    if (!/^[A-Z0-9]{1,12}-[A-Z]{2,7}$/.test(symbol)) return bad('symbol');
    if (interval === undefined) return bad('interval');
    if (start === 'bad' || end === 'bad' || limit === 'bad') return bad('startTime, endTime and limit are integers');
    if (limit !== undefined && (limit < 1 || limit > m.maxLimit)) return bad(`limit is at most ${m.maxLimit}`);
    return {
      symbol,
      interval,
      ...(start === undefined ? {} : { from: start }),
      ...(end === undefined ? {} : { to: end }),
      limit: limit ?? 500,
      take: start === undefined ? 'newest' : 'oldest',
    };
  };

  const rows = (candles: readonly SeriesCandle[]): string => {
    if (spot) {
      const data = candles.map((c) => `[${c.openTime},"${c.open}","${c.high}","${c.low}","${c.close}","${c.volume}",${c.closeTime},"${c.quoteVolume}"]`);
      return `{"code":0,"timestamp":${Date.now()},"data":[${data.join(',')}]}`;
    }
    const data: string[] = [];
    for (let i = candles.length - 1; i >= 0; i--) {
      const c = candles[i];
      if (c !== undefined) data.push(`{"open":"${c.open}","close":"${c.close}","high":"${c.high}","low":"${c.low}","volume":"${c.volume}","time":${c.openTime}}`);
    }
    return `{"code":0,"msg":"","data":[${data.join(',')}]}`;
  };

  const limited = (ctx: GateContext): RestAnswer => ({
    ...refused(429, 100410, `The request frequency is too high: ${ctx.capacity} requests per 10 s`, String(ctx.retryAfterSeconds), ctx.retryAfterSeconds * 1000),
  });
  const banned = (ctx: GateContext, retryAfter: string, ms: number): RestAnswer => refused(418, 100410, `IP banned until ${ctx.untilWall} for requests after 429s`, retryAfter, ms);

  return {
    id,
    title: m.title,
    series: m.series,
    ws: {
      route: (path) => (path === m.path ? route : undefined),
      primaryPath: m.path,
      streamOf,
      updateMs: () => 1000,
      limits: {
        maxStreamsPerConnection: 200,
        maxInboundPerSecond: Number.POSITIVE_INFINITY,
        inboundFlood: {},
        maxConnectionsPerWindow: 300,
        connectionWindowMs: 5 * 60_000,
        connectionMaxAgeMs: Number.POSITIVE_INFINITY,
      },
      heartbeat: {
        kind: 'server-ping',
        intervalMs: PING_INTERVAL_MS,
        maxMissed: 3,
        // Swap's `Pong` carries nothing to compare; spot's echoes the ping's id.
        anyPongKeepsAlive: !spot,
        frame: spot ? (payload, now) => `{"ping":"${payload}","time":"${new Date(now).toISOString()}"}` : () => 'Ping',
        close: { code: 1000, reason: 'heartbeat timeout' },
      },
      control: { parse: control },
      event: {
        frame: spot ? (u) => spotFrame(u.stream, u.candle, m.wsIntervals[u.ref.interval] ?? u.ref.interval, u.eventTime) : (u) => swapFrame(u.stream, u.candle),
        closed: 'none',
      },
      encoding: 'gzip',
      garbage: GARBAGE_FRAMES,
      rejectBody: (reason, detail) => bodyOf(reason === 'too-many-attempts' ? 100410 : reason === 'closing' ? 100503 : 100400, detail),
    },
    rest: {
      endpoint: (path) => (path === m.klinesPath ? klines : path === '/openApi/swap/v2/server/time' ? time : undefined),
      parse,
      rows,
      rate: {
        windowMs: REST_WINDOW_MS,
        capacity: REST_CAPACITY,
        cost: () => 1,
        usageHeaders: (used, capacity) => ({ 'X-RateLimit-Requests-Remain': String(Math.max(0, capacity - used)), 'X-RateLimit-Requests-Expire': String(REST_WINDOW_MS) }),
        limited,
        banMs: 0,
        banExtendMs: 0,
        banned: (ctx) => banned(ctx, String(ctx.retryAfterSeconds), ctx.retryAfterSeconds * 1000),
      },
      injected: (status, retryAfter, retryAfterMs, ctx) => {
        switch (status) {
          case 429:
            return refused(429, 100410, 'The request frequency is too high', retryAfter, retryAfterMs);
          case 418:
            return banned(ctx, retryAfter, retryAfterMs);
          case 403:
            return refused(403, 100403, 'AUTHORIZATION_FAIL', undefined, undefined);
          case 500:
            return refused(500, 100500, 'INTERNAL_SERVER_ERROR', undefined, undefined);
        }
      },
      notFound: { status: 404, body: bodyOf(100404, 'api not found') },
      methodNotAllowed: { status: 405, body: bodyOf(100400, 'method not allowed') },
      internalError: (msg) => ({ status: 500, body: bodyOf(100500, msg) }),
    },
  };
}
