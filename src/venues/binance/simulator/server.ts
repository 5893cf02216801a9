/**
 * An in-process stand-in for Binance market streams + REST klines, used by tests, the demo, the chaos
 * suite and benchmarks. One simulator serves one profile (profiles.ts): Binance spot
 * (binance-protocol.md §1–§5, §7) or Binance USD-M futures (exchanges.md §6: the `/market` route, the
 * silent legacy root paths, `/fapi/v1/klines`). Both can run in one process, each on its own port. One
 * node:http server serves REST and the WebSocket upgrades (ws, `noServer`).
 *
 * The profile is data (routes, limits, cadences, REST paths and weights, kline strings); everything
 * else here, the scheduler, sessions, control messages, rate windows, the REST budget and every fault,
 * is one piece of code serving both.
 *
 * Scheduling: ONE shared timer walks the subscribed streams every tick (not a timer per stream), so
 * thousands of streams stay cheap. Each stream's event is serialized once and the same Buffer is sent
 * to every subscriber (raw or combined envelope).
 *
 * Clocks: `now()` (injectable wall clock) drives candle times, `E`, and REST rows; rate windows, ping
 * cadence, pong deadlines and fault durations use the real monotonic clock, so a test that freezes or
 * jumps its wall clock does not trip rate limits or keepalive.
 *
 * Data that falls inside a stall (stallSockets/stallStreams) is lost, not delayed, like a real outage:
 * the consumer has to notice and recover it over REST (which always has it).
 */
import { STATUS_CODES, createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocket, WebSocketServer } from 'ws';
import type { RawData } from 'ws';
import { candlesBetween, nextOpenTime, openTimeAt } from '../../../core/intervals.ts';
import { errorReply, parseControl, resultReply } from './control.ts';
import type { ControlRequest } from './control.ts';
import { parseRetryAfter } from '../../../core/retry-after.ts';
import { HoleSet } from './holes.ts';
import { klineAt, klineEventJson, openKlineAt } from './klines.ts';
import { simulatorProfile } from './profiles.ts';
import type { SimulatorProfile, SimulatorProfileId } from './profiles.ts';
import { limitForWeight, parseKlinesQuery, queryKlines } from './rest.ts';

export type { SimulatorProfileId } from './profiles.ts';

/** Every limit defaults to the profile's (profiles.ts, with the fact each comes from). */
export interface SimulatorOptions {
  host?: string;
  port?: number;
  /** Which market this simulator is: 'binance' (spot, the default) or 'binance-usdm'. */
  profile?: SimulatorProfileId;
  /** Open-update cadence per stream; default spot 1000 ms for 1s streams and 2000 ms otherwise, USD-M 250 ms. */
  openUpdateMs?: number;
  pingIntervalMs?: number;
  pongTimeoutMs?: number;
  maxStreamsPerConnection?: number;
  maxInboundPerSecond?: number;
  maxConnectionsPer5Min?: number;
  /** A connection is closed (1000) this long after it opened; default 24 h, as both markets do. */
  maxConnectionAgeMs?: number;
  restWeightPerMinute?: number;
  /**
   * Off unless set: after this many REST requests arrived inside an announced Retry-After window, the
   * IP is banned: every request gets 418 with Retry-After until `restBanSeconds` (default 120) have
   * passed. Both markets: "Repeatedly violating rate limits and/or failing to back off after receiving
   * 429s will result in an automated IP ban (HTTP status 418)", bans "from 2 minutes to 3 days".
   */
  restBanAfterViolations?: number;
  restBanSeconds?: number;
  now?: () => number;
}

export interface SimulatorFaults {
  dropAll(): void;
  closeAll(code?: number, reason?: string): void;
  stallSockets(ms: number): void;
  stallStreams(streams: string[], ms: number): void;
  refuseConnections(count: number, status?: number): void;
  /** The next `count` klines requests fail. `retryAfter`: seconds, or a verbatim header value (an HTTP-date). */
  restErrors(count: number, status: 429 | 418 | 403 | 500, retryAfter?: number | string): void;
  /** Successful REST answers leave `ms` after the request arrived (rejections still go at once). 0: off. */
  restLatency(ms: number): void;
  /** REST lags the stream: klines are answered as Binance's REST saw them `ms` ago (no newer rows). 0: off. */
  restLag(ms: number): void;
  closeAfter(ms: number | undefined): void;
  garbage(count: number): void;
  serverShutdown(): void;
  hole(symbol: string, interval: string, fromOpenTime: number, toOpenTimeExclusive: number): void;
  closeMidSubscribe(count: number): void;
  reset(): void;
}

export interface SimulatorCounters {
  connectionsOpened: number;
  /** Wall ms of each accepted upgrade. */
  connectionTimestamps: number[];
  connectionsRefused: number;
  /** Max over all sockets of inbound control messages (ping + pong + text) in any 1-second window. */
  maxInboundPerSecondSeen: number;
  /** Max accepted upgrades within any 5-minute window (what the per-IP connection-attempt limit counts). */
  maxConnectionAttemptsPer5MinSeen: number;
  /** Connections closed because they reached maxConnectionAgeMs. */
  closedByAge: number;
  /** Every inbound pong frame, solicited or not. */
  pongsReceived: number;
  pingsSent: number;
  /** Every inbound ping, pong and text/binary message. */
  controlMessages: number;
  closedByRateLimit: number;
  /** Every data frame sent (kline events, control replies, serverShutdown, garbage). */
  framesSent: number;
  klineEventsSent: number;
  closedKlinesSent: number;
  restRequests: number;
  restWeightUsedMax1m: number;
  rest429: number;
  rest418: number;
  /**
   * REST requests that arrived while a Retry-After window this simulator had announced (a 429, or a
   * 418 ban) was still running (requests already in flight aside: IN_FLIGHT_GRACE_MS). On Binance
   * these are violations: binance-spot-api-docs rest-api.md "LIMITS": a 429 carries Retry-After, and
   * an IP that keeps sending after it is auto-banned (418), from 2 minutes up to 3 days for repeat
   * offenders.
   */
  restInsideRetryAfter: number;
}

export interface SocketInfo {
  id: number;
  /** The path it connected to (without the query). */
  path: string;
  /** False on a route that accepts subscriptions and sends no kline frames (USD-M legacy root, /public). */
  delivers: boolean;
  streams: string[];
  inboundTotal: number;
  maxInboundPerSecond: number;
  pongs: number;
  openedAt: number;
  combined: boolean;
}

const RATE_WINDOW_MS = 1000;
const CONNECTION_WINDOW_MS = 5 * 60_000;
const WEIGHT_WINDOW_MS = 60_000;
/** After a long stall (or a jumped test clock), only this many missed closed candles are sent per stream. */
const MAX_CATCHUP_CLOSED = 100;
const MAX_PAYLOAD = 1 << 20;
/**
 * A request arriving this soon after a rejection left was already on the wire (sent before the client
 * could have read the rejection: one sent at the same time on another pooled connection, or still
 * connecting), so it is not counted as ignoring the Retry-After. Arrivals after that are.
 */
const IN_FLIGHT_GRACE_MS = 50;

interface StreamState {
  readonly name: string;
  readonly symbol: string;
  readonly interval: string;
  readonly updateMs: number;
  readonly subscribers: Set<Session>;
  forming: number;
  nextBoundary: number;
  nextOpenUpdateAt: number;
}

interface Session {
  readonly id: number;
  readonly ws: WebSocket;
  readonly path: string;
  /** False: subscriptions are kept and answered, but never attached to a stream (no kline frames). */
  readonly delivers: boolean;
  readonly streams: Set<string>;
  combined: boolean;
  readonly openedAt: number;
  /** Monotonic stamps of inbound messages within the last second (bounded by the rate limit). */
  readonly inbound: number[];
  inboundTotal: number;
  maxInboundPerSecond: number;
  pongs: number;
  lastPingAt: number;
  pingPayload: Buffer | undefined;
  unansweredSince: number | undefined;
  stalledUntil: number;
  /** Control replies produced while stalled, sent when the stall ends. */
  readonly deferred: string[];
  /** Monotonic time the closeAfter fault closes it at. */
  closeAt: number | undefined;
  /** Monotonic time it reaches maxConnectionAgeMs. */
  expiresAt: number;
  closing: boolean;
}

/** Where an upgrade path leads on this profile. */
type Route =
  | { readonly kind: 'serve'; readonly streams: string[]; readonly combined: boolean; readonly delivers: boolean }
  | { readonly kind: 'not-found' };

interface WeightEntry {
  readonly at: number;
  readonly weight: number;
}

function mono(): number {
  return performance.now();
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s; // a malformed escape stays as typed: it simply names no stream
  }
}

/**
 * Stream names from a query string, parsed by hand: URLSearchParams would turn the `+` of
 * `@+08:00` into a space (binance-protocol.md, implication 8).
 */
function streamsFromQuery(query: string): string[] {
  for (const part of query.split('&')) {
    if (part.startsWith('streams=')) {
      return part
        .slice('streams='.length)
        .split('/')
        .filter((s) => s !== '')
        .map(safeDecode);
    }
  }
  return [];
}

function rejectUpgrade(socket: Duplex, status: number, body: string): void {
  const text = STATUS_CODES[status] ?? 'Error';
  socket.once('finish', () => socket.destroy());
  socket.end(
    `HTTP/1.1 ${status} ${text}\r\nConnection: close\r\nContent-Type: application/json\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
}

function ignoreError(): void {
  // Socket errors (resets, bad frames) end in 'close', which does the cleanup.
}

const GARBAGE_FRAMES: readonly string[] = [
  'this is not json',
  '{"e":"kline","E":"soon","s":42,"k":[]}',
  '{"e":"mysteryEvent","E":1,"s":"BTCUSDT"}',
  '{"e":"kline","E":1700000000000,"s":"BTCUSDT","k":{"t":1700000000000,"T":17',
  '{"stream":"btcusdt@kline_1m","data":',
  '[1,2,3]',
  '{"result":"unexpected","id":"nobody-asked"}',
  'null',
];

/**
 * The upgrade path `path` (query split off into `query`) on `profile`'s routes: under a route's prefix,
 * `/ws` (empty, raw), `/ws/<s1>/<s2>` (raw), `/stream` (empty, combined) or `/stream?streams=…`.
 */
function route(profile: SimulatorProfile, path: string, query: string): Route {
  for (const r of profile.routes) {
    if (r.prefix !== '' && path !== r.prefix && !path.startsWith(r.prefix + '/')) continue;
    const rest = path.slice(r.prefix.length);
    if (rest === '/ws') return { kind: 'serve', streams: [], combined: false, delivers: r.delivers };
    if (rest.startsWith('/ws/')) {
      const streams = rest
        .slice(4)
        .split('/')
        .filter((s) => s !== '')
        .map(safeDecode);
      return { kind: 'serve', streams, combined: false, delivers: r.delivers };
    }
    if (rest === '/stream') return { kind: 'serve', streams: streamsFromQuery(query), combined: true, delivers: r.delivers };
    if (r.prefix !== '') return { kind: 'not-found' }; // under a known prefix, nothing else is served
  }
  return { kind: 'not-found' };
}

export class BinanceSimulator {
  readonly profile: SimulatorProfileId;
  /**
   * The WebSocket endpoint as the venue's docs name it; a client appends `/stream?streams=…` or
   * `/ws/…`. Spot: the origin (`wss://stream.binance.com:9443`). USD-M: its `/market` route
   * (`wss://fstream.binance.com/market`).
   */
  readonly wsUrl: string;
  /** The origin without a route: on USD-M, where the silent legacy paths (`/ws`, `/stream`) live. */
  readonly wsRootUrl: string;
  readonly restUrl: string;
  /** REST paths of this profile (spot `/api/v3/…`, USD-M `/fapi/v1/…`). */
  readonly paths: { readonly klines: string; readonly ping: string; readonly time: string };
  readonly port: number;
  readonly faults: SimulatorFaults;
  readonly counters: SimulatorCounters = {
    connectionsOpened: 0,
    connectionTimestamps: [],
    connectionsRefused: 0,
    maxInboundPerSecondSeen: 0,
    maxConnectionAttemptsPer5MinSeen: 0,
    closedByAge: 0,
    pongsReceived: 0,
    pingsSent: 0,
    controlMessages: 0,
    closedByRateLimit: 0,
    framesSent: 0,
    klineEventsSent: 0,
    closedKlinesSent: 0,
    restRequests: 0,
    restWeightUsedMax1m: 0,
    rest429: 0,
    rest418: 0,
    restInsideRetryAfter: 0,
  };

  readonly #server: Server;
  readonly #wss: WebSocketServer;
  readonly #profile: SimulatorProfile;
  readonly #now: () => number;
  readonly #openUpdateMs: number | undefined;
  readonly #pingIntervalMs: number;
  readonly #pongTimeoutMs: number;
  readonly #maxStreams: number;
  readonly #maxInbound: number;
  readonly #maxConnections: number;
  readonly #maxAgeMs: number;
  readonly #weightLimit: number;
  readonly #banAfter: number | undefined;
  readonly #banMs: number;
  readonly #tickMs: number;
  #timer: NodeJS.Timeout;

  readonly #sessions = new Map<number, Session>();
  readonly #streams = new Map<string, StreamState>();
  readonly #holes = new HoleSet();
  readonly #streamStalls = new Map<string, number>();
  readonly #connectionAttempts: number[] = [];
  readonly #weights: WeightEntry[] = [];
  #weightUsed = 0;
  #nextSessionId = 1;
  #closing: Promise<void> | undefined;

  // Fault state.
  #refuseCount = 0;
  #refuseStatus = 503;
  #restErrorCount = 0;
  #restErrorStatus: 429 | 418 | 403 | 500 = 500;
  #restRetryAfter: number | string = 0;
  #restLatencyMs = 0;
  #restLagMs = 0;
  /** Monotonic start and end of the latest Retry-After window announced (429 / 418). */
  #retryAfterFrom = 0;
  #retryAfterUntil = 0;
  /** Requests inside an announced window since the last ban (restBanAfterViolations). */
  #violations = 0;
  /** Monotonic end of the running automatic ban; 0: none. */
  #bannedUntil = 0;
  readonly #delayedReplies = new Set<NodeJS.Timeout>();
  #closeAfterMs: number | undefined;
  #closeMidSubscribe = 0;

  private constructor(server: Server, options: SimulatorOptions) {
    this.#server = server;
    const addr = server.address() as AddressInfo;
    const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
    const profile = simulatorProfile(options.profile ?? 'binance');
    this.#profile = profile;
    this.profile = profile.id;
    this.port = addr.port;
    this.wsRootUrl = `ws://${host}:${addr.port}`;
    this.wsUrl = this.wsRootUrl + profile.primaryPrefix;
    this.restUrl = `http://${host}:${addr.port}`;
    this.paths = { klines: profile.rest.klinesPaths[0] ?? '/', ping: profile.rest.pingPath, time: profile.rest.timePath };
    this.#now = options.now ?? Date.now;
    this.#openUpdateMs = options.openUpdateMs;
    this.#pingIntervalMs = options.pingIntervalMs ?? profile.pingIntervalMs;
    this.#pongTimeoutMs = options.pongTimeoutMs ?? profile.pongTimeoutMs;
    this.#maxStreams = options.maxStreamsPerConnection ?? profile.maxStreamsPerConnection;
    this.#maxInbound = options.maxInboundPerSecond ?? profile.maxInboundPerSecond;
    this.#maxConnections = options.maxConnectionsPer5Min ?? profile.maxConnectionsPer5Min;
    this.#maxAgeMs = options.maxConnectionAgeMs ?? profile.connectionMaxAgeMs;
    this.#weightLimit = options.restWeightPerMinute ?? profile.rest.weightPerMinute;
    this.#banAfter = options.restBanAfterViolations;
    this.#banMs = (options.restBanSeconds ?? 120) * 1000;
    // autoPong off: client pings are answered by hand so a stalled socket is truly silent.
    this.#wss = new WebSocketServer({ noServer: true, autoPong: false, clientTracking: false, maxPayload: MAX_PAYLOAD });
    this.#wss.on('error', ignoreError);
    server.on('request', (req: IncomingMessage, res: ServerResponse) => {
      this.#onRequest(req, res);
    });
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      this.#onUpgrade(req, socket, head);
    });
    server.on('clientError', (_err: Error, socket: Duplex) => {
      socket.destroy();
    });
    const smallest = Math.min(this.#openUpdateMs ?? profile.updateMs('1s'), this.#pingIntervalMs, 1000);
    this.#tickMs = Math.max(5, Math.min(50, Math.floor(smallest / 2)));
    this.#timer = this.#schedule();
    this.faults = this.#makeFaults();
  }

  static async start(options: SimulatorOptions = {}): Promise<BinanceSimulator> {
    const server = createServer({ keepAlive: true });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
    return new BinanceSimulator(server, options);
  }

  sockets(): SocketInfo[] {
    const out: SocketInfo[] = [];
    for (const s of this.#sessions.values()) {
      out.push({
        id: s.id,
        path: s.path,
        delivers: s.delivers,
        streams: [...s.streams],
        inboundTotal: s.inboundTotal,
        maxInboundPerSecond: s.maxInboundPerSecond,
        pongs: s.pongs,
        openedAt: s.openedAt,
        combined: s.combined,
      });
    }
    return out;
  }

  /** Terminates sockets, stops the timer and closes the server. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= new Promise<void>((resolve) => {
      clearTimeout(this.#timer);
      for (const t of this.#delayedReplies) clearTimeout(t);
      this.#delayedReplies.clear();
      for (const s of this.#sessions.values()) s.ws.terminate();
      this.#sessions.clear();
      this.#streams.clear();
      this.#wss.close();
      this.#server.close(() => {
        resolve();
      });
      this.#server.closeAllConnections();
    });
    return this.#closing;
  }

  // ---------------------------------------------------------------- WebSocket side

  #onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on('error', ignoreError);
    if (this.#closing !== undefined) {
      rejectUpgrade(socket, 503, '{"code":-1016,"msg":"This service is no longer available."}');
      return;
    }
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    let path = q < 0 ? url : url.slice(0, q);
    const query = q < 0 ? '' : url.slice(q + 1);
    while (path.length > 1 && path.endsWith('/')) path = path.slice(0, -1);
    const r = route(this.#profile, path, query);
    if (r.kind === 'not-found') {
      rejectUpgrade(socket, 404, '{"code":-1,"msg":"Not found."}');
      return;
    }
    const { streams, combined, delivers } = r;
    if (this.#refuseCount > 0) {
      this.#refuseCount--;
      this.counters.connectionsRefused++;
      rejectUpgrade(socket, this.#refuseStatus, '{"code":-1,"msg":"Connection refused (simulated)."}');
      return;
    }
    const t = mono();
    const attempts = this.#connectionAttempts;
    while (attempts.length > 0 && (attempts[0] ?? 0) <= t - CONNECTION_WINDOW_MS) attempts.shift();
    if (attempts.length >= this.#maxConnections) {
      this.counters.connectionsRefused++;
      rejectUpgrade(socket, 429, '{"code":-1003,"msg":"Too many connection attempts."}');
      return;
    }
    const unique = new Set(streams);
    if (unique.size > this.#maxStreams) {
      this.counters.connectionsRefused++;
      rejectUpgrade(socket, 400, `{"code":-1,"msg":"Too many streams (max ${this.#maxStreams})."}`);
      return;
    }
    attempts.push(t);
    if (attempts.length > this.counters.maxConnectionAttemptsPer5MinSeen) this.counters.maxConnectionAttemptsPer5MinSeen = attempts.length;
    this.#wss.handleUpgrade(req, socket, head, (ws) => {
      this.#onConnection(ws, path, delivers, unique, combined);
    });
  }

  #onConnection(ws: WebSocket, path: string, delivers: boolean, streams: Set<string>, combined: boolean): void {
    const t = mono();
    const wall = this.#now();
    this.counters.connectionsOpened++;
    this.counters.connectionTimestamps.push(wall);
    const session: Session = {
      id: this.#nextSessionId++,
      ws,
      path,
      delivers,
      streams: new Set(),
      combined,
      openedAt: wall,
      inbound: [],
      inboundTotal: 0,
      maxInboundPerSecond: 0,
      pongs: 0,
      lastPingAt: t,
      pingPayload: undefined,
      unansweredSince: undefined,
      stalledUntil: 0,
      deferred: [],
      closeAt: this.#closeAfterMs === undefined ? undefined : t + this.#closeAfterMs,
      expiresAt: t + this.#maxAgeMs,
      closing: false,
    };
    this.#sessions.set(session.id, session);
    for (const name of streams) this.#subscribe(session, name);
    ws.on('error', ignoreError);
    ws.on('close', () => {
      this.#onClose(session);
    });
    ws.on('message', (data: RawData) => {
      this.#onMessage(session, data);
    });
    ws.on('ping', (data: Buffer) => {
      if (!this.#countInbound(session)) return;
      if (session.stalledUntil <= mono() && ws.readyState === WebSocket.OPEN) ws.pong(data);
    });
    ws.on('pong', (data: Buffer) => {
      this.counters.pongsReceived++;
      session.pongs++;
      if (!this.#countInbound(session)) return;
      // Spot: only an echo of the last ping payload counts; unsolicited pongs "will not prevent
      // disconnection". USD-M: unsolicited pongs are allowed "to maintain the connection".
      if (this.#profile.unsolicitedPongKeepsAlive || session.pingPayload?.equals(data) === true) session.unansweredSince = undefined;
    });
  }

  #onClose(session: Session): void {
    this.#sessions.delete(session.id);
    for (const name of session.streams) this.#unsubscribe(session, name);
  }

  /** Count one inbound message; false (and the socket is being closed 1008) when over the limit. */
  #countInbound(s: Session): boolean {
    if (s.closing) return false;
    const t = mono();
    s.inboundTotal++;
    this.counters.controlMessages++;
    s.inbound.push(t);
    while (s.inbound.length > 0 && (s.inbound[0] ?? 0) <= t - RATE_WINDOW_MS) s.inbound.shift();
    const n = s.inbound.length;
    if (n > s.maxInboundPerSecond) s.maxInboundPerSecond = n;
    if (n > this.counters.maxInboundPerSecondSeen) this.counters.maxInboundPerSecondSeen = n;
    if (n > this.#maxInbound) {
      this.counters.closedByRateLimit++;
      this.#closeSession(s, 1008, 'Too many requests');
      return false;
    }
    return true;
  }

  #closeSession(s: Session, code: number, reason: string): void {
    if (s.closing) return;
    s.closing = true;
    try {
      s.ws.close(code, reason);
    } catch {
      s.ws.terminate(); // an invalid code from a faults caller: still make the socket go away
    }
  }

  #reply(s: Session, text: string): void {
    if (s.stalledUntil > mono()) {
      s.deferred.push(text);
      return;
    }
    this.#sendText(s, text);
  }

  #sendText(s: Session, text: string | Buffer): void {
    if (s.ws.readyState !== WebSocket.OPEN) return;
    s.ws.send(text, { binary: false });
    this.counters.framesSent++;
  }

  #onMessage(s: Session, data: RawData): void {
    if (!this.#countInbound(s)) return;
    const text = Array.isArray(data)
      ? Buffer.concat(data).toString('utf8')
      : Buffer.isBuffer(data)
        ? data.toString('utf8')
        : Buffer.from(data).toString('utf8');
    const req: ControlRequest = parseControl(text);
    switch (req.kind) {
      case 'error':
        this.#reply(s, errorReply(req.code, req.msg, req.id));
        return;
      case 'SUBSCRIBE': {
        if (this.#closeMidSubscribe > 0) {
          this.#closeMidSubscribe--;
          this.#closeSession(s, 1011, 'Internal error');
          return;
        }
        let added = 0;
        for (const name of new Set(req.streams)) if (!s.streams.has(name)) added++;
        if (s.streams.size + added > this.#maxStreams) {
          // Undocumented but observed on Binance (binance-protocol.md §2, unicorn#17).
          this.#reply(s, errorReply(4, 'Too many subscriptions', req.id));
          return;
        }
        for (const name of req.streams) this.#subscribe(s, name);
        this.#reply(s, resultReply('null', req.id));
        return;
      }
      case 'UNSUBSCRIBE':
        for (const name of req.streams) this.#unsubscribe(s, name);
        this.#reply(s, resultReply('null', req.id));
        return;
      case 'LIST_SUBSCRIPTIONS':
        this.#reply(s, resultReply(JSON.stringify([...s.streams]), req.id));
        return;
      case 'SET_PROPERTY':
        s.combined = req.value;
        this.#reply(s, resultReply('null', req.id));
        return;
      case 'GET_PROPERTY':
        this.#reply(s, resultReply(String(s.combined), req.id));
        return;
    }
  }

  #subscribe(s: Session, name: string): void {
    if (s.streams.has(name)) return;
    s.streams.add(name);
    if (!s.delivers) return; // acknowledged and listed, never fed (a route the venue no longer feeds)
    const existing = this.#streams.get(name);
    if (existing !== undefined) {
      existing.subscribers.add(s);
      return;
    }
    const m = this.#profile.streamRe.exec(name);
    const symbol = m?.[1];
    const interval = m?.[2];
    if (symbol === undefined || interval === undefined) return; // accepted silently, sends nothing
    const forming = openTimeAt(interval, this.#now());
    this.#streams.set(name, {
      name,
      symbol,
      interval,
      updateMs: this.#openUpdateMs ?? this.#profile.updateMs(interval),
      subscribers: new Set([s]),
      forming,
      nextBoundary: nextOpenTime(interval, forming),
      nextOpenUpdateAt: mono(),
    });
  }

  #unsubscribe(s: Session, name: string): void {
    if (!s.streams.delete(name)) return;
    const st = this.#streams.get(name);
    if (st === undefined) return;
    st.subscribers.delete(s);
    if (st.subscribers.size === 0) this.#streams.delete(name);
  }

  /**
   * One shared timer (a setTimeout chain): every tick, and additionally a couple of ms after each
   * whole wall-clock second, where every kline interval boundary falls, so closed events go out a few
   * ms after the boundary rather than up to a tick late.
   */
  #schedule(): NodeJS.Timeout {
    const toSecond = 1000 - (this.#now() % 1000) + 2;
    const delay = Math.max(1, Math.min(this.#tickMs, toSecond));
    const timer = setTimeout(() => {
      if (this.#closing !== undefined) return;
      this.#tick();
      this.#timer = this.#schedule();
    }, delay);
    timer.unref();
    return timer;
  }

  #tick(): void {
    const wall = this.#now();
    const t = mono();
    for (const [name, until] of this.#streamStalls) if (until <= t) this.#streamStalls.delete(name);
    for (const st of this.#streams.values()) this.#tickStream(st, wall, t);
    for (const s of this.#sessions.values()) this.#tickSession(s, wall, t);
  }

  #tickStream(st: StreamState, wall: number, t: number): void {
    const stalled = this.#streamStalls.has(st.name);
    if (wall >= st.nextBoundary) {
      const current = openTimeAt(st.interval, wall);
      let ot = st.forming;
      const missed = candlesBetween(st.interval, ot, current);
      if (missed > MAX_CATCHUP_CLOSED) {
        // The clock jumped (or the process slept): only the most recent candles are announced.
        ot = current;
        for (let i = 0; i < MAX_CATCHUP_CLOSED; i++) ot = openTimeAt(st.interval, ot - 1);
      }
      for (; ot < current; ot = nextOpenTime(st.interval, ot)) {
        if (stalled || this.#holes.find(st.symbol, st.interval, ot) !== undefined) continue;
        this.#emit(st, klineEventJson(klineAt(st.symbol, st.interval, ot, this.profile), wall), true, t);
      }
      st.forming = current;
      st.nextBoundary = nextOpenTime(st.interval, current);
    }
    if (t >= st.nextOpenUpdateAt) {
      st.nextOpenUpdateAt = t + st.updateMs;
      if (stalled || this.#holes.find(st.symbol, st.interval, st.forming) !== undefined) return;
      const progress = (wall - st.forming) / (st.nextBoundary - st.forming);
      this.#emit(st, klineEventJson(openKlineAt(st.symbol, st.interval, st.forming, progress, this.profile), wall), false, t);
    }
  }

  /** Serialize once per form (raw / combined envelope), send the same Buffer to every subscriber. */
  #emit(st: StreamState, raw: string, closed: boolean, t: number): void {
    let rawBuf: Buffer | undefined;
    let envBuf: Buffer | undefined;
    for (const s of st.subscribers) {
      if (s.stalledUntil > t || s.closing || s.ws.readyState !== WebSocket.OPEN) continue;
      let buf: Buffer;
      if (s.combined) {
        envBuf ??= Buffer.from('{"stream":"' + st.name + '","data":' + raw + '}');
        buf = envBuf;
      } else {
        rawBuf ??= Buffer.from(raw);
        buf = rawBuf;
      }
      s.ws.send(buf, { binary: false });
      this.counters.framesSent++;
      this.counters.klineEventsSent++;
      if (closed) this.counters.closedKlinesSent++;
    }
  }

  #tickSession(s: Session, wall: number, t: number): void {
    if (s.closing || s.ws.readyState !== WebSocket.OPEN) return;
    if (s.closeAt !== undefined && t >= s.closeAt) {
      this.#closeSession(s, 1000, 'closeAfter');
      return;
    }
    if (t >= s.expiresAt) {
      // Both markets: "A single connection is only valid for 24 hours; expect to be disconnected at the
      // 24 hour mark". The close code is not documented; 1000 is what a planned close sends.
      this.counters.closedByAge++;
      this.#closeSession(s, 1000, 'Connection lifetime expired');
      return;
    }
    if (s.stalledUntil > t) return;
    if (s.stalledUntil !== 0) {
      // Stall over: flush what it held back and restart the keepalive clock (a silent server
      // sent no pings, so it cannot hold the client to a deadline that ran during the stall).
      s.stalledUntil = 0;
      for (const text of s.deferred.splice(0)) this.#sendText(s, text);
      s.lastPingAt = t;
      if (s.unansweredSince !== undefined) s.unansweredSince = t;
    }
    if (s.unansweredSince !== undefined && t - s.unansweredSince > this.#pongTimeoutMs) {
      s.closing = true;
      s.ws.terminate();
      return;
    }
    if (t - s.lastPingAt >= this.#pingIntervalMs) {
      s.lastPingAt = t;
      s.pingPayload = Buffer.from(String(wall));
      s.unansweredSince ??= t;
      s.ws.ping(s.pingPayload);
      this.counters.pingsSent++;
    }
  }

  // ---------------------------------------------------------------- REST side

  #onRequest(req: IncomingMessage, res: ServerResponse): void {
    this.counters.restRequests++;
    const arrived = mono();
    if (arrived < this.#retryAfterUntil && arrived >= this.#retryAfterFrom + IN_FLIGHT_GRACE_MS) {
      this.counters.restInsideRetryAfter++;
      if (arrived >= this.#bannedUntil) this.#violations++; // a running ban is not extended by its own 418s
    }
    try {
      this.#handleRest(req, res);
    } catch (err) {
      // A bug here must not take the simulator down mid-test; answer like Binance's -1000.
      const msg = err instanceof Error ? err.message : String(err);
      if (!res.headersSent) this.#json(res, 500, `{"code":-1000,"msg":${JSON.stringify(msg)}}`);
    }
  }

  #json(res: ServerResponse, status: number, body: string, headers: Record<string, string> = {}): void {
    res.writeHead(status, {
      'Content-Type': 'application/json;charset=UTF-8',
      'Content-Length': Buffer.byteLength(body),
      ...headers,
    });
    res.end(body);
  }

  /**
   * Start a Retry-After window the client must honour (429, 418): requests arriving inside it are
   * counted in `restInsideRetryAfter` (those of the first IN_FLIGHT_GRACE_MS aside). The window starts
   * when the rejection is written; rejections are written at once (they cost Binance no query work)
   * while successful answers wait `restLatency`. Returns the window in ms.
   */
  #announceRetryAfter(retryAfter: number | string): number {
    const ms = typeof retryAfter === 'number' ? retryAfter * 1000 : (parseRetryAfter(retryAfter, this.#now()) ?? 0);
    const t = mono();
    if (t + ms > this.#retryAfterUntil) {
      this.#retryAfterFrom = t;
      this.#retryAfterUntil = t + ms;
    }
    return ms;
  }

  /** Answer a successful REST request, after the configured latency (Binance is ~10-200 ms away, not 0). */
  #restReply(res: ServerResponse, status: number, body: string, headers: Record<string, string>): void {
    if (this.#restLatencyMs <= 0) {
      this.#json(res, status, body, headers);
      return;
    }
    const t = setTimeout(() => {
      this.#delayedReplies.delete(t);
      if (!res.destroyed) this.#json(res, status, body, headers);
    }, this.#restLatencyMs);
    t.unref();
    this.#delayedReplies.add(t);
  }

  #usedWeight(t: number): number {
    const w = this.#weights;
    while (w.length > 0 && (w[0]?.at ?? 0) <= t - WEIGHT_WINDOW_MS) {
      this.#weightUsed -= w.shift()?.weight ?? 0;
    }
    return this.#weightUsed;
  }

  #handleRest(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://simulator');
    const path = url.pathname;
    const rest = this.#profile.rest;
    const isKlines = rest.klinesPaths.includes(path);
    if (!isKlines && path !== rest.pingPath && path !== rest.timePath) {
      this.#json(res, 404, '{"code":-1,"msg":"Not found."}');
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      this.#json(res, 405, '{"code":-1,"msg":"Method not allowed."}');
      return;
    }
    if (this.#banned(res)) return;
    if (isKlines && this.#restErrorCount > 0) {
      this.#restErrorCount--;
      this.#injectedError(res);
      return;
    }
    const t = mono();
    // Spot klines weigh 2 whatever the limit; USD-M weighs them by limit (profiles.ts).
    const weight = isKlines ? rest.klinesWeight(limitForWeight(url.searchParams, this.#profile)) : 1;
    let used = this.#usedWeight(t);
    if (used + weight > this.#weightLimit) {
      this.counters.rest429++;
      const oldest = this.#weights[0]?.at ?? t;
      const retry = Math.max(1, Math.ceil((oldest + WEIGHT_WINDOW_MS - t) / 1000));
      this.#announceRetryAfter(retry);
      this.#json(
        res,
        429,
        `{"code":-1003,"msg":"Too much request weight used; current limit is ${this.#weightLimit} request weight per 1 MINUTE. Please use WebSocket Streams for live updates to avoid polling the API."}`,
        { 'Retry-After': String(retry), 'X-MBX-USED-WEIGHT-1M': String(used) },
      );
      return;
    }
    this.#weights.push({ at: t, weight });
    this.#weightUsed += weight;
    used = this.#weightUsed;
    if (used > this.counters.restWeightUsedMax1m) this.counters.restWeightUsedMax1m = used;
    const headers = { 'X-MBX-USED-WEIGHT-1M': String(used) };
    if (path === rest.pingPath) {
      this.#json(res, 200, '{}', headers);
      return;
    }
    if (path === rest.timePath) {
      this.#json(res, 200, `{"serverTime":${this.#now()}}`, headers);
      return;
    }
    const query = parseKlinesQuery(url.searchParams, this.#profile);
    if ('code' in query) {
      this.#json(res, query.status, `{"code":${query.code},"msg":${JSON.stringify(query.msg)}}`, headers);
      return;
    }
    // A lagging REST answers as it saw the market `lag` ms ago: older rows only, its newest one partial.
    this.#restReply(res, 200, JSON.stringify(queryKlines(query, this.#now() - this.#restLagMs, this.#holes, this.profile)), headers);
  }

  /**
   * The automatic ban (restBanAfterViolations): answers 418 and returns true while one runs, starting
   * it when the violations reach the threshold. Bans are per IP, so every path is refused.
   */
  #banned(res: ServerResponse): boolean {
    const t = mono();
    if (t >= this.#bannedUntil) {
      if (this.#banAfter === undefined || this.#violations < this.#banAfter) return false;
      this.#violations = 0;
      this.#bannedUntil = t + this.#banMs;
    }
    const retry = Math.max(1, Math.ceil((this.#bannedUntil - t) / 1000));
    const until = this.#now() + this.#announceRetryAfter(retry);
    this.counters.rest418++;
    this.#json(
      res,
      418,
      `{"code":-1003,"msg":"Way too much request weight used; IP banned until ${until}. Please use WebSocket Streams for live updates to avoid bans."}`,
      { 'Retry-After': String(retry) },
    );
    return true;
  }

  #injectedError(res: ServerResponse): void {
    const status = this.#restErrorStatus;
    const retry = { 'Retry-After': String(this.#restRetryAfter) };
    switch (status) {
      case 429:
        this.counters.rest429++;
        this.#announceRetryAfter(this.#restRetryAfter);
        this.#json(res, 429, `{"code":-1003,"msg":"Too much request weight used; current limit is ${this.#weightLimit} request weight per 1 MINUTE."}`, retry);
        return;
      case 418: {
        this.counters.rest418++;
        const until = this.#now() + this.#announceRetryAfter(this.#restRetryAfter);
        this.#json(res, 418, `{"code":-1003,"msg":"Way too much request weight used; IP banned until ${until}. Please use WebSocket Streams for live updates to avoid bans."}`, retry);
        return;
      }
      case 403: {
        // Binance's WAF answers with an HTML page, not a JSON error.
        const body = '<html><head><title>403 Forbidden</title></head><body>Request blocked.</body></html>';
        res.writeHead(403, { 'Content-Type': 'text/html', 'Content-Length': Buffer.byteLength(body) });
        res.end(body);
        return;
      }
      case 500:
        this.#json(res, 500, '{"code":-1000,"msg":"An unknown error occurred while processing the request."}');
        return;
    }
  }

  // ---------------------------------------------------------------- faults

  #makeFaults(): SimulatorFaults {
    const each = (fn: (s: Session) => void): void => {
      for (const s of [...this.#sessions.values()]) fn(s);
    };
    return {
      dropAll: () => {
        each((s) => {
          s.closing = true;
          s.ws.terminate();
        });
      },
      closeAll: (code = 1000, reason = '') => {
        each((s) => {
          this.#closeSession(s, code, reason);
        });
      },
      stallSockets: (ms) => {
        const until = mono() + ms;
        each((s) => {
          s.stalledUntil = Math.max(s.stalledUntil, until);
        });
      },
      stallStreams: (streams, ms) => {
        const until = mono() + ms;
        for (const name of streams) this.#streamStalls.set(name, Math.max(this.#streamStalls.get(name) ?? 0, until));
      },
      refuseConnections: (count, status = 503) => {
        this.#refuseCount = count;
        this.#refuseStatus = status;
      },
      restErrors: (count, status, retryAfter = 1) => {
        this.#restErrorCount = count;
        this.#restErrorStatus = status;
        this.#restRetryAfter = retryAfter;
      },
      restLatency: (ms) => {
        this.#restLatencyMs = Math.max(0, ms);
      },
      restLag: (ms) => {
        this.#restLagMs = Math.max(0, ms);
      },
      closeAfter: (ms) => {
        this.#closeAfterMs = ms;
      },
      garbage: (count) => {
        each((s) => {
          for (let i = 0; i < count; i++) this.#sendText(s, GARBAGE_FRAMES[i % GARBAGE_FRAMES.length] ?? 'x');
        });
      },
      serverShutdown: () => {
        const event = `{"e":"serverShutdown","E":${this.#now()}}`;
        const envelope = `{"stream":"!serverShutdown","data":${event}}`;
        each((s) => {
          this.#sendText(s, s.combined ? envelope : event);
        });
      },
      hole: (symbol, interval, fromOpenTime, toOpenTimeExclusive) => {
        this.#holes.add(symbol, interval, fromOpenTime, toOpenTimeExclusive);
      },
      closeMidSubscribe: (count) => {
        this.#closeMidSubscribe = count;
      },
      reset: () => {
        this.#refuseCount = 0;
        this.#restErrorCount = 0;
        this.#restLatencyMs = 0;
        this.#restLagMs = 0;
        this.#violations = 0;
        this.#bannedUntil = 0;
        this.#closeAfterMs = undefined;
        this.#closeMidSubscribe = 0;
        this.#streamStalls.clear();
        this.#holes.clear();
        each((s) => {
          if (s.stalledUntil > 0) s.stalledUntil = 1; // ends the stall on the next tick (flushes deferred replies)
        });
      },
    };
  }
}

