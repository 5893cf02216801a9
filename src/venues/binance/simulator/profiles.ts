/**
 * The two Binance markets the simulator can stand in for, as data: one simulator serves one profile.
 * dialect.ts turns a profile into the engine's `VenueDialect` (src/simulator/dialect.ts); everything
 * else (scheduler, sessions, rate windows, REST budget, every fault) is the venue-agnostic engine.
 * Each value names the fact it comes from.
 *
 * Sources:
 * - [WSS]   binance/binance-spot-api-docs `web-socket-streams.md` (digest: the project's shared binance-protocol.md §1–§4)
 * - [REST]  same repo `rest-api.md` (binance-protocol.md §5)
 * - [FWS]   developers.binance.com/docs/derivatives/usds-margined-futures/websocket-market-streams
 *           ("Websocket Market Streams": 24 h, ping every 3 minutes, pong within 10 minutes, unsolicited
 *           pongs allowed "to maintain the connection", 10 incoming messages per second, 1024 streams)
 * - [FCN]   …/usds-margined-futures/websocket-market-streams/Important-WebSocket-Change-Notice (the
 *           2026-03-06 split into /public, /market, /private; klines are "regular market data": /market)
 * - [FKS]   …/usds-margined-futures/websocket-market-streams/Kline-Candlestick-Streams (intervals 1m…1M,
 *           no 1s; "Update Speed: 250ms"; payload `e,E,s,k{t,T,s,i,f,L,o,c,h,l,v,n,x,q,V,Q,B}`)
 * - [FKL]   …/usds-margined-futures/market-data/rest-api/Kline-Candlestick-Data (`GET /fapi/v1/klines`,
 *           "Default 500; max 1500", weight by LIMIT [1,100)→1, [100,500)→2, [500,1000]→5, >1000→10)
 * - [FGI]   …/usds-margined-futures/general-info ("Data is returned in ascending order", 429, 418 bans
 *           "from 2 minutes to 3 days", `X-MBX-USED-WEIGHT-(intervalNum)(intervalLetter)`)
 * - [NAUT]  nautechsystems/nautilus_trader `BINANCE_FAPI_RATE_LIMITS`: 2400 REQUEST_WEIGHT per minute
 * - [BPD472] binance/binance-public-data#472 (2026-04-24): on the legacy root `wss://fstream.binance.com/ws`,
 *           `btcusdt@kline_1m` got `{"result":null,"id":…}` and then zero data frames
 */

import type { SeriesStyle } from '../../../simulator/dialect.ts';

export type SimulatorProfileId = 'binance' | 'binance-usdm';

/**
 * A WebSocket route: a path prefix under which `/ws`, `/ws/<streams>`, `/stream` and
 * `/stream?streams=` are served. `delivers: false` accepts connections and subscriptions (replies
 * included) and then sends no kline frames, as a route Binance no longer feeds does.
 */
export interface WsRoute {
  /** '' for the root; otherwise starts with '/' and has no trailing slash. */
  readonly prefix: string;
  readonly delivers: boolean;
}

export interface SimulatorProfile {
  readonly id: SimulatorProfileId;
  readonly title: string;
  /** Tried in order; the first whose prefix matches serves the path. No match: HTTP 404. */
  readonly routes: readonly WsRoute[];
  /** The route a client should use: the simulator's `wsUrl` ends with it. */
  readonly primaryPrefix: string;
  readonly intervals: ReadonlySet<string>;
  /** Valid kline stream names; anything else is accepted silently and sends nothing, as Binance does. */
  readonly streamRe: RegExp;
  /** Open-candle update cadence per stream, by interval. */
  readonly updateMs: (interval: string) => number;
  readonly pingIntervalMs: number;
  readonly pongTimeoutMs: number;
  /** Whether any pong (not only the echo of the last ping) resets the pong deadline. */
  readonly unsolicitedPongKeepsAlive: boolean;
  readonly maxInboundPerSecond: number;
  readonly maxStreamsPerConnection: number;
  readonly maxConnectionsPer5Min: number;
  readonly connectionMaxAgeMs: number;
  readonly rest: {
    readonly klinesPaths: readonly string[];
    readonly pingPath: string;
    readonly timePath: string;
    readonly defaultLimit: number;
    readonly maxLimit: number;
    /** Weight of one klines request with this (valid) limit. */
    readonly klinesWeight: (limit: number) => number;
    readonly weightPerMinute: number;
  };
  /** The market's series: salt (0 keeps the spot series exactly as it always was), decimals, intervals. */
  readonly series: SeriesStyle;
}

const DAY_MS = 86_400_000;

const SPOT_INTERVALS = ['1s', '1m', '3m', '5m', '15m', '30m', '1h', '2h', '4h', '6h', '8h', '12h', '1d', '3d', '1w', '1M'];
// [FKS]: "1m … 1M"; futures have no 1s klines.
const USDM_INTERVALS = SPOT_INTERVALS.filter((i) => i !== '1s');

function streamRe(symbolClass: string, intervals: readonly string[]): RegExp {
  return new RegExp(`^(${symbolClass}{1,20})@kline_(${intervals.join('|')})$`);
}

const SPOT: SimulatorProfile = {
  id: 'binance',
  title: 'Binance spot',
  // [WSS] raw `/ws/<s>`, combined `/stream?streams=`, bare `/ws` and `/stream` (then SUBSCRIBE).
  routes: [{ prefix: '', delivers: true }],
  primaryPrefix: '',
  intervals: new Set(SPOT_INTERVALS),
  streamRe: streamRe('[a-z0-9]', SPOT_INTERVALS),
  // [WSS] "1000ms for 1s, 2000ms for the other intervals".
  updateMs: (interval) => (interval === '1s' ? 1000 : 2000),
  // [WSS] "ping frame every 20 seconds", no pong "within a minute" → disconnected; unsolicited pongs
  // "will not prevent disconnection".
  pingIntervalMs: 20_000,
  pongTimeoutMs: 60_000,
  unsolicitedPongKeepsAlive: false,
  // [WSS] 5 incoming messages per second (ping, pong and JSON control frames), 1024 streams,
  // 300 connection attempts per 5 minutes per IP, 24 h per connection.
  maxInboundPerSecond: 5,
  maxStreamsPerConnection: 1024,
  maxConnectionsPer5Min: 300,
  connectionMaxAgeMs: DAY_MS,
  rest: {
    // [REST] `/api/v3/klines` and `/api/v3/uiKlines`: weight 2 whatever the limit, default 500, max 1000;
    // REQUEST_WEIGHT 6000 per minute.
    klinesPaths: ['/api/v3/klines', '/api/v3/uiKlines'],
    pingPath: '/api/v3/ping',
    timePath: '/api/v3/time',
    defaultLimit: 500,
    maxLimit: 1000,
    klinesWeight: () => 2,
    weightPerMinute: 6000,
  },
  // [WSS]/[REST] examples print every price and volume with 8 decimals.
  series: { salt: 0, priceDecimals: 'eight', baseDecimals: 8, quoteDecimals: 8, intervals: new Set(SPOT_INTERVALS) },
};

const USDM: SimulatorProfile = {
  id: 'binance-usdm',
  title: 'Binance USD-M futures',
  routes: [
    // [FCN] klines are served on /market (`/market/stream?streams=…`, `/market/ws/<s>`, JSON SUBSCRIBE).
    { prefix: '/market', delivers: true },
    // [FCN] /public carries bookTicker and depth only; a market stream asked for there "fails silently"
    // (developers.binance.com …/caas/market-data-streams, quoted in binance-protocol.md §6).
    { prefix: '/public', delivers: false },
    // [BPD472] the legacy root paths: connections and SUBSCRIBE answered, then no kline frames at all.
    // A client has to catch this as staleness: its subscription was acknowledged.
    { prefix: '', delivers: false },
  ],
  primaryPrefix: '/market',
  intervals: new Set(USDM_INTERVALS),
  // [FWS] "All symbols for streams are lowercase"; delivery contracts carry `_` (`btcusdt_260626`).
  streamRe: streamRe('[a-z0-9_]', USDM_INTERVALS),
  // [FKS] "Update Speed: 250ms".
  updateMs: () => 250,
  // [FWS] "ping frame every 3 minutes … does not receive a pong frame back … within a 10 minute period …
  // disconnected. Unsolicited pong frames are allowed (the client can send pong frames at a frequency
  // higher than every 15 minutes to maintain the connection)": here any pong counts as an answer.
  pingIntervalMs: 180_000,
  pongTimeoutMs: 600_000,
  unsolicitedPongKeepsAlive: true,
  // [FWS] "a limit of 10 incoming messages per second", "a maximum of 1024 streams", "valid for 24 hours".
  // Connection attempts per IP: not published for futures (binance-protocol.md §6: unconfirmed); the
  // spot figure (300 / 5 min) is kept so the daemon's attempt gate is exercised the same way.
  maxInboundPerSecond: 10,
  maxStreamsPerConnection: 1024,
  maxConnectionsPer5Min: 300,
  connectionMaxAgeMs: DAY_MS,
  rest: {
    // [FKL] `GET /fapi/v1/klines`, "Default 500; max 1500", weight by LIMIT. [NAUT] 2400 weight/min.
    // `/fapi/v1/ping` and `/fapi/v1/time` (weight 1) exist on futures as on spot.
    klinesPaths: ['/fapi/v1/klines'],
    pingPath: '/fapi/v1/ping',
    timePath: '/fapi/v1/time',
    defaultLimit: 500,
    maxLimit: 1500,
    klinesWeight: (limit) => (limit < 100 ? 1 : limit < 500 ? 2 : limit <= 1000 ? 5 : 10),
    weightPerMinute: 2400,
  },
  // Futures print prices at the contract's tick precision and quantities at its step: [FKS]'s example
  // (`"o":"0.0010"`, `"v":"1000"`) and published BTCUSDT rows (`"57212.69"`, `"496.263"`,
  // `"28425514.78940"`). A different salt gives USD-M its own candles, so an audit can tell the venues apart.
  series: { salt: 0x5d7f_3a91, priceDecimals: 'tick', baseDecimals: 3, quoteDecimals: 5, intervals: new Set(USDM_INTERVALS) },
};

const PROFILES: Readonly<Record<SimulatorProfileId, SimulatorProfile>> = { binance: SPOT, 'binance-usdm': USDM };

export function simulatorProfile(id: SimulatorProfileId): SimulatorProfile {
  return PROFILES[id];
}
