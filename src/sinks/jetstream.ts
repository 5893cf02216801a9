/**
 * The NATS JetStream sink (contract §9): every closed candle of every venue, acknowledged, once per
 * subject in open-time order. Venue-agnostic: it sees only `Candle`s and `StreamRef`s.
 *
 *   SinkRunner ──deliver(batch)──► per subject: skip what is already acked ─► fill a shed range (recover)
 *                                   └─► js.publish(subject, payload, msgID) one at a time per subject,
 *                                       at most `maxInflight` unacknowledged across subjects ──► PubAck
 *   any publish rejects ─► deliver rejects ─► the runner retries the same batch after back-off
 *
 * Why one publish in flight per subject: JetStream stores a connection's messages in the order it
 * receives them, but a connection that drops loses what was on the wire while the client's reconnect
 * buffer replays what came after; two in flight for one subject could then be stored out of order.
 * With one at a time, the next candle of a subject is sent only once the previous one is acked, so
 * each subject's stored sequence is always a prefix of its candles. Concurrency comes from the many
 * subjects (one per stream), bounded by `maxInflight`.
 *
 * Why its own position per stream (`#acked`): a retried batch republishes nothing already acked, so
 * a retry after an outage longer than the server's duplicate window stores no duplicate; within the
 * window (ack lost, a daemon restart) `Nats-Msg-Id` makes the server drop it (PubAck.duplicate).
 */
import { connect, type ConnectionOptions, type NatsConnection } from '@nats-io/transport-node';
import { jetstream, jetstreamManager, JetStreamApiError, StorageType, type JetStreamClient } from '@nats-io/jetstream';
import type { Candle, CandleSink, StreamRef } from '../core/candle.ts';
import type { RecoveredRange } from '../core/recovery.ts';
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

export interface JetStreamSinkOptions {
  readonly config: JetStreamSinkConfig;
  /** Fills a range the runner shed (`onGap`); without it the range is recorded in `gaps()` only. */
  readonly recover?: JetStreamRecover;
  /** Wall clock for the payload's `E` of REST-recovered candles. */
  readonly now?: () => number;
  /** PubAck wait per publish (the client's default is 5 s). */
  readonly ackTimeoutMs?: number;
  /** Delay between the client's reconnect attempts. */
  readonly reconnectWaitMs?: number;
}

/** The server's duplicate window when the sink creates the stream: the contract's minimum, 2 minutes. */
const DUPLICATE_WINDOW_NS = 2 * 60 * 1_000_000_000;
/** JetStream's API error for "stream not found". */
const STREAM_NOT_FOUND = 10059;

type Link =
  | { readonly kind: 'down' }
  | { readonly kind: 'connecting'; readonly ready: Promise<Connected> }
  | { readonly kind: 'up'; readonly c: Connected }
  | { readonly kind: 'closed' };

interface Connected {
  readonly nc: NatsConnection;
  readonly js: JetStreamClient;
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
  return `${c.stream.venue}:${c.stream.symbol.toUpperCase()}:${c.stream.interval}:${c.openTime}`;
}

export class JetStreamSink implements CandleSink {
  readonly name = 'jetstream';
  readonly closedOnly = true;

  readonly #config: JetStreamSinkConfig;
  readonly #recover: JetStreamRecover | undefined;
  readonly #now: () => number;
  readonly #ackTimeoutMs: number;
  readonly #reconnectWaitMs: number;
  /** Per stream id: open time of the newest candle the server acknowledged (stored or duplicate). */
  readonly #acked: number[] = [];
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

  constructor(options: JetStreamSinkOptions) {
    const c = options.config;
    if (!Number.isInteger(c.maxInflight) || c.maxInflight < 1) throw new RangeError(`jetstream sink: maxInflight must be a positive integer, got ${String(c.maxInflight)}`);
    this.#config = c;
    this.#recover = options.recover;
    this.#now = options.now ?? Date.now;
    this.#ackTimeoutMs = options.ackTimeoutMs ?? 5000;
    this.#reconnectWaitMs = options.reconnectWaitMs ?? 1000;
  }

  counters(): SinkCounters {
    return { published: this.#published, duplicates: this.#duplicates, inflight: this.#inflight, recovered: this.#recovered, gaps: this.#gaps.size };
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
    const { js } = await this.#connected();
    // Per subject, in batch order (the runner hands closed candles in open-time order per stream).
    const bySubject = new Map<number, Candle[]>();
    for (const c of batch) {
      if (!c.closed) continue;
      const list = bySubject.get(c.stream.id);
      if (list === undefined) bySubject.set(c.stream.id, [c]);
      else list.push(c);
    }
    const lanes: Candle[][] = [];
    const filled: number[] = [];
    for (const [id, list] of bySubject) {
      const gap = this.#gaps.get(id);
      const first = list[0];
      if (gap === undefined || first === undefined || this.#recover === undefined) {
        // Without `recover` a shed range stays recorded (gaps()), the position to resume from.
        lanes.push(list);
        continue;
      }
      lanes.push(await this.#fill(this.#recover, gap.stream, gap.from, first.openTime, list));
      filled.push(id);
    }
    await this.#publishLanes(js, lanes);
    // Only once every lane is acked: a failed batch is retried, and its range fetched again.
    for (const id of filled) this.#gaps.delete(id);
  }

  /** Stops reconnecting and closes the connection after what was sent is flushed. Idempotent. */
  async close(): Promise<void> {
    const link = this.#link;
    this.#link = { kind: 'closed' };
    this.#abort.abort();
    if (link.kind === 'up') await link.c.nc.close();
    else if (link.kind === 'connecting') await link.ready.then((c) => c.nc.close(), () => undefined);
  }

  /** The shed range [from, before) from the venue, ahead of `live`: one ascending run for the subject. */
  async #fill(recover: JetStreamRecover, stream: StreamRef, from: number, before: number, live: readonly Candle[]): Promise<Candle[]> {
    const got = await recover(stream, from, before, this.#abort.signal);
    const candles = 'candles' in got ? got.candles : got;
    const fill = candles.filter((c) => c.closed && c.openTime >= from && c.openTime < before);
    this.#recovered += fill.length;
    return [...fill, ...live];
  }

  /** One lane per subject, each published in order, at most `maxInflight` unacknowledged in all. */
  async #publishLanes(js: JetStreamClient, lanes: readonly (readonly Candle[])[]): Promise<void> {
    const max = this.#config.maxInflight;
    let next = 0;
    let failure: { readonly err: unknown } | undefined;
    // `maxInflight` workers, each taking the next lane and publishing it candle by candle: one publish
    // in flight per subject, at most `maxInflight` in all, and a failed lane stops where it failed.
    const worker = async (): Promise<void> => {
      while (failure === undefined) {
        const lane = lanes[next++];
        if (lane === undefined) return;
        try {
          for (const c of lane) await this.#publish(js, c);
        } catch (err) {
          failure ??= { err };
        }
      }
    };
    const workers: Promise<void>[] = [];
    for (let i = 0; i < Math.min(max, lanes.length); i++) workers.push(worker());
    await Promise.all(workers);
    if (failure !== undefined) throw failure.err;
  }

  async #publish(js: JetStreamClient, c: Candle): Promise<void> {
    const id = c.stream.id;
    if (c.openTime <= (this.#acked[id] ?? -Infinity)) return; // acked before (a retried batch): not again
    let subject = this.#subjects[id];
    if (subject === undefined) this.#subjects[id] = subject = subjectOf(this.#config.subjectPrefix, c.stream);
    this.#inflight++;
    try {
      const ack = await js.publish(subject, klinePayload(c, this.#now()), {
        msgID: msgIdOf(c),
        expect: { streamName: this.#config.stream },
        timeout: this.#ackTimeoutMs,
      });
      this.#acked[id] = c.openTime;
      if (ack.duplicate) this.#duplicates++;
      else this.#published++;
    } finally {
      this.#inflight--;
    }
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
      await this.#ensureStream(nc);
    } catch (err) {
      await nc.close();
      throw err;
    }
    return { nc, js: jetstream(nc, { timeout: this.#ackTimeoutMs }) };
  }

  /** Created when missing (contract §9); an existing stream is used as it is, whatever its settings. */
  async #ensureStream(nc: NatsConnection): Promise<void> {
    const c = this.#config;
    const jsm = await jetstreamManager(nc, { timeout: this.#ackTimeoutMs });
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
