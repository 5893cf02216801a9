/**
 * The sink contract (CandleSink in src/core/candle.ts): every sink but the relay sits behind its own
 * runner, so its failures, slowness and overflow stay its own. Time is the subject here (back-off,
 * drain deadlines), so the clock and every timer are fake.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { Candle, CandleSink, InlineSink, StreamRef } from '../../src/core/candle.ts';
import type { Clock } from '../../src/core/clock.ts';
import { StatusStream, type StatusEvent, type StatusEventOf } from '../../src/core/status.ts';
import { Pipeline } from '../../src/pipeline/pipeline.ts';
import { EnvSchema } from '../../src/config/schema.ts';
import { createLogger, logStatus } from '../../src/ops/logger.ts';
import { candle, streams } from '../helpers/candles.ts';

const MIN = 60_000;

type Mode = 'ok' | 'reject' | 'throw' | 'hang';

/** A sink whose behaviour the test switches; `got` holds only what it accepted (deliver succeeded). */
class TestSink implements CandleSink {
  readonly name: string;
  readonly closedOnly: boolean;
  readonly maxPending?: number;
  readonly got: Candle[] = [];
  readonly gaps: Array<[string, number]> = [];
  readonly attemptTimes: number[] = [];
  mode: Mode = 'ok';
  onGap?: (stream: StreamRef, fromOpenTime: number) => void;
  #held: Array<() => void> = [];

  constructor(name: string, opts: { closedOnly?: boolean; maxPending?: number; catchUp?: boolean } = {}) {
    this.name = name;
    this.closedOnly = opts.closedOnly ?? false;
    if (opts.maxPending !== undefined) this.maxPending = opts.maxPending;
    if (opts.catchUp === true) {
      this.onGap = (stream, from) => {
        this.gaps.push([stream.symbol, from]);
      };
    }
  }

  deliver(batch: readonly Candle[]): void | Promise<void> {
    this.attemptTimes.push(Date.now());
    switch (this.mode) {
      case 'throw':
        throw new Error(`${this.name}: broker unreachable`);
      case 'reject':
        return Promise.reject(new Error(`${this.name}: publish timed out`));
      case 'hang':
        return new Promise<void>((resolve) => {
          this.#held.push(() => {
            this.got.push(...batch);
            resolve();
          });
        });
      case 'ok':
        this.got.push(...batch);
        return undefined;
    }
  }

  /** Settle every batch handed over while hanging, and accept the next ones at once. */
  release(): void {
    this.mode = 'ok';
    for (const r of this.#held.splice(0)) r();
  }

  closed(symbol?: string): number[] {
    return this.got.filter((c) => c.closed && (symbol === undefined || c.stream.symbol === symbol)).map((c) => c.openTime / MIN);
  }
}

/** Stands in for the relay: synchronous, records every batch the drain hands it. */
class RelayStandIn implements InlineSink {
  readonly name = 'relay';
  readonly got: Candle[] = [];
  deliver(batch: readonly Candle[]): void {
    this.got.push(...batch);
  }
  closed(symbol?: string): number[] {
    return this.got.filter((c) => c.closed && (symbol === undefined || c.stream.symbol === symbol)).map((c) => c.openTime / MIN);
  }
}

function setup(sinks: CandleSink[], retry = { initialMs: 100, maxMs: 1000 }) {
  const config = EnvSchema.parse({});
  const { refs } = streams([['btcusdt', '1m'], ['ethusdt', '1m']]);
  const relay = new RelayStandIn();
  const status = new StatusStream();
  const events: StatusEvent[] = [];
  status.subscribe((e) => events.push(e));
  const clock: Clock = { now: () => Date.now(), monotonic: () => performance.now() };
  const pipeline = new Pipeline({
    config: config.pipeline,
    inline: [relay],
    sinks,
    status,
    clock,
    recover: () => Promise.resolve([]),
    onBlocked: () => undefined,
    onUnblocked: () => undefined,
    sinkRetryMs: retry,
  });
  const sinkEvents = (): Array<StatusEventOf<'sink.state'> | StatusEventOf<'sink.shedding'> | StatusEventOf<'sink.gap'>> =>
    events.filter((e): e is StatusEventOf<'sink.state'> | StatusEventOf<'sink.shedding'> | StatusEventOf<'sink.gap'> => e.type.startsWith('sink.'));
  const stats = (name: string) => {
    const s = pipeline.sinkStats().find((x) => x.name === name);
    if (s === undefined) throw new Error(`no sink ${name}`);
    return s;
  };
  return { pipeline, relay, status, btc: refs[0]!, eth: refs[1]!, events, sinkEvents, stats };
}

/** Runs what is due within `ms` of fake time (the drain's setImmediate steps included). */
const tick = (ms = 0) => vi.advanceTimersByTimeAsync(ms);

beforeEach(() => {
  vi.useFakeTimers({ now: 100 * MIN });
});
afterEach(() => {
  vi.useRealTimers();
});

describe('sink runners', () => {
  it('retries a rejected batch with back-off until the sink recovers; then it has every closed candle exactly once, in order, while the relay had each at once', async () => {
    const flaky = new TestSink('flaky');
    flaky.mode = 'reject';
    const { pipeline, relay, btc, sinkEvents, stats } = setup([flaky]);
    for (let i = 0; i < 5; i++) pipeline.ingest(candle(btc, i * MIN, true));
    await tick();
    expect(relay.closed()).toEqual([0, 1, 2, 3, 4]);
    expect(flaky.got).toHaveLength(0);
    expect(sinkEvents()).toEqual([
      { type: 'sink.state', sink: 'flaky', from: 'ok', to: 'failing', pending: 5, attempts: 1, error: 'flaky: publish timed out' },
    ]);

    await tick(5000);
    const retries = flaky.attemptTimes.length - 1;
    expect(retries).toBeGreaterThanOrEqual(3);
    // Jittered exponential back-off, capped: never two attempts further apart than the cap.
    for (let i = 1; i < flaky.attemptTimes.length; i++) expect(flaky.attemptTimes[i]! - flaky.attemptTimes[i - 1]!).toBeLessThanOrEqual(1000);
    expect(sinkEvents()).toHaveLength(1); // one state change, not one event per retry
    expect(stats('flaky')).toMatchObject({ state: 'failing', errors: flaky.attemptTimes.length, delivered: 0, lastError: 'flaky: publish timed out' });

    for (let i = 5; i < 10; i++) pipeline.ingest(candle(btc, i * MIN, true));
    await tick();
    expect(relay.closed()).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(stats('flaky').pending).toBe(10);

    const errors = flaky.attemptTimes.length; // every attempt so far failed
    flaky.mode = 'ok';
    await tick(1000);
    expect(flaky.closed()).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(flaky.attemptTimes).toHaveLength(errors + 2); // the retried batch, then the one queued behind it
    // pending: what was still queued behind the batch that went through at the change.
    expect(sinkEvents().at(-1)).toEqual({ type: 'sink.state', sink: 'flaky', from: 'failing', to: 'ok', pending: 5, attempts: errors });
    expect(stats('flaky')).toMatchObject({ state: 'ok', errors, delivered: 10, pending: 0 });
  });

  it('logs a failing spell as two lines (warn when it starts, info when it ends), however many retries it took', async () => {
    const flaky = new TestSink('flaky');
    flaky.mode = 'reject';
    const lossy = new TestSink('lossy', { maxPending: 1 });
    lossy.mode = 'hang';
    const { pipeline, btc, status } = setup([flaky, lossy]);
    const lines: Array<{ level: string; event: string; sink?: string }> = [];
    const logging = logStatus(status, createLogger('info', { write: (line: string) => lines.push(JSON.parse(line) as { level: string; event: string }) }));
    for (let i = 0; i < 4; i++) {
      pipeline.ingest(candle(btc, i * MIN, true));
      await tick(2000);
    }
    flaky.mode = 'ok';
    lossy.release();
    await tick(1000);
    logging.dispose();
    expect(flaky.attemptTimes.length).toBeGreaterThan(5);
    expect(lines.map((l) => `${l.level} ${l.event} ${l.sink ?? ''}`)).toEqual([
      'warn sink.state flaky',
      'warn sink.shedding lossy',
      'error sink.gap lossy', // released at once; no catch-up: what it shed is lost to it
      'info sink.state flaky', // at its next retry
    ]);
  });

  it('treats a synchronous throw like a rejection: counted, retried, and the drain goes on', async () => {
    const thrower = new TestSink('thrower');
    thrower.mode = 'throw';
    const { pipeline, relay, btc, sinkEvents, stats } = setup([thrower]);
    pipeline.ingest(candle(btc, 0, true));
    await tick();
    pipeline.ingest(candle(btc, MIN, true));
    await tick(3000);
    expect(relay.closed()).toEqual([0, 1]);
    expect(stats('thrower')).toMatchObject({ state: 'failing', delivered: 0, lastError: 'thrower: broker unreachable' });
    expect(stats('thrower').errors).toBeGreaterThanOrEqual(2);
    thrower.mode = 'ok';
    await tick(1000);
    expect(thrower.closed()).toEqual([0, 1]);
    expect(sinkEvents().map((e) => (e.type === 'sink.state' ? `${e.from}->${e.to}` : e.type))).toEqual(['ok->failing', 'failing->ok']);
  });

  it('a sink that never settles holds neither the relay nor the other sinks', async () => {
    const stuck = new TestSink('stuck');
    stuck.mode = 'hang';
    const archive = new TestSink('archive');
    const { pipeline, relay, btc, eth, stats } = setup([stuck, archive]);
    for (let i = 0; i < 10; i++) {
      pipeline.ingest(candle(btc, i * MIN, true));
      pipeline.ingest(candle(eth, i * MIN, true));
      await tick(MIN);
      expect(relay.closed('BTCUSDT')).toHaveLength(i + 1);
      expect(archive.closed('ETHUSDT')).toHaveLength(i + 1);
    }
    expect(pipeline.stats().blockingEvents).toBe(0);
    expect(stats('stuck')).toMatchObject({ state: 'ok', pending: 20, delivered: 0, errors: 0 });
    // It was handed exactly one batch, and gets the rest in order once that one settles.
    stuck.release();
    await tick();
    expect(stuck.closed('BTCUSDT')).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(stuck.closed('ETHUSDT')).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(stats('stuck')).toMatchObject({ pending: 0, delivered: 20 });
  });

  it('at its bound a sink with catch-up sheds, is told once per stream where it must resume, and gets an unbroken run again after the episode', async () => {
    const broker = new TestSink('broker', { maxPending: 4, catchUp: true });
    broker.mode = 'hang';
    const { pipeline, relay, btc, eth, sinkEvents, stats } = setup([broker]);
    pipeline.ingest(candle(btc, 0, true));
    await tick(); // [btc 0] in flight, unsettled
    for (let i = 1; i <= 4; i++) {
      pipeline.ingest(candle(btc, i * MIN, true));
      pipeline.ingest(candle(eth, i * MIN, true));
      await tick();
    }
    // Queue: btc 1, eth 1, btc 2, eth 2 (its bound); btc 3, eth 3, btc 4, eth 4 shed.
    expect(relay.closed()).toHaveLength(9);
    expect(broker.gaps).toEqual([
      ['BTCUSDT', 3 * MIN],
      ['ETHUSDT', 3 * MIN],
    ]);
    expect(stats('broker')).toMatchObject({ pending: 5, capacity: 4, shed: 4, shedding: true, catchUp: true });
    expect(sinkEvents()).toEqual([{ type: 'sink.shedding', sink: 'broker', pending: 5, catchUp: true }]);

    broker.release();
    await tick();
    expect(sinkEvents().at(-1)).toEqual({ type: 'sink.gap', sink: 'broker', candles: 4, streams: 2, catchUp: true });
    expect(stats('broker').shedding).toBe(false);
    pipeline.ingest(candle(btc, 5 * MIN, true));
    pipeline.ingest(candle(eth, 5 * MIN, true));
    await tick();
    expect(broker.closed('BTCUSDT')).toEqual([0, 1, 2, 5]);
    expect(broker.closed('ETHUSDT')).toEqual([1, 2, 5]);
    expect(broker.gaps).toHaveLength(2); // once per stream per episode
    expect(relay.closed('BTCUSDT')).toEqual([0, 1, 2, 3, 4, 5]);
  });

  it('a sink without catch-up records what it shed as one counted, logged gap per episode', async () => {
    const lossy = new TestSink('lossy', { maxPending: 2 });
    lossy.mode = 'reject';
    const { pipeline, btc, sinkEvents, stats } = setup([lossy]);
    for (let i = 0; i < 8; i++) pipeline.ingest(candle(btc, i * MIN, true));
    await tick();
    // 0..7 in one drain step: the first batch takes what was queued when it ran.
    expect(stats('lossy').pending).toBeLessThanOrEqual(2 + 8);
    for (let i = 8; i < 12; i++) {
      pipeline.ingest(candle(btc, i * MIN, true));
      await tick();
    }
    expect(stats('lossy')).toMatchObject({ shedding: true, catchUp: false });
    const shed = stats('lossy').shed;
    expect(shed).toBeGreaterThanOrEqual(2);
    lossy.mode = 'ok';
    await tick(1000);
    const gap = sinkEvents().find((e) => e.type === 'sink.gap');
    expect(gap).toEqual({ type: 'sink.gap', sink: 'lossy', candles: shed, streams: 1, catchUp: false });
    // What it did get is in order, without duplicates, and is everything but the shed range.
    const got = lossy.closed();
    expect(got).toEqual([...got].sort((a, b) => a - b));
    expect(new Set(got).size).toBe(got.length);
    expect(got.length + shed).toBe(12);
  });

  it('open updates: latest wins per sink, never one for a candle already handed over closed, and none for a closed-only sink', async () => {
    const all = new TestSink('all');
    all.mode = 'hang';
    const closedOnly = new TestSink('closed-only', { closedOnly: true });
    const { pipeline, btc, eth } = setup([all, closedOnly]);
    pipeline.ingest(candle(btc, 0, false, 10));
    await tick(); // [btc open @10] in flight
    pipeline.ingest(candle(btc, 0, false, 20));
    await tick();
    pipeline.ingest(candle(btc, 0, false, 30)); // supersedes @20 in this sink's queue
    pipeline.ingest(candle(eth, 0, false, 31));
    await tick();
    pipeline.ingest(candle(eth, 0, true)); // eth's open update in the queue is now for a closed candle
    await tick();
    all.release();
    await tick();
    expect(all.got.map((c) => `${c.stream.symbol}:${c.closed ? 'closed' : `open@${c.eventTime}`}`)).toEqual([
      'BTCUSDT:open@10',
      'ETHUSDT:closed',
      'BTCUSDT:open@30',
    ]);
    expect(closedOnly.got.map((c) => `${c.stream.symbol}:${c.closed}`)).toEqual(['ETHUSDT:true']);
  });

  it('drain() retries a sink waiting out its back-off at once, so it flushes inside the budget', async () => {
    const slow = new TestSink('slow');
    slow.mode = 'reject';
    const { pipeline, btc, relay, sinkEvents } = setup([slow], { initialMs: 20_000, maxMs: 60_000 });
    for (let i = 0; i < 3; i++) pipeline.ingest(candle(btc, i * MIN, true));
    await tick();
    expect(relay.closed()).toEqual([0, 1, 2]);
    slow.mode = 'ok'; // recovered, but its next retry is up to 20 s away
    let done: boolean | undefined;
    void pipeline.drain(5000).then((ok) => (done = ok));
    await tick(100);
    expect(done).toBe(true);
    expect(slow.closed()).toEqual([0, 1, 2]);
    expect(sinkEvents().at(-1)).toMatchObject({ type: 'sink.state', from: 'ok', to: 'stopped', pending: 0 });
  });

  it('drain() stops a sink that never recovers at the deadline: false, no retry after it, no timer left', async () => {
    const dead = new TestSink('dead');
    dead.mode = 'reject';
    const hung = new TestSink('hung');
    hung.mode = 'hang';
    const { pipeline, btc, relay, sinkEvents } = setup([dead, hung]);
    for (let i = 0; i < 3; i++) pipeline.ingest(candle(btc, i * MIN, true));
    await tick();
    let done: boolean | undefined;
    void pipeline.drain(2000).then((ok) => (done = ok));
    await tick(1999);
    expect(done).toBeUndefined();
    await tick(1);
    expect(done).toBe(false);
    expect(relay.closed()).toEqual([0, 1, 2]);
    expect(vi.getTimerCount()).toBe(0);
    const attempts = dead.attemptTimes.length;
    await tick(60_000);
    expect(dead.attemptTimes).toHaveLength(attempts);
    const stopped = sinkEvents().filter((e) => e.type === 'sink.state' && e.to === 'stopped');
    expect(stopped).toEqual([
      { type: 'sink.state', sink: 'dead', from: 'failing', to: 'stopped', pending: 3, attempts, error: 'dead: publish timed out' },
      { type: 'sink.state', sink: 'hung', from: 'ok', to: 'stopped', pending: 3, attempts: 0 },
    ]);
    // Settling after the stop changes nothing and throws nothing.
    hung.release();
    await tick();
    expect(pipeline.sinkStats().find((s) => s.name === 'hung')).toMatchObject({ state: 'stopped', delivered: 0 });
  });

  it('refuses at construction a sink whose queue bound is not a positive integer, naming the sink', () => {
    expect(() => setup([new TestSink('broken', { maxPending: 0 })])).toThrow('sink broken: maxPending must be a positive integer, got 0');
  });

  it('an onGap that throws is counted as a sink error and changes nothing else', async () => {
    const sink = new TestSink('gapthrow', { maxPending: 1 });
    sink.onGap = () => {
      throw new Error('bug in onGap');
    };
    sink.mode = 'hang';
    const { pipeline, btc, relay, stats } = setup([sink]);
    pipeline.ingest(candle(btc, 0, true));
    await tick();
    pipeline.ingest(candle(btc, MIN, true));
    pipeline.ingest(candle(btc, 2 * MIN, true)); // shed: onGap throws
    await tick();
    expect(relay.closed()).toEqual([0, 1, 2]);
    expect(stats('gapthrow')).toMatchObject({ errors: 1, shed: 1, lastError: 'bug in onGap', state: 'ok' });
    sink.release();
    await tick();
    expect(sink.closed()).toEqual([0, 1]);
  });
});
