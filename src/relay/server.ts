/**
 * The re-broadcast WebSocket server: Binance's public market-stream protocol on our own port, so an
 * existing Binance client works by changing its base URL (connector-contract.md §5).
 *
 * Fan-out design (the hot path is deliver()):
 * - Each event is serialized once per delivery in each form needed (raw payload, `{"stream","data"}`
 *   envelope) and framed once as a complete WebSocket text frame (protocol.textFrame). The same Buffer
 *   is written to every subscriber's TCP socket. This bypasses ws's Sender for data frames, which is
 *   valid because permessage-deflate is off and ws's Sender never queues without it (no compression,
 *   no Blob sends); control replies, pings and close frames still go through ws.
 * - An index stream id → subscribed sessions, so a candle touches only its subscribers.
 * - A batch is grouped per client and written as one buffer: one write per client per batch; clients
 *   with the same frame sequence share one concatenation (see #flush).
 *   Measured (10,000 msgs/s to 100 clients on loopback, clients in the same process): ~0.3 µs of relay
 *   CPU per message per client this way, against ~3.3 µs with ws.send() per client, which could not
 *   keep up at that rate.
 * - Backpressure is per client: a client whose unsent bytes would pass maxBufferedBytes gets nothing
 *   more and is closed 1008 "slow consumer" (close frame queued behind its backlog), terminated if the
 *   close has not completed within closeTimeoutMs. Nobody else waits for it. The bound covers every
 *   byte queued on the socket, whatever produced it: data, control replies, errors, pongs and pings
 *   all go out through a path that checks it (#flush for data, #send for the rest), so a client that
 *   stops reading is cut whether or not it is subscribed (issue 12: unchecked error replies grew RSS
 *   by 350 MB in 40 s). Pongs are ours to send (autoPong off) for the same reason.
 *
 * - A relay-wide budget (budget.ts) bounds the sum of every client's unsent bytes: past it the
 *   largest backlogs are cut first; above its low watermark, or under heap pressure (a
 *   `heap.pressure` status event from ops/heap.ts), new clients get 503.
 *
 * Abuse limits at upgrade, in order: path → token (401) → maxClients (503) → maxClientsPerIp (429)
 * → budget / heap pressure (503). Rejections are reported with their reason clipped, and answered
 * with a body that never echoes more than a short prefix of the input (issue 12: 2000 upgrades with
 * a 15 KB bad parameter wrote 30 MB of logs).
 *
 * Choices where Binance is silent or differs: a SUBSCRIBE naming a stream we do not serve gets error
 * code 2 naming it, clipped to 100 characters (Binance accepts and sends nothing); unserved names in
 * the URL path are ignored (Binance-like); binary frames get code 3 "Invalid JSON: expected a text
 * frame" and the connection stays open; the rate limit (rate.ts) is a token bucket: 5/s sustained,
 * bursts of 2 s worth, charged at arrival, counting messages, client pings and unsolicited pongs
 * (a pong answering our own ping is free, since its rate is our configuration); `timeUnit=MICROSECOND`
 * is refused with HTTP 400 instead of sending millisecond timestamps.
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type * as NodeHttp from 'node:http';
import { createRequire } from 'node:module';
import { createServer as createTlsServer, type Server as TlsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { createHash, timingSafeEqual } from 'node:crypto';
import { WebSocket, WebSocketServer, type RawData, type ServerOptions } from 'ws';
import type { Candle, CandleSink, StreamRef } from '../core/candle.ts';
import { systemClock, type Clock } from '../core/clock.ts';
import { errorMessage } from '../core/errors.ts';
import type { RelayStats } from '../core/stats.ts';
import type { Disposable, StatusStream } from '../core/status.ts';
import type { Config } from '../config/schema.ts';
import type { Logger } from '../ops/logger.ts';
import {
  BINARY_FRAME_ERROR,
  ERR_INVALID_REQUEST,
  MAX_PARAMS,
  envelopeFrame,
  envelopePrefix,
  errorReply,
  klinePayload,
  parseControl,
  parseUpgradeUrl,
  resultReply,
  serverShutdownPayload,
  textFrame,
  type ControlError,
  type ControlLimits,
  type ControlRequest,
  type UpgradeTarget,
} from './protocol.ts';
import { Session, type ReplayTask } from './session.ts';
import { History } from './history.ts';
import { candlesBetween, nextOpenTime, nominalMs, openTimeAt } from '../core/intervals.ts';
import { sleep } from '../core/sleep.ts';
import { BufferLedger, RECONCILE_MS, budgetFindings, defaultBudget, heapLimitBytes } from './budget.ts';
import { BURST_SECONDS, takeToken } from './rate.ts';
import { TlsWatcher, readTlsPair } from './tls.ts';
import { DEFAULT_HOLE_HORIZON_MS, settleRange, type RecoveredRange } from '../core/recovery.ts';

// node:http through require, not an ESM import: an ESM import of a builtin reads every export, and
// node:http's lazy WebSocket/CloseEvent/MessageEvent getters then load Node's bundled undici and its
// WebAssembly parser, which the daemon never uses (13 MB of RSS in a bare process; ARCHITECTURE.md,
// Performance / Memory; test/ops/footprint.test.ts).
const { createServer, STATUS_CODES } = createRequire(import.meta.url)('node:http') as typeof NodeHttp;

export interface RelayOptions {
  config: Config['relay'];
  status: StatusStream;
  log: Logger;
  clock?: Clock;
  /** Which stream names this relay serves (e.g. 'btcusdt@kline_1m' → StreamRef); unknown names → SUBSCRIBE error code 2 naming the stream. */
  resolve: (name: string) => StreamRef | undefined;
  /**
   * Sharded (contract §10): for a configured stream another shard serves, that shard's label
   * (`shard 2/3`), so its SUBSCRIBE error names where to go; undefined for names nobody serves.
   */
  elsewhere?: (name: string) => string | undefined;
  /** This replica's shard label, in that error. */
  shardLabel?: string;
  /** V8's heap limit, which the default relay-wide budget derives from. Default: this process's. */
  heapLimitBytes?: number;
  /**
   * Closed candles of [from, toExclusive) from the venue's REST, for replays reaching past the
   * history (or from before this process started). Absent: such a replay starts at the history's
   * oldest candle.
   */
  replay?: ReplayFetch;
  /** CONNECTOR_HOLE_HORIZON_MS: a replay takes a range REST does not have as a hole by the same rule as gap recovery (core/recovery.ts settleRange). */
  holeHorizonMs?: number;
}

/** A REST answer for a replay range, in gap recovery's terms (with REST's frontier when the venue's client knows it). */
export type ReplayFetch = (stream: StreamRef, fromOpenTime: number, toOpenTimeExclusive: number, signal: AbortSignal) => Promise<RecoveredRange | readonly Candle[]>;

/** Most bytes one replay step writes at once (one buffer, one write), before yielding or waiting for drain. */
const REPLAY_CHUNK_BYTES = 64 * 1024;
/** A replay waits this long before asking REST again (after an error, or while REST lags the range). */
const REPLAY_REST_RETRY_MS = 1000;
/** Most candles one REST step of a replay asks for: writing starts after a page, and gap recovery can cut in between steps. */
const REPLAY_REST_PAGE = 1000;

/** Code used on relay.client.error for transport-level errors (oversized frame, invalid UTF-8, socket reset). */
const TRANSPORT_ERROR = -1;

/** Longest client-supplied text echoed in an error reply or a rejection (issue 12: 64 KB in, 128 KB out). */
const ECHO_MAX_CHARS = 100;
/** Longest client-influenced text in a status event (and so in a log line). */
const EVENT_TEXT_MAX_CHARS = 200;

/**
 * `text` cut to at most `max` characters (the last one an ellipsis when cut), never splitting a
 * surrogate pair. Not escaped: the reply's JSON encoding escapes it, once.
 */
function clip(text: string, max: number): string {
  if (text.length <= max) return text;
  let end = max - 1;
  const last = text.charCodeAt(end - 1);
  if (last >= 0xd800 && last <= 0xdbff) end--; // a high surrogate whose pair would be cut off
  return `${text.slice(0, end)}…`;
}

function digest(s: string): Buffer {
  return createHash('sha256').update(s).digest();
}

/** Constant-time token check: compare fixed-length digests so neither content nor length leaks through timing. */
function tokenMatches(expected: Buffer, given: string | undefined): boolean {
  if (given === undefined) return false;
  return timingSafeEqual(expected, digest(given));
}

function bearer(req: IncomingMessage): string | undefined {
  const h = req.headers.authorization;
  if (h === undefined) return undefined;
  const m = /^Bearer\s+(\S+)\s*$/i.exec(h);
  return m?.[1];
}

function remoteOf(req: IncomingMessage): string {
  const s = req.socket;
  return `${s.remoteAddress ?? '?'}:${s.remotePort ?? 0}`;
}

/** The source address the per-address limit counts by: IPv4 clients of a dual-stack listener as plain IPv4. */
function addressOf(req: IncomingMessage): string {
  const a = req.socket.remoteAddress ?? '?';
  return a.startsWith('::ffff:') ? a.slice(7) : a;
}

function ignoreError(): void {
  // The socket is being rejected or destroyed; its error (usually ECONNRESET) has no one to tell.
}

/** Answer an upgrade with a plain HTTP error and close the socket (like ws's abortHandshake). */
function rejectSocket(socket: Duplex, status: number, reason: string, extraHeaders = ''): void {
  socket.on('error', ignoreError);
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  socket.once('finish', () => socket.destroy());
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\nConnection: close\r\nContent-Type: text/plain\r\n` +
      `Content-Length: ${Buffer.byteLength(reason)}\r\n${extraHeaders}\r\n${reason}`,
  );
}

/** Plain HTTP on the relay port: tell the caller to upgrade (or that the path does not exist). */
function onPlainRequest(req: IncomingMessage, res: ServerResponse): void {
  const target = parseUpgradeUrl(req.url ?? '/');
  const status = target.kind === 'not-found' ? 404 : 426;
  res.writeHead(status, { 'content-type': 'text/plain', connection: 'close' });
  res.end(target.kind === 'not-found' ? 'not found' : 'WebSocket upgrade required');
}

function rawToString(data: RawData): string {
  if (Buffer.isBuffer(data)) return data.toString('utf8');
  if (Array.isArray(data)) return Buffer.concat(data).toString('utf8');
  return Buffer.from(data).toString('utf8');
}

export class RelayServer implements CandleSink {
  readonly name = 'relay' as const;
  readonly #config: Config['relay'];
  /** One SUBSCRIBE may name as many streams as a client may hold: Binance's 1024, or more when the cap is raised. */
  readonly #controlLimits: ControlLimits;
  readonly #status: StatusStream;
  readonly #log: Logger;
  readonly #clock: Clock;
  readonly #resolve: (name: string) => StreamRef | undefined;
  readonly #elsewhere: ((name: string) => string | undefined) | undefined;
  readonly #shardLabel: string | undefined;
  readonly #token: Buffer | undefined;
  readonly #http: Server | TlsServer;
  readonly #tls: TlsWatcher | undefined;
  readonly #wss: WebSocketServer;
  readonly #sessions = new Set<Session>();
  /** Open connections per source address (addressOf). */
  readonly #perAddress = new Map<string, number>();
  /** Unsent bytes across all clients, against the relay-wide budget. */
  readonly #ledger: BufferLedger<Session>;
  /** Earliest monotonic ms at which an upgrade may reconcile the ledger again. */
  #reconcileAfter = 0;
  /** Admission state: why new clients get 503, if they do. */
  #refusing: 'buffers' | 'heap' | undefined;
  #heapHigh = false;
  readonly #heapEvents: Disposable;
  /** stream id → sessions subscribed to it (StreamRef ids are dense). */
  readonly #subscribers: (Set<Session> | undefined)[] = [];
  /** Per stream id: `{"stream":"<name>","data":` as bytes, built on first delivery. */
  readonly #prefixes: (Buffer | undefined)[] = [];
  /** Sessions that got frames in the current deliver() call (reused array: no allocation per batch). */
  readonly #touched: Session[] = [];
  /** Recent closed candles per stream, for `since` (history.ts). */
  readonly #history: History;
  readonly #replayFetch: ReplayFetch | undefined;
  readonly #holeHorizonMs: number;
  #seq = 0;
  #accepting = true;
  #listening = false;
  #sweep: NodeJS.Timeout | undefined;
  /** The last concatenated batch of this delivery, reused by clients with the same frame sequence. */
  #lastBatch: { frames: Buffer[]; bytes: Buffer } | undefined;
  #closing: Promise<void> | undefined;
  #allClosed: (() => void) | undefined;

  // counters (RelayStats)
  #clientsTotal = 0;
  #rejected = 0;
  #slowConsumers = 0;
  #messagesSent = 0;
  #bytesSent = 0;
  #clientErrors = 0;
  #budgetCuts = 0;
  #rateLimited = 0;
  #replayedCandles = 0;
  #replayedFromRest = 0;

  constructor(options: RelayOptions) {
    this.#config = options.config;
    this.#controlLimits = { maxParams: Math.max(MAX_PARAMS, options.config.maxStreamsPerClient) };
    this.#status = options.status;
    this.#log = options.log;
    this.#clock = options.clock ?? systemClock;
    this.#resolve = options.resolve;
    this.#elsewhere = options.elsewhere;
    this.#shardLabel = options.shardLabel;
    this.#history = new History(options.config.historyCandles);
    this.#replayFetch = options.replay;
    this.#holeHorizonMs = options.holeHorizonMs ?? DEFAULT_HOLE_HORIZON_MS;
    this.#token = options.config.token === undefined ? undefined : digest(options.config.token);

    // `closeTimeout` (ws ≥ 8.18) is missing from @types/ws: ws's own backstop after close(), matching ours.
    const wsOptions: ServerOptions & { closeTimeout: number } = {
      noServer: true,
      clientTracking: false,
      perMessageDeflate: false, // required by the pre-framed fan-out, and cheaper for everyone
      maxPayload: options.config.maxFrameBytes,
      closeTimeout: options.config.closeTimeoutMs,
      // We answer pings ourselves (#onPing), through the bound-checked path: ws's automatic pongs
      // would be queued for a client that never reads, unbounded.
      autoPong: false,
    };
    this.#wss = new WebSocketServer(wsOptions);
    // With a listener, ws leaves failed handshakes to us instead of writing its own 400.
    this.#wss.on('wsClientError', (err: Error, socket: Duplex, req: IncomingMessage) => {
      this.#reject(socket, req, 400, err.message);
    });

    const heapLimit = options.heapLimitBytes ?? heapLimitBytes();
    this.#ledger = new BufferLedger(options.config.maxTotalBufferedBytes ?? defaultBudget(heapLimit));
    const findings = budgetFindings(options.config, this.#ledger.limit, heapLimit);
    if (findings.length > 0) {
      this.#log.warn(
        {
          event: 'config.warning',
          heapLimitBytes: heapLimit,
          budgetBytes: this.#ledger.limit,
          worstCaseBytes: options.config.maxClients * options.config.maxBufferedBytes,
        },
        findings.join('; '),
      );
    }
    const tls = options.config.tls;
    if (tls === undefined) {
      this.#http = createServer(onPlainRequest);
      this.#tls = undefined;
    } else {
      const pair = readTlsPair(tls);
      const server = createTlsServer({ cert: pair.cert, key: pair.key }, onPlainRequest);
      this.#http = server;
      this.#tls = new TlsWatcher({
        files: tls,
        initial: pair,
        apply: (next) => {
          server.setSecureContext({ cert: next.cert, key: next.key });
        },
        onReload: (outcome) => {
          this.#status.emit(outcome.ok ? { type: 'relay.tls', outcome: 'reloaded' } : { type: 'relay.tls', outcome: 'failed', error: outcome.error });
        },
      });
    }
    this.#http.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      this.#onUpgrade(req, socket, head);
    });
    this.#heapEvents = this.#status.on('heap.pressure', (e) => {
      this.#onHeapPressure(e.state === 'high');
    });
  }

  listen(): Promise<{ host: string; port: number }> {
    return new Promise((resolve, reject) => {
      const onError = (err: Error): void => {
        reject(err);
      };
      this.#http.once('error', onError);
      this.#http.listen(this.#config.port, this.#config.host, () => {
        this.#http.off('error', onError);
        this.#http.on('error', (err) => {
          this.#log.error({ err: errorMessage(err) }, 'relay listener error');
        });
        this.#listening = true;
        this.#startSweep();
        this.#tls?.start();
        const addr = this.#http.address() as AddressInfo;
        resolve({ host: addr.address, port: addr.port });
      });
    });
  }

  /**
   * Fan one batch out to subscribers. Synchronous: writes go to socket buffers, never waiting for a
   * client. Never throws: a fault here must not stop the pipeline's other sinks.
   */
  deliver(batch: readonly Candle[]): void {
    if (batch.length === 0) return;
    const touched = this.#touched;
    const history = this.#history;
    try {
      const now = this.#clock.now();
      for (const candle of batch) {
        let payload: Buffer | undefined;
        // History first: a replay reading it up to its end then continues live with this very candle's successor.
        if (candle.closed && history.enabled) history.append(candle.stream.id, candle.openTime, (payload = klinePayload(candle, now)));
        const subs = this.#subscribers[candle.stream.id];
        if (subs === undefined || subs.size === 0) continue;
        let rawFrame: Buffer | undefined;
        let envFrame: Buffer | undefined;
        for (const s of subs) {
          if (s.state !== 'open') continue;
          if (s.replays.size > 0 && s.replays.has(candle.stream)) {
            // Replaying this stream: a closed candle waits in the history for the replay (bounded by
            // the client's byte cap, like a backlog); an open one is dropped (the next update supersedes it).
            if (candle.closed) this.#hold(s, (payload ??= klinePayload(candle, now)).length);
            continue;
          }
          let frame: Buffer;
          if (s.combined) {
            envFrame ??= envelopeFrame(this.#envelopePrefix(candle.stream), (payload ??= klinePayload(candle, now)));
            frame = envFrame;
          } else {
            rawFrame ??= textFrame((payload ??= klinePayload(candle, now)));
            frame = rawFrame;
          }
          if (s.pending.length === 0) touched.push(s);
          s.pending.push(frame);
        }
      }
      for (const s of touched) this.#flush(s);
    } catch (err) {
      this.#log.error({ err: errorMessage(err) }, 'relay delivery failed');
    } finally {
      for (const s of touched) s.pending.length = 0;
      touched.length = 0;
      this.#lastBatch = undefined;
    }
  }

  #envelopePrefix(ref: StreamRef): Buffer {
    return (this.#prefixes[ref.id] ??= envelopePrefix(ref.name));
  }

  stopAccepting(): void {
    this.#accepting = false;
  }

  /**
   * The recent closed candles it keeps for `since` (history.ts), for a broker sink's catch-up: what the
   * relay sent, in order, so a range it still holds needs no REST weight. Entries are copies (a sink may
   * hold one across awaits, past the ring's eviction).
   */
  recentCandles(): { oldest(ref: StreamRef): number | undefined; read(ref: StreamRef, from: number, toExclusive: number, max: number): { openTime: number; payload: Buffer }[] } {
    const history = this.#history;
    return {
      oldest: (ref) => (history.enabled ? history.oldest(ref.id) : undefined),
      read: (ref, from, toExclusive, max) => {
        if (!history.enabled) return [];
        const out: { openTime: number; payload: Buffer }[] = [];
        for (const e of history.read(ref.id, from, max, Number.POSITIVE_INFINITY)) {
          if (e.openTime >= toExclusive) break;
          out.push({ openTime: e.openTime, payload: Buffer.from(e.payload) });
        }
        return out;
      },
    };
  }

  /**
   * `maxWaitMs` bounds the whole close (shutdown has a grace budget): clients that have not completed
   * their close handshake by then are terminated. Default: each client's closeTimeoutMs backstop.
   */
  close(maxWaitMs?: number): Promise<void> {
    this.#closing ??= this.#close(maxWaitMs);
    return this.#closing;
  }

  stats(): RelayStats {
    let replays = 0;
    for (const s of this.#sessions) replays += s.replays.size;
    return {
      historyCandles: this.#history.candles,
      historyBytes: this.#history.bytes,
      replays,
      replayedCandles: this.#replayedCandles,
      replayedFromRest: this.#replayedFromRest,
      clients: this.#sessions.size,
      bufferedBytes: this.#ledger.reconcile(this.#sessions),
      bufferBudgetBytes: this.#ledger.limit,
      budgetCuts: this.#budgetCuts,
      rateLimited: this.#rateLimited,
      clientsTotal: this.#clientsTotal,
      rejected: this.#rejected,
      slowConsumers: this.#slowConsumers,
      messagesSent: this.#messagesSent,
      bytesSent: this.#bytesSent,
      clientErrors: this.#clientErrors,
    };
  }

  // -------------------------------------------------------------------------------------------
  // Upgrade

  /** `reason` may carry client input (a bad query value): the event and the body get a clipped copy. */
  #reject(socket: Duplex, req: IncomingMessage, status: number, reason: string, extraHeaders = ''): void {
    this.#rejected++;
    const clipped = clip(reason, ECHO_MAX_CHARS);
    this.#status.emit({ type: 'relay.client.rejected', remote: remoteOf(req), status, reason: clipped });
    rejectSocket(socket, status, clipped, extraHeaders);
  }

  #onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    if (!this.#accepting) {
      this.#reject(socket, req, 503, 'shutting down');
      return;
    }
    const target = parseUpgradeUrl(req.url ?? '/');
    if (target.kind === 'not-found') {
      this.#reject(socket, req, 404, 'not found');
      return;
    }
    if (target.kind === 'bad-request') {
      this.#reject(socket, req, 400, target.reason);
      return;
    }
    if (this.#token !== undefined) {
      const ok = tokenMatches(this.#token, bearer(req)) || tokenMatches(this.#token, target.token);
      if (!ok) {
        this.#reject(socket, req, 401, 'unauthorized', 'WWW-Authenticate: Bearer\r\n');
        return;
      }
    }
    if (this.#sessions.size >= this.#config.maxClients) {
      this.#reject(socket, req, 503, 'too many clients');
      return;
    }
    const address = addressOf(req);
    if ((this.#perAddress.get(address) ?? 0) >= this.#config.maxClientsPerIp) {
      this.#reject(socket, req, 429, 'too many clients from this address');
      return;
    }
    if (!this.#admitting()) {
      this.#reject(socket, req, 503, this.#refusing === 'heap' ? 'memory pressure' : 'relay buffers full');
      return;
    }
    // Streams in the URL that we do not serve are ignored, as Binance does (ccxt opens /ws/0, then subscribes).
    const refs = new Set<StreamRef>();
    for (const name of target.streams) {
      const ref = this.#resolve(name);
      if (ref !== undefined) refs.add(ref);
    }
    if (refs.size > this.#config.maxStreamsPerClient) {
      this.#reject(socket, req, 400, `too many streams: at most ${this.#config.maxStreamsPerClient} per connection`);
      return;
    }
    if (target.since !== undefined) {
      const refused = this.#sinceRefusal(refs, target.since);
      if (refused !== undefined) {
        this.#reject(socket, req, 400, refused);
        return;
      }
    }
    // No verifyClient: ws completes the handshake synchronously, so the maxClients check above holds.
    this.#wss.handleUpgrade(req, socket, head, (ws) => {
      this.#accept(ws, socket, req, address, target, refs);
    });
  }

  #accept(ws: WebSocket, socket: Duplex, req: IncomingMessage, address: string, target: UpgradeTarget & { kind: 'ok' }, refs: Set<StreamRef>): void {
    const rate = this.#config.maxMessagesPerSecond;
    const session = new Session(`relay-${++this.#seq}`, address, ws, socket, target.combined, this.#clock.monotonic(), rate * BURST_SECONDS);
    this.#sessions.add(session);
    this.#perAddress.set(address, (this.#perAddress.get(address) ?? 0) + 1);
    this.#clientsTotal++;
    for (const ref of refs) this.#subscribe(session, ref);
    if (target.since !== undefined) this.#startReplays(session, refs, target.since);
    // One small closure per connection (not per message) to carry the session to the handlers.
    // Runs before ws's own 'data' listener, which parses and emits every frame of this read
    // synchronously: they all arrived now, however long handling the earlier ones takes.
    socket.prependListener('data', () => {
      session.arrivedAt = this.#clock.monotonic();
    });
    ws.on('message', (data: RawData, isBinary: boolean) => {
      this.#onMessage(session, data, isBinary);
    });
    ws.on('ping', (data: Buffer) => {
      this.#onPing(session, data);
    });
    ws.on('pong', () => {
      this.#onPong(session);
    });
    ws.on('error', (err: Error) => {
      this.#onError(session, err);
    });
    ws.on('close', (code: number, reason: Buffer) => {
      this.#onClose(session, code, reason);
    });
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    this.#status.emit({ type: 'relay.client.open', clientId: session.id, remote: remoteOf(req), path: clip(path, EVENT_TEXT_MAX_CHARS) });
    if (!this.#accepting) this.#shutdownSession(session, this.#clock.now());
  }

  // -------------------------------------------------------------------------------------------
  // Inbound

  /**
   * Binance counts every inbound frame (messages, pings, pongs) against 5/s. So do we, at arrival
   * (rate.ts), except a pong answering our own ping (#onPong): that rate is our configuration.
   */
  #admit(session: Session): boolean {
    const at = session.arrivedAt;
    session.lastSeen = at;
    if (takeToken(session, at, this.#config.maxMessagesPerSecond)) return true;
    this.#rateLimited++;
    this.#closeSession(session, 1008, 'Too many requests');
    return false;
  }

  /** Unsolicited pongs are counted: they cost as much to receive as anything else (issue 12: 4 clients, 100 % CPU). */
  #onPong(session: Session): void {
    if (session.state !== 'open') return;
    if (session.awaitingPong) {
      session.awaitingPong = false;
      session.lastSeen = session.arrivedAt;
      return;
    }
    this.#admit(session);
  }

  #onPing(session: Session, data: Buffer): void {
    if (session.state !== 'open' || !this.#admit(session)) return;
    // A pong is 2 header bytes plus the ping's payload (at most 125 bytes).
    if (!this.#fits(session, 2 + data.length)) return;
    session.ws.pong(data);
    this.#account(session, session.socket.writableLength);
  }

  #onMessage(session: Session, data: RawData, isBinary: boolean): void {
    if (session.state !== 'open') return;
    if (!this.#admit(session)) return;
    if (isBinary) {
      this.#replyError(session, BINARY_FRAME_ERROR);
      return;
    }
    const parsed = parseControl(rawToString(data), this.#controlLimits);
    if (!parsed.ok) {
      this.#replyError(session, parsed.error);
      return;
    }
    this.#handle(session, parsed.request);
  }

  #handle(session: Session, req: ControlRequest): void {
    switch (req.method) {
      case 'SUBSCRIBE': {
        const add = new Set<StreamRef>();
        for (const name of req.params) {
          const ref = this.#resolve(name);
          if (ref === undefined) {
            const other = this.#elsewhere?.(name);
            const where = other === undefined ? '' : `; it is served by ${other} (this relay is ${this.#shardLabel ?? 'another shard'})`;
            this.#replyError(session, {
              // Clipped, and quoted without escaping: errorReply's JSON encoding escapes it once.
              error: { code: ERR_INVALID_REQUEST, msg: `Invalid request: stream "${clip(name, ECHO_MAX_CHARS)}" is not served by this relay${where}` },
              id: req.id,
            });
            return;
          }
          if (!session.streams.has(ref)) add.add(ref);
        }
        if (session.streams.size + add.size > this.#config.maxStreamsPerClient) {
          this.#replyError(session, {
            error: { code: ERR_INVALID_REQUEST, msg: `Invalid request: too many streams: at most ${this.#config.maxStreamsPerClient} per connection` },
            id: req.id,
          });
          return;
        }
        if (req.since !== undefined) {
          const refused = this.#sinceRefusal(add, req.since);
          if (refused !== undefined) {
            this.#replyError(session, { error: { code: ERR_INVALID_REQUEST, msg: `Invalid request: ${refused}` }, id: req.id });
            return;
          }
        }
        for (const ref of add) this.#subscribe(session, ref);
        this.#reply(session, resultReply(null, req.id));
        // Already-subscribed streams are live for this client: `since` applies to the new ones.
        if (req.since !== undefined) this.#startReplays(session, add, req.since);
        return;
      }
      case 'UNSUBSCRIBE': {
        // Like Binance, unsubscribing from something not subscribed (or unknown) is not an error.
        for (const name of req.params) {
          const ref = this.#resolve(name);
          if (ref !== undefined) this.#unsubscribe(session, ref);
        }
        this.#reply(session, resultReply(null, req.id));
        return;
      }
      case 'LIST_SUBSCRIPTIONS': {
        const names: string[] = [];
        for (const ref of session.streams) names.push(ref.name);
        this.#reply(session, resultReply(names, req.id));
        return;
      }
      case 'SET_PROPERTY':
        session.combined = req.value;
        this.#reply(session, resultReply(null, req.id));
        return;
      case 'GET_PROPERTY':
        this.#reply(session, resultReply(session.combined, req.id));
        return;
    }
  }

  /** Replies are framed here and written like data (as bytes, off the V8 heap), through the bound check. */
  #reply(session: Session, text: string): void {
    this.#send(session, textFrame(text));
  }

  #replyError(session: Session, err: ControlError): void {
    this.#clientErrors++;
    this.#status.emit({ type: 'relay.client.error', clientId: session.id, code: err.error.code, msg: clip(err.error.msg, EVENT_TEXT_MAX_CHARS) });
    this.#reply(session, errorReply(err));
  }

  #onError(session: Session, err: Error): void {
    // ws has already started closing (1009 oversized frame, 1007 bad UTF-8, 1002 protocol) or the socket died.
    this.#clientErrors++;
    this.#status.emit({ type: 'relay.client.error', clientId: session.id, code: TRANSPORT_ERROR, msg: errorMessage(err) });
  }

  #onClose(session: Session, code: number, reason: Buffer): void {
    session.state = 'closed';
    if (session.closeTimer !== undefined) clearTimeout(session.closeTimer);
    session.closeTimer = undefined;
    for (const ref of session.streams) this.#subscribers[ref.id]?.delete(session);
    session.streams.clear();
    this.#endReplays(session);
    this.#sessions.delete(session);
    this.#ledger.release(session);
    const left = (this.#perAddress.get(session.ip) ?? 1) - 1;
    if (left > 0) this.#perAddress.set(session.ip, left);
    else this.#perAddress.delete(session.ip);
    this.#status.emit({
      type: 'relay.client.close',
      clientId: session.id,
      code: session.closeCode ?? code,
      reason: session.closeReason ?? reason.toString('utf8'),
    });
    if (this.#sessions.size === 0) this.#allClosed?.();
  }

  // -------------------------------------------------------------------------------------------
  // Subscriptions and outbound

  #subscribe(session: Session, ref: StreamRef): void {
    session.streams.add(ref);
    let subs = this.#subscribers[ref.id];
    if (subs === undefined) {
      subs = new Set();
      this.#subscribers[ref.id] = subs;
    }
    subs.add(session);
  }

  #unsubscribe(session: Session, ref: StreamRef): void {
    if (!session.streams.delete(ref)) return;
    this.#subscribers[ref.id]?.delete(session);
    if (session.replays.delete(ref) && session.replays.size === 0) session.heldBytes = 0;
  }

  // -------------------------------------------------------------------------------------------
  // Resume (`since`, contract §5)

  /** Why `since` cannot be served for these streams (the text of a 400 / code 2), or undefined. */
  #sinceRefusal(refs: Iterable<StreamRef>, since: number): string | undefined {
    if (!this.#history.enabled) return 'since is not available: the relay keeps no history (CONNECTOR_RELAY_HISTORY_CANDLES=0)';
    const max = this.#config.replayMaxCandles;
    const now = this.#clock.now();
    for (const ref of refs) {
      const current = openTimeAt(ref.interval, now);
      if (candlesBetween(ref.interval, firstOpenTime(ref.interval, since), current) > max) {
        return `since is too far back for ${clip(ref.name, ECHO_MAX_CHARS)}: at most ${max} candles (CONNECTOR_RELAY_REPLAY_MAX_CANDLES)`;
      }
    }
    return undefined;
  }

  /** Begin replaying `refs` from `since` for a client (a since in the future: nothing to replay, live). */
  #startReplays(s: Session, refs: Iterable<StreamRef>, since: number): void {
    const now = this.#clock.now();
    for (const ref of refs) {
      if (since > openTimeAt(ref.interval, now) || s.replays.has(ref)) continue;
      s.replays.set(ref, { cursor: firstOpenTime(ref.interval, since), startSeq: this.#history.seq(ref.id), });
    }
    if (s.replays.size > 0 && !s.pumping) void this.#pump(s);
  }

  /** A live closed candle waits for a client's replay: past the client's byte cap, it is a slow consumer. */
  #hold(s: Session, bytes: number): void {
    s.heldBytes += bytes;
    if (s.socket.writableLength + s.heldBytes > this.#config.maxBufferedBytes) this.#slowConsumer(s, s.socket.writableLength + s.heldBytes);
  }

  #endReplays(s: Session): void {
    s.replays.clear();
    s.heldBytes = 0;
    s.replayAbort.abort();
  }

  /**
   * Write a client's replays, one stream after the other, chunk by chunk: at most REPLAY_CHUNK_BYTES
   * per write, and the next only once the socket has drained (or, if it never asked to, after a turn
   * of the event loop), so a replay never queues more than a chunk past the socket's own buffer and
   * never holds the loop. A stream's replay reads the history by open time (`cursor`) and ends, in
   * the same synchronous step, when the history has nothing newer: the next closed candle delivered
   * goes out live. Candles older than the history come from REST (#replayFetch).
   */
  async #pump(s: Session): Promise<void> {
    s.pumping = true;
    try {
      while (s.state === 'open' && s.replays.size > 0) {
        const first = s.replays.entries().next();
        if (first.done === true) break;
        const [ref, task] = first.value;
        const oldest = this.#history.oldest(ref.id);
        const current = openTimeAt(ref.interval, this.#clock.now());
        const restEnd = oldest ?? current;
        if (task.cursor < restEnd && this.#replayFetch !== undefined) {
          await this.#replayRest(s, ref, task, restEnd);
          continue;
        }
        if (oldest !== undefined && task.cursor < oldest) {
          // REST has nothing more for the range (or there is no REST): a hole for this client, said once.
          this.#log.warn({ clientId: s.id, stream: ref.name, from: task.cursor, to: oldest }, 'relay replay: candles before the history are unavailable; skipped');
          task.cursor = oldest;
        }
        const entries = this.#history.read(ref.id, task.cursor, 4096, Math.min(REPLAY_CHUNK_BYTES, Math.floor(this.#config.maxBufferedBytes / 4)));
        if (entries.length === 0) {
          // Caught up, synchronously with delivery: live from the next closed candle on.
          s.replays.delete(ref);
          if (s.replays.size === 0) s.heldBytes = 0;
          continue;
        }
        const frames: Buffer[] = [];
        let held = 0;
        for (const e of entries) {
          frames.push(this.#frameFor(s, ref, e.payload));
          if (e.seq >= task.startSeq) held += e.payload.length;
        }
        const last = entries[entries.length - 1];
        if (last !== undefined) task.cursor = nextOpenTime(ref.interval, last.openTime);
        s.heldBytes = Math.max(0, s.heldBytes - held);
        this.#writeReplay(s, frames);
        await this.#room(s);
      }
    } catch (err) {
      this.#log.error({ err: errorMessage(err), clientId: s.id }, 'relay replay failed');
      this.#closeSession(s, 1011, 'replay failed');
    } finally {
      s.pumping = false;
      if (s.state !== 'open') this.#endReplays(s);
    }
  }

  /** One REST step of a replay: [cursor, end) written in chunks as it comes back. */
  async #replayRest(s: Session, ref: StreamRef, task: ReplayTask, end: number): Promise<void> {
    const fetch = this.#replayFetch;
    if (fetch === undefined) return;
    end = Math.min(end, task.cursor + REPLAY_REST_PAGE * nominalMs(ref.interval));
    let answer: RecoveredRange | readonly Candle[];
    try {
      answer = await fetch(ref, task.cursor, end, s.replayAbort.signal);
    } catch (err) {
      if (s.state !== 'open') return;
      // An exchange error is a state: the replay waits and asks again (the gate and breaker pace it).
      this.#log.warn({ err: errorMessage(err), clientId: s.id, stream: ref.name }, 'relay replay: REST failed, retrying');
      await sleep(REPLAY_REST_RETRY_MS, s.replayAbort.signal).catch(ignoreError);
      return;
    }
    if (!live(s, ref, task)) return;
    // The same hole rule as gap recovery: what REST has not got yet (it lags) is asked for again; a hole
    // is skipped only once REST has moved past it or it is older than the horizon.
    const from = task.cursor;
    const settled = settleRange(ref.interval, from, end, answer, this.#clock.now(), this.#holeHorizonMs);
    const fresh = settled.final;
    if (settled.holes > 0) this.#log.info({ clientId: s.id, stream: ref.name, from, to: settled.reached, holes: settled.holes }, 'relay replay: holes REST does not have, skipped');
    if (fresh.length === 0) {
      task.cursor = settled.reached;
      if (settled.reached < end) await sleep(REPLAY_REST_RETRY_MS, s.replayAbort.signal).catch(ignoreError);
      return;
    }
    const now = this.#clock.now();
    const limit = Math.min(REPLAY_CHUNK_BYTES, Math.floor(this.#config.maxBufferedBytes / 4));
    let frames: Buffer[] = [];
    let bytes = 0;
    for (const c of fresh) {
      if (!live(s, ref, task)) return;
      if (c.openTime < task.cursor) continue;
      const frame = this.#frameFor(s, ref, klinePayload(c, now));
      frames.push(frame);
      bytes += frame.length;
      task.cursor = nextOpenTime(ref.interval, c.openTime);
      this.#replayedFromRest++;
      if (bytes >= limit) {
        this.#writeReplay(s, frames);
        frames = [];
        bytes = 0;
        await this.#room(s);
      }
    }
    if (frames.length > 0) {
      this.#writeReplay(s, frames);
      await this.#room(s);
    }
    // Holes after the last candle REST had, up to where the range is settled, are skipped too.
    if (live(s, ref, task) && settled.reached > task.cursor) task.cursor = settled.reached;
  }

  #frameFor(s: Session, ref: StreamRef, payload: Buffer): Buffer {
    return s.combined ? envelopeFrame(this.#envelopePrefix(ref), payload) : textFrame(payload);
  }

  /** Write one replay chunk (accounted like data; the pump's pacing keeps it under the client's cap). */
  #writeReplay(s: Session, frames: Buffer[]): void {
    const socket = s.socket;
    if (s.state !== 'open' || s.ws.readyState !== WebSocket.OPEN || !socket.writable) return;
    const bytes = frames.length === 1 && frames[0] !== undefined ? frames[0] : Buffer.concat(frames);
    const buffered = socket.writableLength;
    if (buffered + s.heldBytes + bytes.length > this.#config.maxBufferedBytes) {
      this.#slowConsumer(s, buffered + s.heldBytes);
      return;
    }
    socket.write(bytes);
    this.#messagesSent += frames.length;
    this.#replayedCandles += frames.length;
    this.#bytesSent += bytes.length;
    if (this.#ledger.record(s, buffered + bytes.length)) this.#overBudget();
  }

  /** Resolves when the client's socket has room for the next chunk (drained), or is gone. */
  #room(s: Session): Promise<void> {
    const socket = s.socket;
    if (!socket.writableNeedDrain || s.state !== 'open') {
      return new Promise((resolve) => {
        setImmediate(resolve);
      });
    }
    return new Promise((resolve) => {
      const done = (): void => {
        socket.off('drain', done);
        socket.off('close', done);
        resolve();
      };
      socket.on('drain', done);
      socket.on('close', done);
    });
  }

  /**
   * Write this batch's frames for one client as ONE buffer (one write, one syscall). Clients whose
   * batch is the same frame sequence (same subscriptions, same mode: the common case of many clients
   * on the same streams) share one concatenation, so a batch costs one copy per distinct sequence
   * instead of one stream write per frame per client. A client this batch would push past its byte
   * cap gets none of it and is cut as a slow consumer.
   */
  #flush(s: Session): void {
    const socket = s.socket;
    if (s.state !== 'open' || s.ws.readyState !== WebSocket.OPEN || !socket.writable) return;
    const frames = s.pending;
    let bytes: Buffer;
    const shared = this.#lastBatch;
    if (shared !== undefined && sameFrames(shared.frames, frames)) {
      bytes = shared.bytes;
    } else {
      bytes = frames.length === 1 && frames[0] !== undefined ? frames[0] : Buffer.concat(frames);
      this.#lastBatch = { frames: frames.slice(), bytes };
    }
    const buffered = socket.writableLength;
    if (buffered + bytes.length > this.#config.maxBufferedBytes) {
      this.#slowConsumer(s, buffered);
      return;
    }
    socket.write(bytes);
    this.#messagesSent += frames.length;
    this.#bytesSent += bytes.length;
    if (this.#ledger.record(s, buffered + bytes.length)) this.#overBudget();
  }

  /**
   * Write one complete frame (a reply, serverShutdown) to a client's socket unless it would push the
   * client past its bound, in which case the client is cut as a slow consumer instead.
   */
  #send(s: Session, frame: Buffer): boolean {
    if (!this.#fits(s, frame.length)) return false;
    s.socket.write(frame);
    this.#account(s, s.socket.writableLength);
    return true;
  }

  #account(s: Session, bytes: number): void {
    if (this.#ledger.record(s, bytes)) this.#overBudget();
  }

  /**
   * Whether `bytes` more can be queued for this client. False when it is not open, or when they would
   * pass maxBufferedBytes: then the client is cut as a slow consumer.
   */
  #fits(s: Session, bytes: number): boolean {
    const socket = s.socket;
    if (s.state !== 'open' || s.ws.readyState !== WebSocket.OPEN || !socket.writable) return false;
    const buffered = socket.writableLength;
    if (buffered + bytes <= this.#config.maxBufferedBytes) return true;
    this.#slowConsumer(s, buffered);
    return false;
  }

  #slowConsumer(s: Session, bufferedBytes: number): void {
    this.#slowConsumers++;
    this.#status.emit({ type: 'relay.slow-consumer', clientId: s.id, bufferedBytes, limit: 'client' });
    // The close frame is queued behind the backlog; the backstop timer destroys the socket if it never drains.
    this.#closeSession(s, 1008, 'slow consumer');
  }

  // -------------------------------------------------------------------------------------------
  // Relay-wide budget

  /** The running total passed the budget: if it really has (sockets drain silently), cut the largest backlogs. */
  #overBudget(): void {
    if (this.#ledger.reconcile(this.#sessions) > this.#ledger.limit) this.#shed(this.#ledger.low);
  }

  /**
   * Destroy clients until the total is at most `target`: first those already closing (their backlog
   * will never be read), then the largest. Destroyed, not closed: a close frame would wait behind
   * the very bytes we need to free.
   */
  #shed(target: number): void {
    for (const s of this.#ledger.victims(this.#sessions, target, (v) => v.state !== 'open')) {
      if (s.state === 'open') {
        this.#budgetCuts++;
        this.#status.emit({ type: 'relay.slow-consumer', clientId: s.id, bufferedBytes: s.accounted, limit: 'relay' });
        s.state = 'closing';
        s.closeCode = 1006;
        s.closeReason = 'slow consumer: relay buffer budget';
      }
      this.#endReplays(s);
      this.#ledger.release(s);
      s.ws.terminate();
    }
    this.#updateAdmission();
  }

  /** Whether a new client may join now (at most one reconciliation per RECONCILE_MS when in doubt). */
  #admitting(): boolean {
    if (!this.#heapHigh && this.#ledger.total > this.#ledger.low) {
      const now = this.#clock.monotonic();
      if (now >= this.#reconcileAfter) {
        this.#reconcileAfter = now + RECONCILE_MS;
        this.#ledger.reconcile(this.#sessions);
      }
    }
    this.#updateAdmission();
    return this.#refusing === undefined;
  }

  #updateAdmission(): void {
    const refusing = this.#heapHigh ? 'heap' : this.#ledger.total > this.#ledger.low ? 'buffers' : undefined;
    if (refusing === this.#refusing) return;
    const was = this.#refusing;
    this.#refusing = refusing;
    this.#status.emit({
      type: 'relay.budget',
      state: refusing === undefined ? 'under' : 'over',
      cause: refusing ?? was ?? 'buffers',
      bufferedBytes: this.#ledger.total,
      budgetBytes: this.#ledger.limit,
    });
  }

  /** Heap pressure: refuse new clients, and halve what the relay holds (the largest backlogs go). */
  #onHeapPressure(high: boolean): void {
    this.#heapHigh = high;
    if (high) {
      this.#ledger.reconcile(this.#sessions);
      this.#shed(Math.min(this.#ledger.low, Math.floor(this.#ledger.total / 2)));
    }
    this.#updateAdmission();
  }

  /** Start a closing handshake we initiated, with a backstop that terminates the socket. */
  #closeSession(s: Session, code: number, reason: string): void {
    if (s.state !== 'open') return;
    s.state = 'closing';
    s.closeCode = code;
    s.closeReason = reason;
    this.#endReplays(s); // a replay ends with its client's last chance to read it
    s.ws.close(code, reason);
    s.closeTimer = setTimeout(() => {
      s.ws.terminate();
    }, this.#config.closeTimeoutMs);
    s.closeTimer.unref();
  }

  #shutdownSession(s: Session, now: number): void {
    if (s.state !== 'open') return;
    // A client too far behind to take the notice is cut as a slow consumer instead (then already closing).
    this.#send(s, textFrame(serverShutdownPayload(now, s.combined)));
    this.#closeSession(s, 1001, 'server shutdown');
  }

  // -------------------------------------------------------------------------------------------
  // Liveness

  #startSweep(): void {
    const { pingIntervalMs, clientTimeoutMs } = this.#config;
    // A tick of a quarter of the shorter period keeps pings near their interval and drops a silent
    // client at most a quarter-period after its deadline.
    const tick = Math.max(10, Math.floor(Math.min(pingIntervalMs, clientTimeoutMs) / 4));
    this.#sweep = setInterval(() => {
      this.#sweepOnce(tick);
    }, tick);
    this.#sweep.unref();
  }

  #sweepOnce(tick: number): void {
    // Keep the budget's total honest even when nothing is written (drains are silent).
    if (this.#ledger.reconcile(this.#sessions) > this.#ledger.limit) this.#shed(this.#ledger.low);
    else this.#updateAdmission();
    const now = this.#clock.monotonic();
    const { pingIntervalMs, clientTimeoutMs } = this.#config;
    for (const s of this.#sessions) {
      if (s.state !== 'open') continue;
      if (now - s.lastSeen > clientTimeoutMs) {
        s.state = 'closing';
        s.closeCode = 1006;
        s.closeReason = 'client timeout';
        s.ws.terminate();
      } else if (now - s.lastPingAt >= pingIntervalMs - tick / 2) {
        s.lastPingAt = now;
        if (this.#fits(s, 2)) {
          s.awaitingPong = true;
          s.ws.ping();
          this.#account(s, s.socket.writableLength);
        }
      }
    }
  }

  // -------------------------------------------------------------------------------------------
  // Shutdown

  async #close(maxWaitMs: number | undefined): Promise<void> {
    this.stopAccepting();
    if (this.#sweep !== undefined) clearInterval(this.#sweep);
    this.#sweep = undefined;
    this.#tls?.close();
    this.#heapEvents.dispose();
    if (this.#sessions.size > 0) {
      const drained = new Promise<void>((resolve) => {
        this.#allClosed = resolve;
      });
      const now = this.#clock.now();
      for (const s of this.#sessions) {
        if (s.state === 'open') this.#shutdownSession(s, now);
        // `closing` sessions already have a backstop timer; ones whose ws is gone just wait for 'close'.
      }
      const cap =
        maxWaitMs === undefined
          ? undefined
          : setTimeout(() => {
              for (const s of this.#sessions) s.ws.terminate();
            }, maxWaitMs);
      await drained;
      if (cap !== undefined) clearTimeout(cap);
    }
    if (this.#listening) {
      await new Promise<void>((resolve) => {
        this.#http.close(() => {
          resolve();
        });
        this.#http.closeAllConnections();
      });
      this.#listening = false;
    }
  }
}

/** Open time of the first candle opening at or after `t`. */
function firstOpenTime(interval: string, t: number): number {
  const open = openTimeAt(interval, t);
  return open === t ? t : nextOpenTime(interval, open);
}

/** Whether this replay task is still the client's for the stream (the client may have gone or unsubscribed across an await). */
function live(s: Session, ref: StreamRef, task: ReplayTask): boolean {
  return s.state === 'open' && s.replays.get(ref) === task;
}

function sameFrames(a: readonly Buffer[], b: readonly Buffer[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
