/**
 * The venue simulator engine: an in-process stand-in for one venue market's kline WebSocket and REST,
 * used by tests, the demo, the chaos suite and benchmarks. What varies between venues is the dialect
 * (dialect.ts: routes, control frames, heartbeat, event frames, REST query and rows, the rate model);
 * everything else is here, once: the node:http server for REST and WebSocket upgrades (ws,
 * `noServer`), the shared tick scheduler, sessions, inbound-rate and connection-attempt windows, the
 * REST budget, Retry-After and ban bookkeeping, every fault, the counters, holes and the series.
 *
 * Scheduling: ONE shared timer walks the subscribed streams every tick (not a timer per stream), so
 * thousands of streams stay cheap. Each stream's update is serialized once per session form and the
 * same Buffer is sent to every subscriber in that form.
 *
 * Clocks: `now()` (injectable wall clock) drives candle times, event times and REST rows; rate windows,
 * heartbeats and fault durations use the real monotonic clock, so a test that freezes or jumps its
 * wall clock does not trip rate limits or keepalive.
 *
 * Data that falls inside a stall (stallSockets/stallStreams) is lost, not delayed, like a real outage:
 * the consumer has to notice and recover it over REST (which always has it).
 */
import { STATUS_CODES, createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { WebSocket, WebSocketServer } from 'ws';
import type { RawData } from 'ws';
import { candlesBetween, nextOpenTime, openTimeAt } from '../core/intervals.ts';
import { parseRetryAfter } from '../core/retry-after.ts';
import type {
  CandleUpdate,
  ControlOp,
  GateContext,
  Heartbeat,
  InjectedStatus,
  Reaction,
  RestAnswer,
  SimulatorCounters,
  SimulatorFaults,
  SimulatorOptions,
  SocketInfo,
  StreamRef,
  SubscribeRejection,
  VenueDialect,
  VenueSimulator,
  WsDialect,
} from './dialect.ts';
import { HoleSet } from './holes.ts';
import { queryCandles } from './query.ts';
import { candleAt, formingCandleAt } from './series.ts';

const RATE_WINDOW_MS = 1000;
/** After a long stall (or a jumped test clock), only this many missed closed candles are sent per stream. */
const MAX_CATCHUP_CLOSED = 100;
const MAX_PAYLOAD = 1 << 20;
/**
 * A request arriving this soon after a rejection left was already on the wire (sent before the client
 * could have read the rejection: one sent at the same time on another pooled connection, or still
 * connecting), so it is not counted as ignoring the back-off. Arrivals after that are.
 */
const IN_FLIGHT_GRACE_MS = 50;
const DEFAULT_BAN_SECONDS = 120;

interface StreamState {
  readonly name: string;
  readonly ref: StreamRef;
  /** ref.symbol lower-cased: the key of holes and the series. */
  readonly symbol: string;
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
  form: number;
  readonly openedAt: number;
  /** Monotonic stamps of inbound messages within the last second (bounded by the rate limit). */
  readonly inbound: number[];
  /** Monotonic stamps of subscribe/unsubscribe ops within the dialect's ops window. */
  readonly ops: number[];
  inboundTotal: number;
  maxInboundPerSecond: number;
  pongs: number;
  lastInboundAt: number;
  lastPingAt: number;
  /** ws-ping: the payload of the last ping frame. */
  pingPayload: Buffer | undefined;
  /** ws-ping: monotonic time of the oldest unanswered ping. */
  unansweredSince: number | undefined;
  /** server-ping: the payload of the last application ping, while unanswered. */
  appPingOutstanding: string | undefined;
  /** server-ping: pings in a row that went unanswered. */
  missedPings: number;
  stalledUntil: number;
  /** Replies produced while stalled, sent when the stall ends. */
  readonly deferred: string[];
  /** Monotonic time the closeAfter fault closes it at. */
  closeAt: number | undefined;
  /** Monotonic time it reaches its maximum age. */
  expiresAt: number;
  closing: boolean;
}

interface CostEntry {
  readonly at: number;
  readonly cost: number;
}

function mono(): number {
  return performance.now();
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

function textOf(data: RawData): string {
  if (Array.isArray(data)) return Buffer.concat(data).toString('utf8');
  if (Buffer.isBuffer(data)) return data.toString('utf8');
  return Buffer.from(data).toString('utf8');
}

/** Drop stamps at or before `t - windowMs` from the front of an ascending list. */
function trim(stamps: number[], t: number, windowMs: number): void {
  while (stamps.length > 0 && (stamps[0] ?? 0) <= t - windowMs) stamps.shift();
}

/** Start a simulator of `dialect` on `options.host:options.port` (default 127.0.0.1:0). */
export async function startSimulator(dialect: VenueDialect, options: SimulatorOptions = {}): Promise<SimulatorEngine> {
  const server = createServer({ keepAlive: true });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  return new SimulatorEngine(server, dialect, options);
}

export class SimulatorEngine implements VenueSimulator {
  readonly venue: string;
  readonly dialect: VenueDialect;
  readonly wsUrl: string;
  /** The origin without the dialect's primary path (where its other routes live). */
  readonly wsOrigin: string;
  readonly restUrl: string;
  readonly port: number;
  readonly faults: SimulatorFaults;
  readonly counters: SimulatorCounters = {
    connectionsOpened: 0,
    connectionTimestamps: [],
    connectionsRefused: 0,
    maxInboundPerSecondSeen: 0,
    maxConnectionAttemptsPerWindowSeen: 0,
    closedByAge: 0,
    closedByHeartbeat: 0,
    pongsReceived: 0,
    pingsSent: 0,
    pingsReceived: 0,
    controlMessages: 0,
    closedByRateLimit: 0,
    framesSent: 0,
    klineEventsSent: 0,
    closedKlinesSent: 0,
    restRequests: 0,
    restBudgetUsedMax: 0,
    restStatuses: {},
    restLimited: 0,
    restBanned: 0,
    restInsideRetryAfter: 0,
  };

  readonly #server: Server;
  readonly #wss: WebSocketServer;
  readonly #ws: WsDialect | undefined;
  readonly #now: () => number;
  readonly #openUpdateMs: number | undefined;
  readonly #heartbeat: Heartbeat | undefined;
  readonly #pingIntervalMs: number;
  /** ws-ping: the pong deadline; client-ping: the silence deadline. */
  readonly #deadlineMs: number;
  readonly #maxStreams: number;
  readonly #maxInbound: number;
  readonly #maxConnections: number;
  readonly #maxAgeMs: number;
  readonly #restCapacity: number;
  readonly #banAfter: number | undefined;
  readonly #banMs: number;
  readonly #tickMs: number;
  #timer: NodeJS.Timeout;

  readonly #sessions = new Map<number, Session>();
  readonly #streams = new Map<string, StreamState>();
  readonly #holes = new HoleSet();
  readonly #streamStalls = new Map<string, number>();
  readonly #connectionAttempts: number[] = [];
  readonly #costs: CostEntry[] = [];
  /** One update's encoded frames by form, reused per emit (serialize once per form). */
  readonly #frames: (Buffer | undefined)[] = [];
  #costUsed = 0;
  #nextSessionId = 1;
  #nextPingId = 1;
  #closing: Promise<void> | undefined;

  // Fault state.
  #refuseCount = 0;
  #refuseStatus = 503;
  #restErrorCount = 0;
  #restErrorStatus: InjectedStatus = 500;
  #restRetryAfter: number | string = 0;
  #restLatencyMs = 0;
  #restLagMs = 0;
  /** Monotonic start and end of the latest back-off window announced. */
  #retryAfterFrom = 0;
  #retryAfterUntil = 0;
  /** Requests inside an announced window since the last ban (restBanAfterViolations). */
  #violations = 0;
  /** Monotonic end of the running ban; 0: none. */
  #bannedUntil = 0;
  readonly #delayedReplies = new Set<NodeJS.Timeout>();
  #closeAfterMs: number | undefined;
  #closeMidSubscribe = 0;

  constructor(server: Server, dialect: VenueDialect, options: SimulatorOptions) {
    this.#server = server;
    this.dialect = dialect;
    this.venue = dialect.id;
    const ws = dialect.ws;
    this.#ws = ws;
    const addr = server.address() as AddressInfo;
    const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
    this.port = addr.port;
    this.wsOrigin = `ws://${host}:${addr.port}`;
    this.wsUrl = ws === undefined ? '' : this.wsOrigin + ws.primaryPath;
    this.restUrl = `http://${host}:${addr.port}`;
    this.#now = options.now ?? Date.now;
    this.#openUpdateMs = options.openUpdateMs;
    const hb = ws?.heartbeat;
    this.#heartbeat = hb;
    this.#pingIntervalMs = options.pingIntervalMs ?? (hb === undefined || hb.kind === 'client-ping' ? Infinity : hb.intervalMs);
    this.#deadlineMs =
      options.pongTimeoutMs ?? (hb === undefined ? Infinity : hb.kind === 'ws-ping' ? hb.timeoutMs : hb.kind === 'client-ping' ? hb.silenceMs : Infinity);
    this.#maxStreams = options.maxStreamsPerConnection ?? ws?.limits.maxStreamsPerConnection ?? 0;
    this.#maxInbound = options.maxInboundPerSecond ?? ws?.limits.maxInboundPerSecond ?? Infinity;
    this.#maxConnections = options.maxConnectionsPerWindow ?? ws?.limits.maxConnectionsPerWindow ?? 0;
    this.#maxAgeMs = options.maxConnectionAgeMs ?? ws?.limits.connectionMaxAgeMs ?? Infinity;
    this.#restCapacity = options.restCapacity ?? dialect.rest.rate.capacity;
    this.#banAfter = options.restBanAfterViolations;
    this.#banMs = (options.restBanSeconds ?? DEFAULT_BAN_SECONDS) * 1000;
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
    let smallest = Math.min(this.#pingIntervalMs, 1000);
    if (ws !== undefined) for (const i of dialect.series.intervals) smallest = Math.min(smallest, this.#openUpdateMs ?? ws.updateMs(i));
    this.#tickMs = Math.max(5, Math.min(50, Math.floor(smallest / 2)));
    this.#timer = this.#schedule();
    this.faults = this.#makeFaults();
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
        form: s.form,
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
    const ws = this.#ws;
    if (ws === undefined) {
      // No WebSocket at all on this venue: nothing to upgrade to.
      rejectUpgrade(socket, 404, this.dialect.rest.notFound.body);
      return;
    }
    if (this.#closing !== undefined) {
      rejectUpgrade(socket, 503, ws.rejectBody('closing', 'This service is no longer available.'));
      return;
    }
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    let path = q < 0 ? url : url.slice(0, q);
    const query = q < 0 ? '' : url.slice(q + 1);
    while (path.length > 1 && path.endsWith('/')) path = path.slice(0, -1);
    const r = ws.route(path, query);
    if (r === undefined) {
      rejectUpgrade(socket, 404, ws.rejectBody('not-found', 'Not found.'));
      return;
    }
    if (this.#refuseCount > 0) {
      this.#refuseCount--;
      this.counters.connectionsRefused++;
      rejectUpgrade(socket, this.#refuseStatus, ws.rejectBody('refused', 'Connection refused (simulated).'));
      return;
    }
    const t = mono();
    const attempts = this.#connectionAttempts;
    trim(attempts, t, ws.limits.connectionWindowMs);
    if (attempts.length >= this.#maxConnections) {
      this.counters.connectionsRefused++;
      rejectUpgrade(socket, 429, ws.rejectBody('too-many-attempts', 'Too many connection attempts.'));
      return;
    }
    const concurrent = ws.limits.maxConcurrentConnections;
    if (concurrent !== undefined && this.#sessions.size >= concurrent) {
      this.counters.connectionsRefused++;
      rejectUpgrade(socket, 429, ws.rejectBody('too-many-connections', `Too many connections (max ${concurrent}).`));
      return;
    }
    const unique = new Set(r.streams);
    if (unique.size > this.#maxStreams) {
      this.counters.connectionsRefused++;
      rejectUpgrade(socket, 400, ws.rejectBody('too-many-streams', `Too many streams (max ${this.#maxStreams}).`));
      return;
    }
    attempts.push(t);
    if (attempts.length > this.counters.maxConnectionAttemptsPerWindowSeen) this.counters.maxConnectionAttemptsPerWindowSeen = attempts.length;
    this.#wss.handleUpgrade(req, socket, head, (socketWs) => {
      this.#onConnection(socketWs, path, r.delivers, unique, r.form);
    });
  }

  #onConnection(ws: WebSocket, path: string, delivers: boolean, streams: Set<string>, form: number): void {
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
      form,
      openedAt: wall,
      inbound: [],
      ops: [],
      inboundTotal: 0,
      maxInboundPerSecond: 0,
      pongs: 0,
      lastInboundAt: t,
      lastPingAt: t,
      pingPayload: undefined,
      unansweredSince: undefined,
      appPingOutstanding: undefined,
      missedPings: 0,
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
      this.counters.pingsReceived++;
      if (!this.#countInbound(session)) return;
      if (session.stalledUntil <= mono() && ws.readyState === WebSocket.OPEN) ws.pong(data);
    });
    ws.on('pong', (data: Buffer) => {
      this.counters.pongsReceived++;
      session.pongs++;
      if (!this.#countInbound(session)) return;
      const hb = this.#heartbeat;
      if (hb?.kind !== 'ws-ping') return;
      // Binance spot: only an echo of the last ping payload counts; unsolicited pongs "will not prevent
      // disconnection". USD-M: unsolicited pongs are allowed "to maintain the connection".
      if (hb.anyPongKeepsAlive || session.pingPayload?.equals(data) === true) session.unansweredSince = undefined;
    });
  }

  #onClose(session: Session): void {
    this.#sessions.delete(session.id);
    for (const name of session.streams) this.#unsubscribe(session, name);
  }

  /** Count one inbound message; false (and the dialect's flood reaction applied) when over the limit. */
  #countInbound(s: Session): boolean {
    if (s.closing) return false;
    const t = mono();
    s.inboundTotal++;
    s.lastInboundAt = t;
    this.counters.controlMessages++;
    s.inbound.push(t);
    trim(s.inbound, t, RATE_WINDOW_MS);
    const n = s.inbound.length;
    if (n > s.maxInboundPerSecond) s.maxInboundPerSecond = n;
    if (n > this.counters.maxInboundPerSecondSeen) this.counters.maxInboundPerSecondSeen = n;
    if (n > this.#maxInbound) {
      const flood = this.#ws?.limits.inboundFlood ?? {};
      if (flood.close !== undefined) this.counters.closedByRateLimit++;
      this.#react(s, flood);
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

  #drop(s: Session): void {
    s.closing = true;
    s.ws.terminate();
  }

  #react(s: Session, r: Reaction): void {
    for (const text of r.replies ?? []) this.#reply(s, text);
    if (r.close !== undefined) this.#closeSession(s, r.close.code, r.close.reason);
  }

  #reply(s: Session, text: string): void {
    if (s.stalledUntil > mono()) {
      s.deferred.push(text);
      return;
    }
    this.#sendText(s, text);
  }

  /** The dialect's encoding of one frame. */
  #encode(text: string): Buffer {
    return this.#ws?.encoding === 'gzip' ? gzipSync(text) : Buffer.from(text);
  }

  #sendRaw(s: Session, buf: Buffer): void {
    s.ws.send(buf, { binary: this.#ws?.encoding === 'gzip' });
    this.counters.framesSent++;
  }

  #sendText(s: Session, text: string): void {
    if (s.ws.readyState !== WebSocket.OPEN) return;
    this.#sendRaw(s, this.#encode(text));
  }

  #view(s: Session): { id: number; streams: ReadonlySet<string>; form: number; delivers: boolean } {
    return { id: s.id, streams: s.streams, form: s.form, delivers: s.delivers };
  }

  #onMessage(s: Session, data: RawData): void {
    if (!this.#countInbound(s)) return;
    const ws = this.#ws;
    if (ws === undefined) return;
    const text = textOf(data);
    const op: ControlOp = ws.control.parse(text, this.#view(s));
    switch (op.kind) {
      case 'reply':
        this.#react(s, op);
        return;
      case 'ignore':
        return;
      case 'ping':
        this.counters.pingsReceived++;
        for (const r of op.replies) this.#reply(s, r);
        return;
      case 'pong': {
        this.counters.pongsReceived++;
        s.pongs++;
        const hb = this.#heartbeat;
        if (hb?.kind !== 'server-ping') return;
        if (hb.anyPongKeepsAlive || op.answers === undefined || op.answers === s.appPingOutstanding) {
          s.appPingOutstanding = undefined;
          s.missedPings = 0;
        }
        return;
      }
      case 'set-form':
        s.form = op.form;
        for (const r of op.replies) this.#reply(s, r);
        return;
      case 'subscribe': {
        if (this.#closeMidSubscribe > 0) {
          this.#closeMidSubscribe--;
          this.#closeSession(s, 1011, 'Internal error');
          return;
        }
        const unique = new Set(op.streams);
        const limits = ws.limits;
        let added = 0;
        for (const name of unique) if (!s.streams.has(name)) added++;
        const refused: SubscribeRejection | undefined =
          limits.argsPerRequest !== undefined && op.streams.length > limits.argsPerRequest
            ? 'too-many-args'
            : limits.bytesPerRequest !== undefined && Buffer.byteLength(text) > limits.bytesPerRequest
              ? 'too-large'
              : !this.#takeOp(s)
                ? 'too-many-ops'
                : s.streams.size + added > this.#maxStreams
                  ? 'too-many-streams'
                  : undefined;
        if (refused !== undefined) {
          this.#react(s, op.reject(refused));
          return;
        }
        for (const name of unique) this.#subscribe(s, name);
        for (const r of op.ok) this.#reply(s, r);
        return;
      }
      case 'unsubscribe':
        if (!this.#takeOp(s)) {
          this.#react(s, op.reject('too-many-ops'));
          return;
        }
        for (const name of op.streams) this.#unsubscribe(s, name);
        for (const r of op.ok) this.#reply(s, r);
        return;
    }
  }

  /** Count one subscribe/unsubscribe op against the dialect's ops window; false when over it. */
  #takeOp(s: Session): boolean {
    const w = this.#ws?.limits.opsPerWindow;
    if (w === undefined) return true;
    const t = mono();
    trim(s.ops, t, w.windowMs);
    if (s.ops.length >= w.max) return false;
    s.ops.push(t);
    return true;
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
    const ws = this.#ws;
    const ref = ws?.streamOf(name);
    if (ws === undefined || ref === undefined || !this.dialect.series.intervals.has(ref.interval)) return; // accepted, sends nothing
    const forming = openTimeAt(ref.interval, this.#now());
    this.#streams.set(name, {
      name,
      ref,
      symbol: ref.symbol.toLowerCase(),
      updateMs: this.#openUpdateMs ?? ws.updateMs(ref.interval),
      subscribers: new Set([s]),
      forming,
      nextBoundary: nextOpenTime(ref.interval, forming),
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
    const ws = this.#ws;
    if (ws === undefined) return;
    const style = this.dialect.series;
    const { interval } = st.ref;
    const stalled = this.#streamStalls.has(st.name);
    if (wall >= st.nextBoundary) {
      const current = openTimeAt(interval, wall);
      if (ws.event.closed === 'flag') {
        let ot = st.forming;
        const missed = candlesBetween(interval, ot, current);
        if (missed > MAX_CATCHUP_CLOSED) {
          // The clock jumped (or the process slept): only the most recent candles are announced.
          ot = current;
          for (let i = 0; i < MAX_CATCHUP_CLOSED; i++) ot = openTimeAt(interval, ot - 1);
        }
        for (; ot < current; ot = nextOpenTime(interval, ot)) {
          if (stalled || this.#holes.find(st.symbol, interval, ot) !== undefined) continue;
          this.#emit(st, candleAt(style, st.symbol, interval, ot), wall, t);
        }
      } else {
        // No closed flag on the wire: the next candle's first update, at once, is what tells a client
        // the previous one closed.
        st.nextOpenUpdateAt = t;
      }
      st.forming = current;
      st.nextBoundary = nextOpenTime(interval, current);
    }
    if (t >= st.nextOpenUpdateAt) {
      st.nextOpenUpdateAt = t + st.updateMs;
      if (stalled || this.#holes.find(st.symbol, interval, st.forming) !== undefined) return;
      const progress = (wall - st.forming) / (st.nextBoundary - st.forming);
      this.#emit(st, formingCandleAt(style, st.symbol, interval, st.forming, progress), wall, t);
    }
  }

  /** Serialize once per form, send the same Buffer to every subscriber in that form. */
  #emit(st: StreamState, candle: CandleUpdate['candle'], wall: number, t: number): void {
    const ws = this.#ws;
    if (ws === undefined) return;
    const update: CandleUpdate = { stream: st.name, ref: st.ref, candle, eventTime: wall };
    const frames = this.#frames;
    frames.length = 0;
    for (const s of st.subscribers) {
      if (s.stalledUntil > t || s.closing || s.ws.readyState !== WebSocket.OPEN) continue;
      let buf = frames[s.form];
      if (buf === undefined) {
        buf = this.#encode(ws.event.frame(update, s.form));
        frames[s.form] = buf;
      }
      this.#sendRaw(s, buf);
      this.counters.klineEventsSent++;
      if (candle.closed) this.counters.closedKlinesSent++;
    }
  }

  #tickSession(s: Session, wall: number, t: number): void {
    if (s.closing || s.ws.readyState !== WebSocket.OPEN) return;
    if (s.closeAt !== undefined && t >= s.closeAt) {
      this.#closeSession(s, 1000, 'closeAfter');
      return;
    }
    if (t >= s.expiresAt) {
      // Binance: "A single connection is only valid for 24 hours; expect to be disconnected at the 24
      // hour mark". The close code is not documented; 1000 is what a planned close sends.
      this.counters.closedByAge++;
      this.#closeSession(s, 1000, 'Connection lifetime expired');
      return;
    }
    if (s.stalledUntil > t) return;
    if (s.stalledUntil !== 0) {
      // Stall over: flush what it held back and restart the keepalive clock (a silent server sent no
      // pings, so it cannot hold the client to a deadline that ran during the stall).
      s.stalledUntil = 0;
      for (const text of s.deferred.splice(0)) this.#sendText(s, text);
      s.lastPingAt = t;
      if (s.unansweredSince !== undefined) s.unansweredSince = t;
      s.appPingOutstanding = undefined;
      s.missedPings = 0;
    }
    const hb = this.#heartbeat;
    if (hb === undefined) return;
    switch (hb.kind) {
      case 'ws-ping':
        if (s.unansweredSince !== undefined && t - s.unansweredSince > this.#deadlineMs) {
          this.counters.closedByHeartbeat++;
          this.#drop(s);
          return;
        }
        if (t - s.lastPingAt >= this.#pingIntervalMs) {
          s.lastPingAt = t;
          s.pingPayload = Buffer.from(String(wall));
          s.unansweredSince ??= t;
          s.ws.ping(s.pingPayload);
          this.counters.pingsSent++;
        }
        return;
      case 'client-ping':
        if (t - s.lastInboundAt > this.#deadlineMs) {
          this.counters.closedByHeartbeat++;
          this.#drop(s);
        }
        return;
      case 'server-ping':
        if (t - s.lastPingAt < this.#pingIntervalMs) return;
        s.lastPingAt = t;
        if (s.appPingOutstanding !== undefined) s.missedPings++;
        if (s.missedPings >= hb.maxMissed) {
          this.counters.closedByHeartbeat++;
          this.#closeSession(s, hb.close.code, hb.close.reason);
          return;
        }
        s.appPingOutstanding = String(this.#nextPingId++);
        this.#sendText(s, hb.frame(s.appPingOutstanding, wall));
        this.counters.pingsSent++;
        return;
    }
  }

  // ---------------------------------------------------------------- REST side

  #onRequest(req: IncomingMessage, res: ServerResponse): void {
    this.counters.restRequests++;
    const arrived = mono();
    if (arrived < this.#retryAfterUntil && arrived >= this.#retryAfterFrom + IN_FLIGHT_GRACE_MS) {
      this.counters.restInsideRetryAfter++;
      if (arrived >= this.#bannedUntil) this.#violations++; // a running ban is not extended by its own refusals
    }
    try {
      this.#handleRest(req, res);
    } catch (err) {
      // A bug here must not take the simulator down mid-test: answer as the venue's internal error.
      const msg = err instanceof Error ? err.message : String(err);
      if (!res.headersSent) this.#write(res, this.dialect.rest.internalError(msg));
    }
  }

  /** Write an answer now; non-2xx statuses are counted, and an announced back-off starts its window. */
  #write(res: ServerResponse, a: RestAnswer, extraHeaders?: Readonly<Record<string, string>>): void {
    if (a.status < 200 || a.status > 299) this.counters.restStatuses[a.status] = (this.counters.restStatuses[a.status] ?? 0) + 1;
    if (a.backoffMs !== undefined) this.#announce(a.backoffMs);
    res.writeHead(a.status, {
      'Content-Type': a.contentType ?? 'application/json;charset=UTF-8',
      'Content-Length': Buffer.byteLength(a.body),
      ...extraHeaders,
      ...a.headers,
    });
    res.end(a.body);
  }

  /**
   * Start a back-off window the client must honour: requests arriving inside it are counted in
   * `restInsideRetryAfter` (those of the first IN_FLIGHT_GRACE_MS aside). The window starts when the
   * rejection is written; rejections are written at once (they cost the venue no query work) while
   * successful answers wait `restLatency`.
   */
  #announce(ms: number): void {
    const t = mono();
    if (t + ms > this.#retryAfterUntil) {
      this.#retryAfterFrom = t;
      this.#retryAfterUntil = t + ms;
    }
  }

  /** Answer a successful REST request, after the configured latency (a venue is ~10-200 ms away, not 0). */
  #reply200(res: ServerResponse, body: string, headers: Readonly<Record<string, string>>): void {
    const answer: RestAnswer = { status: 200, body, headers };
    if (this.#restLatencyMs <= 0) {
      this.#write(res, answer);
      return;
    }
    const t = setTimeout(() => {
      this.#delayedReplies.delete(t);
      if (!res.destroyed) this.#write(res, answer);
    }, this.#restLatencyMs);
    t.unref();
    this.#delayedReplies.add(t);
  }

  #used(t: number): number {
    const c = this.#costs;
    const windowMs = this.dialect.rest.rate.windowMs;
    while (c.length > 0 && (c[0]?.at ?? 0) <= t - windowMs) this.#costUsed -= c.shift()?.cost ?? 0;
    return this.#costUsed;
  }

  #gate(retryAfterSeconds: number, used: number, untilMs = retryAfterSeconds * 1000): GateContext {
    return { retryAfterSeconds, untilWall: this.#now() + untilMs, used, capacity: this.#restCapacity };
  }

  #handleRest(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://simulator');
    const path = url.pathname;
    const rest = this.dialect.rest;
    const endpoint = rest.endpoint(path);
    if (endpoint === undefined) {
      this.#write(res, rest.notFound);
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      this.#write(res, rest.methodNotAllowed);
      return;
    }
    if (this.#banned(res)) return;
    const t = mono();
    if (endpoint.kind === 'klines' && this.#restErrorCount > 0) {
      this.#restErrorCount--;
      const raw = this.#restRetryAfter;
      const ms = typeof raw === 'number' ? raw * 1000 : (parseRetryAfter(raw, this.#now()) ?? 0);
      const ctx = this.#gate(Math.max(1, Math.ceil(ms / 1000)), this.#used(t), ms);
      this.#write(res, rest.injected(this.#restErrorStatus, String(raw), ms, ctx));
      return;
    }
    const rate = rest.rate;
    const cost = rate.cost(endpoint.kind, url.searchParams);
    let used = this.#used(t);
    if (used + cost > this.#restCapacity) {
      this.counters.restLimited++;
      const oldest = this.#costs[0]?.at ?? t;
      const retry = Math.max(1, Math.ceil((oldest + rate.windowMs - t) / 1000));
      this.#write(res, rate.limited(this.#gate(retry, used)));
      if (rate.banMs > 0) this.#bannedUntil = Math.max(this.#bannedUntil, t + rate.banMs);
      return;
    }
    this.#costs.push({ at: t, cost });
    this.#costUsed += cost;
    used = this.#costUsed;
    if (used > this.counters.restBudgetUsedMax) this.counters.restBudgetUsedMax = used;
    const headers = rate.usageHeaders?.(used, this.#restCapacity) ?? {};
    if (endpoint.kind === 'static') {
      this.#write(res, { status: 200, body: endpoint.body(this.#now()), headers });
      return;
    }
    const q = rest.parse(url.searchParams, path, this.#now());
    if ('status' in q) {
      this.#write(res, q, headers);
      return;
    }
    // A lagging REST answers as it saw the market `lag` ms ago: older rows only, its newest one partial.
    const candles = queryCandles(this.dialect.series, q, this.#now() - this.#restLagMs, this.#holes);
    this.#reply200(res, rest.rows(candles, q, url.searchParams, path), headers);
  }

  /**
   * A running ban (the rate model's, or restBanAfterViolations'): answers `banned` and returns true while
   * one runs, starting the violations ban when they reach the threshold. Bans are per IP, so every
   * path is refused.
   */
  #banned(res: ServerResponse): boolean {
    const t = mono();
    const rate = this.dialect.rest.rate;
    if (t >= this.#bannedUntil) {
      if (this.#banAfter === undefined || this.#violations < this.#banAfter) return false;
      this.#violations = 0;
      this.#bannedUntil = t + this.#banMs;
    } else if (rate.banExtendMs > 0) {
      // Pionex-style: "extended by 10 s for each further request".
      this.#bannedUntil += rate.banExtendMs;
    }
    const retry = Math.max(1, Math.ceil((this.#bannedUntil - t) / 1000));
    this.counters.restBanned++;
    this.#write(res, rate.banned(this.#gate(retry, this.#used(t))));
    return true;
  }

  // ---------------------------------------------------------------- faults

  #makeFaults(): SimulatorFaults {
    const each = (fn: (s: Session) => void): void => {
      for (const s of [...this.#sessions.values()]) fn(s);
    };
    return {
      dropAll: () => {
        each((s) => {
          this.#drop(s);
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
        const frames = this.#ws?.garbage ?? [];
        if (frames.length === 0) return;
        each((s) => {
          for (let i = 0; i < count; i++) this.#sendText(s, frames[i % frames.length] ?? 'x');
        });
      },
      serverShutdown: () => {
        const ws = this.#ws;
        if (ws?.rotationNotice === undefined) return;
        const wall = this.#now();
        each((s) => {
          const text = ws.rotationNotice?.(wall, s.form);
          if (text !== undefined) this.#sendText(s, text);
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
