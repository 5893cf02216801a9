/**
 * One upstream socket's lifecycle: connect (one attempt at a time, the pool decides when), the
 * heartbeat and liveness deadline, per-stream staleness, a quality grade, SUBSCRIBE pacing, pause,
 * and close. The pool (pool.ts) owns placement, the attempt gate (budget, breaker, penalties),
 * reconnect scheduling and rotation; a connection reports to it through `ConnectionOwner`.
 *
 *                    attempt()                 'open'
 *   (new) ──► connecting ─────────► (socket) ─────────► connected ──── liveness / stale / close ───┐
 *               ▲   │ failure                                 │ close()                          │
 *               │   ▼                                         ▼                                  ▼
 *               │ reconnecting ◄──── pool: backoff ◄──────── closed                         disconnected
 *               │   │  ▲                                                                          │
 *               │   │  └──────────── pool: breaker half-open / closed ◄── suspended               │
 *               └───┘ (pool grants the next attempt)            ▲ breaker open                    │
 *                   │ retries exhausted → failed (pool re-places its streams)                     │
 *                   └────────────────────────────────────────────── pool schedules a reconnect ◄──┘
 *
 * Venue-agnostic: the venue adapter (venue.ts) supplies the URL, the subscribe frames and their pacing,
 * the heartbeat kind, its rate-limit close codes and the frame parser.
 *
 * Heartbeat, kind `ws-ping` (Binance, binance-protocol.md §3): the server pings every 20 s and drops a
 * socket that has not answered within a minute; the upstream socket answers pings with the same payload
 * (autoPong: wsclient.ts, as ws's lib/websocket.js `receiverOnPing`). Every inbound frame (data, ping) proves liveness. Binance counts
 * every inbound control frame (our pongs, pings, SUBSCRIBEs) against 5/s per socket, so client pings
 * are sent only after `pingTimeoutMs / maxMissedPings` of silence and SUBSCRIBEs are paced. The other
 * kinds (client text or JSON pings every `intervalMs`, server JSON pings we answer) are recognised by
 * `#heartbeatFrame` before the parser sees a frame; see HeartbeatKind.
 *
 * Missed pongs (the seed's `max_missed_pings`): a ping left unanswered for `pongTimeoutMs` is one miss;
 * misses are tolerated and the socket is probed again at once, and the `maxMissedPings`-th miss in a
 * row replaces it. Any pong or inbound frame clears the count. With the production figures (60 s, 5 s,
 * 3): first ping after 20 s of silence, misses at 25 s and 30 s tolerated, replaced at 35 s; the
 * liveness deadline (no frame for `pingTimeoutMs`) stays the backstop.
 *
 * Quality is graded by `assess()`, which the pool runs every `healthCheckIntervalMs`; the deadlines
 * above run on the pool's much finer tick (`check()`).
 */
import type { Candle, StreamRef } from '../core/candle.ts';
import type { Clock } from '../core/clock.ts';
import { ConnectorError, errorMessage } from '../core/errors.ts';
import { parseRetryAfter } from '../core/retry-after.ts';
import type { ConnectionSnapshot, SourceHandlers } from '../core/source.ts';
import type { ConnState, QualityGrade, StatusStream } from '../core/status.ts';
import type { Config } from '../config/schema.ts';
import { frameDecoder, type FrameDecoder } from './decode.ts';
import { ParseErrorReporter } from './parse-errors.ts';
import { AttemptBudget } from './backoff.ts';
import type { UpstreamSocket, UpstreamSocketOptions } from './wsclient.ts';
import { CONTROL_ERROR, PARSE_ERROR, SERVER_SHUTDOWN, type FrameParser, type HeartbeatKind, type VenueAdapter } from './venue.ts';

/** Makes the upstream socket: `UpstreamWebSocket` by default (pool.ts), a `ws` WebSocket in some tests. */
export type WebSocketFactory = (url: string, options: UpstreamSocketOptions) => UpstreamSocket;

/** How long a graceful close may take before the socket is destroyed. */
export const CLOSE_BACKSTOP_MS = 5000;
/** Quality counts errors over this trailing window. */
const ERROR_WINDOW_MS = 5 * 60_000;
/** A stream still silent after replacements waits staleStreamMs · 2^strikes (strikes capped here) before the next one. */
const MAX_STALE_STRIKES = 5;
/** Undecodable frames are reported (a `parse.error` event) at most this often per socket; every one is counted. */
const DECODE_REPORT_INTERVAL_MS = 10_000;

/** A failed connection attempt, with the HTTP status of a refused upgrade when there was one. */
export class UpstreamConnectError extends ConnectorError {
  readonly status: number | undefined;
  readonly retryAfterMs: number | undefined;
  constructor(message: string, options: { status?: number; retryAfterMs?: number; cause?: unknown } = {}) {
    super('CONNECTOR_ERR_UPSTREAM_CONNECT', message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'UpstreamConnectError';
    this.status = options.status;
    this.retryAfterMs = options.retryAfterMs;
  }
}

/** What a connection tells its pool. Called synchronously from socket events and `check()`. */
export interface ConnectionOwner {
  /** The open socket was lost (closed by the venue, errored, or terminated for silence). */
  lost(conn: UpstreamConnection, reason: string): void;
  /** Every stream expected on this socket has delivered at least once since it opened. */
  allStreamsSeen(conn: UpstreamConnection): void;
  /** The venue announced a shutdown of this socket's server. */
  serverShutdown(conn: UpstreamConnection): void;
  /** Some stream has been silent past its (backed-off) staleness deadline: the socket should be replaced. */
  staleStreams(conn: UpstreamConnection): void;
  /** The venue rate-limited us (Binance: a 1008 close, or 429/418 at upgrade): no new attempt for `waitMs`. */
  rateLimited(conn: UpstreamConnection, kind: string, waitMs: number): void;
}

/** Monotonic counters shared by every connection of a pool. */
export interface UpstreamCounters {
  messages: number;
  bytes: number;
  candles: number;
  connectionAttempts: number;
  connectionErrors: number;
  reconnections: number;
  rotations: number;
  staleEvents: number;
  /** Frames dropped because they could not be decoded (corrupt, or inflating past the message cap); reported as parse errors. */
  decodeErrors: number;
}

export function newCounters(): UpstreamCounters {
  return {
    messages: 0,
    bytes: 0,
    candles: 0,
    connectionAttempts: 0,
    connectionErrors: 0,
    reconnections: 0,
    rotations: 0,
    staleEvents: 0,
    decodeErrors: 0,
  };
}

/** Per-stream state on one socket. */
interface StreamSlot {
  readonly ref: StreamRef;
  /** Monotonic ms of the last frame for this stream, or of its subscription. */
  lastAt: number;
  /** Known to the server (in the URL of the open socket, or SUBSCRIBE sent). */
  subscribed: boolean;
  /** Delivered since the socket opened. */
  seen: boolean;
  /** Counted toward `allStreamsSeen` (streams that arrive stale are not waited for). */
  expected: boolean;
  stale: boolean;
  /** Replacements this stream caused without delivering in between. */
  strikes: number;
  /** Pending `handlers.resync` reason, called just before this stream's next candle. */
  resync: string | undefined;
}

export interface StreamCarry {
  readonly ref: StreamRef;
  /** Call handlers.resync before the stream's next candle. */
  readonly resync?: string | undefined;
  /** The stream arrives stale (it caused the replacement): carry its strikes. */
  readonly stale?: boolean;
  readonly strikes?: number;
}

export interface UpstreamConnectionOptions {
  readonly id: string;
  readonly config: Config;
  readonly venue: VenueAdapter;
  /** The venue's WebSocket endpoint (`<prefix>WS_URL`); the venue appends what its protocol puts after it. */
  readonly wsUrl: string;
  readonly streams: readonly StreamCarry[];
  readonly parser: FrameParser;
  readonly handlers: SourceHandlers;
  readonly status: StatusStream;
  readonly clock: Clock;
  readonly wsFactory: WebSocketFactory;
  readonly owner: ConnectionOwner;
  readonly counters: UpstreamCounters;
  readonly random: () => number;
}

/** Heartbeat frames to look for before parsing (every kind but `ws-ping`), prepared once per connection. */
type HeartbeatFrames =
  | { readonly kind: 'pong'; readonly maxBytes: number; readonly match: Buffer; readonly exact: boolean }
  | { readonly kind: 'server-ping'; readonly maxBytes: number; readonly match: Buffer; readonly answer: (frame: Buffer) => string };

function heartbeatFrames(hb: HeartbeatKind): HeartbeatFrames | undefined {
  switch (hb.kind) {
    case 'ws-ping':
      return undefined;
    case 'client-text':
      return { kind: 'pong', maxBytes: Buffer.byteLength(hb.pong), match: Buffer.from(hb.pong), exact: true };
    case 'client-json':
      return { kind: 'pong', maxBytes: hb.maxFrameBytes, match: Buffer.from(hb.pongPrefix), exact: false };
    case 'server-json':
      return { kind: 'server-ping', maxBytes: hb.maxFrameBytes, match: Buffer.from(hb.pingPrefix), answer: hb.answer };
  }
}

function startsWith(frame: Buffer, prefix: Buffer): boolean {
  return frame.length >= prefix.length && frame.compare(prefix, 0, prefix.length, 0, prefix.length) === 0;
}

export class UpstreamConnection {
  readonly id: string;
  readonly #config: Config;
  readonly #venue: VenueAdapter;
  readonly #wsUrl: string;
  readonly #heartbeat: HeartbeatKind;
  readonly #hbFrames: HeartbeatFrames | undefined;
  /** The venue's frame encoding undone before anything reads a frame; undefined for plain frames. */
  readonly #decoder: FrameDecoder | undefined;
  /** Undecodable frames, reported (parse.error) at most every DECODE_REPORT_INTERVAL_MS. */
  readonly #decodeErrors: ParseErrorReporter;
  readonly #controlBudget: number;
  readonly #parser: FrameParser;
  readonly #handlers: SourceHandlers;
  readonly #status: StatusStream;
  readonly #clock: Clock;
  readonly #factory: WebSocketFactory;
  readonly #owner: ConnectionOwner;
  readonly #counters: UpstreamCounters;
  readonly #slots = new Map<StreamRef, StreamSlot>();

  #state: ConnState = 'connecting';
  #quality: QualityGrade = 'critical';
  #ws: UpstreamSocket | undefined;
  #openedAt = 0;
  #lastFrameAt = 0;
  /** Wall ms matching `#lastFrameAt` is derived on snapshot (one clock read per frame). */
  #hasFrame = false;
  /**
   * The receive stamp shared by every frame ws emits from one socket read (they are emitted
   * synchronously, one after another, then the microtask queue runs): one clock read per read chunk
   * instead of one per frame. -1 = none yet in this run of the event loop.
   */
  #chunkNow = -1;
  readonly #endChunk = (): void => {
    this.#chunkNow = -1;
  };
  #unseen = 0;
  #notifiedAllSeen = false;
  #pingSentAt: number | undefined;
  /** Client pings in a row that went unanswered within pongTimeoutMs (cleared by any pong or frame). */
  #missedPongs = 0;
  #lastClientPingAt = Number.NEGATIVE_INFINITY;
  /** Our outbound control messages in the trailing second (pongs, pings, SUBSCRIBEs). */
  #controlTimes: number[] = [];
  #subscribeQueue: string[][] = [];
  #subscribeTimer: NodeJS.Timeout | undefined;
  /** This socket's subscribe frames in the venue's window (ws.subscribeRate); a new socket starts empty. */
  #subscribeWindow: AttemptBudget | undefined;
  #nextRequestId = 1;
  #paused = false;
  #pausedAt = 0;
  #errorTimes: number[] = [];
  #closing: Promise<void> | undefined;
  #closeBackstop: NodeJS.Timeout | undefined;
  #connectTimer: NodeJS.Timeout | undefined;
  /** Monotonic ms since which this socket has carried no stream (a spare); undefined while it carries some. */
  #emptySince: number | undefined;

  /** This socket's rotation age limit (maxAgeMs minus 0–10 %, so sockets do not rotate together). */
  readonly maxAgeMs: number;
  /** Consecutive failed attempts since the last successful one (pool's retry accounting). */
  failures = 0;
  /** Consecutive successful connections (pool resets the reconnect backoff after enough). */
  successes = 0;
  /** Set by the pool while a replacement for this socket is being made. */
  replacement: UpstreamConnection | undefined;
  /** Set by the pool on the new socket of a rotation. */
  replacing: UpstreamConnection | undefined;

  constructor(options: UpstreamConnectionOptions) {
    this.id = options.id;
    this.#config = options.config;
    this.#venue = options.venue;
    this.#wsUrl = options.wsUrl;
    this.#heartbeat = options.venue.ws.heartbeat;
    this.#hbFrames = heartbeatFrames(this.#heartbeat);
    this.#decoder = frameDecoder(options.venue.ws.encoding, options.config.pool.maxMessageBytes);
    this.#controlBudget = options.venue.ws.controlBudgetPerSecond;
    this.#parser = options.parser;
    this.#handlers = options.handlers;
    this.#status = options.status;
    this.#clock = options.clock;
    this.#decodeErrors = new ParseErrorReporter(options.venue.id, options.status, options.clock, DECODE_REPORT_INTERVAL_MS);
    this.#factory = options.wsFactory;
    this.#owner = options.owner;
    this.#counters = options.counters;
    this.maxAgeMs = Math.round(options.config.pool.maxAgeMs * (1 - 0.1 * options.random()));
    for (const carry of options.streams) this.#addSlot(carry);
    if (this.#slots.size === 0) this.#emptySince = this.#clock.monotonic();
  }

  get state(): ConnState {
    return this.#state;
  }
  get quality(): QualityGrade {
    return this.#quality;
  }
  get streamCount(): number {
    return this.#slots.size;
  }
  get isOpen(): boolean {
    return this.#state === 'connected';
  }
  get openedAt(): number {
    return this.#openedAt;
  }
  /** Monotonic ms since which the socket has had no stream, or undefined (the pool closes it after idleTimeoutMs). */
  get idleSince(): number | undefined {
    return this.#emptySince;
  }

  streams(): StreamRef[] {
    return [...this.#slots.keys()];
  }

  /** The streams with their carry-over state, for a replacement socket. */
  carry(extraResync?: string): StreamCarry[] {
    const out: StreamCarry[] = [];
    for (const s of this.#slots.values()) {
      out.push({ ref: s.ref, resync: s.resync ?? (s.stale ? 'stale' : extraResync), stale: s.stale, strikes: s.stale ? s.strikes + 1 : 0 });
    }
    return out;
  }

  /** Streams not yet delivered since this socket opened (rotation timeout bookkeeping). */
  unseenStreams(): StreamRef[] {
    const out: StreamRef[] = [];
    for (const s of this.#slots.values()) if (!s.seen) out.push(s.ref);
    return out;
  }

  liveCount(): number {
    let n = 0;
    if (this.#state !== 'connected') return 0;
    for (const s of this.#slots.values()) if (s.seen && !s.stale) n++;
    return n;
  }

  liveNames(into: Set<string>): void {
    if (this.#state !== 'connected') return;
    for (const s of this.#slots.values()) if (s.seen && !s.stale) into.add(s.ref.name);
  }

  staleNames(into: Set<string>): void {
    for (const s of this.#slots.values()) if (s.stale) into.add(s.ref.name);
  }

  /** Mark a stream to be resynced before its next candle on this socket. */
  markResync(ref: StreamRef, reason: string): void {
    const slot = this.#slots.get(ref);
    if (slot !== undefined) slot.resync ??= reason;
  }

  setState(to: ConnState, reason: string): void {
    const from = this.#state;
    if (from === to || from === 'closed') return;
    this.#state = to;
    this.#status.emit({ type: 'connection.state', venue: this.#venue.id, connId: this.id, from, to, reason, streams: this.#slots.size });
    if (to !== 'connected') this.#setQuality('critical');
  }

  // -- streams ---------------------------------------------------------------------------------

  #addSlot(carry: StreamCarry): StreamSlot | undefined {
    if (this.#slots.has(carry.ref)) return undefined;
    const stale = carry.stale ?? false;
    const slot: StreamSlot = {
      ref: carry.ref,
      lastAt: this.#clock.monotonic(),
      subscribed: false,
      seen: false,
      expected: !stale,
      stale,
      strikes: carry.strikes ?? 0,
      resync: carry.resync,
    };
    this.#slots.set(carry.ref, slot);
    this.#emptySince = undefined;
    return slot;
  }

  /** Add streams; on an open socket they are SUBSCRIBEd (paced), otherwise they join the next URL. */
  addStreams(carries: readonly StreamCarry[]): void {
    const topics: string[] = [];
    for (const c of carries) {
      const slot = this.#addSlot(c);
      if (slot === undefined) continue;
      if (slot.expected && !slot.seen) this.#unseen++;
      if (this.#state === 'connected') topics.push(slot.ref.topic);
    }
    if (topics.length > 0) this.#queueSubscribe(topics);
  }

  // -- connecting ------------------------------------------------------------------------------

  /** The venue's URL for this socket's streams; the ones it does not carry are subscribed after open. */
  #buildUrl(): { url: string; overflow: string[] } {
    const topics: string[] = [];
    for (const s of this.#slots.values()) topics.push(s.ref.topic);
    const { url, carried } = this.#venue.ws.connectUrl(this.#wsUrl, topics);
    return { url, overflow: topics.slice(carried) };
  }

  /**
   * One connection attempt: resolves when the socket is open, rejects with an UpstreamConnectError
   * otherwise (refused upgrade with its HTTP status, timeout, network error). Never called twice at once.
   */
  attempt(): Promise<void> {
    if (this.#state === 'closed') return Promise.reject(new UpstreamConnectError('connection closed'));
    this.#counters.connectionAttempts++;
    this.setState('connecting', this.failures === 0 ? 'connect' : `retry ${this.failures}`);
    const { url, overflow } = this.#buildUrl();
    const timeoutMs = this.#config.pool.connectTimeoutMs;
    return new Promise<void>((resolve, reject) => {
      let settled = false;
      let ws: UpstreamSocket;
      const fail = (err: UpstreamConnectError): void => {
        if (settled) return;
        settled = true;
        clearTimeout(this.#connectTimer);
        this.#connectTimer = undefined;
        if (this.#ws === ws) this.#ws = undefined;
        ws.terminate();
        this.#noteError();
        this.#counters.connectionErrors++;
        reject(err);
      };
      try {
        ws = this.#factory(url, {
          maxPayload: this.#config.pool.maxMessageBytes,
          handshakeTimeout: timeoutMs,
          perMessageDeflate: false,
          // The parser admits only printable ASCII on its fast path and UTF-8-validates every other
          // frame before decoding it (KlineFrameParser.parse), so the socket's own pass would be a second one.
          skipUTF8Validation: true,
          autoPong: true,
          followRedirects: false,
        });
      } catch (err) {
        // A bad URL or factory error is reported like any failed attempt (the pool backs off).
        this.#counters.connectionErrors++;
        reject(new UpstreamConnectError(`cannot create socket: ${errorMessage(err)}`, { cause: err }));
        return;
      }
      this.#ws = ws;
      // Backstop in case the handshake timeout never fires (e.g. a stuck TCP connect).
      this.#connectTimer = setTimeout(() => {
        fail(new UpstreamConnectError(`connect timed out after ${timeoutMs} ms`));
      }, timeoutMs + 1000);
      this.#connectTimer.unref();

      ws.on('unexpected-response', (_req, res) => {
        const status = res.statusCode ?? 0;
        const retryAfterMs = parseRetryAfter(res.headers['retry-after'], this.#clock.now());
        res.resume();
        fail(
          new UpstreamConnectError(`upgrade refused: HTTP ${status}`, {
            status,
            ...(retryAfterMs === undefined ? {} : { retryAfterMs }),
          }),
        );
      });
      ws.on('open', () => {
        if (settled) return;
        settled = true;
        clearTimeout(this.#connectTimer);
        this.#connectTimer = undefined;
        this.#onOpen(ws, overflow);
        resolve();
      });
      ws.on('error', (err) => {
        if (!settled) fail(new UpstreamConnectError(`connect failed: ${err.message}`, { cause: err }));
        else if (this.#ws === ws) {
          this.#noteError();
          this.#status.emit({ type: 'connection.error', venue: this.#venue.id, connId: this.id, error: err.message });
        }
      });
      ws.on('close', (code, reason) => {
        if (!settled) {
          fail(new UpstreamConnectError(`closed before open (code ${code})`));
          return;
        }
        this.#onClose(ws, code, reason.toString());
      });
      ws.on('message', (data) => {
        if (this.#ws === ws) this.#onMessage(data);
      });
      ws.on('ping', () => {
        if (this.#ws !== ws) return;
        // autoPong has already answered with the same payload; count the pong against our budget.
        const now = this.#clock.monotonic();
        this.#frameSeen(now);
        this.#recordControl(now);
      });
      ws.on('pong', () => {
        // A pong answers our ping (the pong deadline, the missed count) but does not prove data flows:
        // the liveness deadline only counts data frames and server pings.
        if (this.#ws !== ws) return;
        this.#pingSentAt = undefined;
        this.#missedPongs = 0;
      });
    });
  }

  #onOpen(ws: UpstreamSocket, overflow: string[]): void {
    const now = this.#clock.monotonic();
    this.#openedAt = now;
    this.#lastFrameAt = now;
    this.#pingSentAt = undefined;
    this.#missedPongs = 0;
    this.#lastClientPingAt = now;
    this.#controlTimes = [];
    const subscribeRate = this.#venue.ws.subscribeRate;
    this.#subscribeWindow = subscribeRate === undefined ? undefined : new AttemptBudget(subscribeRate.limit, subscribeRate.windowMs);
    this.#notifiedAllSeen = false;
    this.#unseen = 0;
    const pending = new Set(overflow);
    for (const s of this.#slots.values()) {
      s.seen = false;
      s.subscribed = !pending.has(s.ref.topic);
      s.lastAt = now;
      if (s.expected) this.#unseen++;
    }
    this.failures = 0;
    this.setState('connected', 'open');
    this.#setQuality('good');
    if (this.#paused) ws.pause();
    if (overflow.length > 0) this.#queueSubscribe(overflow);
  }

  #onClose(ws: UpstreamSocket, code: number, reason: string): void {
    if (this.#ws !== ws) return;
    this.#ws = undefined;
    this.#stopSubscribing();
    if (this.#state === 'closed') return;
    const limits = this.#venue.ws.rateLimit;
    if (limits.closeCodes.includes(code)) this.#owner.rateLimited(this, String(code), limits.closePenaltyMs);
    this.#noteError();
    this.#lost(`closed by server (${code}${reason === '' ? '' : ` ${reason}`})`);
  }

  #lost(reason: string): void {
    for (const s of this.#slots.values()) {
      s.subscribed = false;
      s.resync ??= reason;
    }
    this.setState('disconnected', reason);
    this.#owner.lost(this, reason);
  }

  /** The socket is dead (silent past its deadline): destroy it without a closing handshake and report it lost. */
  drop(reason: string): void {
    const ws = this.#ws;
    if (ws === undefined || this.#state !== 'connected') return;
    this.#ws = undefined;
    this.#stopSubscribing();
    ws.terminate();
    this.#status.emit({ type: 'connection.error', venue: this.#venue.id, connId: this.id, error: reason });
    this.#counters.connectionErrors++;
    this.#noteError();
    this.#lost(reason);
  }

  // -- frames (hot path) -----------------------------------------------------------------------

  #frameSeen(now: number): void {
    this.#lastFrameAt = now;
    this.#pingSentAt = undefined;
    this.#missedPongs = 0;
  }

  #onMessage(data: Buffer): void {
    let now = this.#chunkNow;
    if (now < 0) {
      now = this.#chunkNow = this.#clock.monotonic();
      queueMicrotask(this.#endChunk);
    }
    let frame = data;
    if (this.#decoder !== undefined) {
      // Heartbeats are encoded too (BingX gzips its pings): decode first, then look at the frame.
      const decoded = this.#decoder.decode(frame);
      if (typeof decoded === 'string') {
        this.#undecodable(decoded, frame, now);
        return;
      }
      frame = decoded;
    }
    const hb = this.#hbFrames;
    if (hb !== undefined && frame.length <= hb.maxBytes && this.#heartbeatFrame(hb, frame, now)) return;
    this.#lastFrameAt = now;
    this.#hasFrame = true;
    this.#pingSentAt = undefined;
    this.#missedPongs = 0;
    this.#counters.messages++;
    this.#counters.bytes += frame.length;
    const parser = this.#parser;
    const out = parser.parse(frame, now);
    if ('signal' in out) {
      this.#onSignal(out.signal);
      return;
    }
    this.#deliver(out, now);
    // Frames with several candles (venue.ts FrameParser.more): the rest of them, in order.
    if (parser.more !== undefined) for (let next = parser.more(); next !== undefined; next = parser.more()) this.#deliver(next, now);
  }

  /** A frame that could not be decoded: it proves the socket is alive, and is counted and dropped. */
  #undecodable(why: 'too-large' | 'corrupt', frame: Buffer, now: number): void {
    this.#frameSeen(now);
    this.#hasFrame = true;
    this.#counters.messages++;
    this.#counters.bytes += frame.length;
    this.#counters.decodeErrors++;
    this.#noteError();
    const reason = why === 'too-large' ? `frame inflates past ${this.#config.pool.maxMessageBytes} bytes` : 'frame is not valid compressed data';
    this.#decodeErrors.report(reason, frame.subarray(0, 32).toString('hex'));
  }

  /**
   * A heartbeat frame of a text kind (not parsed as data): our ping's pong, or a server ping we answer.
   * A pong answers our ping but, like a WebSocket pong, does not prove data flows (the liveness
   * deadline counts data frames and server pings only). False: not a heartbeat, parse it.
   */
  #heartbeatFrame(hb: HeartbeatFrames, frame: Buffer, now: number): boolean {
    if (hb.kind === 'pong') {
      if (hb.exact ? !frame.equals(hb.match) : !startsWith(frame, hb.match)) return false;
      this.#pingSentAt = undefined;
      this.#missedPongs = 0;
      return true;
    }
    if (!startsWith(frame, hb.match)) return false;
    this.#lastFrameAt = now;
    this.#hasFrame = true;
    this.#pingSentAt = undefined;
    this.#missedPongs = 0;
    const ws = this.#ws;
    if (ws !== undefined) {
      ws.send(hb.answer(frame));
      this.#recordControl(now);
    }
    return true;
  }

  #deliver(candle: Candle, now: number): void {
    const slot = this.#slots.get(candle.stream);
    if (slot !== undefined) {
      slot.lastAt = now;
      if (!slot.seen) {
        slot.seen = true;
        if (slot.expected) this.#unseen--;
      }
      if (slot.stale) {
        slot.stale = false;
        slot.strikes = 0;
        this.#status.emit({ type: 'stream.live', venue: this.#venue.id, stream: slot.ref.name, connId: this.id });
      }
      if (slot.resync !== undefined) {
        const reason = slot.resync;
        slot.resync = undefined;
        this.#handlers.resync(slot.ref, reason);
      }
    }
    this.#counters.candles++;
    this.#handlers.candle(candle);
    if (this.#unseen <= 0 && !this.#notifiedAllSeen && this.#state === 'connected') {
      this.#notifiedAllSeen = true;
      this.#owner.allStreamsSeen(this);
    }
  }

  #onSignal(signal: string): void {
    if (signal === PARSE_ERROR.signal) {
      this.#noteError();
    } else if (signal === SERVER_SHUTDOWN.signal) {
      this.#status.emit({ type: 'server.shutdown-notice', venue: this.#venue.id, connId: this.id });
      this.#owner.serverShutdown(this);
    } else if (signal === CONTROL_ERROR.signal) {
      this.#noteError();
      const e = this.#parser.lastControlError;
      this.#status.emit({
        type: 'connection.error',
        venue: this.#venue.id,
        connId: this.id,
        error: `control request ${String(this.#parser.lastControlId)} failed: ${e === undefined ? 'unknown' : `${e.code} ${e.msg}`}`,
      });
    }
    // CONTROL_REPLY: a SUBSCRIBE was accepted; UNKNOWN_STREAM: the parser counted it (unknownStreamFrames). Nothing to do.
  }

  // -- control messages --------------------------------------------------------------------------

  #recordControl(now: number): void {
    this.#controlTimes.push(now);
    this.#trimControl(now);
  }

  #trimControl(now: number): void {
    const times = this.#controlTimes;
    let i = 0;
    while (i < times.length && (times[i] ?? 0) <= now - 1000) i++;
    if (i > 0) times.splice(0, i);
  }

  #queueSubscribe(topics: readonly string[]): void {
    // Batches within the venue's frame limits (Binance: under 4 KB each).
    for (const batch of this.#venue.ws.subscribeBatches(topics)) this.#subscribeQueue.push([...batch]);
    this.#pumpSubscribe();
  }

  #pumpSubscribe(): void {
    if (this.#subscribeTimer !== undefined) return;
    const ws = this.#ws;
    if (ws === undefined || this.#state !== 'connected') return;
    const batch = this.#subscribeQueue[0];
    if (batch === undefined) return;
    const now = this.#clock.monotonic();
    this.#trimControl(now);
    const last = this.#controlTimes[this.#controlTimes.length - 1] ?? Number.NEGATIVE_INFINITY;
    // Leave one slot of the per-second budget for a pong.
    const spacing = this.#venue.ws.subscribeSpacingMs;
    const room = this.#controlTimes.length < this.#controlBudget - 1;
    let wait = room ? Math.max(0, last + spacing - now) : (this.#controlTimes[0] ?? now) + 1000 - now + 1;
    // The venue's per-socket subscribe window (OKX: 480 an hour): a full one holds the queue until it has room.
    const windowAt = this.#subscribeWindow?.nextAt(now) ?? now;
    if (windowAt > now) wait = Math.max(wait, windowAt - now + 1);
    if (wait > 0) {
      this.#subscribeTimer = setTimeout(() => {
        this.#subscribeTimer = undefined;
        this.#pumpSubscribe();
      }, wait);
      this.#subscribeTimer.unref();
      return;
    }
    this.#subscribeQueue.shift();
    this.#subscribeWindow?.take(now);
    const id = this.#nextRequestId++;
    ws.send(this.#venue.ws.subscribeFrame(batch, id));
    this.#recordControl(now);
    const sent = new Set(batch);
    for (const s of this.#slots.values()) {
      if (sent.has(s.ref.topic)) {
        s.subscribed = true;
        s.lastAt = now;
      }
    }
    if (this.#subscribeQueue.length > 0) {
      this.#subscribeTimer = setTimeout(() => {
        this.#subscribeTimer = undefined;
        this.#pumpSubscribe();
      }, spacing);
      this.#subscribeTimer.unref();
    }
  }

  #stopSubscribing(): void {
    clearTimeout(this.#subscribeTimer);
    this.#subscribeTimer = undefined;
    this.#subscribeQueue = [];
  }

  // -- periodic check (driven by the pool's tick) -------------------------------------------------

  /**
   * Liveness, client pings and missed pongs, staleness. `now` is monotonic ms. Suspended while paused
   * (deadlines are shifted by the paused time on resume).
   */
  check(now: number): void {
    if (this.#state !== 'connected' || this.#ws === undefined) return;
    if (this.#paused) return;
    const hb = this.#config.heartbeat;
    const silent = now - this.#lastFrameAt;
    if (silent >= hb.pingTimeoutMs) {
      this.drop(`no frame for ${Math.round(silent)} ms (liveness deadline ${hb.pingTimeoutMs} ms)`);
      return;
    }
    if (this.#pingSentAt !== undefined && now - this.#pingSentAt >= hb.pongTimeoutMs) {
      this.#pingSentAt = undefined;
      this.#missedPongs++;
      if (this.#missedPongs >= hb.maxMissedPings) {
        this.drop(`${this.#missedPongs} pings in a row unanswered within ${hb.pongTimeoutMs} ms`);
        return;
      }
    }
    const kind = this.#heartbeat;
    if (this.#pingSentAt === undefined && kind.kind !== 'server-json') {
      // After a tolerated miss, probe again at once. Otherwise: WebSocket pings only after a period
      // of silence (the server pings us); text pings every intervalMs, as the venue asks.
      const period = hb.pingTimeoutMs / hb.maxMissedPings;
      const due =
        this.#missedPongs > 0 ||
        (kind.kind === 'ws-ping' ? silent >= period && now - this.#lastClientPingAt >= period : now - this.#lastClientPingAt >= kind.intervalMs);
      this.#trimControl(now);
      if (due && this.#controlTimes.length < this.#controlBudget - 1) {
        this.#pingSentAt = now;
        this.#lastClientPingAt = now;
        this.#recordControl(now);
        if (kind.kind === 'ws-ping') this.#ws.ping();
        else this.#ws.send(kind.ping);
      }
    }

    // Staleness: a stream silent past staleStreamMs is stale; one still silent after it already caused
    // replacements waits staleStreamMs · 2^strikes before causing another (genuinely quiet streams).
    let replace = false;
    for (const s of this.#slots.values()) {
      if (!s.subscribed) continue;
      const quiet = now - s.lastAt;
      if (!s.stale && quiet >= hb.staleStreamMs) {
        s.stale = true;
        s.resync ??= 'stale';
        this.#counters.staleEvents++;
        this.#status.emit({ type: 'stream.stale', venue: this.#venue.id, stream: s.ref.name, silentMs: Math.round(quiet), connId: this.id });
      }
      if (s.stale && quiet >= hb.staleStreamMs * 2 ** Math.min(s.strikes, MAX_STALE_STRIKES)) replace = true;
    }
    if (replace) this.#owner.staleStreams(this);
  }

  /** The health check (every `healthCheckIntervalMs`, driven by the pool): grade this socket's quality. */
  assess(now: number): void {
    if (this.#state !== 'connected' || this.#ws === undefined || this.#paused) return;
    let stale = 0;
    for (const s of this.#slots.values()) if (s.subscribed && s.stale) stale++;
    this.#grade(now, now - this.#lastFrameAt, stale);
  }

  /**
   * Quality grade from measured figures:
   * - gap = time since the last frame / liveness deadline (pingTimeoutMs);
   * - stale = share of this socket's streams that are stale;
   * - errors = parse errors, control errors and socket errors in the last 5 minutes.
   * critical: not connected, gap ≥ 0.5 or stale ≥ unhealthyThreshold;
   * poor: gap ≥ 0.25, any stale stream, or ≥ 5 errors; good: gap ≥ 0.1 or any error; else excellent.
   */
  #grade(now: number, silent: number, stale: number): void {
    const gap = silent / this.#config.heartbeat.pingTimeoutMs;
    const staleShare = this.#slots.size === 0 ? 0 : stale / this.#slots.size;
    const errors = this.#recentErrors(now);
    let grade: QualityGrade;
    if (gap >= 0.5 || staleShare >= this.#config.heartbeat.unhealthyThreshold) grade = 'critical';
    else if (gap >= 0.25 || stale > 0 || errors >= 5) grade = 'poor';
    else if (gap >= 0.1 || errors > 0) grade = 'good';
    else grade = 'excellent';
    this.#setQuality(grade);
  }

  #setQuality(grade: QualityGrade): void {
    if (grade === this.#quality) return;
    this.#quality = grade;
    this.#status.emit({ type: 'connection.quality', venue: this.#venue.id, connId: this.id, grade });
  }

  #noteError(): void {
    const now = this.#clock.monotonic();
    this.#errorTimes.push(now);
    if (this.#errorTimes.length > 64) this.#errorTimes.shift();
  }

  #recentErrors(now: number): number {
    let n = 0;
    for (const t of this.#errorTimes) if (t > now - ERROR_WINDOW_MS) n++;
    return n;
  }

  // -- flow control ------------------------------------------------------------------------------

  pause(): void {
    if (this.#paused) return;
    this.#paused = true;
    this.#pausedAt = this.#clock.monotonic();
    this.#ws?.pause();
  }

  resume(): void {
    if (!this.#paused) return;
    this.#paused = false;
    // Deadlines do not run while paused: shift every reference time by the paused duration.
    const shift = this.#clock.monotonic() - this.#pausedAt;
    this.#lastFrameAt += shift;
    this.#lastClientPingAt += shift;
    if (this.#pingSentAt !== undefined) this.#pingSentAt += shift;
    for (const s of this.#slots.values()) s.lastAt += shift;
    this.#ws?.resume();
  }

  // -- shutdown ----------------------------------------------------------------------------------

  /**
   * Close on purpose (rotation done, re-placement, shutdown). Idempotent. A live socket gets a close
   * frame and a backstop timer; a connecting one is terminated.
   */
  close(reason: string): Promise<void> {
    if (this.#closing !== undefined) return this.#closing;
    this.setState('closed', reason);
    clearTimeout(this.#connectTimer);
    this.#connectTimer = undefined;
    this.#stopSubscribing();
    const ws = this.#ws;
    this.#ws = undefined;
    if (ws === undefined || ws.readyState === ws.CLOSED) {
      this.#closing = Promise.resolve();
      return this.#closing;
    }
    if (ws.readyState !== ws.OPEN) {
      ws.terminate();
      this.#closing = Promise.resolve();
      return this.#closing;
    }
    this.#closing = new Promise<void>((resolve) => {
      ws.once('close', () => {
        clearTimeout(this.#closeBackstop);
        resolve();
      });
      this.#closeBackstop = setTimeout(() => {
        ws.terminate();
        resolve();
      }, CLOSE_BACKSTOP_MS);
      this.#closeBackstop.unref();
      ws.close(1000, reason.slice(0, 100));
    });
    return this.#closing;
  }

  snapshot(nowMono: number, nowWall: number): ConnectionSnapshot {
    return {
      id: this.id,
      state: this.#state,
      quality: this.#quality,
      streams: this.#slots.size,
      liveStreams: this.liveCount(),
      ageMs: this.#state === 'connected' ? Math.round(nowMono - this.#openedAt) : 0,
      lastMessageAt: this.#hasFrame ? Math.round(nowWall - (nowMono - this.#lastFrameAt)) : undefined,
    };
  }
}
