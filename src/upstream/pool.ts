/**
 * One venue's upstream: a pool of sockets carrying every configured kline stream of that venue.
 * Venue-agnostic: what the venue knows (URLs, subscribe frames, heartbeat, rate-limit signals, the
 * frame parser) comes from its adapter (venue.ts); one pool per configured venue.
 *
 * Owns what no single socket can decide:
 * - placement: streams spread evenly over max(initialConnections, needed) sockets, none above
 *   maxStreamsPerConnection (clamped to the venue's cap); re-placed streams go to the healthiest
 *   sockets with spare room first.
 *   With fewer streams than initialConnections the remaining sockets open as streamless spares (warm
 *   hosts for re-placed streams); a socket without streams is closed after idleTimeoutMs;
 * - the attempt gate every connection attempt passes through, in this order: the penalty after the
 *   venue's rate-limit signals (Binance: ≥ 2 min after a 1008 close, Retry-After of a 429 / 418 at
 *   upgrade), the circuit breaker (cockatiel; while open, sockets are `suspended`; half-open lets
 *   `halfOpenCalls` trials through), and a sliding 5-minute attempt budget
 *   (maxConnectionAttemptsPer5Min, far under the venues' per-IP limits) that holds in any storm, and
 *   the venue's own short window where it has one (`ws.connectRate`, OKX: 3 attempts per second per IP);
 * - reconnect scheduling with jittered exponential backoff (backoff.ts), `failed` after maxRetries;
 * - make-before-break rotation (max age, serverShutdown, stale streams): the old socket closes once the
 *   new one has delivered every stream, or after a bounded timeout (then the streams not yet seen are
 *   resynced when they arrive);
 * - `handlers.resync` for streams that may have lost data (socket lost, stale, breaker recovery); never
 *   for a clean rotation;
 * - one tick timer driving every socket's liveness / pong / staleness deadlines, idleness and age
 *   rotation, and the health check (every healthCheckIntervalMs) grading every socket's quality.
 */
import {
  BrokenCircuitError,
  CircuitState,
  ConsecutiveBreaker,
  IsolatedCircuitError,
  circuitBreaker,
  handleAll,
  type CircuitBreakerPolicy,
  type IDisposable,
} from 'cockatiel';
import type { Logger } from 'pino';
import type { StreamRef } from '../core/candle.ts';
import { breakerRecoverySchedule, breakerRecoveryBackoff } from '../core/backoff.ts';
import { systemClock, type Clock } from '../core/clock.ts';
import { errorMessage } from '../core/errors.ts';
import { wsBreakerName, type ConnectionSnapshot, type SourceHandlers, type UpstreamSnapshot, type UpstreamSource, type UpstreamStats } from '../core/source.ts';
import type { BreakerState, StatusStream } from '../core/status.ts';
import type { StreamRegistry } from '../core/streams.ts';
import type { Config } from '../config/schema.ts';
import { AttemptBudget, ReconnectBackoff } from './backoff.ts';
import {
  UpstreamConnection,
  UpstreamConnectError,
  newCounters,
  type ConnectionOwner,
  type StreamCarry,
  type UpstreamCounters,
  type WebSocketFactory,
} from './connection.ts';
import type { FrameParser, VenueAdapter } from './venue.ts';
import { upstreamWebSocket } from './wsclient.ts';

const ATTEMPT_WINDOW_MS = 5 * 60_000;

export interface UpstreamPoolOptions {
  readonly config: Config;
  readonly venue: VenueAdapter;
  /** The venue's WebSocket endpoint (its `<prefix>WS_URL`). */
  readonly wsUrl: string;
  /** The venue's configured streams (registered in `registry` under `venue.id`). */
  readonly streams: readonly StreamRef[];
  readonly registry: StreamRegistry;
  readonly handlers: SourceHandlers;
  readonly status: StatusStream;
  readonly log: Logger;
  readonly clock?: Clock;
  readonly wsFactory?: WebSocketFactory;
  readonly random?: () => number;
}

/**
 * The upstream socket is the hand-written client (wsclient.ts): ws's receiver allocated about half of
 * the hot path's young generation (issue 18; ARCHITECTURE.md, Performance). Tests may inject ws.
 */
const defaultFactory: WebSocketFactory = upstreamWebSocket;

function breakerStateOf(s: CircuitState): BreakerState {
  if (s === CircuitState.Closed) return 'closed';
  if (s === CircuitState.HalfOpen) return 'half-open';
  return 'open';
}

/** Per-connection pool bookkeeping that the connection itself does not need. */
interface Slot {
  backoff: ReconnectBackoff | undefined;
  retryTimer: NodeJS.Timeout | undefined;
  rotationTimer: NodeJS.Timeout | undefined;
  rotationReason: string;
  /** Do not start another rotation of this socket before this (monotonic ms). */
  rotateNotBefore: number;
  /** The connection had been open at least once (its reconnects count as reconnections). */
  everOpen: boolean;
}

/** Slack added to ws.connectRate's window (see the constructor). */
const CONNECT_RATE_MARGIN_MS = 50;

export class UpstreamPool implements UpstreamSource, ConnectionOwner {
  readonly venue: string;
  readonly #config: Config;
  readonly #adapter: VenueAdapter;
  readonly #wsUrl: string;
  /** CONNECTOR_MAX_STREAMS_PER_CONNECTION, clamped to the venue's own cap. */
  readonly #perSocket: number;
  readonly #breakerName: string;
  readonly #streams: readonly StreamRef[];
  readonly #handlers: SourceHandlers;
  readonly #status: StatusStream;
  readonly #log: Logger;
  readonly #clock: Clock;
  readonly #factory: WebSocketFactory;
  readonly #random: () => number;
  readonly #parser: FrameParser;
  readonly #counters: UpstreamCounters = newCounters();
  readonly #budget: AttemptBudget;
  /** The venue's short per-IP attempt window (ws.connectRate), if it has one. */
  readonly #rate: AttemptBudget | undefined;
  readonly #breaker: CircuitBreakerPolicy;
  readonly #breakerSchedule: readonly number[];
  readonly #disposables: IDisposable[] = [];

  readonly #conns: UpstreamConnection[] = [];
  readonly #slots = new Map<UpstreamConnection, Slot>();
  /** Connections waiting for the gate to grant an attempt, in order. */
  #queue: UpstreamConnection[] = [];
  /** Connections held while the breaker is open. */
  #suspended: UpstreamConnection[] = [];
  #trialsInFlight = 0;
  #breakerState: BreakerState = 'closed';
  #breakerOpens = 0;
  #breakerDue = false;
  #breakerTimer: NodeJS.Timeout | undefined;
  #gateTimer: NodeJS.Timeout | undefined;
  #gateAt = Number.POSITIVE_INFINITY;
  #tickTimer: NodeJS.Timeout | undefined;
  #healthTimer: NodeJS.Timeout | undefined;
  #penaltyUntil = 0;
  #budgetReported = false;
  #seq = 0;
  #started = false;
  #closed = false;
  #paused = false;
  #closing: Promise<void> | undefined;

  constructor(options: UpstreamPoolOptions) {
    this.venue = options.venue.id;
    this.#config = options.config;
    this.#adapter = options.venue;
    this.#wsUrl = options.wsUrl;
    this.#perSocket = Math.min(options.config.pool.maxStreamsPerConnection, options.venue.ws.maxStreamsPerConnection);
    this.#breakerName = wsBreakerName(options.venue.id);
    this.#streams = options.streams;
    this.#handlers = options.handlers;
    this.#status = options.status;
    this.#log = options.log;
    this.#clock = options.clock ?? systemClock;
    this.#factory = options.wsFactory ?? defaultFactory;
    this.#random = options.random ?? Math.random;
    this.#parser = options.venue.ws.createParser({ venue: options.venue.id, registry: options.registry, status: options.status, clock: this.#clock });
    // Clamped to the venue's own cap where it has one (venue.ts WsProtocol.maxConnectionAttemptsPer5Min).
    this.#budget = new AttemptBudget(Math.min(this.#config.pool.maxConnectionAttemptsPer5Min, options.venue.ws.maxConnectionAttemptsPer5Min ?? Number.POSITIVE_INFINITY), ATTEMPT_WINDOW_MS);
    const rate = options.venue.ws.connectRate;
    // Counted a little longer than the venue's window: our stamp precedes the socket's creation and its
    // arrival by a few ms, and two attempts a window apart by our clock must be a window apart by theirs.
    this.#rate = rate === undefined ? undefined : new AttemptBudget(rate.limit, rate.windowMs + CONNECT_RATE_MARGIN_MS);
    const b = this.#config.breaker;
    this.#breakerSchedule = breakerRecoverySchedule(b.recoveryTimeoutMs, b.recoveryMaxMs);
    this.#breaker = circuitBreaker(handleAll, {
      breaker: new ConsecutiveBreaker(b.failureThreshold),
      halfOpenAfter: breakerRecoveryBackoff(b.recoveryTimeoutMs, b.recoveryMaxMs),
      halfOpenSampling: { calls: b.halfOpenCalls, threshold: 0 },
    });
    this.#disposables.push(
      this.#breaker.onStateChange((s) => {
        this.#onBreakerState(s);
      }),
    );
  }

  // -- lifecycle -------------------------------------------------------------------------------

  start(): Promise<void> {
    if (this.#started || this.#closed) return Promise.resolve();
    this.#started = true;
    const per = this.#perSocket;
    const { initialConnections, maxConnections } = this.#config.pool;
    const total = this.#streams.length;
    const needed = Math.ceil(total / per);
    const n = Math.max(1, Math.min(Math.max(initialConnections, needed), Math.max(maxConnections, needed)));
    // Even shares (none above ceil(total / n) <= per); sockets past the stream count open empty (spares).
    for (let i = 0; i < n; i++) {
      const chunk = this.#streams.slice(Math.floor((i * total) / n), Math.floor(((i + 1) * total) / n));
      this.#enqueue(this.#create(chunk.map((ref) => ({ ref }))));
    }
    const hb = this.#config.heartbeat;
    const period = Math.max(20, Math.min(1000, Math.min(hb.pingTimeoutMs / hb.maxMissedPings, hb.pongTimeoutMs, hb.staleStreamMs) / 4));
    this.#tickTimer = setInterval(() => {
      this.#tick();
    }, period);
    this.#tickTimer.unref();
    this.#healthTimer = setInterval(() => {
      this.#healthCheck();
    }, this.#config.pool.healthCheckIntervalMs);
    this.#healthTimer.unref();
    return Promise.resolve();
  }

  close(): Promise<void> {
    if (this.#closing !== undefined) return this.#closing;
    this.#closed = true;
    clearInterval(this.#tickTimer);
    clearInterval(this.#healthTimer);
    clearTimeout(this.#gateTimer);
    clearTimeout(this.#breakerTimer);
    for (const s of this.#slots.values()) {
      clearTimeout(s.retryTimer);
      clearTimeout(s.rotationTimer);
    }
    for (const d of this.#disposables) d.dispose();
    this.#queue = [];
    this.#suspended = [];
    const all = this.#conns.splice(0);
    this.#closing = Promise.all(all.map((c) => c.close('shutdown'))).then(() => undefined);
    return this.#closing;
  }

  pause(): void {
    if (this.#paused) return;
    this.#paused = true;
    for (const c of this.#conns) c.pause();
  }

  resume(): void {
    if (!this.#paused) return;
    this.#paused = false;
    for (const c of this.#conns) c.resume();
  }

  // -- connections -----------------------------------------------------------------------------

  #create(carries: readonly StreamCarry[]): UpstreamConnection {
    const conn = new UpstreamConnection({
      id: `${this.venue}-${++this.#seq}`,
      config: this.#config,
      venue: this.#adapter,
      wsUrl: this.#wsUrl,
      streams: carries,
      parser: this.#parser,
      handlers: this.#handlers,
      status: this.#status,
      clock: this.#clock,
      wsFactory: this.#factory,
      owner: this,
      counters: this.#counters,
      random: this.#random,
    });
    if (this.#paused) conn.pause();
    this.#conns.push(conn);
    this.#slots.set(conn, {
      backoff: undefined,
      retryTimer: undefined,
      rotationTimer: undefined,
      rotationReason: '',
      rotateNotBefore: 0,
      everOpen: false,
    });
    return conn;
  }

  #slot(conn: UpstreamConnection): Slot | undefined {
    return this.#slots.get(conn);
  }

  #remove(conn: UpstreamConnection, reason: string): void {
    const i = this.#conns.indexOf(conn);
    if (i >= 0) this.#conns.splice(i, 1);
    this.#queue = this.#queue.filter((c) => c !== conn);
    this.#suspended = this.#suspended.filter((c) => c !== conn);
    const s = this.#slots.get(conn);
    if (s !== undefined) {
      clearTimeout(s.retryTimer);
      clearTimeout(s.rotationTimer);
    }
    this.#slots.delete(conn);
    void conn.close(reason);
  }

  // -- the attempt gate --------------------------------------------------------------------------

  #enqueue(conn: UpstreamConnection): void {
    if (this.#closed || !this.#slots.has(conn) || this.#queue.includes(conn)) return;
    this.#queue.push(conn);
    this.#pump();
  }

  #armGate(at: number): void {
    if (this.#gateTimer !== undefined && this.#gateAt <= at) return;
    clearTimeout(this.#gateTimer);
    this.#gateAt = at;
    this.#gateTimer = setTimeout(
      () => {
        this.#gateTimer = undefined;
        this.#gateAt = Number.POSITIVE_INFINITY;
        this.#pump();
      },
      Math.max(1, at - this.#clock.monotonic()),
    );
    this.#gateTimer.unref();
  }

  #suspend(conn: UpstreamConnection): void {
    if (!this.#suspended.includes(conn)) this.#suspended.push(conn);
    conn.setState('suspended', 'circuit breaker open');
  }

  /** Grant attempts to queued connections while the penalty, the breaker and the budget allow. */
  #pump(): void {
    if (this.#closed) return;
    for (;;) {
      // A due breaker first lets its trial connections through (suspended ones go first).
      const breaker = this.#breaker.state;
      let trial = false;
      if (breaker === CircuitState.Open || breaker === CircuitState.Isolated) {
        if (!this.#breakerDue || this.#trialsInFlight >= this.#config.breaker.halfOpenCalls) {
          for (const c of this.#queue) this.#suspend(c);
          this.#queue = [];
          return;
        }
        trial = true;
      } else if (breaker === CircuitState.HalfOpen) {
        if (this.#trialsInFlight >= this.#config.breaker.halfOpenCalls) {
          for (const c of this.#queue) this.#suspend(c);
          this.#queue = [];
          return;
        }
        trial = true;
      }
      if (trial && this.#suspended.length > 0) {
        const first = this.#suspended.shift();
        if (first !== undefined) this.#queue.unshift(first);
      }
      const conn = this.#queue[0];
      if (conn === undefined) return;
      const now = this.#clock.monotonic();
      if (now < this.#penaltyUntil) {
        this.#armGate(this.#penaltyUntil);
        return;
      }
      // The short window first (nothing taken yet), so a refusal there does not spend the 5-minute budget.
      const rateAt = this.#rate?.nextAt(now) ?? now;
      if (rateAt > now) {
        this.#armGate(rateAt);
        return;
      }
      if (!this.#budget.take(now)) {
        const at = this.#budget.nextAt(now);
        if (!this.#budgetReported) {
          this.#budgetReported = true;
          this.#status.emit({ type: 'ratelimit', venue: this.venue, scope: 'ws', kind: 'attempt-budget', retryAfterMs: Math.round(at - now) });
        }
        this.#armGate(at);
        return;
      }
      this.#budgetReported = false;
      this.#rate?.take(now);
      this.#queue.shift();
      this.#run(conn, trial);
    }
  }

  #run(conn: UpstreamConnection, trial: boolean): void {
    if (trial) {
      this.#trialsInFlight++;
      this.#breakerDue = false;
    }
    this.#breaker.execute(() => conn.attempt()).then(
      () => {
        if (trial) this.#trialsInFlight--;
        this.#connected(conn);
        this.#pump();
      },
      (err: unknown) => {
        if (trial) this.#trialsInFlight--;
        this.#attemptFailed(conn, err);
        this.#pump();
      },
    );
  }

  #connected(conn: UpstreamConnection): void {
    const s = this.#slot(conn);
    if (this.#closed || s === undefined) {
      void conn.close('pool closed');
      return;
    }
    s.everOpen = true;
    conn.successes++;
    if (conn.successes >= this.#config.reconnect.resetAfterSuccesses) {
      // Enough consecutive successful connections: the next loss starts the backoff from the bottom.
      s.backoff = undefined;
    }
    const old = conn.replacing;
    if (old !== undefined) this.#armRotationTimeout(conn, old);
  }

  #attemptFailed(conn: UpstreamConnection, err: unknown): void {
    if (this.#closed || !this.#slots.has(conn) || conn.state === 'closed') return;
    if (err instanceof BrokenCircuitError || err instanceof IsolatedCircuitError) {
      // Not an attempt: the breaker is (still) open. If this was a trial that came a little early for
      // cockatiel's own clock, wake up again shortly.
      this.#suspend(conn);
      if (this.#breakerTimer === undefined && this.#breaker.state === CircuitState.Open) {
        this.#breakerTimer = setTimeout(() => {
          this.#breakerTimer = undefined;
          this.#breakerDue = true;
          this.#pump();
        }, 50);
        this.#breakerTimer.unref();
      }
      return;
    }
    const message = errorMessage(err);
    this.#status.emit({ type: 'connection.error', venue: this.venue, connId: conn.id, error: message });
    const limits = this.#adapter.ws.rateLimit;
    if (err instanceof UpstreamConnectError && err.status !== undefined && limits.upgradeStatuses.includes(err.status)) {
      this.rateLimited(conn, String(err.status), err.retryAfterMs ?? limits.defaultRetryAfterMs);
    }
    conn.failures++;
    conn.successes = 0;
    if (this.#breakerHolds()) {
      // The breaker opened (possibly on this very failure): hold the socket instead of retrying.
      this.#suspend(conn);
      return;
    }
    if (conn.failures > this.#config.reconnect.maxRetries) {
      conn.setState('failed', `${conn.failures - 1} retries exhausted: ${message}`);
      this.#replaceFailed(conn);
      return;
    }
    this.#scheduleReconnect(conn, message);
  }

  /** The breaker is open and its recovery time has not come: attempts would be refused. */
  #breakerHolds(): boolean {
    const state = this.#breaker.state;
    return (state === CircuitState.Open || state === CircuitState.Isolated) && !this.#breakerDue;
  }

  #scheduleReconnect(conn: UpstreamConnection, reason: string): void {
    const s = this.#slot(conn);
    if (s === undefined || this.#closed) return;
    s.backoff = s.backoff === undefined ? new ReconnectBackoff(this.#config.reconnect, this.#random) : s.backoff.next();
    const delayMs = s.backoff.duration;
    conn.setState('reconnecting', reason);
    this.#counters.reconnections++;
    this.#status.emit({ type: 'connection.reconnect', venue: this.venue, connId: conn.id, attempt: s.backoff.attempt, delayMs, reason });
    clearTimeout(s.retryTimer);
    s.retryTimer = setTimeout(() => {
      s.retryTimer = undefined;
      this.#enqueue(conn);
    }, delayMs);
    s.retryTimer.unref();
  }

  /** Retries exhausted: re-place its streams (healthiest sockets with room first) and drop it. */
  #replaceFailed(conn: UpstreamConnection): void {
    const old = conn.replacing;
    if (old !== undefined) {
      // The new socket of a rotation failed: the old one still carries every stream; retry later.
      old.replacement = undefined;
      const s = this.#slot(old);
      if (s !== undefined) s.rotateNotBefore = this.#clock.monotonic() + this.#config.reconnect.maxMs;
      this.#remove(conn, 'replacement failed');
      return;
    }
    const carries = conn.carry('connection failed');
    this.#remove(conn, 'failed: streams re-placed');
    this.#place(carries);
  }

  /** Put streams on open healthy sockets with spare room (best grade first), the rest on new sockets. */
  #place(carries: readonly StreamCarry[]): void {
    const per = this.#perSocket;
    const rank = { excellent: 0, good: 1, poor: 2, critical: 3 } as const;
    const hosts = this.#conns
      .filter((c) => c.isOpen && c.replacement === undefined && c.replacing === undefined && (c.quality === 'excellent' || c.quality === 'good'))
      .sort((a, b) => rank[a.quality] - rank[b.quality] || a.streamCount - b.streamCount);
    let rest = [...carries];
    for (const host of hosts) {
      if (rest.length === 0) break;
      const room = per - host.streamCount;
      if (room <= 0) continue;
      host.addStreams(rest.slice(0, room));
      rest = rest.slice(room);
    }
    while (rest.length > 0) {
      this.#enqueue(this.#create(rest.slice(0, per)));
      rest = rest.slice(per);
    }
  }

  // -- breaker ---------------------------------------------------------------------------------

  #onBreakerState(state: CircuitState): void {
    const to = breakerStateOf(state);
    const from = this.#breakerState;
    if (to === from) return;
    this.#breakerState = to;
    this.#status.emit({ type: 'breaker', name: this.#breakerName, from, to });
    if (to === 'open') {
      this.#breakerOpens = from === 'half-open' ? this.#breakerOpens + 1 : 1;
      const wait = this.#breakerSchedule[Math.min(this.#breakerOpens, this.#breakerSchedule.length) - 1] ?? this.#config.breaker.recoveryMaxMs;
      this.#breakerDue = false;
      clearTimeout(this.#breakerTimer);
      // cockatiel decides half-open lazily on the next execute() after `wait` (Date.now-based): wake up then.
      this.#breakerTimer = setTimeout(() => {
        this.#breakerTimer = undefined;
        this.#breakerDue = true;
        this.#pump();
      }, wait + 10);
      this.#breakerTimer.unref();
    } else if (to === 'closed') {
      this.#breakerOpens = 0;
      this.#breakerDue = false;
      // Recovery: every held socket may attempt again (budget permitting); their streams resync on arrival.
      const held = this.#suspended;
      this.#suspended = [];
      for (const c of held) {
        for (const ref of c.streams()) c.markResync(ref, 'breaker recovery');
        this.#queue.push(c);
      }
      queueMicrotask(() => {
        this.#pump();
      });
    }
  }

  // -- ConnectionOwner -------------------------------------------------------------------------

  lost(conn: UpstreamConnection, reason: string): void {
    if (this.#closed || !this.#slots.has(conn)) return;
    const next = conn.replacement;
    if (next !== undefined) {
      // Lost while its replacement was being made: the replacement takes over now; whatever it has
      // not delivered yet may have a gap.
      for (const ref of next.unseenStreams()) next.markResync(ref, reason);
      this.#finishRotation(next, conn, 'lost during rotation');
      return;
    }
    if (this.#breakerHolds()) {
      this.#suspend(conn);
      return;
    }
    this.#scheduleReconnect(conn, reason);
  }

  allStreamsSeen(conn: UpstreamConnection): void {
    const old = conn.replacing;
    if (old !== undefined) this.#finishRotation(conn, old, this.#slot(conn)?.rotationReason ?? 'rotation');
  }

  serverShutdown(conn: UpstreamConnection): void {
    this.#rotate(conn, 'server shutdown');
  }

  staleStreams(conn: UpstreamConnection): void {
    this.#rotate(conn, 'stale stream');
  }

  rateLimited(conn: UpstreamConnection, kind: string, waitMs: number): void {
    const wait = waitMs;
    this.#penaltyUntil = Math.max(this.#penaltyUntil, this.#clock.monotonic() + wait);
    this.#status.emit({ type: 'ratelimit', venue: this.venue, scope: 'ws', kind, retryAfterMs: wait });
    this.#log.warn({ venue: this.venue, connId: conn.id, kind, waitMs: wait }, `${this.venue} rate limit: holding new connection attempts`);
  }

  // -- rotation (make-before-break) --------------------------------------------------------------

  #rotate(old: UpstreamConnection, reason: string): void {
    const s = this.#slot(old);
    if (this.#closed || s === undefined || old.replacement !== undefined || !old.isOpen) return;
    if (old.idleSince !== undefined && old.replacing === undefined) {
      // A spare carries nothing that a replacement would have to take over: just let it go.
      this.#remove(old, `${reason}: spare without streams closed`);
      return;
    }
    if (old.replacing !== undefined) {
      // Itself the new half of an unfinished rotation: finish that one first (its predecessor goes).
      this.#finishRotation(old, old.replacing, 'superseded');
    }
    const next = this.#create(old.carry());
    next.replacing = old;
    old.replacement = next;
    const ns = this.#slot(next);
    if (ns !== undefined) ns.rotationReason = reason;
    this.#log.debug({ venue: this.venue, from: old.id, to: next.id, reason }, `${this.venue} rotation started`);
    this.#enqueue(next);
  }

  /** Bound the overlap: once the new socket is open, wait at most connectTimeout + staleStreamMs for every stream. */
  #armRotationTimeout(next: UpstreamConnection, old: UpstreamConnection): void {
    const s = this.#slot(next);
    if (s === undefined) return;
    clearTimeout(s.rotationTimer);
    s.rotationTimer = setTimeout(
      () => {
        s.rotationTimer = undefined;
        if (next.replacing !== old) return;
        if (!next.isOpen) return; // it reconnects; re-armed when it opens again
        for (const ref of next.unseenStreams()) next.markResync(ref, 'rotation timeout');
        this.#finishRotation(next, old, `${s.rotationReason} (timed out)`);
      },
      this.#config.pool.connectTimeoutMs + this.#config.heartbeat.staleStreamMs,
    );
    s.rotationTimer.unref();
  }

  #finishRotation(next: UpstreamConnection, old: UpstreamConnection, reason: string): void {
    next.replacing = undefined;
    old.replacement = undefined;
    const s = this.#slot(next);
    if (s !== undefined) {
      clearTimeout(s.rotationTimer);
      s.rotationTimer = undefined;
    }
    this.#counters.rotations++;
    this.#status.emit({ type: 'connection.rotation', venue: this.venue, connId: old.id, reason });
    this.#remove(old, `rotated to ${next.id}: ${reason}`);
  }

  // -- tick ------------------------------------------------------------------------------------

  #tick(): void {
    if (this.#closed) return;
    const now = this.#clock.monotonic();
    const idleMs = this.#config.pool.idleTimeoutMs;
    for (const conn of [...this.#conns]) {
      const idleSince = conn.idleSince;
      if (idleSince !== undefined) {
        // A streamless spare: nothing to check, rotate or resync; it only waits to host re-placed streams.
        if (now - idleSince >= idleMs && conn.replacement === undefined && conn.replacing === undefined) {
          this.#remove(conn, `idle: no streams for ${idleMs} ms`);
        } else {
          conn.check(now);
        }
        continue;
      }
      conn.check(now);
      if (this.#paused || !conn.isOpen || conn.replacement !== undefined || conn.replacing !== undefined) continue;
      const s = this.#slot(conn);
      if (s !== undefined && now - conn.openedAt >= conn.maxAgeMs && now >= s.rotateNotBefore) {
        this.#rotate(conn, 'max age');
      }
    }
  }

  #healthCheck(): void {
    if (this.#closed) return;
    const now = this.#clock.monotonic();
    for (const conn of this.#conns) conn.assess(now);
  }

  // -- observation -----------------------------------------------------------------------------

  snapshot(): UpstreamSnapshot {
    const mono = this.#clock.monotonic();
    const wall = this.#clock.now();
    const connections: ConnectionSnapshot[] = [];
    const stale = new Set<string>();
    let lastMessageAt: number | undefined;
    for (const c of this.#conns) {
      const snap = c.snapshot(mono, wall);
      connections.push(snap);
      if (snap.lastMessageAt !== undefined && (lastMessageAt === undefined || snap.lastMessageAt > lastMessageAt)) lastMessageAt = snap.lastMessageAt;
      c.staleNames(stale);
    }
    // A stream is live when some open socket has delivered it since opening and it is not stale there.
    const live = new Set<string>();
    for (const c of this.#conns) c.liveNames(live);
    for (const name of live) stale.delete(name);
    return {
      venue: this.venue,
      connections,
      streamsConfigured: this.#streams.length,
      streamsLive: live.size,
      staleStreams: [...stale].sort(),
      lastMessageAt,
      breaker: this.#breakerState,
      paused: this.#paused,
    };
  }

  stats(): UpstreamStats {
    const c = this.#counters;
    return {
      messages: c.messages,
      bytes: c.bytes,
      candles: c.candles,
      // Frames that could not even be decoded (venue.ts FrameEncoding) are parse errors too.
      parseErrors: this.#parser.parseErrors + c.decodeErrors,
      unknownStreamFrames: this.#parser.unknownStreams,
      connectionAttempts: c.connectionAttempts,
      connectionErrors: c.connectionErrors,
      reconnections: c.reconnections,
      rotations: c.rotations,
      staleEvents: c.staleEvents,
    };
  }
}
