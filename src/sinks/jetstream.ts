/**
 * The NATS JetStream sink (contract §9, §10): every closed candle of every venue, acknowledged, once per
 * subject in open-time order, with no gaps — from one replica or from an HA pair (two replicas of the
 * same shard, both publishing). Venue-agnostic: it sees only `Candle`s and `StreamRef`s.
 *
 *   SinkRunner ──deliver(batch)──► per subject: its position (the last candle the SERVER holds)
 *                                   ├─ missing range before the batch ─► fill it: relay history, then REST
 *                                   └─► js.publish(subject, payload, msgID, expect lastSubjectSequence)
 *                                       one at a time per subject, ≤ `maxInflight` unacknowledged in all
 *   a publish rejects ─► deliver rejects ─► the runner retries the same batch after back-off
 *
 * The position is the server's, not ours. Per subject the sink knows the stream sequence and open time
 * of the last message stored on it (looked up with a direct get `last_by_subj` on first use, and again
 * whenever the server says it moved). Every publish carries `Nats-Expected-Last-Subject-Sequence`, so
 * the server stores it only if nothing was stored on the subject since: with two replicas racing, the
 * loser gets "wrong last sequence" (10071), looks the position up again, skips what the winner stored
 * and goes on. That is what makes a pair safe beyond the duplicate window (a replica that comes back
 * after an hour would otherwise store an hour of candles a second time, and a lagging one would store
 * old candles after newer ones); `Nats-Msg-Id` still drops a republish inside the window (an ack lost
 * to a broken connection). Per subject the stored sequence is therefore always a prefix of the
 * stream's candles in open-time order, whoever wrote each.
 *
 * Catch-up: a subject whose last stored candle is older than the first one a batch brings misses the
 * range between (a broker outage, a shed range, a replica that was down with no partner up). The sink
 * fills it before the batch: from the relay's history where that still holds the range (no REST
 * weight), from the venue's REST before it (`recover`, settled by core/recovery.ts `settleRange`: a
 * range REST has not got yet is asked again on the runner's next retry, a hole is left absent). The fill
 * reaches back at most `CONNECTOR_NATS_MAX_AGE_HOURS` (the stream would not keep older candles) and
 * never before the subject's first stored candle: a new subject starts with the first candle it is given.
 */
import { connect, type ConnectionOptions, type NatsConnection } from '@nats-io/transport-node';
import { jetstream, jetstreamManager, JetStreamApiError, StorageType, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';
import type { Candle, CandleSink, StreamRef } from '../core/candle.ts';
import { candlesBetween, nextOpenTime, openTimeAt } from '../core/intervals.ts';
import { DEFAULT_HOLE_HORIZON_MS, settleRange, type RecoveredRange } from '../core/recovery.ts';
import type { SinkCounters } from '../core/stats.ts';
import { klinePayload } from '../relay/protocol.ts';

/** Its section of the configuration (CONNECTOR_NATS_*; src/config/schema.ts). */
export interface JetStreamSinkConfig {
  readonly url: string;
  readonly token: string | undefined;
  readonly user: string | undefined;
  readonly password: string | undefined;
  readonly stream: string;
  readonly subjectPrefix: string;
  readonly maxAgeHours: number;
  readonly maxInflight: number;
}

/** Fetches the closed candles of [from, toExclusive) from the venue (app.ts passes the REST clients'). */
export type JetStreamRecover = (stream: StreamRef, from: number, toExclusive: number, signal: AbortSignal) => Promise<RecoveredRange | readonly Candle[]>;

/** One candle of the relay's history: its open time and its kline event JSON, as the relay sent it. */
export interface HistoryCandle {
  readonly openTime: number;
  readonly payload: Uint8Array;
}

/** The relay's recent closed candles (relay/history.ts), read by the catch-up before it asks REST. */
export interface JetStreamHistory {
  /** Open time of the oldest candle held for the stream; undefined when none. */
  oldest(stream: StreamRef): number | undefined;
  /** The held candles with open time in [from, toExclusive), ascending (at most `max`). */
  read(stream: StreamRef, from: number, toExclusive: number, max: number): readonly HistoryCandle[];
}

export interface JetStreamSinkOptions {
  readonly config: JetStreamSinkConfig;
  /** Fills a missing range from the venue; without it a missing range older than the history stays missing (gaps()). */
  readonly recover?: JetStreamRecover;
  /** The relay's history, tried first for a missing range. */
  readonly history?: JetStreamHistory;
  /** Wall clock: the payload's `E` of REST-recovered candles, the catch-up's reach, the hole rule, lag. */
  readonly now?: () => number;
  /** CONNECTOR_HOLE_HORIZON_MS for the catch-up's hole rule (core/recovery.ts). */
  readonly holeHorizonMs?: number;
  /** PubAck wait per publish (the client's default is 5 s). */
  readonly ackTimeoutMs?: number;
  /** Delay between the client's reconnect attempts. */
  readonly reconnectWaitMs?: number;
}

/** The server's duplicate window when the sink creates the stream: the contract's minimum, 2 minutes. */
const DUPLICATE_WINDOW_NS = 2 * 60 * 1_000_000_000;
/** JetStream's API error for "stream not found". */
const STREAM_NOT_FOUND = 10059;
/** "wrong last sequence": the subject's last stored message is not the one the publish expected. */
const WRONG_LAST_SEQUENCE = 10071;
/** Conflicts one publish rides out (each a fresh look at the subject) before the batch is retried after back-off. */
const MAX_CONFLICT_RETRIES = 8;

type Link =
  | { readonly kind: 'down' }
  | { readonly kind: 'connecting'; readonly ready: Promise<Connected> }
  | { readonly kind: 'up'; readonly c: Connected }
  | { readonly kind: 'closed' };

interface Connected {
  readonly nc: NatsConnection;
  readonly js: JetStreamClient;
  readonly jsm: JetStreamManager;
}

/** A token of a subject: no `.` (the separator), no whitespace or wildcards (they would not name one subject). */
export function subjectToken(s: string): string {
  return s.replace(/[.\s*>]/g, '_');
}

/** `<prefix>.<venue>.<SYMBOL>.<interval>`: the native symbol upper-cased, any `.` in it as `_` (contract §9). */
export function subjectOf(prefix: string, stream: StreamRef): string {
  return `${prefix}.${subjectToken(stream.venue)}.${subjectToken(stream.symbol.toUpperCase())}.${subjectToken(stream.interval)}`;
}

/** `Nats-Msg-Id` = `<venue>:<SYMBOL>:<interval>:<openTime>`: the candle's identity, so a republish is a duplicate. */
export function msgIdOf(c: Candle): string {
  return msgIdFor(c.stream, c.openTime);
}

export function msgIdFor(stream: StreamRef, openTime: number): string {
  return `${stream.venue}:${stream.symbol.toUpperCase()}:${stream.interval}:${openTime}`;
}

/** A stored candle's open time: the last field of its `Nats-Msg-Id`, or else its event's `k.t`. */
export function storedOpenTime(msgId: string | undefined, data: Uint8Array): number {
  const tail = msgId?.slice(msgId.lastIndexOf(':') + 1);
  if (tail !== undefined && /^\d{1,16}$/.test(tail)) return Number(tail);
  let event: unknown;
  try {
    event = JSON.parse(Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('utf8'));
  } catch {
    event = undefined;
  }
  const k: unknown = typeof event === 'object' && event !== null && 'k' in event ? event.k : undefined;
  const openTime: unknown = typeof k === 'object' && k !== null && 't' in k ? k.t : undefined;
  if (typeof openTime !== 'number' || !Number.isSafeInteger(openTime)) throw new Error(`a message on a candle subject that is no candle (msg id ${String(msgId)}): the subject prefix is shared with something else`);
  return openTime;
}

/** Where a subject stands on the server: its last stored message. `seq` 0: nothing stored yet. */
interface Position {
  readonly seq: number;
  readonly openTime: number;
}

const EMPTY: Position = Object.freeze({ seq: 0, openTime: Number.NEGATIVE_INFINITY });

/** What a lane publishes: a live or REST candle (serialized on publish), or a history entry (already serialized). */
type Item = Candle | { readonly history: HistoryCandle };

function openTimeOf(item: Item): number {
  return 'history' in item ? item.history.openTime : item.openTime;
}

/** A missing range REST has not got yet (it lags the stream): the batch is retried later, not published past it. */
export class CatchUpPending extends Error {
  override readonly name = 'CatchUpPending';
}

/** Rows asked per history read in one catch-up (a 1m stream's day). */
const HISTORY_READ_MAX = 1440;

export class JetStreamSink implements CandleSink {
  readonly name = 'jetstream';
  readonly closedOnly = true;

  readonly #config: JetStreamSinkConfig;
  readonly #recover: JetStreamRecover | undefined;
  readonly #history: JetStreamHistory | undefined;
  readonly #now: () => number;
  readonly #holeHorizonMs: number;
  readonly #ackTimeoutMs: number;
  readonly #reconnectWaitMs: number;
  /** Per stream id: the subject's last stored message, as last learned from the server; undefined: look it up. */
  readonly #pos: (Position | undefined)[] = [];
  /** Per stream id: the first open time of a range the runner shed, until it is filled. */
  readonly #gaps = new Map<number, { readonly stream: StreamRef; readonly from: number }>();
  /** Per stream id: its subject, built once. */
  readonly #subjects: string[] = [];
  readonly #abort = new AbortController();

  #link: Link = { kind: 'down' };
  #inflight = 0;
  #published = 0;
  #duplicates = 0;
  #recovered = 0;
  #conflicts = 0;
  #holes = 0;
  /** Close time of the oldest candle handed to the sink (or known missing) and not yet stored; undefined: none. */
  #behindSince: number | undefined;

  constructor(options: JetStreamSinkOptions) {
    const c = options.config;
    if (!Number.isInteger(c.maxInflight) || c.maxInflight < 1) throw new RangeError(`jetstream sink: maxInflight must be a positive integer, got ${String(c.maxInflight)}`);
    this.#config = c;
    this.#recover = options.recover;
    this.#history = options.history;
    this.#now = options.now ?? Date.now;
    this.#holeHorizonMs = options.holeHorizonMs ?? DEFAULT_HOLE_HORIZON_MS;
    this.#ackTimeoutMs = options.ackTimeoutMs ?? 5000;
    this.#reconnectWaitMs = options.reconnectWaitMs ?? 1000;
  }

  counters(): SinkCounters {
    const behind = this.#behindSince;
    return {
      published: this.#published,
      duplicates: this.#duplicates,
      inflight: this.#inflight,
      recovered: this.#recovered,
      gaps: this.#gaps.size,
      conflicts: this.#conflicts,
      holes: this.#holes,
      lagSeconds: behind === undefined ? 0 : Math.max(0, (this.#now() - behind) / 1000),
    };
  }

  /** The ranges shed and not yet filled: per stream, the open time from which the stream misses candles. */
  gaps(): readonly { readonly stream: string; readonly from: number }[] {
    return [...this.#gaps.values()].map((g) => ({ stream: g.stream.name, from: g.from }));
  }

  onGap(stream: StreamRef, fromOpenTime: number): void {
    // The first shed candle of an episode; an older unfilled gap of the same stream starts earlier and stands.
    if (!this.#gaps.has(stream.id)) this.#gaps.set(stream.id, { stream, from: fromOpenTime });
  }

  async deliver(batch: readonly Candle[]): Promise<void> {
    // Per subject, in batch order (the runner hands closed candles in open-time order per stream).
    const bySubject = new Map<number, Candle[]>();
    let oldest = Number.POSITIVE_INFINITY;
    for (const c of batch) {
      if (!c.closed) continue;
      if (c.openTime > (this.#pos[c.stream.id]?.openTime ?? Number.NEGATIVE_INFINITY) && c.closeTime < oldest) oldest = c.closeTime;
      const list = bySubject.get(c.stream.id);
      if (list === undefined) bySubject.set(c.stream.id, [c]);
      else list.push(c);
    }
    for (const g of this.#gaps.values()) oldest = Math.min(oldest, nextOpenTime(g.stream.interval, g.from) - 1);
    if (oldest !== Number.POSITIVE_INFINITY) this.#behindSince = Math.min(this.#behindSince ?? oldest, oldest);
    const conn = await this.#connected();
    await this.#forEachLane(conn, [...bySubject.values()]);
    this.#behindSince = undefined;
  }

  /** Stops reconnecting and closes the connection after what was sent is flushed. Idempotent. */
  async close(): Promise<void> {
    const link = this.#link;
    this.#link = { kind: 'closed' };
    this.#abort.abort();
    if (link.kind === 'up') await link.c.nc.close();
    else if (link.kind === 'connecting') await link.ready.then((c) => c.nc.close(), () => undefined);
  }

  /** `maxInflight` workers, each taking the next lane: one publish in flight per subject, and a failed lane stops where it failed. */
  async #forEachLane(conn: Connected, lanes: readonly (readonly Candle[])[]): Promise<void> {
    let next = 0;
    let failure: { readonly err: unknown } | undefined;
    const worker = async (): Promise<void> => {
      while (failure === undefined) {
        const lane = lanes[next++];
        if (lane === undefined) return;
        try {
          await this.#lane(conn, lane);
        } catch (err) {
          failure ??= { err };
        }
      }
    };
    const workers: Promise<void>[] = [];
    for (let i = 0; i < Math.min(this.#config.maxInflight, lanes.length); i++) workers.push(worker());
    await Promise.all(workers);
    if (failure !== undefined) throw failure.err;
  }

  /** One subject's candles (ascending): the missing range before them filled first, then each one not stored yet. */
  async #lane(conn: Connected, live: readonly Candle[]): Promise<void> {
    const first = live[0];
    if (first === undefined) return;
    const stream = first.stream;
    const pos = this.#pos[stream.id] ?? (await this.#lookup(conn, stream));
    const gap = this.#gaps.get(stream.id);
    // Where the subject should go on from: after its last stored candle; for a subject with nothing
    // stored, the start of a shed range, or else the first candle it is given.
    let from = pos.seq === 0 ? (gap?.from ?? first.openTime) : nextOpenTime(stream.interval, pos.openTime);
    from = Math.max(from, openTimeAt(stream.interval, this.#now() - this.#config.maxAgeHours * 3_600_000));
    if (from < first.openTime) await this.#fill(conn, stream, from, first.openTime);
    for (const c of live) await this.#publish(conn, stream, c);
    // Filled (or nothing was missing). Without REST a shed range can never be filled: it stays recorded.
    if (this.#recover !== undefined) this.#gaps.delete(stream.id);
  }

  /**
   * [from, before) onto the subject: the relay's history where it still holds the range, REST before
   * that. Throws CatchUpPending when REST has not got all of it yet (published up to where it has).
   * Without REST to fill it from, the range before the history stays recorded in gaps().
   */
  async #fill(conn: Connected, stream: StreamRef, from: number, before: number): Promise<void> {
    const oldest = this.#history?.oldest(stream);
    const restTo = oldest === undefined ? before : Math.min(before, Math.max(from, oldest));
    if (from < restTo && this.#recover === undefined) {
      // Nothing to fill it from: the range stays recorded (gaps()) and the subject goes on past it.
      if (!this.#gaps.has(stream.id)) this.#gaps.set(stream.id, { stream, from });
    } else if (from < restTo && this.#recover !== undefined) {
      const answer = await this.#recover(stream, from, restTo, this.#abort.signal);
      const settled = settleRange(stream.interval, from, restTo, answer, this.#now(), this.#holeHorizonMs);
      this.#recovered += settled.final.length;
      for (const c of settled.final) await this.#publish(conn, stream, c);
      if (settled.reached < restTo) {
        throw new CatchUpPending(`${stream.name}: REST has not got the candles from ${settled.reached} yet (${candlesBetween(stream.interval, settled.reached, restTo)} to go)`);
      }
      this.#holes += settled.holes;
    }
    if (this.#history === undefined || restTo >= before) return;
    for (let at = restTo; at < before; ) {
      const entries = this.#history.read(stream, at, before, HISTORY_READ_MAX);
      const last = entries[entries.length - 1];
      if (last === undefined) break;
      for (const h of entries) await this.#publish(conn, stream, { history: h });
      at = nextOpenTime(stream.interval, last.openTime);
    }
  }

  /** One candle, unless the server holds it or a later one: expected to follow the subject's last stored message. */
  async #publish(conn: Connected, stream: StreamRef, item: Item): Promise<void> {
    const id = stream.id;
    const openTime = openTimeOf(item);
    for (let attempt = 0; ; attempt++) {
      const pos = this.#pos[id] ?? (await this.#lookup(conn, stream));
      if (openTime <= pos.openTime) return; // stored already (by us before, or by the other replica of the pair)
      let subject = this.#subjects[id];
      if (subject === undefined) this.#subjects[id] = subject = subjectOf(this.#config.subjectPrefix, stream);
      const payload = 'history' in item ? item.history.payload : klinePayload(item, this.#now());
      this.#inflight++;
      try {
        const ack = await conn.js.publish(subject, payload, {
          msgID: msgIdFor(stream, openTime),
          expect: { streamName: this.#config.stream, lastSubjectSequence: pos.seq },
          timeout: this.#ackTimeoutMs,
        });
        if (ack.duplicate) {
          // Stored before under this id (an ack lost to a broken connection, or the partner): where the
          // subject now stands is the server's to say.
          this.#duplicates++;
          this.#pos[id] = undefined;
        } else {
          this.#published++;
          this.#pos[id] = { seq: ack.seq, openTime };
        }
        return;
      } catch (err) {
        // Someone (the other replica of the pair) stored on the subject since we looked: look again.
        if (!(err instanceof JetStreamApiError && err.code === WRONG_LAST_SEQUENCE) || attempt >= MAX_CONFLICT_RETRIES) throw err;
        this.#conflicts++;
        this.#pos[id] = undefined;
      } finally {
        this.#inflight--;
      }
    }
  }

  /** The subject's last stored message, from the server (a direct get, one per subject on first use and after a conflict). */
  async #lookup(conn: Connected, stream: StreamRef): Promise<Position> {
    let subject = this.#subjects[stream.id];
    if (subject === undefined) this.#subjects[stream.id] = subject = subjectOf(this.#config.subjectPrefix, stream);
    const msg = await conn.jsm.streams.getMessage(this.#config.stream, { last_by_subj: subject });
    const pos = msg === null ? EMPTY : { seq: msg.seq, openTime: storedOpenTime(msg.header.get('Nats-Msg-Id'), msg.data) };
    this.#pos[stream.id] = pos;
    return pos;
  }

  /** The connection, made on first use and after the client gave up; the stream ensured once per connection. */
  #connected(): Promise<Connected> {
    const link = this.#link;
    if (link.kind === 'up') return Promise.resolve(link.c);
    if (link.kind === 'connecting') return link.ready;
    if (link.kind === 'closed') return Promise.reject(new Error('jetstream sink closed'));
    const ready = this.#open();
    this.#link = { kind: 'connecting', ready };
    ready.then(
      (c) => {
        if (this.#link.kind !== 'connecting' || this.#link.ready !== ready) {
          void c.nc.close();
          return;
        }
        this.#link = { kind: 'up', c };
        // The client reconnects by itself for ever; it closes only on a fatal error (auth), then the
        // next deliver connects anew.
        void c.nc.closed().then(() => {
          if (this.#link.kind === 'up' && this.#link.c === c) this.#link = { kind: 'down' };
        });
      },
      () => {
        if (this.#link.kind === 'connecting' && this.#link.ready === ready) this.#link = { kind: 'down' };
      },
    );
    return ready;
  }

  async #open(): Promise<Connected> {
    const c = this.#config;
    const options: ConnectionOptions = {
      servers: c.url,
      name: 'kline-connector',
      maxReconnectAttempts: -1,
      reconnectTimeWait: this.#reconnectWaitMs,
      timeout: this.#ackTimeoutMs,
      ...(c.token === undefined ? {} : { token: c.token }),
      ...(c.user === undefined ? {} : { user: c.user }),
      ...(c.password === undefined ? {} : { pass: c.password }),
    };
    const nc = await connect(options);
    try {
      const jsm = await jetstreamManager(nc, { timeout: this.#ackTimeoutMs });
      await this.#ensureStream(jsm);
      return { nc, js: jetstream(nc, { timeout: this.#ackTimeoutMs }), jsm };
    } catch (err) {
      await nc.close();
      throw err;
    }
  }

  /** Created when missing (contract §9); an existing stream is used as it is, whatever its settings. */
  async #ensureStream(jsm: JetStreamManager): Promise<void> {
    const c = this.#config;
    try {
      await jsm.streams.info(c.stream);
      return;
    } catch (err) {
      if (!(err instanceof JetStreamApiError && err.code === STREAM_NOT_FOUND)) throw err;
    }
    try {
      await jsm.streams.add({
        name: c.stream,
        subjects: [`${c.subjectPrefix}.>`],
        storage: StorageType.File,
        duplicate_window: DUPLICATE_WINDOW_NS,
        max_age: c.maxAgeHours * 3600 * 1_000_000_000,
      });
    } catch (err) {
      // Another replica created it in the meantime: use it.
      if (!(err instanceof JetStreamApiError)) throw err;
      await jsm.streams.info(c.stream);
    }
  }
}
