/**
 * Bybit v5 public spot and linear as dialects of the shared simulator engine (src/simulator/dialect.ts):
 * what Bybit's wire looks like, beside each behaviour the fact it comes from. Sources: bybit-exchange/docs
 * @072c197 (exchanges.md §1 [BYB]): `docs/v5/websocket/wss-authentication.mdx` (Connect),
 * `docs/v5/websocket/public/kline.mdx` (Kline), `docs/v5/market/kline.mdx` (Get Kline),
 * `docs/v5/rate-limit/rate-limit.mdx` (Rate Limit Rules), `docs/v5/error.mdx` (Error Codes).
 * Where the docs show no example (the wording of a refusal), the shape follows the documented replies
 * and is marked "assumed".
 */
import { nextOpenTime, nominalMs, type CanonicalInterval } from '../../../core/intervals.ts';
import type {
  ControlOp,
  GateContext,
  InjectedStatus,
  KlinesQuery,
  RestAnswer,
  RestDialect,
  SeriesCandle,
  SeriesStyle,
  SessionView,
  StreamRef,
  VenueDialect,
  WsDialect,
} from '../../../simulator/dialect.ts';
import { formingCandleAt } from '../../../simulator/series.ts';
import { BYBIT_INTERVALS, MAX_ARGS_CHARS_PER_CONNECTION, MAX_ARGS_PER_SUBSCRIBE, MAX_PAGE_ROWS } from '../market.ts';

export type BybitCategoryId = 'spot' | 'linear';

/** Native interval → canonical (Kline "Available intervals"). */
const CANONICAL: Readonly<Record<string, CanonicalInterval>> = Object.fromEntries(Object.entries(BYBIT_INTERVALS).map(([canonical, native]) => [native, canonical as CanonicalInterval]));
const NATIVE: Readonly<Partial<Record<string, string>>> = BYBIT_INTERVALS;
const INTERVALS: ReadonlySet<string> = new Set(Object.keys(BYBIT_INTERVALS));

/** Get Kline "symbol … uppercase only"; the series accepts `[A-Za-z0-9_.-]{1,20}`. */
const SYMBOL = /^[A-Z0-9-]{1,20}$/;

/** Rate Limit Rules "HTTP IP limit": 600 requests in a 5-second window per IP. */
const REST_WINDOW_MS = 5000;
const REST_CAPACITY = 600;
/** "If you encounter the error 403, access too frequent … wait for at least 10 minutes. The ban will be lifted automatically." */
const REST_BAN_MS = 10 * 60_000;
/** Connect "IP Limits": "Do not build over 500 connections in 5 minutes. This is counted per WebSocket domain." */
const CONNECTIONS_PER_WINDOW = 500;
const CONNECTION_WINDOW_MS = 5 * 60_000;
/** Connect: "if there is no ping-pong and no stream data sent from server end, the connection will be cut off after 10 minutes". */
const SILENCE_MS = 10 * 60_000;

/**
 * Bybit writes decimals without trailing zeros (Kline example: `"close": "16677"`, `"volume": "2.081"`);
 * the series writes fixed decimals, so they are trimmed here, and the relay must pass Bybit's strings
 * through as they are.
 */
export function bybitDecimal(s: string): string {
  if (!s.includes('.')) return s;
  let end = s.length;
  while (s.charCodeAt(end - 1) === 48 /* 0 */) end--;
  if (s.charCodeAt(end - 1) === 46 /* . */) end--;
  return s.slice(0, end);
}

/** `kline.<native interval>.<SYMBOL>` → the series stream; undefined for anything else. */
function streamOf(key: string): StreamRef | undefined {
  const m = /^kline\.([0-9A-Z]{1,3})\.([A-Z0-9-]{1,20})$/.exec(key);
  if (m === null) return undefined;
  const interval = CANONICAL[m[1] ?? ''];
  if (interval === undefined) return undefined;
  return { symbol: m[2] ?? '', interval };
}

/** Characters of the `args` of a connection holding `streams` (Connect "Public channel - Args limits"). */
function argsChars(streams: Iterable<string>): number {
  return JSON.stringify([...streams]).length;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function connId(session: SessionView): string {
  return `sim-${String(session.id).padStart(8, '0')}`;
}

/**
 * A refused operation: `success: false` and the reason in `ret_msg` (assumed: the docs show only
 * successes; pybit's `_process_subscription_message` reads refusals this way).
 */
function refusal(op: string, reason: string, session: SessionView, reqId: string | undefined): string {
  return JSON.stringify({ success: false, ret_msg: reason, conn_id: connId(session), ...(reqId === undefined ? {} : { req_id: reqId }), op });
}

function wsDialect(category: BybitCategoryId, style: SeriesStyle): WsDialect {
  const path = `/v5/public/${category}`;
  return {
    route: (p) => (p === path ? { streams: [], form: 0, delivers: true } : undefined),
    // Connect: `wss://stream.bybit.com/v5/public/spot` and `/v5/public/linear`.
    primaryPath: path,
    streamOf,
    // Kline "Push frequency: 1-60s"; the engine's `openUpdateMs` option speeds it up for tests.
    updateMs: () => 1000,
    limits: {
      // The per-connection cap is the 21,000 characters of args (checked in `parse`); this only bounds a
      // socket in stream keys for the engine, far above what those characters allow.
      maxStreamsPerConnection: 5000,
      // Bybit documents no inbound message rate for public sockets: counted (maxInboundPerSecondSeen), not enforced.
      maxInboundPerSecond: Number.POSITIVE_INFINITY,
      inboundFlood: {},
      maxConnectionsPerWindow: CONNECTIONS_PER_WINDOW,
      connectionWindowMs: CONNECTION_WINDOW_MS,
      // Rate Limit Rules: "Do not establish more than 1,000 connections per IP for market data", counted per market.
      maxConcurrentConnections: 1000,
      // `max_active_time` is for private streams only (Connect): public sockets live until cut.
      connectionMaxAgeMs: Number.POSITIVE_INFINITY,
      // Connect: "Spot can input up to 10 args for each subscription request"; "No args limit for Futures … for now".
      ...(category === 'spot' ? { argsPerRequest: MAX_ARGS_PER_SUBSCRIBE } : {}),
    },
    heartbeat: { kind: 'client-ping', silenceMs: SILENCE_MS },
    control: { parse: (text, session) => parseControl(category, text, session) },
    event: {
      frame: (u) => (u.candle.closed ? closingFrame(style, u.stream, u.candle, u.eventTime) : klineFrame(u.stream, u.candle, u.eventTime)),
      // Kline: "If confirm=true, this means that the candle has closed".
      closed: 'flag',
    },
    encoding: 'text',
    // Bybit announces no planned disconnects on public streams.
    garbage: [
      '{"topic":"kline.1.',
      'not json at all',
      '{"topic":"kline.1.BTCUSDT","data":"oops","ts":1,"type":"snapshot"}',
      '{"topic":"kline.1.BTCUSDT","data":[{"start":"x","end":1,"interval":"1","open":1,"close":"1","high":"1","low":"1","volume":"1","turnover":"1","confirm":false,"timestamp":1}],"ts":1,"type":"snapshot"}',
      '\u0000\u0001',
    ],
    rejectBody: (reason, detail) => JSON.stringify({ retCode: 10001, retMsg: `${reason}: ${detail}` }),
  };
}

/** Connect "How to Subscribe to Topics", "How to Send the Heartbeat Packet". */
function parseControl(category: BybitCategoryId, text: string, session: SessionView): ControlOp {
  let msg: unknown;
  try {
    msg = JSON.parse(text);
  } catch {
    // Not JSON: refused (assumed wording), the socket stays open.
    return { kind: 'reply', replies: [refusal('', 'error:request not json', session, undefined)] };
  }
  if (!isRecord(msg) || typeof msg['op'] !== 'string') return { kind: 'reply', replies: [refusal('', 'error:op not found', session, undefined)] };
  const op = msg['op'];
  const reqId = typeof msg['req_id'] === 'string' ? msg['req_id'] : undefined;
  if (op === 'ping') {
    // "Pong message example of public channels": spot without req_id, linear with it.
    const pong =
      category === 'spot'
        ? JSON.stringify({ success: true, ret_msg: 'pong', conn_id: connId(session), ...(reqId === undefined ? {} : { req_id: reqId }), op: 'ping' })
        : JSON.stringify({ success: true, ret_msg: 'pong', conn_id: connId(session), req_id: reqId ?? '', op: 'ping' });
    return { kind: 'ping', replies: [pong] };
  }
  if (op !== 'subscribe' && op !== 'unsubscribe') return { kind: 'reply', replies: [refusal(op, 'error:handler not found', session, reqId)] };
  const args = msg['args'];
  if (!Array.isArray(args) || args.length === 0 || !args.every((a): a is string => typeof a === 'string')) {
    return { kind: 'reply', replies: [refusal(op, 'error:args is empty or not a string array', session, reqId)] };
  }
  const unknown = args.filter((a) => streamOf(a) === undefined);
  // An unknown topic is refused (assumed wording), as Bybit does not hold what it cannot serve.
  if (op === 'subscribe' && unknown.length > 0) return { kind: 'reply', replies: [refusal(op, `error:invalid topic:[${unknown.join(',')}]`, session, reqId)] };
  const reject = (reason: string) => ({ replies: [refusal(op, `error:${reason}`, session, reqId)] });
  // "Understanding the Subscription Response": spot `ret_msg` "subscribe", linear "".
  const ok = JSON.stringify({ success: true, ret_msg: category === 'spot' ? op : '', conn_id: connId(session), req_id: reqId ?? '', op });
  if (op === 'unsubscribe') return { kind: 'unsubscribe', streams: args, ok: [ok], reject };
  // Connect "Public channel - Args limits": "for one public connection, you cannot have length of args array over 21,000 characters".
  if (argsChars(new Set([...session.streams, ...args])) > MAX_ARGS_CHARS_PER_CONNECTION) {
    return { kind: 'reply', replies: [refusal(op, `error:args length over ${MAX_ARGS_CHARS_PER_CONNECTION} characters for one connection`, session, reqId)] };
  }
  return { kind: 'subscribe', streams: args, ok: [ok], reject };
}

/**
 * The final update of a candle, in one message with the next candle's opening state. The issue behind
 * this venue (and exchanges.md §1) says a kline message can carry several candles in `data`; the docs'
 * example shows one, and no source gives their order. So the simulator always sends the pair at a
 * boundary, in both orders (the closed one first when its open time is an even number of intervals
 * since the epoch, last otherwise): a client may rely on neither, and the daemon's handling of several
 * candles per frame is exercised on every close.
 */
function closingFrame(style: SeriesStyle, topic: string, c: SeriesCandle, ts: number): string {
  const next = formingCandleAt(style, c.symbol, c.interval, nextOpenTime(c.interval, c.openTime), 0);
  const closed = klineData(c, ts);
  const opening = klineData(next, ts);
  const closedFirst = Math.floor(c.openTime / nominalMs(c.interval)) % 2 === 0;
  return `{"topic":"${topic}","data":[${closedFirst ? `${closed},${opening}` : `${opening},${closed}`}],"ts":${ts},"type":"snapshot"}`;
}

/** Kline "Response Example", key for key. */
export function klineFrame(topic: string, c: SeriesCandle, ts: number): string {
  return `{"topic":"${topic}","data":[${klineData(c, ts)}],"ts":${ts},"type":"snapshot"}`;
}

function klineData(c: SeriesCandle, ts: number): string {
  return (
    `{"start":${c.openTime},"end":${c.closeTime},"interval":"${NATIVE[c.interval] ?? c.interval}","open":"${bybitDecimal(c.open)}","close":"${bybitDecimal(c.close)}",` +
    `"high":"${bybitDecimal(c.high)}","low":"${bybitDecimal(c.low)}","volume":"${bybitDecimal(c.volume)}","turnover":"${bybitDecimal(c.quoteVolume)}","confirm":${c.closed},"timestamp":${Math.min(ts, c.closeTime)}}`
  );
}

/** A Get Kline error answer: HTTP 200 with a non-zero retCode (error.mdx "10001 Request parameter error"). */
function paramError(msg: string): RestAnswer {
  return { status: 200, body: JSON.stringify({ retCode: 10001, retMsg: msg, result: {}, retExtInfo: {}, time: 0 }) };
}

/** rate-limit.mdx: "403, access too frequent" (the body is not documented; assumed text). */
function tooFrequent(ctx: GateContext): RestAnswer {
  return { status: 403, body: 'access too frequent', contentType: 'text/plain', backoffMs: ctx.retryAfterSeconds * 1000 };
}

function restDialect(category: BybitCategoryId): RestDialect {
  return {
    endpoint: (p) => {
      if (p === '/v5/market/kline') return { kind: 'klines' };
      if (p === '/v5/market/time') return { kind: 'static', body: (now) => JSON.stringify({ retCode: 0, retMsg: 'OK', result: { timeSecond: String(Math.floor(now / 1000)), timeNano: `${now}000000` }, retExtInfo: {}, time: now }) };
      return undefined;
    },
    parse(params: URLSearchParams): KlinesQuery | RestAnswer {
      // Get Kline: "When category is not passed, use linear by default".
      const cat = params.get('category') ?? 'linear';
      if (cat !== category) return paramError(`category ${cat} is not served here (${category})`);
      const symbol = params.get('symbol') ?? '';
      if (!SYMBOL.test(symbol)) return paramError('params error: symbol invalid');
      const interval = CANONICAL[params.get('interval') ?? ''];
      if (interval === undefined) return paramError('params error: interval invalid');
      // Get Kline: limit [1, 1000], default 200.
      const limitText = params.get('limit');
      const limit = limitText === null ? 200 : Number(limitText);
      if (!Number.isInteger(limit) || limit < 1 || limit > MAX_PAGE_ROWS) return paramError('params error: limit invalid');
      const start = params.get('start');
      const end = params.get('end');
      const from = start === null ? undefined : Number(start);
      const to = end === null ? undefined : Number(end);
      if ((from !== undefined && !Number.isSafeInteger(from)) || (to !== undefined && !Number.isSafeInteger(to))) return paramError('params error: start/end invalid');
      // "Sort in reverse by startTime": the newest `limit` rows of the range; the first may be forming.
      return { symbol, interval, ...(from === undefined ? {} : { from }), ...(to === undefined ? {} : { to }), limit, take: 'newest', forming: true };
    },
    rows(candles: readonly SeriesCandle[], q: KlinesQuery): string {
      const list: string[] = [];
      for (let i = candles.length - 1; i >= 0; i--) {
        const c = candles[i];
        if (c === undefined) continue;
        list.push(
          `["${c.openTime}","${bybitDecimal(c.open)}","${bybitDecimal(c.high)}","${bybitDecimal(c.low)}","${bybitDecimal(c.close)}","${bybitDecimal(c.volume)}","${bybitDecimal(c.quoteVolume)}"]`,
        );
      }
      // `time` is the server's clock, which rows() is not given: the newest row's open time stands in (no reader uses it).
      const time = candles.at(-1)?.openTime ?? q.to ?? 0;
      return `{"retCode":0,"retMsg":"OK","result":{"symbol":"${q.symbol}","category":"${category}","list":[${list.join(',')}]},"retExtInfo":{},"time":${time}}`;
    },
    rate: {
      windowMs: REST_WINDOW_MS,
      capacity: REST_CAPACITY,
      cost: () => 1,
      // Over the 600 per 5 s: 403 and the ten-minute ban.
      limited: (ctx) => ({ ...tooFrequent(ctx), backoffMs: REST_BAN_MS }),
      banMs: REST_BAN_MS,
      banExtendMs: 0,
      // During the ban every request gets the same 403, announcing what is left of it.
      banned: tooFrequent,
    },
    injected(status: InjectedStatus, retryAfter: string, retryAfterMs: number, ctx: GateContext): RestAnswer {
      if (status === 403) return { ...tooFrequent(ctx), backoffMs: REST_BAN_MS };
      if (status === 429) {
        // error.mdx "429 System level frequency protection. Please retry": Bybit documents no wait; the
        // fault's Retry-After is sent and announced, so a client that honours it is checked.
        return { status, body: JSON.stringify({ retCode: 10006, retMsg: 'Too many visits!' }), headers: { 'retry-after': retryAfter }, backoffMs: retryAfterMs };
      }
      return { status, body: JSON.stringify({ retCode: 10016, retMsg: 'Server error.' }) };
    },
    notFound: { status: 404, body: JSON.stringify({ retCode: 10017, retMsg: 'Route not found' }) },
    methodNotAllowed: { status: 405, body: JSON.stringify({ retCode: 10017, retMsg: 'Method not allowed' }) },
    internalError: (message) => ({ status: 500, body: JSON.stringify({ retCode: 10016, retMsg: `Server error: ${message}` }) }),
  };
}

/**
 * Each market's series: salts of their own (an audit tells Bybit's candles from every other venue's for
 * the same symbol), prices at tick precision, spot base volumes to 6 decimals, linear contracts to 3.
 */
export const BYBIT_SERIES: Readonly<Record<BybitCategoryId, SeriesStyle>> = {
  spot: { salt: 0xb5b07, priceDecimals: 'tick', baseDecimals: 6, quoteDecimals: 8, intervals: INTERVALS },
  linear: { salt: 0xb11ea, priceDecimals: 'tick', baseDecimals: 3, quoteDecimals: 4, intervals: INTERVALS },
};

export function bybitDialect(category: BybitCategoryId): VenueDialect {
  const series = BYBIT_SERIES[category];
  return { id: `bybit-${category}`, title: `Bybit ${category}`, series, ws: wsDialect(category, series), rest: restDialect(category) };
}

