/**
 * OKX v5's wire dialect for the venue simulator engine (src/simulator/dialect.ts). Each behaviour
 * notes the fact it comes from: exchanges.md §2 and [OKXD] = OKX's v5 docs as copied in
 * arakinyemi/exchange-api-docs `OKX/…` (Introduction/WebSocket/{Overview,Subscribe,Notification}.md,
 * Order_Book_Trading/Market_Data/{Ws_Candlesticks_Channel,Get_Candlesticks,Get_Candlesticks_History}.md,
 * Error_Code/{WebSocket,Rest_API}/Public.md, Introduction/Rate_Limits/Overview.md).
 *
 * - Routes: `/ws/v5/business` serves candles; `/ws/v5/public` (and `/ws/v5/private`) accept sockets
 *   but answer a candle subscribe with error 64001 "This channel has been migrated to the '/business'
 *   URL" (OKX notice of 2023-06-20; DogsTailFarmer/exchanges-wrapper#27).
 * - Control: `{"id"?,"op":"subscribe"|"unsubscribe","args":[{"channel":"candle1m","instId":"BTC-USDT"},…]}`;
 *   one `{"event":"subscribe","arg":…,"connId":…}` per arg; errors `{"event":"error","code":"600xx",…}`
 *   (60012 invalid request, 60014 requests too frequent, 60018 wrong channel, 60019 invalid op); the
 *   text `ping` answered `pong` [OKXD Overview.md].
 * - Limits: 3 connection attempts per second per IP (HTTP 429 past it); 480 subscribe/unsubscribe ops
 *   per hour per connection; 64 KB per request [OKXD Overview.md, Subscribe.md]. OKX documents no
 *   inbound frames/s and no cap on public channels per socket (only close 4009 past "the limit"): the
 *   simulator allows 240 per socket.
 * - Heartbeat: a socket silent for 30 s is cut [OKXD Overview.md].
 * - Events: `{"arg":{…},"data":[[ts,o,h,l,c,vol,volCcy,volCcyQuote,confirm]]}`; spot vol = base, volCcy =
 *   volCcyQuote = quote; SWAP vol = contracts (0.01 base each here, BTC-USDT-SWAP's ctVal), volCcy =
 *   base, volCcyQuote = quote [Ws_Candlesticks_Channel.md; exchanges.md §2]. Pushes every second
 *   ("as fast as 1 second"); the closed bar is sent once with confirm "1".
 * - Rotation notice: `{"event":"notice","code":"64008",…}` [OKXD Notification.md].
 * - REST: `/api/v5/market/candles` (the latest 1,440 bars, limit ≤ 300, 40 requests per 2 s per IP)
 *   and `/api/v5/market/history-candles` (limit ≤ 100, 20 per 2 s), newest first, `after` older than,
 *   `before` newer than (exclusive); the forming bar first with confirm "0". One 2-second window of 40
 *   units holds both (a history request costs 2: 20 of them fill it), the stricter reading of two
 *   per-endpoint limits. Over it: code 50011, documented both as HTTP 429 and as HTTP 200
 *   [Error_Code/Rest_API/Public.md]; the simulator alternates between the two so clients meet both.
 *   OKX sends no Retry-After: the back-off it implies is the rest of its 2-second window.
 */
import { nominalMs, openTimeAt } from '../../../core/intervals.ts';
import type { ControlOp, GateContext, KlinesQuery, RestAnswer, RestEndpoint, SeriesCandle, SessionView, StreamRef, VenueDialect, WsRoute } from '../../../simulator/dialect.ts';
import { CANDLES_PATH, HISTORY_PATH, OKX_INTERVALS } from '../okx.ts';

export const BUSINESS_PATH = '/ws/v5/business';
const WRONG_SOCKET_PATHS = ['/ws/v5/public', '/ws/v5/private'];
/** `/market/candles` serves only this many of the latest bars [Get_Candlesticks.md]. */
export const CANDLES_DEPTH = 1440;
/** BTC-USDT-SWAP's contract value: `vol` counts contracts of 0.01 base. */
const CONTRACT_DECIMALS = 2;
export const MAX_STREAMS_PER_SOCKET = 240;
export const REST_WINDOW_MS = 2000;
export const REST_CAPACITY = 40;

/** OKX bar name → canonical interval (the UTC bars only: the simulator's series is UTC-aligned). */
const CANONICAL_OF = new Map<string, string>(Object.entries(OKX_INTERVALS).map(([canonical, native]) => [native, canonical]));

/** The stream key of (instId, canonical interval): `candle1m:BTC-USDT`, `candle1Dutc:BTC-USDT-SWAP`. */
export function okxStreamKey(instId: string, interval: string): string {
  return `candle${OKX_INTERVALS[interval as keyof typeof OKX_INTERVALS] ?? interval}:${instId.toUpperCase()}`;
}

function isSwap(instId: string): boolean {
  return instId.toUpperCase().endsWith('-SWAP');
}

/** `12.345678` × 10^CONTRACT_DECIMALS, exactly, as a decimal string (`1234.5678`). */
export function toContracts(base: string): string {
  const [int = '0', frac = ''] = base.split('.');
  const padded = frac.padEnd(CONTRACT_DECIMALS, '0');
  const whole = (int + padded.slice(0, CONTRACT_DECIMALS)).replace(/^0+(?=\d)/, '');
  const rest = padded.slice(CONTRACT_DECIMALS);
  return rest === '' ? whole : `${whole}.${rest}`;
}

/** One candle as OKX's nine strings, confirm last. */
export function okxRow(instId: string, c: SeriesCandle): string {
  const swap = isSwap(instId);
  const vol = swap ? toContracts(c.volume) : c.volume;
  const volCcy = swap ? c.volume : c.quoteVolume;
  return `["${c.openTime}","${c.open}","${c.high}","${c.low}","${c.close}","${vol}","${volCcy}","${c.quoteVolume}","${c.closed ? '1' : '0'}"]`;
}

// ------------------------------------------------------------------ control

const ArgKeys = new Set(['channel', 'instId']);

interface Arg {
  readonly channel: string;
  readonly instId: string;
}

function argJson(a: Arg): string {
  return JSON.stringify({ channel: a.channel, instId: a.instId });
}

/** A stable 8-hex id per session, as OKX's connId looks. */
function connId(session: SessionView): string {
  return ((session.id * 2654435761) >>> 0).toString(16).padStart(8, '0');
}

function errorFrame(code: string, msg: string, id: string | undefined, session: SessionView): string {
  return `{${id === undefined ? '' : `"id":${JSON.stringify(id)},`}"event":"error","code":"${code}","msg":${JSON.stringify(msg)},"connId":"${connId(session)}"}`;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** The args of a request, or why they are invalid. */
function argsOf(value: Record<string, unknown>): Arg[] | string {
  const args = value['args'];
  if (!Array.isArray(args) || args.length === 0) return 'args must be a non-empty array';
  const out: Arg[] = [];
  for (const a of args) {
    if (!isRecord(a) || typeof a['channel'] !== 'string' || typeof a['instId'] !== 'string') return 'each arg needs channel and instId';
    for (const k of Object.keys(a)) if (!ArgKeys.has(k) && k !== 'instType') return `unknown arg ${k}`;
    out.push({ channel: a['channel'], instId: a['instId'] });
  }
  return out;
}

function keyOf(a: Arg): string {
  return `${a.channel}:${a.instId}`;
}

function control(text: string, session: SessionView): ControlOp {
  // [OKXD Overview.md] "send the String 'ping' … expect a 'pong'".
  if (text === 'ping') return { kind: 'ping', replies: ['pong'] };
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    // Not JSON: OKX's 60012 "Invalid request".
    return { kind: 'reply', replies: [errorFrame('60012', `Invalid request: ${text.slice(0, 100)}`, undefined, session)] };
  }
  if (!isRecord(value)) return { kind: 'reply', replies: [errorFrame('60012', `Invalid request: ${text.slice(0, 100)}`, undefined, session)] };
  const id = typeof value['id'] === 'string' ? value['id'] : undefined;
  const op = value['op'];
  if (op !== 'subscribe' && op !== 'unsubscribe') {
    return { kind: 'reply', replies: [errorFrame('60019', `Invalid op: ${String(op)}`, id, session)] };
  }
  const args = argsOf(value);
  if (typeof args === 'string') return { kind: 'reply', replies: [errorFrame('60012', `Invalid request: ${args}`, id, session)] };
  for (const a of args) {
    if (!a.channel.startsWith('candle')) return { kind: 'reply', replies: [errorFrame('60018', `Wrong URL or channel:${a.channel},instId:${a.instId} doesn't exist.`, id, session)] };
    // The candle channels left /public and /private for /business on 2023-06-20.
    if (!session.delivers) {
      return {
        kind: 'reply',
        replies: [errorFrame('64001', "This channel has been migrated to the '/business' URL. Please subscribe using the new URL.", id, session)],
      };
    }
  }
  const acks = args.map((a) => `{${id === undefined ? '' : `"id":${JSON.stringify(id)},`}"event":"${op}","arg":${argJson(a)},"connId":"${connId(session)}"}`);
  return {
    kind: op,
    streams: args.map(keyOf),
    ok: acks,
    reject: (reason) => {
      switch (reason) {
        case 'too-many-ops':
          return { replies: [errorFrame('60014', 'Requests too frequent.', id, session)] };
        case 'too-many-streams':
          return { close: { code: 4009, reason: 'The number of subscription channels for this connection exceeds the limit.' } };
        case 'too-large':
        case 'too-many-args':
          return { replies: [errorFrame('60012', 'Invalid request: args exceed 64 KB', id, session)] };
      }
    },
  };
}

// ------------------------------------------------------------------ REST

function json(status: number, code: string, msg: string): RestAnswer {
  return { status, body: `{"code":"${code}","msg":${JSON.stringify(msg)},"data":[]}` };
}

function parseTs(v: string | null): number | undefined | 'bad' {
  if (v === null || v === '') return undefined;
  return /^\d{1,15}$/.test(v) ? Number(v) : 'bad';
}

/** The earliest bar `/market/candles` still serves at `wallNow` (the latest 1,440). */
function recentFloor(interval: string, wallNow: number): number {
  if (interval === '1M') return 0;
  return Math.max(0, openTimeAt(interval, wallNow) - (CANDLES_DEPTH - 1) * nominalMs(interval));
}

function parseQuery(params: URLSearchParams, path: string, wallNow: number): KlinesQuery | RestAnswer {
  const history = path === HISTORY_PATH;
  const instId = params.get('instId');
  if (instId === null || !/^[A-Za-z0-9]{1,20}(-[A-Za-z0-9]{1,20}){1,2}$/.test(instId)) return json(400, '51000', 'Parameter instId error');
  const bar = params.get('bar') ?? '1m';
  const interval = CANONICAL_OF.get(bar);
  // `/candles` lists no 1s bar; `/history-candles` has it [Get_Candlesticks*.md].
  if (interval === undefined || (interval === '1s' && !history)) return json(400, '51000', 'Parameter bar error');
  const maxLimit = history ? 100 : 300;
  const rawLimit = params.get('limit');
  const limit = rawLimit === null ? 100 : Number(rawLimit);
  if (!Number.isInteger(limit) || limit < 1 || limit > maxLimit) return json(400, '51000', 'Parameter limit error');
  const after = parseTs(params.get('after'));
  const before = parseTs(params.get('before'));
  if (after === 'bad' || before === 'bad') return json(400, '51000', 'Parameter after or before error');
  let from = before === undefined ? undefined : before + 1;
  const to = after === undefined ? undefined : after - 1;
  if (!history) {
    const floor = recentFloor(interval, wallNow);
    from = from === undefined ? floor : Math.max(from, floor);
  }
  const q: KlinesQuery = { symbol: instId, interval, limit, take: 'newest', ...(from === undefined ? {} : { from }), ...(to === undefined ? {} : { to }) };
  return q;
}

// ------------------------------------------------------------------ the dialect

const GARBAGE: readonly string[] = [
  'this is not json',
  '{"arg":{"channel":"candle1m","instId":"BTC-USDT"},"data":[["1700000000000","1","2"',
  '{"arg":{"channel":"candle1m","instId":"BTC-USDT"},"data":[["1700000040000","1","2","0.5","1.5","10","15","15","yes"]]}',
  '{"event":"mystery","connId":"00000000"}',
  '{"arg":{"channel":"candle1m","instId":"BTC-USDT"},"data":[[1700000040000,1,2,0.5,1.5,10,15,15,1]]}',
  '[1,2,3]',
  'null',
];

/**
 * The engine dialect of OKX v5 (spot and SWAP on one socket kind: one venue). A fresh value per
 * simulator: its small state (stream refs, the toggle between the two 50011 answers) is its own.
 * `klinesByPath` counts every klines request by path (admitted or refused): which endpoint a client chose.
 */
export function okxDialect(klinesByPath: Record<string, number> = {}): VenueDialect {
  const refs = new Map<string, StreamRef | undefined>();
  let lastUpdate: object | undefined;
  let lastFrame = '';
  // The engine calls `endpoint(path)` and then `rate.cost(…)` for the same request in one synchronous
  // run; the cost depends on which of the two paths it was.
  let lastPath = '';
  let limitedAs200 = false;
  const klines: RestEndpoint = { kind: 'klines' };
  const time: RestEndpoint = { kind: 'static', body: (now) => `{"code":"0","msg":"","data":[{"ts":"${now}"}]}` };
  const routeFor = (path: string): WsRoute | undefined => {
    if (path === BUSINESS_PATH) return { streams: [], form: 0, delivers: true };
    if (WRONG_SOCKET_PATHS.includes(path)) return { streams: [], form: 0, delivers: false };
    return undefined;
  };
  const limited = (ctx: GateContext): RestAnswer => {
    // OKX documents 50011 with HTTP 200 and with HTTP 429: alternate so a client meets both.
    limitedAs200 = !limitedAs200;
    const backoffMs = Math.min(REST_WINDOW_MS, ctx.retryAfterSeconds * 1000);
    return limitedAs200
      ? { status: 200, body: '{"code":"50011","msg":"Rate limit reached. Please refer to API documentation and throttle requests accordingly.","data":[]}', backoffMs }
      : { status: 429, body: '{"msg":"Too Many Requests","code":"50011"}', backoffMs };
  };
  return {
    id: 'okx',
    title: 'OKX',
    series: { salt: 0x0c5, priceDecimals: 'tick', baseDecimals: 6, quoteDecimals: 6, intervals: new Set(Object.keys(OKX_INTERVALS)) },
    ws: {
      route: (path) => routeFor(path),
      primaryPath: BUSINESS_PATH,
      streamOf: (key) => {
        if (refs.has(key)) return refs.get(key);
        const at = key.indexOf(':');
        const bar = key.startsWith('candle') && at > 0 ? key.slice('candle'.length, at) : '';
        const interval = CANONICAL_OF.get(bar);
        const symbol = key.slice(at + 1);
        // The UTC+8 bars (`1D`, `6H`, …) and unknown bars are never fed: the series is UTC-aligned.
        const ref = interval !== undefined && /^[A-Z0-9]{1,20}(-[A-Z0-9]{1,20}){1,2}$/.test(symbol) ? { symbol, interval } : undefined;
        if (refs.size < 100_000) refs.set(key, ref);
        return ref;
      },
      // "Push frequency can be as fast as 1 second" [Ws_Candlesticks_Channel.md].
      updateMs: () => 1000,
      limits: {
        maxStreamsPerConnection: MAX_STREAMS_PER_SOCKET,
        maxInboundPerSecond: Number.POSITIVE_INFINITY,
        inboundFlood: {},
        maxConnectionsPerWindow: 3,
        connectionWindowMs: 1000,
        connectionMaxAgeMs: Number.POSITIVE_INFINITY,
        bytesPerRequest: 64 * 1024,
        opsPerWindow: { max: 480, windowMs: 3_600_000 },
      },
      heartbeat: { kind: 'client-ping', silenceMs: 30_000 },
      control: { parse: control },
      event: {
        frame: (u) => {
          if (u !== lastUpdate) {
            lastUpdate = u;
            const at = u.stream.indexOf(':');
            const channel = u.stream.slice(0, at);
            const instId = u.stream.slice(at + 1);
            lastFrame = `{"arg":{"channel":"${channel}","instId":"${instId}"},"data":[${okxRow(instId, u.candle)}]}`;
          }
          return lastFrame;
        },
        closed: 'flag',
      },
      encoding: 'text',
      rotationNotice: () => '{"event":"notice","code":"64008","msg":"The connection will soon be closed for a service upgrade. Please reconnect.","connId":"a4d3ae55"}',
      garbage: GARBAGE,
      rejectBody: (reason, detail) => {
        const code = reason === 'too-many-attempts' ? '50011' : reason === 'not-found' ? '60018' : '50001';
        return `{"code":"${code}","msg":${JSON.stringify(detail)}}`;
      },
    },
    rest: {
      endpoint: (path) => {
        lastPath = path;
        if (path !== CANDLES_PATH && path !== HISTORY_PATH) return path === '/api/v5/public/time' ? time : undefined;
        klinesByPath[path] = (klinesByPath[path] ?? 0) + 1;
        return klines;
      },
      parse: parseQuery,
      rows: (candles, q) => {
        const rows: string[] = [];
        for (let i = candles.length - 1; i >= 0; i--) {
          const c = candles[i];
          if (c !== undefined) rows.push(okxRow(q.symbol, c));
        }
        return `{"code":"0","msg":"","data":[${rows.join(',')}]}`;
      },
      rate: {
        windowMs: REST_WINDOW_MS,
        capacity: REST_CAPACITY,
        // 40 /candles or 20 /history-candles per 2 s: a history request costs two of the forty.
        cost: (kind) => (kind === 'klines' && lastPath === HISTORY_PATH ? 2 : 1),
        limited,
        banMs: 0,
        banExtendMs: 0,
        banned: (ctx) => ({ ...json(429, '50011', 'Too Many Requests'), backoffMs: ctx.retryAfterSeconds * 1000 }),
      },
      injected: (status) => {
        switch (status) {
          case 429:
            // No Retry-After from OKX: what a 429 implies is its 2-second window.
            return { status: 429, body: '{"msg":"Too Many Requests","code":"50011"}', backoffMs: REST_WINDOW_MS };
          case 418:
          case 403:
            // OKX has no ban statuses for public market data; a 403 is its IP-binding refusal.
            return json(403, '50035', 'This endpoint requires that APIKey must be bound to IP');
          case 500:
            return json(500, '50026', 'System error. Try again later');
        }
      },
      notFound: json(404, '50005', 'API endpoint is inactive or unavailable.'),
      methodNotAllowed: json(405, '50115', 'Invalid request method.'),
      internalError: (msg) => json(500, '50026', msg),
    },
  };
}
