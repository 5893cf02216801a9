import { describe, expect, it, vi } from 'vitest';
import type { Candle, CandleSink, StreamRef } from '../../src/core/candle.ts';
import type { Clock } from '../../src/core/clock.ts';
import { StatusStream, type StatusEvent } from '../../src/core/status.ts';
import { Pipeline } from '../../src/pipeline/pipeline.ts';
import type { RecoveryFetch } from '../../src/pipeline/gaps.ts';
import { EnvSchema } from '../../src/config/schema.ts';
import { candle, streams } from '../helpers/candles.ts';

const MIN = 60_000;

class RecordingSink implements CandleSink {
  readonly name = 'recording';
  readonly got: Candle[] = [];
  deliver(batch: readonly Candle[]): void {
    this.got.push(...batch);
  }
  closed(stream?: StreamRef): number[] {
    return this.got.filter((c) => c.closed && (stream === undefined || c.stream === stream)).map((c) => c.openTime);
  }
}

function setup(opts: { recover?: RecoveryFetch; closedMax?: number; holdMax?: number; now?: () => number } = {}) {
  const config = EnvSchema.parse({
    CONNECTOR_CLOSED_QUEUE_MAXSIZE: opts.closedMax ?? 1000,
    CONNECTOR_GAP_HOLD_MAX: opts.holdMax ?? 5000,
  });
  const { refs } = streams([['btcusdt', '1m'], ['ethusdt', '1m']]);
  const sink = new RecordingSink();
  const status = new StatusStream();
  const events: StatusEvent[] = [];
  status.subscribe((e) => events.push(e));
  const clock: Clock = { now: opts.now ?? (() => 100 * MIN), monotonic: () => performance.now() };
  let blocked = 0;
  let unblocked = 0;
  const pipeline = new Pipeline({
    config: config.pipeline,
    sinks: [sink],
    status,
    clock,
    recover: opts.recover ?? (() => Promise.resolve([])),
    onBlocked: () => blocked++,
    onUnblocked: () => unblocked++,
    gapRetryDelaysMs: [5, 5, 5],
  });
  return { pipeline, sink, refs, events, counts: () => ({ blocked, unblocked }) };
}

async function until(cond: () => boolean, what: string, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

const settle = () => new Promise((r) => setTimeout(r, 10));

describe('pipeline', () => {
  it('delivers every closed candle exactly once, in order, and counts the duplicates', async () => {
    const { pipeline, sink, refs } = setup();
    const btc = refs[0]!;
    for (const t of [0, MIN, MIN, 2 * MIN, MIN, 2 * MIN, 3 * MIN]) pipeline.ingest(candle(btc, t, true));
    await settle();
    expect(sink.closed(btc)).toEqual([0, MIN, 2 * MIN, 3 * MIN]);
    expect(pipeline.stats().duplicates).toBe(3);
    expect(pipeline.stats().processedClosed).toBe(4);
  });

  it('drains closed candles before open ones', async () => {
    const { pipeline, sink, refs } = setup();
    pipeline.ingest(candle(refs[0]!, 0, false, 10));
    pipeline.ingest(candle(refs[1]!, 0, true));
    pipeline.ingest(candle(refs[0]!, 0, false, 20));
    await settle();
    expect(sink.got.map((c) => `${c.stream.symbol}:${c.closed}:${c.eventTime}`)).toEqual(['ETHUSDT:true:1', 'BTCUSDT:false:20']);
  });

  it('never delivers an open update older than one already seen, nor one for a candle already closed', async () => {
    const { pipeline, sink, refs } = setup();
    const btc = refs[0]!;
    pipeline.ingest(candle(btc, MIN, false, MIN + 500));
    await settle();
    pipeline.ingest(candle(btc, MIN, false, MIN + 400)); // older event time
    pipeline.ingest(candle(btc, 0, false, MIN + 600)); // older candle
    pipeline.ingest(candle(btc, MIN, true, 2 * MIN));
    pipeline.ingest(candle(btc, MIN, false, 2 * MIN + 5)); // its candle is already closed
    pipeline.ingest(candle(btc, 2 * MIN, false, 2 * MIN + 10));
    await settle();
    expect(sink.got.map((c) => `${c.openTime / MIN}:${c.closed}:${c.eventTime - c.openTime}`)).toEqual(['1:false:500', '1:true:60000', '2:false:10']);
    expect(pipeline.stats().openSkipped).toBe(3);
  });

  it('recovers a gap over the recovery function and delivers it before the live candle that revealed it', async () => {
    const asked: [number, number][] = [];
    const { pipeline, sink, refs, events } = setup({
      recover: (s, from, to) => {
        asked.push([from, to]);
        const out: Candle[] = [];
        for (let t = from; t < to; t += MIN) out.push(candle(s, t, true, 0, 'rest'));
        return Promise.resolve(out);
      },
    });
    const btc = refs[0]!;
    pipeline.ingest(candle(btc, 0, true));
    pipeline.ingest(candle(btc, 4 * MIN, true)); // 1,2,3 missing
    pipeline.ingest(candle(btc, 5 * MIN, true)); // arrives while recovering: held
    await until(() => sink.closed(btc).length === 6, 'six closed candles');
    expect(sink.closed(btc)).toEqual([0, 1, 2, 3, 4, 5].map((i) => i * MIN));
    expect(sink.got.filter((c) => c.source === 'rest').map((c) => c.openTime)).toEqual([MIN, 2 * MIN, 3 * MIN]);
    expect(asked).toEqual([[MIN, 4 * MIN]]);
    const bf = events.find((e) => e.type === 'backfill');
    expect(bf).toMatchObject({ missing: 3, recovered: 3, holes: 0, outcome: 'ok' });
  });

  it('counts a range the exchange cannot fill as a hole and never invents it', async () => {
    const { pipeline, sink, refs } = setup({
      // Binance outage: 2 has no row; 1 and 3 exist
      recover: (s, from, to) => Promise.resolve([MIN, 3 * MIN].filter((t) => t >= from && t < to).map((t) => candle(s, t, true, 0, 'rest'))),
    });
    const btc = refs[0]!;
    pipeline.ingest(candle(btc, 0, true));
    pipeline.ingest(candle(btc, 4 * MIN, true));
    await until(() => sink.closed(btc).length === 4, 'four closed candles');
    expect(sink.closed(btc)).toEqual([0, MIN, 3 * MIN, 4 * MIN]);
    expect(pipeline.gapStats.holes).toBe(1);
  });

  it('retries a failed recovery and loses nothing meanwhile', async () => {
    let calls = 0;
    const { pipeline, sink, refs, events } = setup({
      recover: (s, from, to) => {
        calls++;
        if (calls < 3) return Promise.reject(new Error('REST down'));
        const out: Candle[] = [];
        for (let t = from; t < to; t += MIN) out.push(candle(s, t, true, 0, 'rest'));
        return Promise.resolve(out);
      },
    });
    const btc = refs[0]!;
    pipeline.ingest(candle(btc, 0, true));
    pipeline.ingest(candle(btc, 2 * MIN, true));
    pipeline.ingest(candle(btc, 3 * MIN, true));
    await until(() => sink.closed(btc).length === 4, 'four closed candles');
    expect(sink.closed(btc)).toEqual([0, MIN, 2 * MIN, 3 * MIN]);
    expect(events.filter((e) => e.type === 'backfill' && e.outcome === 'failed')).toHaveLength(2);
    expect(pipeline.gapStats.backfillsFailed).toBe(2);
  });

  it('re-asks for a recent missing tail before calling it a hole (REST lags the stream)', async () => {
    let calls = 0;
    const { pipeline, sink, refs } = setup({
      now: () => 3 * MIN + 100, // candle 2 closed 100 ms ago
      recover: (s, from, to) => {
        calls++;
        const last = calls === 1 ? 2 * MIN : to; // the first answer lacks it: REST has not caught up
        const out: Candle[] = [];
        for (let t = from; t < Math.min(to, last); t += MIN) out.push(candle(s, t, true, 0, 'rest'));
        return Promise.resolve(out);
      },
    });
    const btc = refs[0]!;
    pipeline.ingest(candle(btc, 0, true));
    pipeline.resync(btc);
    await until(() => sink.closed(btc).length === 3, 'three closed candles');
    expect(sink.closed(btc)).toEqual([0, MIN, 2 * MIN]);
    expect(pipeline.gapStats.holes).toBe(0);
    expect(calls).toBe(2);
  });

  it('resync recovers everything closed since the last delivered candle without waiting for a live one', async () => {
    const { pipeline, sink, refs } = setup({
      now: () => 5 * MIN + 30_000,
      recover: (s, from, to) => {
        const out: Candle[] = [];
        for (let t = from; t < to; t += MIN) out.push(candle(s, t, true, 0, 'rest'));
        return Promise.resolve(out);
      },
    });
    const btc = refs[0]!;
    pipeline.ingest(candle(btc, 0, true));
    pipeline.resync(btc);
    await until(() => sink.closed(btc).length === 5, 'five closed candles');
    expect(sink.closed(btc)).toEqual([0, 1, 2, 3, 4].map((i) => i * MIN));
  });

  it('bounds the holding area: on overflow it forgets held candles and recovers them instead', async () => {
    let release: (() => void) | undefined;
    const gate = new Promise<void>((r) => (release = r));
    const { pipeline, sink, refs } = setup({
      holdMax: 3,
      recover: async (s, from, to) => {
        await gate;
        const out: Candle[] = [];
        for (let t = from; t < to; t += MIN) out.push(candle(s, t, true, 0, 'rest'));
        return out;
      },
    });
    const btc = refs[0]!;
    pipeline.ingest(candle(btc, 0, true));
    for (let i = 2; i <= 10; i++) pipeline.ingest(candle(btc, i * MIN, true));
    release?.();
    await until(() => sink.closed(btc).length === 11, 'eleven closed candles');
    expect(sink.closed(btc)).toEqual(Array.from({ length: 11 }, (_, i) => i * MIN));
  });

  it('blocks the producer when the closed queue is full and resumes below low water, losing nothing', async () => {
    const { pipeline, sink, refs, events, counts } = setup({ closedMax: 10 });
    const btc = refs[0]!;
    // Sinks never hold the drain (each has its own runner), so the FIFO fills only when candles come
    // faster than the drain steps: here a burst in one tick, as from one socket read of many frames.
    for (let i = 0; i <= 12; i++) pipeline.ingest(candle(btc, i * MIN, true));
    expect(counts()).toEqual({ blocked: 1, unblocked: 0 });
    expect(pipeline.stats()).toMatchObject({ blocked: true, closedDepth: 13, blockingEvents: 1 });
    await until(() => sink.closed(btc).length === 13, 'thirteen closed candles');
    expect(counts()).toEqual({ blocked: 1, unblocked: 1 });
    expect(sink.closed(btc)).toEqual(Array.from({ length: 13 }, (_, i) => i * MIN));
    expect(events.map((e) => e.type).filter((t) => t.startsWith('queue.'))).toEqual(['queue.blocked', 'queue.resumed']);
  });

  it('drain() delivers everything queued before it resolves', async () => {
    const { pipeline, sink, refs } = setup();
    for (let i = 0; i < 50; i++) pipeline.ingest(candle(refs[i % 2]!, Math.floor(i / 2) * MIN, true));
    const ok = await pipeline.drain(2000);
    expect(ok).toBe(true);
    expect(sink.closed().length).toBe(50);
    pipeline.ingest(candle(refs[0]!, 999 * MIN, true));
    await settle();
    expect(sink.closed().length).toBe(50);
  });

  it('drain() lets a recovery in flight finish, so the live candles it held still go out, in order', async () => {
    const { pipeline, sink, refs } = setup({
      recover: async (s, from, to) => {
        await new Promise((r) => setTimeout(r, 150));
        const out: Candle[] = [];
        for (let t = from; t < to; t += MIN) out.push(candle(s, t, true, 0, 'rest'));
        return out;
      },
    });
    const btc = refs[0]!;
    pipeline.ingest(candle(btc, 0, true));
    pipeline.ingest(candle(btc, 3 * MIN, true)); // gap: held while [1, 3) is recovered
    pipeline.ingest(candle(btc, 4 * MIN, true)); // held too
    const ok = await pipeline.drain(2000);
    expect(ok).toBe(true);
    expect(sink.closed(btc)).toEqual([0, 1, 2, 3, 4].map((i) => i * MIN));
  });

  it('drain() gives up at its deadline when a recovery cannot finish', async () => {
    const { pipeline, sink, refs } = setup({ recover: () => Promise.reject(new Error('REST down')) });
    const btc = refs[0]!;
    pipeline.ingest(candle(btc, 0, true));
    pipeline.ingest(candle(btc, 2 * MIN, true));
    await settle();
    // Time is the subject: fake timers from here, so a loaded machine cannot stretch the deadline.
    vi.useFakeTimers();
    try {
      let result: boolean | undefined;
      void pipeline.drain(300).then((ok) => (result = ok));
      await vi.advanceTimersByTimeAsync(299);
      expect(result).toBeUndefined(); // still trying before its deadline
      await vi.advanceTimersByTimeAsync(1);
      expect(result).toBe(false); // and gives up exactly at it
    } finally {
      vi.useRealTimers();
    }
    expect(sink.closed(btc)).toEqual([0]); // never out of order, never past a gap
  });

  it('records frame-to-delivery latency for every delivered candle', async () => {
    const { pipeline, refs } = setup();
    for (let i = 0; i < 5; i++) pipeline.ingest(candle(refs[0]!, i * MIN, true));
    await settle();
    const lat = pipeline.stats().latency;
    expect(lat.count).toBe(5);
    expect(Array.from(lat.counts).reduce((a, b) => a + b, 0)).toBe(5);
  });
});
