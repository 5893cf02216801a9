/**
 * The exchange-agnostic pipeline: ingest → order/dedup → dual queue → drain to sinks.
 *
 *   source.candle(c) ─► ingest ─┬─ closed: GapTracker (order, gaps) ─► Dedup LRU ─► ClosedFifo ─┐
 *                               └─ open:   watermark checks ─────────────────────► OpenLatest ──┤
 *                                                                                               ▼
 *                  drain (closed first, then open) ─┬─► InlineSink.deliver(batch)   (the relay, synchronous)
 *                                                   └─► SinkRunner.offer(batch) × N (every other sink, own queue)
 *
 * Backpressure: when the closed FIFO reaches its bound, `onBlocked` pauses the sources (socket
 * pause → TCP backpressure); below the low-water mark `onUnblocked` resumes them. Only the drain
 * itself can fall behind: sinks never hold it. The relay is synchronous by contract, and every other
 * sink sits behind its own runner (./sinks.ts) with its own bounded queue, retries and overflow policy,
 * so a slow or failing sink is that sink's state, not the relay's delay. Nothing here knows an exchange
 * or a sink by name.
 */
import { LRUCache } from 'lru-cache';
import type { Candle, CandleSink, InlineSink, StreamRef } from '../core/candle.ts';
import type { Clock } from '../core/clock.ts';
import type { StatusStream } from '../core/status.ts';
import type { PipelineStats, SinkStats } from '../core/stats.ts';
import type { Config } from '../config/schema.ts';
import { LatencyRecorder } from '../core/latency.ts';
import { ClosedFifo, OpenLatest } from './queues.ts';
import { GapTracker, type RecoveryFetch } from './gaps.ts';
import { DEFAULT_SINK_RETRY, SinkRunner, type SinkRetry } from './sinks.ts';

export interface PipelineOptions {
  readonly config: Config['pipeline'];
  /** Called inline with every batch, first and in order: synchronous, never throwing (the relay). */
  readonly inline?: readonly InlineSink[];
  /** Every other sink, each behind its own SinkRunner (the contract is on CandleSink). */
  readonly sinks: readonly CandleSink[];
  readonly status: StatusStream;
  readonly clock: Clock;
  /** Missing closed candles come from here (main wires it to the exchange's REST backfill). */
  readonly recover: RecoveryFetch;
  /** Called when the closed FIFO is full: stop reading upstream. */
  readonly onBlocked: () => void;
  /** Called when it has drained below the low-water mark. */
  readonly onUnblocked: () => void;
  /** Candles per delivered batch (bounds the time one drain step holds the event loop). */
  readonly batchSize?: number;
  readonly gapRetryDelaysMs?: readonly number[];
  /** Back-off of a failing sink's retries; default DEFAULT_SINK_RETRY (tests shorten it). */
  readonly sinkRetryMs?: SinkRetry;
}

export class Pipeline {
  readonly #o: PipelineOptions;
  readonly #closed: ClosedFifo;
  readonly #open: OpenLatest;
  readonly #dedup: LRUCache<string, true>;
  readonly #gaps: GapTracker;
  readonly #latency = new LatencyRecorder();
  /** Per stream id: open time / event time of the newest open update accepted. */
  readonly #openT: number[] = [];
  readonly #openE: number[] = [];
  readonly #batchSize: number;
  readonly #inline: readonly InlineSink[];
  readonly #runners: readonly SinkRunner[];

  #scheduled = false;
  #draining = false;
  #blocked = false;
  #blockedSince = 0;
  #stopped = false;
  /** Waiters for room in the closed FIFO (recovered candles honour the bound too). */
  #roomWaiters: Array<() => void> = [];
  /** Waiters for the queues to become empty (shutdown drain). */
  #idleWaiters: Array<() => void> = [];

  #processedClosed = 0;
  #processedOpen = 0;
  #duplicates = 0;
  #staleOpen = 0;
  #blockingEvents = 0;

  constructor(options: PipelineOptions) {
    this.#o = options;
    const c = options.config;
    this.#closed = new ClosedFifo(c.closedQueueMax);
    this.#open = new OpenLatest(c.openQueueMax);
    // ttlResolution: read the clock at most every 100 ms (not every closed candle); the window is
    // seconds to days, so entries living up to 100 ms longer or shorter changes nothing.
    this.#dedup = new LRUCache<string, true>({
      max: c.dedupMaxEntries,
      ttl: c.dedupWindowMs,
      ttlResolution: 100,
      ttlAutopurge: false,
      updateAgeOnHas: false,
    });
    this.#batchSize = options.batchSize ?? 512;
    this.#inline = options.inline ?? [];
    this.#runners = options.sinks.map(
      (sink) => new SinkRunner({ sink, status: options.status, batchSize: this.#batchSize, openMax: this.#open.capacity, retry: options.sinkRetryMs ?? DEFAULT_SINK_RETRY }),
    );
    this.#gaps = new GapTracker({
      fetch: options.recover,
      deliver: (candle) => this.#acceptClosed(candle, true),
      status: options.status,
      clock: options.clock,
      holdMax: c.gapHoldMax,
      holeHorizonMs: c.holeHorizonMs,
      ...(options.gapRetryDelaysMs === undefined ? {} : { retryDelaysMs: options.gapRetryDelaysMs }),
    });
  }

  /** Hot path: every candle from every source. Never throws. */
  ingest(candle: Candle): void {
    if (this.#stopped) return;
    const id = candle.stream.id;
    if (candle.closed) {
      if (this.#gaps.offer(candle)) void this.#acceptClosed(candle, false);
      return;
    }
    // Open update: never older than one already accepted, never for a candle already closed.
    const next = this.#gaps.nextExpected(id);
    if (next !== undefined && candle.openTime < next) {
      this.#staleOpen++;
      return;
    }
    const t = this.#openT[id];
    if (t !== undefined && (candle.openTime < t || (candle.openTime === t && candle.eventTime <= (this.#openE[id] ?? 0)))) {
      this.#staleOpen++;
      return;
    }
    this.#openT[id] = candle.openTime;
    this.#openE[id] = candle.eventTime;
    this.#open.put(candle);
    this.#schedule();
  }

  /**
   * A venue without a closed flag saw the stream's candle opening at `openTime` start (finalizer.ts):
   * every candle before it is closed and goes out as REST's final row, in order, before any later one.
   */
  opened(stream: StreamRef, openTime: number): void {
    if (!this.#stopped) this.#gaps.opened(stream, openTime);
  }

  /** A source reports an interruption on this stream: recover what it may have missed. */
  resync(stream: StreamRef): void {
    if (!this.#stopped) this.#gaps.resync(stream);
  }

  /**
   * Deliver what is queued, then stop accepting. Recoveries in flight are allowed to finish first (the
   * live candles they hold were received before the stop, and must go out in order behind the
   * recovered ones). The relay has everything once the queues are empty; the queued sinks then get
   * what is left of the deadline to take what they hold (a runner waiting out a back-off retries at
   * once), and are stopped at the end either way (no retry, no timer after this resolves). Resolves
   * true when everything went out to every sink, false when the deadline passed first.
   */
  async drain(deadlineMs: number): Promise<boolean> {
    const done = (async () => {
      await this.#gaps.whenIdle();
      await new Promise<void>((resolve) => {
        if (this.#closed.depth === 0 && this.#open.depth === 0 && !this.#draining) resolve();
        else this.#idleWaiters.push(resolve);
        this.#schedule();
      });
      await Promise.all(this.#runners.map((r) => r.flush()));
    })();
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<false>((resolve) => {
      timer = setTimeout(() => {
        resolve(false);
      }, deadlineMs);
    });
    const ok = await Promise.race([done.then(() => true as const), timeout]);
    clearTimeout(timer);
    this.#gaps.close();
    this.#stopped = true;
    for (const r of this.#runners) r.stop();
    return ok;
  }

  stats(): PipelineStats {
    return {
      closedDepth: this.#closed.depth,
      closedCapacity: this.#closed.capacity,
      openDepth: this.#open.depth,
      openCapacity: this.#open.capacity,
      processed: this.#processedClosed + this.#processedOpen,
      processedClosed: this.#processedClosed,
      processedOpen: this.#processedOpen,
      duplicates: this.#duplicates + this.#gaps.stats.duplicates,
      openSkipped: this.#open.skipped + this.#staleOpen,
      blockingEvents: this.#blockingEvents,
      blocked: this.#blocked,
      latency: this.#latency,
    };
  }

  /** One entry per queued sink (the relay reports through RelayStats). */
  sinkStats(): readonly SinkStats[] {
    return this.#runners.map((r) => r.stats());
  }

  get gapStats(): Readonly<GapTracker['stats']> & { pending: number; held: number } {
    return { ...this.#gaps.stats, pending: this.#gaps.pending, held: this.#gaps.held };
  }

  /** Into the FIFO, once. Recovered candles wait for room; live ones never wait (the socket is paused instead). */
  #acceptClosed(candle: Candle, waitForRoom: boolean): void | Promise<void> {
    const key = `${candle.stream.id}:${candle.openTime}`;
    if (this.#dedup.has(key)) {
      this.#duplicates++;
      return;
    }
    this.#dedup.set(key, true);
    const full = this.#closed.push(candle);
    this.#schedule();
    if (full) {
      this.#block();
      if (waitForRoom) return new Promise<void>((resolve) => this.#roomWaiters.push(resolve));
    }
  }

  #block(): void {
    if (this.#blocked) return;
    this.#blocked = true;
    this.#blockedSince = this.#o.clock.monotonic();
    this.#blockingEvents++;
    this.#o.status.emit({ type: 'queue.blocked', depth: this.#closed.depth });
    this.#o.onBlocked();
  }

  #maybeUnblock(): void {
    if (!this.#blocked || this.#closed.depth > this.#closed.lowWater) return;
    this.#blocked = false;
    this.#o.status.emit({ type: 'queue.resumed', depth: this.#closed.depth, blockedMs: Math.round(this.#o.clock.monotonic() - this.#blockedSince) });
    this.#o.onUnblocked();
    const waiters = this.#roomWaiters;
    this.#roomWaiters = [];
    for (const w of waiters) w();
  }

  #schedule(): void {
    if (this.#scheduled || this.#draining) return;
    this.#scheduled = true;
    setImmediate(this.#runDrain);
  }

  readonly #runDrain = (): void => {
    this.#scheduled = false;
    void this.#drainLoop();
  };

  async #drainLoop(): Promise<void> {
    if (this.#draining) return;
    this.#draining = true;
    try {
      for (;;) {
        const batch = this.#takeBatch();
        if (batch.length === 0) break;
        const now = this.#o.clock.monotonic();
        for (const c of batch) this.#latency.observeMs(now - c.receivedAt);
        // Neither waits: the relay writes to socket buffers; a runner queues (or hands over, if idle).
        for (const sink of this.#inline) sink.deliver(batch);
        for (const runner of this.#runners) runner.offer(batch);
        this.#maybeUnblock();
        // Yield between batches so sockets, timers and HTTP stay responsive under a backlog.
        if (this.#closed.depth > 0 || this.#open.depth > 0) await new Promise<void>((resolve) => setImmediate(resolve));
      }
    } finally {
      this.#draining = false;
    }
    this.#maybeUnblock();
    if (this.#closed.depth === 0 && this.#open.depth === 0) {
      const waiters = this.#idleWaiters;
      this.#idleWaiters = [];
      for (const w of waiters) w();
    } else {
      this.#schedule();
    }
  }

  /** Closed first (FIFO), then open (LIFO, latest per stream). */
  #takeBatch(): Candle[] {
    const batch: Candle[] = [];
    const max = this.#batchSize;
    while (batch.length < max) {
      const c = this.#closed.shift();
      if (c === undefined) break;
      batch.push(c);
      this.#processedClosed++;
    }
    while (batch.length < max) {
      const c = this.#open.pop();
      if (c === undefined) break;
      // Its candle may have been delivered closed after this update was queued.
      const next = this.#gaps.nextExpected(c.stream.id);
      if (next !== undefined && c.openTime < next) {
        this.#staleOpen++;
        continue;
      }
      batch.push(c);
      this.#processedOpen++;
    }
    return batch;
  }
}
