/**
 * One runner per queued sink (every sink but the relay): its own bounded queue, its own retries and its
 * own state, so a slow, failing or absent sink never slows the relay, the other sinks or upstream
 * reading. The promises it keeps are written on `CandleSink` (src/core/candle.ts); ARCHITECTURE.md
 * ("Sinks") says why they are these.
 *
 *   offer(batch) ──idle?──yes──► deliver(batch) ──ok──► take the next batch (closed first, then the
 *        │                         │    ▲                latest open update per stream) ─► deliver …
 *        no                 throw / │    │ retry the same batch                 nothing left ─► idle
 *        ▼                 reject   ▼    │
 *   closed ─► queue (≤ bound)      waiting (jittered exponential back-off; ok → failing once)
 *        └─ full: shed until back at half the bound; onGap(stream, from) once per stream per episode
 *   open   ─► one slot per stream (latest wins), unless the sink is closed-only
 *
 * Invariant: while the runner is idle its queue is empty (it takes from the queue whenever a batch is
 * done), so a sink that keeps up gets the pipeline's own batch array, with no copy and no queueing.
 */
import { ExponentialBackoff, type IBackoff } from 'cockatiel';
import type { Candle, CandleSink } from '../core/candle.ts';
import { errorMessage } from '../core/errors.ts';
import type { SinkStats } from '../core/stats.ts';
import type { SinkState, StatusStream } from '../core/status.ts';
import { ClosedFifo, OpenLatest } from './queues.ts';

/** Default bound of a sink's closed-candle queue: 10 minutes of 1000 streams of `1m`, ~10 MB of candles. */
export const DEFAULT_SINK_QUEUE_MAX = 10_000;

export interface SinkRetry {
  /** Scale of the first delays (cockatiel's decorrelated jitter: the median doubles per attempt). */
  readonly initialMs: number;
  /** Cap of any one delay. */
  readonly maxMs: number;
}

/** A broker that is down for a while is asked again within half a minute, not hammered meanwhile. */
export const DEFAULT_SINK_RETRY: SinkRetry = { initialMs: 250, maxMs: 30_000 };

export interface SinkRunnerOptions {
  readonly sink: CandleSink;
  readonly status: StatusStream;
  /** Candles per batch handed to the sink. */
  readonly batchSize: number;
  /** Open-update slots (streams), as the pipeline's own open queue. */
  readonly openMax: number;
  readonly retry: SinkRetry;
}

/** What the runner does with its one batch. */
type Phase =
  | { readonly kind: 'idle' }
  | { readonly kind: 'delivering'; readonly batch: readonly Candle[] }
  | { readonly kind: 'waiting'; readonly batch: readonly Candle[]; readonly timer: NodeJS.Timeout }
  | { readonly kind: 'stopped' };

/** The sink's health as reported: failing from the first failed attempt until an attempt succeeds. */
type Health =
  | { readonly kind: 'ok' }
  | { readonly kind: 'failing'; readonly attempts: number; readonly backoff: IBackoff<unknown> };

const IDLE: Phase = { kind: 'idle' };
const STOPPED: Phase = { kind: 'stopped' };
const OK: Health = { kind: 'ok' };

export class SinkRunner {
  readonly #sink: CandleSink;
  readonly #status: StatusStream;
  readonly #batchSize: number;
  readonly #backoff: ExponentialBackoff<unknown>;
  readonly #closed: ClosedFifo;
  /** Undefined for a closed-only sink: no open update is ever queued for it. */
  readonly #open: OpenLatest | undefined;
  readonly #catchUp: boolean;
  /** Per stream id: open time of the newest closed candle offered (handed over, queued or shed). */
  readonly #lastClosed: number[] = [];
  /** Per stream id: true once the current episode has shed one of its candles (the sink was told). */
  readonly #shedIn: boolean[] = [];
  /** Stream ids marked in `#shedIn`, to clear them without a scan. */
  readonly #shedStreams: number[] = [];

  #phase: Phase = IDLE;
  #health: Health = OK;
  #shedding = false;
  #episodeShed = 0;
  #idleWaiters: Array<() => void> = [];

  #delivered = 0;
  #errors = 0;
  #shed = 0;
  #lastError: string | undefined;

  constructor(options: SinkRunnerOptions) {
    const sink = options.sink;
    this.#sink = sink;
    this.#status = options.status;
    this.#batchSize = options.batchSize;
    this.#backoff = new ExponentialBackoff({ initialDelay: options.retry.initialMs, maxDelay: options.retry.maxMs });
    const bound = sink.maxPending ?? DEFAULT_SINK_QUEUE_MAX;
    // A programming error in the sink's wiring, not a runtime condition: fail at start, by name.
    if (!Number.isInteger(bound) || bound < 1) throw new RangeError(`sink ${sink.name}: maxPending must be a positive integer, got ${String(bound)}`);
    this.#closed = new ClosedFifo(bound);
    this.#open = sink.closedOnly === true ? undefined : new OpenLatest(options.openMax);
    this.#catchUp = sink.onGap !== undefined;
  }

  /** Called by the pipeline's drain with each batch, after the relay. Never throws, never waits. */
  offer(batch: readonly Candle[]): void {
    const phase = this.#phase;
    if (phase.kind === 'stopped') return;
    if (phase.kind === 'idle') {
      this.#run(this.#admit(batch));
      return;
    }
    for (const c of batch) this.#enqueue(c);
  }

  /** Resolves once nothing is queued or in flight (or the runner is stopped). A runner in back-off retries at once. */
  flush(): Promise<void> {
    const phase = this.#phase;
    if (phase.kind === 'waiting') {
      clearTimeout(phase.timer);
      this.#run(phase.batch);
    }
    return this.#whenIdle();
  }

  /**
   * No more attempts: the retry timer is cleared, a batch still in flight is disowned (its settling
   * changes nothing), what was queued is dropped and reported in the `stopped` event. Idempotent.
   */
  stop(): void {
    const phase = this.#phase;
    if (phase.kind === 'stopped') return;
    if (phase.kind === 'waiting') clearTimeout(phase.timer);
    const from = this.#state();
    const pending = this.#pending();
    const h = this.#health;
    if (this.#shedding) this.#endEpisode();
    this.#phase = STOPPED;
    while (this.#closed.shift() !== undefined);
    while (this.#open?.pop() !== undefined);
    this.#status.emit({
      type: 'sink.state',
      sink: this.#sink.name,
      from,
      to: 'stopped',
      pending,
      attempts: h.kind === 'failing' ? h.attempts : 0,
      ...(h.kind === 'failing' && this.#lastError !== undefined ? { error: this.#lastError } : {}),
    });
    this.#wake();
  }

  stats(): SinkStats {
    return {
      name: this.#sink.name,
      state: this.#state(),
      pending: this.#pending(),
      capacity: this.#closed.capacity,
      delivered: this.#delivered,
      errors: this.#errors,
      shed: this.#shed,
      shedding: this.#shedding,
      catchUp: this.#catchUp,
      lastError: this.#lastError,
      counters: this.#sink.counters?.(),
    };
  }

  #state(): SinkState {
    if (this.#phase.kind === 'stopped') return 'stopped';
    return this.#health.kind;
  }

  #pending(): number {
    const phase = this.#phase;
    const inFlight = phase.kind === 'delivering' || phase.kind === 'waiting' ? phase.batch.length : 0;
    return this.#closed.depth + (this.#open?.depth ?? 0) + inFlight;
  }

  /** The batch for an idle runner (its queue is empty): the pipeline's own array unless open updates must go. */
  #admit(batch: readonly Candle[]): readonly Candle[] | undefined {
    let hasOpen = false;
    for (const c of batch) {
      if (c.closed) this.#lastClosed[c.stream.id] = c.openTime;
      else hasOpen = true;
    }
    if (this.#open !== undefined || !hasOpen) return batch.length > 0 ? batch : undefined;
    const closed = batch.filter((c) => c.closed);
    return closed.length > 0 ? closed : undefined;
  }

  #enqueue(c: Candle): void {
    const id = c.stream.id;
    if (!c.closed) {
      this.#open?.put(c);
      return;
    }
    this.#lastClosed[id] = c.openTime;
    if (this.#shedding || this.#closed.full) this.#shedOne(c);
    else this.#closed.push(c);
  }

  /** Overflow policy SHED-AND-RESUME (CandleSink's doc): the candle is not queued; the sink is told once per stream. */
  #shedOne(c: Candle): void {
    if (!this.#shedding) {
      this.#shedding = true;
      this.#episodeShed = 0;
      this.#status.emit({ type: 'sink.shedding', sink: this.#sink.name, pending: this.#pending(), catchUp: this.#catchUp });
    }
    this.#shed++;
    this.#episodeShed++;
    const id = c.stream.id;
    if (this.#shedIn[id] === true) return;
    this.#shedIn[id] = true;
    this.#shedStreams.push(id);
    if (this.#sink.onGap === undefined) return;
    try {
      this.#sink.onGap(c.stream, c.openTime);
    } catch (err) {
      // The contract says onGap only records a position; a throw is the sink's bug, counted and shown
      // (lastError), and the gap stands as it would without onGap.
      this.#errors++;
      this.#lastError = errorMessage(err);
    }
  }

  #endEpisode(): void {
    this.#status.emit({ type: 'sink.gap', sink: this.#sink.name, candles: this.#episodeShed, streams: this.#shedStreams.length, catchUp: this.#catchUp });
    for (const id of this.#shedStreams) this.#shedIn[id] = false;
    this.#shedStreams.length = 0;
    this.#shedding = false;
    this.#episodeShed = 0;
  }

  /** Closed first (FIFO), then the latest open update per stream not already superseded by a closed candle. */
  #take(): readonly Candle[] | undefined {
    const batch: Candle[] = [];
    const max = this.#batchSize;
    while (batch.length < max) {
      const c = this.#closed.shift();
      if (c === undefined) break;
      batch.push(c);
    }
    const open = this.#open;
    if (open !== undefined) {
      while (batch.length < max) {
        const c = open.pop();
        if (c === undefined) break;
        const closedAt = this.#lastClosed[c.stream.id];
        if (closedAt !== undefined && c.openTime <= closedAt) continue;
        batch.push(c);
      }
    }
    if (this.#shedding && this.#closed.depth <= this.#closed.lowWater) this.#endEpisode();
    return batch.length > 0 ? batch : undefined;
  }

  /** Deliver `batch`, then what the queue holds, until a batch is pending or failed or nothing is left. */
  #run(batch: readonly Candle[] | undefined): void {
    let next = batch;
    while (next !== undefined) {
      this.#phase = { kind: 'delivering', batch: next };
      let result: void | Promise<void>;
      try {
        result = this.#sink.deliver(next);
      } catch (err) {
        this.#failed(next, err);
        return;
      }
      if (result !== undefined) {
        this.#await(next, result);
        return;
      }
      this.#succeeded(next);
      next = this.#take();
    }
    this.#phase = IDLE;
    this.#wake();
  }

  #await(batch: readonly Candle[], result: Promise<void>): void {
    // Promise.resolve: a foreign thenable settles like a promise; anything else counts as done.
    Promise.resolve(result).then(
      () => {
        if (!this.#owns(batch)) return;
        this.#succeeded(batch);
        this.#run(this.#take());
      },
      (err: unknown) => {
        if (this.#owns(batch)) this.#failed(batch, err);
      },
    );
  }

  /** False once the runner was stopped (or flushed into a new attempt) while `batch` was in flight. */
  #owns(batch: readonly Candle[]): boolean {
    const phase = this.#phase;
    return phase.kind === 'delivering' && phase.batch === batch;
  }

  #succeeded(batch: readonly Candle[]): void {
    this.#delivered += batch.length;
    this.#phase = IDLE;
    const h = this.#health;
    if (h.kind === 'failing') {
      this.#health = OK;
      this.#status.emit({ type: 'sink.state', sink: this.#sink.name, from: 'failing', to: 'ok', pending: this.#pending(), attempts: h.attempts });
    }
  }

  /** Not delivered, none of it: the same batch again after the next back-off step. */
  #failed(batch: readonly Candle[], err: unknown): void {
    this.#errors++;
    const error = errorMessage(err);
    this.#lastError = error;
    const h = this.#health;
    const backoff = h.kind === 'failing' ? h.backoff.next(undefined) : this.#backoff.next();
    const timer = setTimeout(this.#retry, backoff.duration);
    timer.unref();
    this.#phase = { kind: 'waiting', batch, timer };
    if (h.kind === 'failing') {
      this.#health = { ...h, attempts: h.attempts + 1, backoff };
      return;
    }
    this.#health = { kind: 'failing', attempts: 1, backoff };
    this.#status.emit({ type: 'sink.state', sink: this.#sink.name, from: 'ok', to: 'failing', pending: this.#pending(), attempts: 1, error });
  }

  readonly #retry = (): void => {
    const phase = this.#phase;
    if (phase.kind === 'waiting') this.#run(phase.batch);
  };

  #whenIdle(): Promise<void> {
    const kind = this.#phase.kind;
    if (kind === 'idle' || kind === 'stopped') return Promise.resolve();
    return new Promise<void>((resolve) => this.#idleWaiters.push(resolve));
  }

  #wake(): void {
    const waiters = this.#idleWaiters;
    this.#idleWaiters = [];
    for (const w of waiters) w();
  }
}
