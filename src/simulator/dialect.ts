/**
 * What a venue simulator is made of: ONE engine (src/simulator/engine.ts: the node:http server for REST
 * and WebSocket upgrades, the shared tick scheduler, sessions, rate windows, the REST budget,
 * Retry-After / ban bookkeeping, every fault, the counters, holes and the deterministic series) and a
 * DIALECT per venue market: its data (limits, cadences, paths) and a few small functions that speak its
 * wire format. Everything that is not the venue's wire dialect lives in the engine, so a fault or a
 * counter exists once for every venue.
 *
 * Nothing in src/simulator/ names a venue; venues name themselves in src/venues/<venue>/simulator/.
 *
 * How to build a venue simulator from this file (see src/venues/binance/simulator/ for a complete one):
 *
 *   1. Write a `VenueDialect` value (one per market: spot and linear are two dialects).
 *   2. `startSimulator(dialect, options)` (engine.ts) gives a running `VenueSimulator`.
 *   3. Export a `SimulatorVenue` (bottom of this file) from src/venues/<venue>/simulator/index.ts and add
 *      one line for it to src/venues/simulators.ts: the chaos suite and the demo take it from there.
 *
 * Terms used throughout:
 * - stream key: the name of one (symbol, interval) kline subscription in the venue's own terms, as one
 *   string: Binance `btcusdt@kline_1m`; a dialect whose subscriptions are objects (OKX
 *   `{"channel":"candle1m","instId":"BTC-USDT"}`) chooses a string form (e.g. `candle1m:BTC-USDT`). Stalls,
 *   `sockets()` and the per-socket stream cap are in stream keys.
 * - series symbol: the string the deterministic series is keyed by (case-insensitive; `[A-Za-z0-9_.-]{1,20}`).
 *   Use the venue's native symbol (`BTCUSDT`, `BTC-USDT`, `BTC_USDT`): together with the dialect's salt it
 *   picks the candles. The same (salt, symbol) gives the same candles over WS and REST.
 * - interval: always canonical (`1s 1m 3m … 1M`, core/intervals.ts). The dialect maps its own names
 *   (`1`, `60`, `D`; `1H`, `1Dutc`; `1min`) to and from canonical ones at its edge.
 * - form: a small integer a session carries that selects which shape of the event frame it receives
 *   (Binance: 0 raw, 1 combined envelope; most venues: always 0). Set by the route, changed by control
 *   messages (`set-form`). The engine serializes each (stream tick, form) once and sends the same bytes
 *   to every subscriber in that form. A dialect may also use it to remember which route a socket came
 *   in on (e.g. a wrong-socket route whose subscribes the control parser answers with an error):
 *   `SessionView.form` is what the parser sees.
 * - monotonic vs wall: the engine's rate windows, heartbeats and fault durations run on the real
 *   monotonic clock; candle times, event times and REST rows on the injectable wall clock (`now`).
 */

// ------------------------------------------------------------------ the series (engine: series.ts)

/** How a market's candle strings look, and what makes its series its own. */
export interface SeriesStyle {
  /**
   * Mixed into every symbol's seed. 0 is Binance spot's historical series (every existing expectation
   * was computed from it); every other dialect picks its own non-zero salt, so an audit can tell the
   * venues' candles apart even for the same symbol.
   */
  readonly salt: number;
  /** 'eight': every price with 8 decimals; 'tick': the symbol's tick decimals (2, 4 or 6 by price level). */
  readonly priceDecimals: 'eight' | 'tick';
  /** Decimals of base volumes (`volume`, `takerBuyVolume`), 0–8. */
  readonly baseDecimals: number;
  /** Decimals of quote volumes (`quoteVolume`, `takerBuyQuoteVolume`), 0–8. */
  readonly quoteDecimals: number;
  /** Canonical intervals the market has; asking the series for another one throws RangeError. */
  readonly intervals: ReadonlySet<string>;
}

/**
 * One candle of the deterministic series, venue-neutral: the dialect picks the fields its venue
 * publishes and formats them. Closed candles (`closed: true`) are final; a forming one has partial
 * values that only grow (trades, volumes) or widen (high, low) as it progresses, all within the final.
 */
export interface SeriesCandle {
  readonly openTime: number;
  /** Next open time − 1 ms. */
  readonly closeTime: number;
  readonly open: string;
  readonly high: string;
  readonly low: string;
  readonly close: string;
  /** Base-asset volume. */
  readonly volume: string;
  /** Quote-asset volume (turnover). */
  readonly quoteVolume: string;
  readonly takerBuyVolume: string;
  readonly takerBuyQuoteVolume: string;
  readonly trades: number;
  readonly firstTradeId: number;
  /** firstTradeId + trades − 1. */
  readonly lastTradeId: number;
  readonly closed: boolean;
  /** The series symbol, upper-cased (`BTCUSDT`, `BTC-USDT`). */
  readonly symbol: string;
  readonly interval: string;
}

// ------------------------------------------------------------------ shared small types

/** What the server does to a socket after a bad or excessive request. Both optional; `{}`: nothing. */
export interface Reaction {
  /** Frames sent (in order, encoded as every frame of the dialect). */
  readonly replies?: readonly string[];
  /** Then the socket is closed with this code and reason (`close` is a clean close frame). */
  readonly close?: { readonly code: number; readonly reason: string };
}

/** A REST answer. The engine writes it with Content-Type and Content-Length. */
export interface RestAnswer {
  readonly status: number;
  readonly body: string;
  /** Default `application/json;charset=UTF-8`. */
  readonly contentType?: string;
  readonly headers?: Readonly<Record<string, string>>;
  /**
   * The back-off this answer announces (a Retry-After header, or the venue's documented penalty), in
   * ms. The engine records the window [written, written + backoffMs): REST requests arriving inside it
   * (after a 50 ms in-flight grace) count in `restInsideRetryAfter`. Omit for answers that ask for no
   * back-off (400s, 404s, 500s).
   */
  readonly backoffMs?: number;
}

// ------------------------------------------------------------------ WebSocket

/** Where an upgrade path leads. */
export interface WsRoute {
  /** Streams named in the URL (Binance `/ws/a/b`, `/stream?streams=a/b`); [] for a bare endpoint. */
  readonly streams: readonly string[];
  /** The session's initial form (see "form" above). */
  readonly form: number;
  /**
   * false: connections and subscriptions are accepted and answered, and no kline frame is ever sent
   * (a route the venue no longer feeds: Binance USD-M's legacy root; OKX-style wrong-socket routes that
   * answer with an error are better modelled as a control reply).
   */
  readonly delivers: boolean;
}

/** What the session looks like to the control parser (read-only). */
export interface SessionView {
  readonly id: number;
  /** Subscribed stream keys, in subscription order. */
  readonly streams: ReadonlySet<string>;
  readonly form: number;
  /** The route's `delivers`. */
  readonly delivers: boolean;
}

/**
 * One inbound text (or binary, decoded as UTF-8) frame, as the dialect understands it. The engine has
 * already counted it against the per-socket inbound rate. Every reply the engine sends for it goes
 * through the stall machinery (held back while the socket is stalled) and the dialect's encoding.
 */
export type ControlOp =
  /**
   * Subscribe to `streams` (stream keys; duplicates and ones already held are ignored). The engine checks,
   * in order: the `closeMidSubscribe` fault (closes 1011), `limits.argsPerRequest`, `limits.bytesPerRequest`,
   * `limits.opsPerWindow`, and the per-connection stream cap; the first that fails gets
   * `reject(reason)` (the venue's error frame for this request, which knows its request id). Otherwise
   * the streams are attached and `ok` sent.
   * A key the dialect cannot resolve (`streamOf` → undefined) is held and listed but never fed, as
   * Binance does for unknown names; a dialect that answers unknown names with an error says so in
   * `parse` (as a `reply` op) instead.
   */
  | {
      readonly kind: 'subscribe';
      readonly streams: readonly string[];
      readonly ok: readonly string[];
      reject(reason: SubscribeRejection): Reaction;
    }
  /** Unsubscribe (unknown keys ignored); counted against `limits.opsPerWindow` (reject: 'too-many-ops'); `ok` sent. */
  | {
      readonly kind: 'unsubscribe';
      readonly streams: readonly string[];
      readonly ok: readonly string[];
      reject(reason: SubscribeRejection): Reaction;
    }
  /**
   * A client heartbeat (Bybit `{"op":"ping"}`, OKX text `ping`): `replies` sent (`{"op":"pong",…}`, `pong`).
   * Counted in `pingsReceived`. Any inbound frame resets the silence clock of a `client-ping` heartbeat.
   */
  | { readonly kind: 'ping'; readonly replies: readonly string[] }
  /**
   * The answer to the server's application ping (`server-ping` heartbeat: BingX `{"pong":…}` / `Pong`,
   * Pionex `{"op":"PONG"}`). `answers`: the payload it echoes, compared with the `payload` the last
   * ping was built from (`server-ping.frame(payload, …)`) unless `anyPongKeepsAlive`; undefined answers
   * any ping (a venue whose pong carries nothing to compare, e.g. text `Pong`).
   */
  | { readonly kind: 'pong'; readonly answers?: string }
  /** Change the session's form (Binance SET_PROPERTY combined), then send `replies`. */
  | { readonly kind: 'set-form'; readonly form: number; readonly replies: readonly string[] }
  /** Anything answered without touching engine state: errors, LIST_SUBSCRIPTIONS, GET_PROPERTY. */
  | { readonly kind: 'reply'; readonly replies: readonly string[]; readonly close?: { readonly code: number; readonly reason: string } }
  /** Accepted and ignored (no reply). */
  | { readonly kind: 'ignore' };

/** Why the engine refused a subscribe (or unsubscribe, for 'too-many-ops'). */
export type SubscribeRejection =
  /** More stream keys in one request than `limits.argsPerRequest` (Bybit spot: 10). */
  | 'too-many-args'
  /** The request frame is longer than `limits.bytesPerRequest` bytes (OKX: 64 KB; Bybit: 21,000 chars of args). */
  | 'too-large'
  /** More subscribe/unsubscribe ops than `limits.opsPerWindow` allows (OKX: 480 per hour per connection). */
  | 'too-many-ops'
  /** The session would hold more than `limits.maxStreamsPerConnection` streams (Binance: error code 4). */
  | 'too-many-streams';

export interface ControlDialect {
  /** Parse one inbound frame (never throws: bad input is an op, usually a `reply` with the venue's error). */
  parse(text: string, session: SessionView): ControlOp;
}

/**
 * Keepalive, one of three models. Options `pingIntervalMs` / `pongTimeoutMs` override the intervals
 * (tests and the chaos suite shorten them).
 */
export type Heartbeat =
  /**
   * The server sends WebSocket ping frames every `intervalMs`; a socket that has not answered the
   * oldest unanswered ping within `timeoutMs` is terminated (Binance spot 20 s / 60 s; USD-M 3 min /
   * 10 min). `anyPongKeepsAlive`: any pong frame answers (USD-M), else only the echo of the last ping
   * payload (spot: unsolicited pongs "will not prevent disconnection").
   */
  | { readonly kind: 'ws-ping'; readonly intervalMs: number; readonly timeoutMs: number; readonly anyPongKeepsAlive: boolean }
  /**
   * The client pings (control op `ping`); a socket from which nothing at all arrived for `silenceMs` is
   * terminated (Bybit: 10 min without ping or data; OKX: 30 s). No server pings.
   */
  | { readonly kind: 'client-ping'; readonly silenceMs: number }
  /**
   * The server sends an application ping `frame(payload, wallNow)` every `intervalMs` (BingX every 5 s:
   * spot `{"ping":"<id>","time":…}`, swap text `Ping`; Pionex every 15 s: `{"op":"PING","timestamp":…}`);
   * the client answers with a control op `pong`. After `maxMissed` pings in a row without an answer
   * the socket is closed (`close`, e.g. Pionex: 3 missed). `payload` is a fresh id per ping.
   */
  | {
      readonly kind: 'server-ping';
      readonly intervalMs: number;
      readonly maxMissed: number;
      readonly anyPongKeepsAlive: boolean;
      frame(payload: string, wallNow: number): string;
      readonly close: { readonly code: number; readonly reason: string };
    };

/** One stream tick's update, handed to `event.frame` once per form. */
export interface CandleUpdate {
  /** The stream key it was subscribed as. */
  readonly stream: string;
  /** What `streamOf(stream)` returned. */
  readonly ref: StreamRef;
  readonly candle: SeriesCandle;
  /** Wall time of the tick (Binance `E`). */
  readonly eventTime: number;
}

/** A resolved stream key. */
export interface StreamRef {
  /** Series symbol (see the terms above). */
  readonly symbol: string;
  /** Canonical interval. */
  readonly interval: string;
}

export interface WsLimits {
  /** Streams one socket may hold (URL + subscriptions). URL over it: HTTP 400 at upgrade. */
  readonly maxStreamsPerConnection: number;
  /**
   * Inbound frames per socket per rolling second: every ping, pong, text and binary frame (Binance
   * counts them all against 5/s). Past it: `inboundFlood`. `Infinity` where the venue states none.
   */
  readonly maxInboundPerSecond: number;
  /** What a socket past `maxInboundPerSecond` gets (Binance: close 1008 "Too many requests"). */
  readonly inboundFlood: Reaction;
  /** Accepted upgrades per IP per `connectionWindowMs` (Binance 300 / 5 min; Bybit 500 / 5 min; OKX 3 / 1 s). Past it: HTTP 429. */
  readonly maxConnectionsPerWindow: number;
  readonly connectionWindowMs: number;
  /** Sockets open at once per IP (Pionex 10; Bybit 1,000); past it: HTTP 429 `too-many-connections`. undefined: no cap. */
  readonly maxConcurrentConnections?: number;
  /** A socket is closed (1000) this long after it opened (Binance 24 h). `Infinity`: never. */
  readonly connectionMaxAgeMs: number;
  /** Stream keys per subscribe request; undefined: no limit. */
  readonly argsPerRequest?: number;
  /** UTF-8 bytes of one subscribe request frame; undefined: no limit (the engine's 1 MiB payload cap aside). */
  readonly bytesPerRequest?: number;
  /** Subscribe + unsubscribe ops per connection per window (OKX: `{ max: 480, windowMs: 3_600_000 }`). */
  readonly opsPerWindow?: { readonly max: number; readonly windowMs: number };
}

/** Why an upgrade was refused. */
export type UpgradeRejection = 'not-found' | 'refused' | 'too-many-attempts' | 'too-many-connections' | 'too-many-streams' | 'closing';

export interface WsDialect {
  /**
   * Route an upgrade. `path` has no query and no trailing slash ('/' stays '/'); `query` is the raw
   * query string without '?', NOT decoded (parse `streams=` by hand: URLSearchParams turns `+` into a
   * space). undefined: HTTP 404 with `rejectBody('not-found')`.
   */
  route(path: string, query: string): WsRoute | undefined;
  /** The path a client should use: `wsUrl` is the origin + this ('' for the origin itself; else starts with '/'). */
  readonly primaryPath: string;
  /**
   * Resolve a stream key to (series symbol, canonical interval); undefined: the key names no kline
   * stream of this market (held and listed, never fed). Called once per new stream (not per tick).
   */
  streamOf(stream: string): StreamRef | undefined;
  /** Open-candle update cadence per stream, ms (option `openUpdateMs` overrides). */
  updateMs(interval: string): number;
  readonly limits: WsLimits;
  readonly heartbeat: Heartbeat;
  readonly control: ControlDialect;
  readonly event: {
    /**
     * The frame of one update in `form`, as text (the engine encodes it). Hot path: called once per
     * (stream, tick, form), never per subscriber; build it by concatenation.
     */
    frame(u: CandleUpdate, form: number): string;
    /**
     * 'flag': the venue marks a candle's final update closed (Binance `k.x`, Bybit `confirm`, OKX
     * `confirm`): at each boundary the engine sends the final candle (`closed: true`), then open updates
     * of the next. 'none' (BingX): no final frame is sent at the boundary; instead the first update of the
     * next candle goes out at once, so a client can infer the close, and must take the final values
     * from REST. Closed candles are still counted (`closedKlinesSent`) only for 'flag'.
     */
    readonly closed: 'flag' | 'none';
  };
  /** 'text': frames as WebSocket text; 'gzip': every server frame gzip-compressed, sent binary (BingX). */
  readonly encoding: 'text' | 'gzip';
  /**
   * The planned-disconnect notice the `serverShutdown` fault sends, per session form (Binance
   * `{"e":"serverShutdown","E":…}` / the `!serverShutdown` envelope; OKX `{"event":"notice","code":"64008",…}`).
   * undefined: the venue has none and the fault does nothing.
   */
  rotationNotice?(wallNow: number, form: number): string;
  /** Malformed frames for the `garbage` fault, in the venue's flavour (sent in turn, encoded). */
  readonly garbage: readonly string[];
  /**
   * Bodies of refused upgrades (statuses: not-found 404, refused = the fault's, attempts 429,
   * connections 429, streams 400, closing 503). `detail` is a readable English reason.
   */
  rejectBody(reason: UpgradeRejection, detail: string): string;
}

// ------------------------------------------------------------------ REST

/**
 * A klines request, venue-neutral. Rows are candles whose open time t satisfies from ≤ t ≤ to (either
 * bound optional) and t ≤ the forming candle's open time (at `now` − the restLag fault), holes
 * skipped (a hole does not count towards `limit`), at most `limit` of them: the oldest ones when `take`
 * is 'oldest' (Binance with startTime), else the newest (Binance without startTime, Bybit, OKX, Pionex).
 * The engine hands them to `rows` in ascending open time; the dialect orders and formats.
 *
 *   Binance  startTime=S&endTime=E  → { from: S, to: E, take: 'oldest' }
 *            endTime=E              → { to: E, take: 'newest' }
 *   OKX      after=A (older than A) → { to: A - 1, take: 'newest' };  before=B → { from: B + 1, … }
 *   Pionex   endTime=E (inclusive)  → { to: E, take: 'newest' }
 */
export interface KlinesQuery {
  readonly symbol: string;
  readonly interval: string;
  readonly from?: number;
  readonly to?: number;
  readonly limit: number;
  readonly take: 'oldest' | 'newest';
  /** Whether the candle still forming may be a row (Binance, Bybit, OKX: yes, as their last/first row). Default true. */
  readonly forming?: boolean;
}

/** What a REST path is on this market. */
export type RestEndpoint =
  | { readonly kind: 'klines' }
  /** An auxiliary endpoint (ping, server time): its body, status 200. */
  | { readonly kind: 'static'; body(wallNow: number): string };

/** What the gate tells the dialect when it formats a rejection. */
export interface GateContext {
  /** Seconds until the request would be admitted (≥ 1): what a Retry-After header says. */
  readonly retryAfterSeconds: number;
  /** Wall time the ban or window ends. */
  readonly untilWall: number;
  /** Budget used in the current window, and its capacity. */
  readonly used: number;
  readonly capacity: number;
}

/**
 * The REST rate model as data. One rolling window of `windowMs` holds at most `capacity` cost units per
 * IP (Binance 6000 weight / 60 s; Bybit 600 requests / 5 s; OKX 40 / 2 s; BingX 500 / 10 s; Pionex 10 / 1 s).
 * A request whose cost does not fit gets `limited` (announcing a back-off), and the IP may then be
 * banned for `banMs`: every request on any path gets `banned` until the ban ends (Bybit 403 for 10 min;
 * Pionex 429 for 60 s, plus `banExtendMs` per further request inside it). Independently, the option
 * `restBanAfterViolations` (Binance's 418: "failing to back off after receiving 429s will result in an
 * automated IP ban") bans after that many requests inside an announced back-off, for
 * `restBanSeconds`, answered with `banned` too.
 */
export interface RestRateModel {
  readonly windowMs: number;
  readonly capacity: number;
  /** Cost of one admitted request to a known path (Binance spot klines 2, USD-M klines by limit, ping 1). */
  cost(endpoint: RestEndpoint['kind'], params: URLSearchParams): number;
  /** Usage headers on every admitted answer (Binance `X-MBX-USED-WEIGHT-1M`); undefined: none. */
  usageHeaders?(used: number, capacity: number): Readonly<Record<string, string>>;
  /** The answer to a request over the budget; set `backoffMs` to what it announces. */
  limited(ctx: GateContext): RestAnswer;
  /** After a `limited` answer, the IP is banned this long; 0: no ban (Binance, OKX, BingX). */
  readonly banMs: number;
  /** Each request arriving during a ban extends it by this much (Pionex 10 s); 0: not extended. */
  readonly banExtendMs: number;
  /** The answer during a ban (Binance 418 + Retry-After; Bybit 403; Pionex 429); set `backoffMs`. */
  banned(ctx: GateContext): RestAnswer;
}

/** The `restErrors` fault's statuses. */
export type InjectedStatus = 429 | 418 | 403 | 500;

export interface RestDialect {
  /** What `path` is; undefined: 404 `notFound`. Only GET and HEAD are served (else 405 `methodNotAllowed`). */
  endpoint(path: string): RestEndpoint | undefined;
  /** Parse a klines request (`wallNow` for venues whose range depends on it, e.g. OKX's 1,440-bar window). */
  parse(params: URLSearchParams, path: string, wallNow: number): KlinesQuery | RestAnswer;
  /**
   * The 200 body for `candles` (ascending open time; the last may be forming: `closed: false`).
   * `params` and `path` are the request's, for venues that echo them (Bybit's `category`, `symbol`).
   */
  rows(candles: readonly SeriesCandle[], q: KlinesQuery, params: URLSearchParams, path: string): string;
  readonly rate: RestRateModel;
  /**
   * The `restErrors` fault's answer with `status`. `retryAfter` is the fault's verbatim value (seconds or
   * an HTTP-date) for a Retry-After header, `retryAfterMs` the same as a duration; set `backoffMs` for the
   * statuses that announce one (Binance: 429 and 418).
   */
  injected(status: InjectedStatus, retryAfter: string, retryAfterMs: number, ctx: GateContext): RestAnswer;
  readonly notFound: RestAnswer;
  readonly methodNotAllowed: RestAnswer;
  /** A bug in the dialect or engine answered as the venue's internal error (the simulator stays up). */
  internalError(message: string): RestAnswer;
}

// ------------------------------------------------------------------ the dialect

export interface VenueDialect {
  /** Venue id as the daemon knows it (`binance`, `bybit-spot`, …); shown in errors. */
  readonly id: string;
  readonly title: string;
  readonly series: SeriesStyle;
  /** undefined: the venue has no kline WebSocket (Pionex): upgrades get 404, only REST is served. */
  readonly ws: WsDialect | undefined;
  readonly rest: RestDialect;
}

// ------------------------------------------------------------------ the running simulator (engine.ts)

/** Every limit defaults to the dialect's. */
export interface SimulatorOptions {
  host?: string;
  port?: number;
  /** Wall clock (candle times, event times, REST rows). Default Date.now. */
  now?: () => number;
  /** Open-update cadence of every stream, overriding `ws.updateMs`. */
  openUpdateMs?: number;
  /** Server ping interval (ws-ping, server-ping). */
  pingIntervalMs?: number;
  /** ws-ping: answer deadline; client-ping: the silence deadline. */
  pongTimeoutMs?: number;
  maxStreamsPerConnection?: number;
  maxInboundPerSecond?: number;
  maxConnectionsPerWindow?: number;
  maxConnectionAgeMs?: number;
  /** REST budget capacity per window, overriding `rest.rate.capacity`. */
  restCapacity?: number;
  /** Off unless set: ban after this many requests inside an announced back-off (see RestRateModel). */
  restBanAfterViolations?: number;
  /** Length of that ban; default 120 s. */
  restBanSeconds?: number;
}

export interface SimulatorFaults {
  /** Terminate every socket (no close frame). */
  dropAll(): void;
  /** Close every socket with a close frame; default 1000 and ''. */
  closeAll(code?: number, reason?: string): void;
  /** Every current socket sends nothing (no data, no replies, no pings) for `ms`; what falls inside is lost, replies are held back. */
  stallSockets(ms: number): void;
  /** These stream keys send nothing for `ms` (their candles inside are lost; REST has them). */
  stallStreams(streams: string[], ms: number): void;
  /** The next `count` upgrades are refused with `status` (default 503). */
  refuseConnections(count: number, status?: number): void;
  /** The next `count` klines requests fail. `retryAfter`: seconds, or a verbatim header value (an HTTP-date). */
  restErrors(count: number, status: InjectedStatus, retryAfter?: number | string): void;
  /** Successful REST answers leave `ms` after the request arrived (rejections still go at once). 0: off. */
  restLatency(ms: number): void;
  /** REST lags the stream: klines are answered as the venue's REST saw them `ms` ago. 0: off. */
  restLag(ms: number): void;
  /** Sockets opened from now on are closed (1000) `ms` after opening; undefined: off. */
  closeAfter(ms: number | undefined): void;
  /** Every socket gets `count` malformed frames (the dialect's `garbage`, in turn). */
  garbage(count: number): void;
  /** Every socket gets the dialect's rotation notice (nothing when it has none). */
  serverShutdown(): void;
  /** These candles never existed: absent from WS and REST. Symbol: the series symbol (any case). */
  hole(symbol: string, interval: string, fromOpenTime: number, toOpenTimeExclusive: number): void;
  /** The next `count` subscribe requests close their socket (1011) instead of answering. */
  closeMidSubscribe(count: number): void;
  /** Clears every fault (stalls end on the next tick, flushing held-back replies). */
  reset(): void;
}

export interface SimulatorCounters {
  connectionsOpened: number;
  /** Wall ms of each accepted upgrade. */
  connectionTimestamps: number[];
  connectionsRefused: number;
  /** Max over all sockets of inbound frames (ping + pong + text + binary) in any rolling second. */
  maxInboundPerSecondSeen: number;
  /** Max accepted upgrades within any connection window (what the per-IP attempt limit counts). */
  maxConnectionAttemptsPerWindowSeen: number;
  /** Sockets closed because they reached their maximum age. */
  closedByAge: number;
  /** Sockets dropped by the heartbeat (no pong, missed server pings, silence). */
  closedByHeartbeat: number;
  /** Answers to the server's pings: WebSocket pong frames, or `pong` control ops. */
  pongsReceived: number;
  /** Server pings sent: WebSocket ping frames or application pings. */
  pingsSent: number;
  /** Client heartbeats: WebSocket ping frames and `ping` control ops. */
  pingsReceived: number;
  /** Every inbound frame (ping, pong, text, binary). */
  controlMessages: number;
  /** Sockets closed for exceeding the inbound rate. */
  closedByRateLimit: number;
  /** Every data frame sent (events, replies, pings of `server-ping`, notices, garbage). */
  framesSent: number;
  klineEventsSent: number;
  closedKlinesSent: number;
  restRequests: number;
  /** Max budget used within any rate window. */
  restBudgetUsedMax: number;
  /** Every non-2xx REST answer, by status. */
  restStatuses: Record<number, number>;
  /** Requests answered `limited` (over the budget). */
  restLimited: number;
  /** Requests answered `banned`. */
  restBanned: number;
  /**
   * REST requests that arrived while a back-off this simulator had announced (`backoffMs` of an
   * answer: a 429's Retry-After, a ban) was still running, the first 50 ms after it aside (requests
   * already in flight). On every venue these are violations the daemon must not commit.
   */
  restInsideRetryAfter: number;
}

export interface SocketInfo {
  readonly id: number;
  /** The path it connected to (without the query). */
  readonly path: string;
  /** The route's `delivers`. */
  readonly delivers: boolean;
  /** Stream keys, in subscription order. */
  readonly streams: string[];
  readonly inboundTotal: number;
  readonly maxInboundPerSecond: number;
  readonly pongs: number;
  /** Wall ms. */
  readonly openedAt: number;
  readonly form: number;
}

/** A running simulator of one venue market: what tests, the chaos suite, the demo and benches hold. */
export interface VenueSimulator {
  readonly venue: string;
  /** The WebSocket endpoint as the venue's docs name it (origin + `ws.primaryPath`); '' when the venue has no WebSocket. */
  readonly wsUrl: string;
  /** The REST origin. */
  readonly restUrl: string;
  readonly port: number;
  readonly faults: SimulatorFaults;
  readonly counters: SimulatorCounters;
  sockets(): SocketInfo[];
  /** Terminates sockets, stops the timer, closes the server. Idempotent. */
  close(): Promise<void>;
}

// ------------------------------------------------------------------ a venue's simulator module (registry)

/**
 * A closed candle exactly as the relay must send it (contract §5: the `k` object), with `null` where
 * the venue does not publish a field (src/relay/protocol.ts `klinePayload` writes absent fields as null).
 */
export interface RelayKline {
  readonly s: string;
  readonly i: string;
  readonly T: number;
  readonly o: string;
  readonly h: string;
  readonly l: string;
  readonly c: string;
  readonly v: string;
  readonly q: string | null;
  readonly n: number | null;
  readonly V: string | null;
  readonly Q: string | null;
}

/** The limits the chaos audit asserts against a venue's counters (strictly under the venue's). */
export interface AuditLimits {
  /** The per-socket inbound frames per second the venue allows (counters.maxInboundPerSecondSeen must stay ≤). */
  readonly maxInboundPerSecond: number;
  /** Accepted upgrades per connection window the daemon may use (≤). */
  readonly maxConnectsPerWindow: number;
  /** REST budget per window the daemon may reach (<). */
  readonly maxRestBudget: number;
}

/**
 * What src/venues/<venue>/simulator/index.ts exports for the registry (src/venues/simulators.ts), one
 * per venue id the daemon knows (`VenueAdapter.id`).
 */
export interface SimulatorVenue {
  /** Equals the adapter's id (src/venues/index.ts). */
  readonly id: string;
  start(options?: SimulatorOptions): Promise<VenueSimulator>;
  /** The closed candle the relay must deliver for (native symbol, canonical interval, open time). */
  truth(symbol: string, interval: string, openTime: number): RelayKline;
  /** Native symbols a chaos run uses; disjoint from every other venue's, at least 40. */
  readonly chaosSymbols: readonly string[];
  /** The simulator's stream key for (native symbol, canonical interval): what `stallStreams` takes. */
  streamKey(symbol: string, interval: string): string;
  /** The series symbol of a native symbol (what `faults.hole` takes). */
  seriesSymbol(symbol: string): string;
  readonly auditLimits: AuditLimits;
  /**
   * REST statuses that are this venue's gate answers (Binance 429 and 418; Bybit 403; others 429): the
   * chaos suite's `restErrors` faults inject these (and 500).
   */
  readonly gateStatuses: readonly InjectedStatus[];
}
