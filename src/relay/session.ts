/**
 * One relay client: its subscriptions, output mode, rate-limit bucket, liveness stamps, the bytes it
 * holds in the relay-wide budget and the frames gathered for it during one delivery. Plain state; the
 * server owns the transitions.
 */
import type { Duplex } from 'node:stream';
import type { WebSocket } from 'ws';
import type { StreamRef } from '../core/candle.ts';
import type { Backlog } from './budget.ts';
import type { Bucket } from './rate.ts';

/**
 *   open ──(slow consumer | too many requests | shutdown: close frame queued)──▶ closing ──▶ closed
 *     └──(client timeout | socket error | relay buffer budget: terminate)────────────────────▲
 * Only `open` sessions receive data; `closing` ones wait for the close handshake or the backstop
 * timer, unless the relay-wide budget needs their backlog's memory first (then they are terminated).
 */
export type SessionState = 'open' | 'closing' | 'closed';

/** One stream's replay for one client: where it is, and what live traffic waits behind it. */
export interface ReplayTask {
  /** Open time of the next closed candle the client needs. */
  cursor: number;
  /** The history's sequence number when the replay began: entries from it on arrived live meanwhile. */
  readonly startSeq: number;
}

export class Session implements Bucket, Backlog {
  readonly id: string;
  /** Source address (the per-address client limit counts by it). */
  readonly ip: string;
  readonly ws: WebSocket;
  /** The upgraded TCP socket: pre-framed data is written here directly (see protocol.textFrame). */
  readonly socket: Duplex;
  state: SessionState = 'open';
  /** Binance's `combined` property: envelopes (`/stream`) or raw payloads (`/ws`). */
  combined: boolean;
  /** Subscribed streams, in subscription order (LIST_SUBSCRIPTIONS answers in this order). */
  readonly streams = new Set<StreamRef>();
  /** Monotonic ms of the last frame from the client (message, ping or pong). */
  lastSeen: number;
  lastPingAt: number;
  /** A ping of ours is unanswered: the next pong answers it and is not counted against the rate. */
  awaitingPong = false;
  /** Monotonic ms of the socket read being handled: every frame of that read arrived then. */
  arrivedAt: number;
  /** Rate-limit bucket (rate.ts). */
  tokens: number;
  tokensAt: number;
  /** Unsent bytes last recorded for this client in the relay-wide budget (budget.ts). */
  accounted = 0;
  /** Frames gathered for this client during the current deliver() call; empty between calls. */
  readonly pending: Buffer[] = [];
  /** Why we closed it, reported on the close event instead of the peer's echo or 1006. */
  closeCode: number | undefined;
  closeReason: string | undefined;
  closeTimer: NodeJS.Timeout | undefined;
  /**
   * Streams being replayed for `since` (resume, server.ts #pump), in request order. While a stream is
   * here its live candles are not sent: closed ones wait in the relay's history (counted in
   * heldBytes against maxBufferedBytes), open ones are dropped (a later update supersedes them).
   */
  readonly replays = new Map<StreamRef, ReplayTask>();
  /** Bytes of live closed candles that arrived during this client's replays and are not yet sent. */
  heldBytes = 0;
  /** A replay pump is running for this client. */
  pumping = false;
  /** Aborts the pump's REST fetch when the client goes. */
  readonly replayAbort = new AbortController();

  constructor(id: string, ip: string, ws: WebSocket, socket: Duplex, combined: boolean, now: number, burst: number) {
    this.id = id;
    this.ip = ip;
    this.ws = ws;
    this.socket = socket;
    this.combined = combined;
    this.lastSeen = now;
    this.lastPingAt = now;
    this.arrivedAt = now;
    this.tokens = burst;
    this.tokensAt = now;
  }
}
