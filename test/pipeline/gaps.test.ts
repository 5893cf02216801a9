/**
 * GapTracker against a REST stand-in that lags (contract §3): a missing range is a hole only once REST
 * has moved past it or it is older than CONNECTOR_HOLE_HORIZON_MS. Time is the subject: fake timers.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Writable } from 'node:stream';
import type { Candle, StreamRef } from '../../src/core/candle.ts';
import type { Clock } from '../../src/core/clock.ts';
import { StatusStream, type StatusEvent } from '../../src/core/status.ts';
import { GapTracker, type RecoveryFetch } from '../../src/pipeline/gaps.ts';
import { createLogger, logStatus } from '../../src/ops/logger.ts';
import { candle, streams } from '../helpers/candles.ts';

const MIN = 60_000;
const T = 1_700_000_040_000; // a minute boundary
const HORIZON = 300_000;

const clock: Clock = { now: () => Date.now(), monotonic: () => performance.now() };

beforeEach(() => {
  vi.useFakeTimers({ now: T + 3 * MIN + 1000 });
});
afterEach(() => {
  vi.useRealTimers();
});

/** A REST that has every candle, but only once it closed `lagMs` before now (contract §3: REST lags the stream). */
function laggingRest(lagMs: () => number, asked: [number, number][] = []): RecoveryFetch {
  return (s, from, to) => {
    asked.push([from, to]);
    const out: Candle[] = [];
    for (let t = from; t < to; t += MIN) if (t + MIN - 1 < Date.now() - lagMs()) out.push(candle(s, t, true, 0, 'rest'));
    return Promise.resolve(out);
  };
}

function tracker(fetch: RecoveryFetch, extra: { retryDelaysMs?: readonly number[] } = {}) {
  const status = new StatusStream();
  const events: StatusEvent[] = [];
  status.subscribe((e) => events.push(e));
  const delivered: Candle[] = [];
  const gaps = new GapTracker({
    fetch,
    deliver: (c) => {
      delivered.push(c);
    },
    status,
    clock,
    holdMax: 5000,
    holeHorizonMs: HORIZON,
    ...extra,
  });
  const btc: StreamRef = streams([['btcusdt', '1m']]).refs[0]!;
  /** A live closed candle: delivered at once when the tracker says so, as the pipeline does. */
  const live = (openTime: number): void => {
    const c = candle(btc, openTime, true);
    if (gaps.offer(c)) delivered.push(c);
  };
  const times = (): number[] => delivered.map((c) => (c.openTime - T) / MIN);
  return { gaps, status, events, delivered, live, times, btc };
}

describe('gap recovery while REST lags', () => {
  it('keeps asking for a recent missing range while REST has not got it, and delivers it in order, not as a hole', async () => {
    let lag = 200_000; // REST is 200 s behind the stream
    const asked: [number, number][] = [];
    const { gaps, events, live, times } = tracker(
      laggingRest(() => lag, asked),
      { retryDelaysMs: [1000, 2000, 5000, 10_000, 30_000, 60_000] },
    );
    live(T);
    live(T + 3 * MIN); // 1 and 2 missing: held
    await vi.advanceTimersByTimeAsync(60_000);
    live(T + 4 * MIN);
    await vi.advanceTimersByTimeAsync(20_000);
    expect(times()).toEqual([0]); // nothing past the gap: the live candles wait
    expect(gaps.stats.holes).toBe(0);
    expect(asked.length).toBeGreaterThan(3); // asked again, with back-off
    lag = 1000; // REST catches up
    await vi.advanceTimersByTimeAsync(15_000);
    expect(times()).toEqual([0, 1, 2, 3, 4]);
    expect(gaps.stats).toMatchObject({ holes: 0, candlesRecovered: 2, backfills: 1 });
    // Counted once, however many times it was asked for.
    expect(events.filter((e) => e.type === 'backfill')).toEqual([
      expect.objectContaining({ type: 'backfill', fromOpenTime: T + MIN, toOpenTime: T + 3 * MIN, missing: 2, recovered: 2, holes: 0, outcome: 'ok' }),
    ]);
    // Every ask after the first started where the last one stopped and ended at the first held candle.
    expect(new Set(asked.map(([, to]) => to))).toEqual(new Set([T + 3 * MIN]));
  });

  it('declares a range a hole once it is older than CONNECTOR_HOLE_HORIZON_MS, though REST never moved past it', async () => {
    const { gaps, events, live, times } = tracker(() => Promise.resolve([]), { retryDelaysMs: [1000, 2000, 5000, 10_000] });
    live(T);
    live(T + 3 * MIN);
    await vi.advanceTimersByTimeAsync(4 * MIN);
    expect(times()).toEqual([0]);
    expect(gaps.stats.holes).toBe(0);
    expect(gaps.pending).toBe(1);
    // The range [1, 3) closed at T + 3 min; past T + 8 min it is older than the horizon.
    await vi.advanceTimersByTimeAsync(HORIZON - 4 * MIN + 20_000);
    expect(times()).toEqual([0, 3]);
    expect(gaps.stats.holes).toBe(2);
    expect(gaps.pending).toBe(0);
    expect(events.filter((e) => e.type === 'backfill')).toEqual([expect.objectContaining({ missing: 2, recovered: 0, holes: 2, outcome: 'partial' })]);
  });

  it('takes a missing candle before one REST has served as a hole at once (REST moved past it)', async () => {
    const { gaps, live, times } = tracker((s, from, to) =>
      // Binance outage: 1 has no row; REST has 2, a later candle of the stream.
      Promise.resolve([2].map((i) => T + i * MIN).filter((t) => t >= from && t < to).map((t) => candle(s, t, true, 0, 'rest'))),
    );
    live(T);
    live(T + 3 * MIN);
    await vi.advanceTimersByTimeAsync(10);
    expect(times()).toEqual([0, 2, 3]);
    expect(gaps.stats.holes).toBe(1);
  });
});

describe('gap recovery logging while the REST breaker is open', () => {
  it('logs one aggregated line per interval for all the streams waiting, not one per stream per retry', async () => {
    const lines: Record<string, unknown>[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        for (const l of chunk.toString('utf8').split('\n')) if (l !== '') lines.push(JSON.parse(l) as Record<string, unknown>);
        done();
      },
    });
    const status = new StatusStream();
    const logging = logStatus(status, createLogger('info', sink));
    const { refs } = streams(Array.from({ length: 40 }, (_, i) => [`sym${i}usdt`, '1m'] as [string, string]));
    const gaps = new GapTracker({
      fetch: () => Promise.reject(new Error('Binance REST circuit breaker is open')),
      deliver: () => undefined,
      status,
      clock,
      holdMax: 5000,
      retryDelaysMs: [1000, 2000, 5000],
    });
    for (const s of refs) {
      gaps.offer(candle(s, T, true));
      gaps.offer(candle(s, T + 2 * MIN, true));
    }
    await vi.advanceTimersByTimeAsync(120_000);
    expect(gaps.stats.backfillsFailed).toBeGreaterThan(40 * 20); // every stream retried every 5 s
    const failedLines = lines.filter((l) => l.event === 'backfill');
    expect(failedLines.length).toBeGreaterThanOrEqual(2);
    expect(failedLines.length).toBeLessThanOrEqual(1 + 120_000 / 30_000);
    expect(failedLines.at(-1)).toMatchObject({ level: 'warn', outcome: 'failed', streams: 40, error: 'Binance REST circuit breaker is open' });
    gaps.close();
    logging.dispose();
  });
});
