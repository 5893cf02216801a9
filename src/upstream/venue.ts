/**
 * The adapter interfaces: what a venue (one exchange market with one wire protocol, contract §2a)
 * supplies to the venue-agnostic upstream. connection.ts, pool.ts and rest.ts hold everything every
 * venue needs once (a socket's lifecycle, the pool and its attempt gate, heartbeats of every kind,
 * the REST recovery loop); a venue adapter (src/venues/<venue>/) is only what that venue knows:
 *
 * - `streams`: its stream naming (relay name, upstream topic, native symbol and interval spelling);
 * - `ws`: connect URLs and subscribe frames under its limits, control-message pacing, its heartbeat
 *   kind (as data, below), how its rate-limit signals look, and its frame parser (frames → canonical
 *   candles; a byte scanner where that pays);
 * - `rest`: one page request (path, weight) and its rows as canonical candles, its order, its usage
 *   header and which answers close the IP-wide gate;
 * - `env`: its configuration fragment (variable names, defaults, symbol form, interval map), read by
 *   src/config/schema.ts.
 *
 * A venue without a kline WebSocket (`source: 'rest-poll'`, PolledVenueAdapter) has no `ws`: its
 * closed candles are polled from `rest` just after each one closes (poller.ts), paced under its
 * per-second request budget (`rest.requestsPerSecond`), with what it needs for that in `poll`.
 *
 * This module holds types and a few constants only (no sockets, no timers, no heavy imports): the
 * configuration loads the venue registry through it before anything else is started.
 */
import type { Candle, StreamRef } from '../core/candle.ts';
import type { Clock } from '../core/clock.ts';
import type { CanonicalInterval } from '../core/intervals.ts';
import type { StatusStream } from '../core/status.ts';
import type { StreamRegistry } from '../core/streams.ts';

// ---------------------------------------------------------------------------------------------
// Frames

export type FrameSignalKind = 'parse-error' | 'unknown-stream' | 'server-shutdown' | 'control-reply' | 'control-error';

/** A non-candle outcome of a frame. Preallocated singletons: compare with `===` or narrow with `'signal' in outcome`. */
export interface FrameSignal {
  readonly signal: FrameSignalKind;
}

export const PARSE_ERROR: FrameSignal = Object.freeze({ signal: 'parse-error' });
export const UNKNOWN_STREAM: FrameSignal = Object.freeze({ signal: 'unknown-stream' });
/** The venue announced that this socket's server goes away (Binance `serverShutdown`): rotate it. */
export const SERVER_SHUTDOWN: FrameSignal = Object.freeze({ signal: 'server-shutdown' });
/** A reply to one of our control requests (SUBSCRIBE & co.). The id is in `parser.lastControlId`. */
export const CONTROL_REPLY: FrameSignal = Object.freeze({ signal: 'control-reply' });
/** A control request was refused. Details in `parser.lastControlError`. */
export const CONTROL_ERROR: FrameSignal = Object.freeze({ signal: 'control-error' });

export type FrameOutcome = Candle | FrameSignal;

export function isCandle(outcome: FrameOutcome): outcome is Candle {
  return !('signal' in outcome);
}

/** One venue's frame parser, one per pool (it may keep per-stream lookup tables). Never throws. */
export interface FrameParser {
  /**
   * One frame's bytes → a canonical candle or a signal. `receivedAt` is stamped on the candle. The
   * bytes need not be valid UTF-8 (the socket skips ws's validation): the parser validates what it
   * decodes. A candle may keep a view of `frame`.
   */
  parse(frame: Buffer, receivedAt: number): FrameOutcome;
  /**
   * For venues whose frames can carry several candles (Bybit's `data` array): after `parse` returned a
   * frame's first candle, its further ones, one per call, in order, then undefined. Absent: one candle
   * per frame. The connection drains it right after delivering the first, before the next frame.
   */
  more?(): Candle | undefined;
  /** Monotonic counters; metrics read them. */
  readonly parseErrors: number;
  readonly unknownStreams: number;
  readonly lastControlId: number | string | null;
  readonly lastControlError: { readonly code: number; readonly msg: string } | undefined;
}

export interface ParserContext {
  readonly venue: string;
  readonly registry: StreamRegistry;
  readonly status: StatusStream;
  readonly clock: Clock;
}

// ---------------------------------------------------------------------------------------------
// Heartbeats: every kind is data the venue supplies; connection.ts implements all of them.

/**
 * How a venue keeps a socket alive and how we tell a dead one. In every kind, any inbound frame
 * proves liveness (no frame for CONNECTOR_PING_TIMEOUT_MS: the socket is dropped), and a ping of
 * ours left unanswered for CONNECTOR_PONG_TIMEOUT_MS is a missed pong (CONNECTOR_MAX_MISSED_PINGS in a
 * row: replaced). Every message we send counts against `controlBudgetPerSecond`.
 *
 * - `ws-ping`: the server sends WebSocket ping frames and the upstream socket answers them with the
 *   same payload (autoPong); we send a WebSocket ping only after a stretch of silence (Binance: pings every 20 s
 *   on spot, 3 min on USD-M; every inbound control frame counts against its per-socket limit).
 * - `client-text`: we send the text `ping` every `intervalMs` and the server answers the text `pong`
 *   (OKX: `ping` / `pong`, at most every 30 s or it drops the socket).
 * - `client-json`: we send the JSON text `ping` every `intervalMs` and a frame starting with
 *   `pongPrefix` answers it (Bybit: `{"op":"ping"}` every 20 s, pong `{"success":true,"ret_msg":"pong",…}`).
 * - `server-json`: the server sends pings that want an answer: a frame starting with `pingPrefix`
 *   is answered with `answer(frame)` (BingX spot `{"ping":"<id>",…}` → `{"pong":"<id>",…}`, BingX swap
 *   `Ping` → `Pong`, Pionex `{"op":"PING","timestamp":…}` → `{"op":"PONG",…}`). We send no pings.
 *
 * Heartbeat frames are recognised before the frame parser sees them, and only frames no longer than
 * `maxFrameBytes` are looked at, so the data path pays one length compare.
 */
export type HeartbeatKind =
  | { readonly kind: 'ws-ping' }
  | { readonly kind: 'client-text'; readonly intervalMs: number; readonly ping: string; readonly pong: string }
  | { readonly kind: 'client-json'; readonly intervalMs: number; readonly ping: string; readonly pongPrefix: string; readonly maxFrameBytes: number }
  | { readonly kind: 'server-json'; readonly pingPrefix: string; readonly answer: (frame: Buffer) => string; readonly maxFrameBytes: number };

// ---------------------------------------------------------------------------------------------
// Frame encodings and closes

/**
 * How the venue encodes every frame it sends (heartbeats included), undone before anything looks at
 * the frame (decode.ts): `none` (the default: JSON text), `gzip` (BingX: every frame is a GZIP member
 * in a binary message, exchanges.md §3). Decoding is bounded: a frame that would inflate past
 * CONNECTOR_MAX_MESSAGE_BYTES is dropped and counted as a parse error, never buffered whole.
 */
export type FrameEncoding = 'none' | 'gzip';

/**
 * How a venue's frames say that a candle is closed: `flag` (the default: Binance `k.x`, Bybit
 * `confirm`), or `next-open` (BingX: no closed flag at all; a candle is closed once a later candle of
 * its stream has started, and its final values come from REST, contract §3). For `next-open` venues
 * the parser emits every candle as an open update and the finalizer (finalizer.ts) asks the pipeline
 * to deliver the REST row of each candle a later one has superseded.
 */
export type CloseSignal = 'flag' | 'next-open';

// ---------------------------------------------------------------------------------------------
// WebSocket protocol

/** At most `limit` events in any sliding `windowMs`. */
export interface RateWindow {
  readonly limit: number;
  readonly windowMs: number;
}

export interface RateLimitSignals {
  /** Close codes the venue uses for "too many requests" (Binance: 1008). */
  readonly closeCodes: readonly number[];
  /** After such a close, no new connection attempt for at least this long (Binance: 2 min). */
  readonly closePenaltyMs: number;
  /** HTTP statuses of a refused upgrade that mean the same (Binance: 429, 418), honouring Retry-After. */
  readonly upgradeStatuses: readonly number[];
  /** Their wait when the answer carries no Retry-After. */
  readonly defaultRetryAfterMs: number;
}

export interface WsProtocol {
  /** The venue's own cap on streams per socket (CONNECTOR_MAX_STREAMS_PER_CONNECTION is clamped to it). */
  readonly maxStreamsPerConnection: number;
  /**
   * Our outbound messages (pongs, pings, subscribes) per rolling second, kept under the venue's inbound
   * limit with a margin (Binance spot counts 5/s, everything included).
   */
  readonly controlBudgetPerSecond: number;
  /** Subscribe frames at most every this many ms (leaves room in the budget for pongs and a ping). */
  readonly subscribeSpacingMs: number;
  readonly heartbeat: HeartbeatKind;
  readonly rateLimit: RateLimitSignals;
  /** Default `none`. */
  readonly encoding?: FrameEncoding;
  /** Default `flag`. */
  readonly closes?: CloseSignal;
  /**
   * A per-IP cap on connection attempts in a short window, beside the pool's 5-minute budget (OKX: 3
   * per second per IP). Every attempt of the pool passes both. Absent: the 5-minute budget only.
   */
  readonly connectRate?: RateWindow;
  /**
   * A cap on subscribe frames per socket in a sliding window (OKX: 480 subscribe/unsubscribe/login
   * requests per connection per hour). A socket whose window is full waits before its next one; a new
   * socket starts an empty window. Absent: paced by `subscribeSpacingMs` and the control budget only.
   */
  readonly subscribeRate?: RateWindow;
  /**
   * The venue's own cap on connection attempts per 5 minutes for this venue's pool, where it is lower
   * than what CONNECTOR_MAX_CONNECTION_ATTEMPTS_PER_5MIN allows (Bybit: 500 per 5 min per domain, shared
   * by its spot and linear venues); the pool's attempt budget is clamped to it. Absent: no clamp.
   */
  readonly maxConnectionAttemptsPer5Min?: number;
  /**
   * The URL of a socket for `topics` (upstream stream names, in order): how many of the first ones the
   * URL itself carries (the rest are subscribed once it is open). Empty `topics`: a spare socket.
   */
  connectUrl(baseUrl: string, topics: readonly string[]): { readonly url: string; readonly carried: number };
  /** `topics` split into subscribe requests, each within the venue's frame limits. */
  subscribeBatches(topics: readonly string[]): readonly (readonly string[])[];
  /** The subscribe frame for one batch, with our request id. */
  subscribeFrame(topics: readonly string[], id: number): string;
  createParser(context: ParserContext): FrameParser;
}

// ---------------------------------------------------------------------------------------------
// REST protocol

export interface RestPage {
  /** Path and query after the REST origin (and its base path). */
  readonly path: string;
  /** Rows asked for: a full page (this many rows) means there may be more. */
  readonly limit: number;
  /** The request's weight in the venue's budget (Binance: `/api/v3/klines` 2). */
  readonly weight: number;
  /**
   * The venue's own request-rate window this request counts against, when it has one finer than the
   * minute's weight (OKX: `/market/candles` 40 per 2 s per IP, `/market/history-candles` 20 per 2 s;
   * BingX: 500 per 10 s over all market data; Bybit: 600 per 5 s per IP): requests of the same `key` through the same RestGate
   * (one per REST origin, so per IP: BingX spot and swap share theirs) wait until it has room. A
   * request counts from when it leaves until `windowMs` after its answer (the venue may count it on
   * arrival, and requests queued in the HTTP pool arrive together).
   */
  readonly window?: RateWindow & { readonly key: string };
}

export interface RestProtocol {
  /** How a page's rows come back. Either way rows are sorted and de-duplicated by open time before use. */
  readonly order: 'oldest-first' | 'newest-first';
  /**
   * The request for `stream`'s rows with open time in [startTime, endTime] (both inclusive), when
   * `wanted` rows would cover the range (the venue may ask for more, never for more than its page cap).
   * `nowWall` is the wall clock (the REST client always passes it): a venue whose endpoints depend on
   * the range's age picks one by it (OKX: `/market/candles` holds only the latest 1,440 bars,
   * `/market/history-candles` the older ones), one that wants a request timestamp writes it (BingX
   * `timestamp`). Without it, a page that serves any age.
   */
  page(stream: StreamRef, startTime: number, endTime: number, wanted: number, nowWall?: number): RestPage;
  /**
   * A 200 answer's rows as candles with `source: 'rest'`, `closed: true` (the loop keeps only those whose
   * close time has passed) and `raw: undefined`; what the venue does not publish is left out, never
   * invented. A string says what is wrong with the body.
   */
  parse(body: unknown, stream: StreamRef, nowWall: number, nowMono: number): readonly Candle[] | string;
  /** Response header carrying the IP's used weight this minute (Binance `x-mbx-used-weight-1m`), lower case. */
  readonly usedWeightHeader: string | undefined;
  /** The venue's weight limit per minute per IP; CONNECTOR_REST_MAX_WEIGHT_PER_MINUTE is clamped to it. */
  readonly weightLimitPerMinute: number;
  /**
   * HTTP statuses that close the IP-wide gate, with their wait when there is no Retry-After
   * (Binance: 429 back-off, 418 ban, 403 WAF block).
   */
  readonly gateStatuses: Readonly<Record<number, number>>;
  /** Of those, the ones reported as a ban (`bannedUntil`); the others are a back-off. */
  readonly banStatuses: readonly number[];
  /**
   * For venues that refuse with HTTP 200 and a code in the body: the status such a body stands for
   * (BingX: code 100410 "frequency limit" → 429; OKX: code 50011, sent with HTTP 200 or 429 → 429),
   * closing the gate like a real one; undefined for an ordinary answer. Unset: every 200 is one.
   */
  readonly bodyStatus?: (body: unknown) => number | undefined;
  /**
   * Requests per second per IP, for venues that count per second (Pionex: 10/s; ours less a margin): a
   * window of the origin's RestGate like RestPage.window (counted until a second after each answer, so
   * two bursts never land in one of the venue's seconds); undefined: only the minute budget.
   */
  readonly requestsPerSecond?: number;
  /**
   * A gate answer that arrives while the gate is already closed lengthens the window by this much: the
   * venue counted a request inside its ban and extended it (Pionex: 60 s ban, +10 s per further
   * request). Such a request was in flight when the ban began; without this the gate would open
   * while the venue's ban still ran, and the first request after it would extend the ban again.
   */
  readonly repeatPenaltyMs?: number;
}

// ---------------------------------------------------------------------------------------------
// REST-polled venues (no kline WebSocket)

/** What a REST-polled venue's poller (poller.ts) needs beyond its `rest` protocol. */
export interface PollProtocol {
  /**
   * After a candle closes, wait this long before asking REST for it: the venue needs a moment to seal
   * the row and start the next one (a row whose successor REST does not serve yet is not final).
   */
  readonly lagMs: number;
  /**
   * Polls per second the steady state may plan on, at most `rest.requestsPerSecond`; the rest of that
   * is left to gap recovery and resume replays. The configuration refuses more streams than this
   * carries (each stream takes one poll per candle; poll-budget.ts).
   */
  readonly pollsPerSecond: number;
}

// ---------------------------------------------------------------------------------------------
// Streams and configuration

/** One stream as the venue names it: what StreamRegistry.register interns. */
export interface StreamSpec {
  /** Relay name (contract §5): Binance spot `btcusdt@kline_1m`, others `<venue>:<symbol lowercased>@kline_<interval>`. */
  readonly name: string;
  /** The venue's own name for the stream on its wire (Binance `btcusdt@kline_1m`, Bybit `kline.1.BTCUSDT`). */
  readonly topic: string;
  /** Native symbol as the venue writes it in events (`BTCUSDT`, `BTC-USDT`). */
  readonly symbol: string;
  readonly interval: CanonicalInterval;
  /** The venue's spelling of the interval (`1m`, `1`, `1H`, `1min`). */
  readonly nativeInterval: string;
}

/** A venue's configuration fragment (contract §2a): read by src/config/schema.ts, never by the venue. */
export interface VenueEnv {
  /** Variable names; for every venue but binance `<prefix>SYMBOLS`, `<prefix>INTERVALS`, `<prefix>WS_URL`, `<prefix>REST_URL`. */
  readonly vars: { readonly symbols: string; readonly intervals: string; readonly wsUrl: string; readonly restUrl: string };
  readonly defaults: { readonly symbols?: readonly string[]; readonly intervals: readonly CanonicalInterval[]; readonly wsUrl: string; readonly restUrl: string };
  /** The native symbol form, checked after `symbolCase` is applied. */
  readonly symbolPattern: RegExp;
  /** How a symbol is written in the configuration once read (the list is case-insensitive). */
  readonly symbolCase: 'lower' | 'upper';
  /** What the error says the form is, e.g. `2-30 letters or digits, e.g. btcusdt`. */
  readonly symbolForm: string;
  /** The canonical intervals the venue has, with its own name for each. */
  readonly intervals: Readonly<Partial<Record<CanonicalInterval, string>>>;
}

/** One venue's configuration, as the schema produced it. */
export interface VenueConfig {
  readonly id: string;
  /** This shard's symbols (every configured one when unsharded, contract §10). */
  readonly symbols: readonly string[];
  /** The configured symbols other shards own, with their shard (their relay names get code 2 naming it). */
  readonly elsewhere?: readonly { readonly symbol: string; readonly shard: number }[];
  readonly intervals: readonly CanonicalInterval[];
  readonly wsUrl: string;
  readonly restUrl: string;
}

/** What every venue supplies, whichever way its candles arrive. */
interface VenueBase {
  /** `binance`, `binance-usdm`, … (contract §2a). Used in relay names, metrics labels, breaker names. */
  readonly id: string;
  /** Human name for logs and errors (`Binance spot`). */
  readonly title: string;
  readonly env: VenueEnv;
  /** The streams for (symbols × intervals), symbol-major; symbols as the configuration wrote them. */
  streams(symbols: readonly string[], intervals: readonly CanonicalInterval[]): readonly StreamSpec[];
  readonly rest: RestProtocol;
}

/** A venue whose candles come over its kline WebSocket (an UpstreamPool). Registered in src/venues/index.ts; nothing else names a venue. */
export interface VenueAdapter extends VenueBase {
  /** Where candles come from; absent means `ws`. */
  readonly source?: 'ws';
  readonly ws: WsProtocol;
}

/** A venue without a kline WebSocket: closed candles are polled from its REST (a RestPoller), none open. */
export interface PolledVenueAdapter extends VenueBase {
  readonly source: 'rest-poll';
  readonly poll: PollProtocol;
}

/** Any registered venue; narrow on `source` (`=== 'rest-poll'`) where the two differ. */
export type AnyVenueAdapter = VenueAdapter | PolledVenueAdapter;

/** The streams for (symbols × intervals), symbol-major (what `VenueAdapter.streams` returns), each made by `spec`. */
export function symbolMajor(symbols: readonly string[], intervals: readonly CanonicalInterval[], spec: (symbol: string, interval: CanonicalInterval) => StreamSpec): StreamSpec[] {
  const out: StreamSpec[] = [];
  for (const symbol of symbols) for (const interval of intervals) out.push(spec(symbol, interval));
  return out;
}

/** `<venue>:<symbol>@kline_<interval>`: the relay name of a stream of every venue but Binance spot (contract §5). */
export function prefixedStreamName(venue: string, symbol: string, interval: CanonicalInterval): string {
  return `${venue}:${symbol.toLowerCase()}@kline_${interval}`;
}

/**
 * `items` in order, split into batches of at most `maxCount` whose `overhead + Σ size(item)` stays
 * within `maxBytes` (an item larger than that alone gets a batch of its own).
 */
export function batchBySize<T>(items: readonly T[], size: (item: T) => number, overhead: number, maxBytes: number, maxCount = Number.POSITIVE_INFINITY): T[][] {
  const out: T[][] = [];
  let batch: T[] = [];
  let bytes = overhead;
  for (const item of items) {
    const add = size(item);
    if (batch.length > 0 && (bytes + add > maxBytes || batch.length >= maxCount)) {
      out.push(batch);
      batch = [];
      bytes = overhead;
    }
    batch.push(item);
    bytes += add;
  }
  if (batch.length > 0) out.push(batch);
  return out;
}

/** Register `venue`'s streams for (symbols × intervals) in `registry`; symbol-major order. */
export function registerVenueStreams(registry: StreamRegistry, venue: AnyVenueAdapter, symbols: readonly string[], intervals: readonly CanonicalInterval[]): StreamRef[] {
  return venue.streams(symbols, intervals).map((s) => registry.register(venue.id, s.name, s.symbol, s.interval, { topic: s.topic, nativeInterval: s.nativeInterval }));
}
