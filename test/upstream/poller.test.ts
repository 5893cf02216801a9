/**
 * The REST-polled source (src/upstream/poller.ts) on its own, time being the subject: fake timers and a
 * scripted REST fetch (the daemon-level guarantees against the Pionex simulator are in
 * test/e2e/pionex.test.ts). One poll per stream just after each close, the one hole rule on every
 * answer, a cursor that survives failures, no poll while paused, staleness.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { pino } from 'pino';
import { EnvSchema } from '../../src/config/schema.ts';
import type { Candle, StreamRef } from '../../src/core/candle.ts';
import type { Clock } from '../../src/core/clock.ts';
import { closeTimeOf, nextOpenTime } from '../../src/core/intervals.ts';
import type { RecoveredRange } from '../../src/core/recovery.ts';
import { StatusStream, type StatusEvent } from '../../src/core/status.ts';
import { StreamRegistry } from '../../src/core/streams.ts';
import { RestPoller } from '../../src/upstream/poller.ts';
import { registerVenueStreams } from '../../src/upstream/venue.ts';
import { pionexSpot, POLL_LAG_MS } from '../../src/venues/pionex/spot.ts';

const MIN = 60_000;
/** A minute boundary; the test starts 10 s into the minute after it. */
const T0 = 1_767_225_600_000;

interface Call {
  readonly at: number;
  readonly stream: string;
  readonly from: number;
  readonly to: number;
}

/** REST as the poller sees it: rows for every open time up to the one forming at `now`, minus what the test removes. */
class FakeRest {
  readonly calls: Call[] = [];
  /** Open times REST does not have (holes). */
  readonly holes = new Set<number>();
  /** REST is this far behind: it serves rows only up to the one forming at now - lagMs. */
  lagMs = 0;
  failing = false;

  readonly fetch = (stream: StreamRef, from: number, to: number): Promise<RecoveredRange> => {
    const now = Date.now();
    this.calls.push({ at: now, stream: stream.name, from, to });
    if (this.failing) return Promise.reject(Object.assign(new Error('REST 503'), { code: 'CONNECTOR_ERR_REST_STATUS' }));
    const step = stream.interval === '5m' ? 5 * MIN : MIN;
    const newest = Math.floor((now - this.lagMs) / step) * step; // forming at REST's now
    const candles: Candle[] = [];
    let frontier: number | undefined;
    for (let t = from; t <= Math.min(to, newest); t += step) {
      if (this.holes.has(t)) continue;
      frontier = t;
      if (t < to && closeTimeOf(stream.interval, t) < now) candles.push(row(stream, t));
    }
    return Promise.resolve({ candles, frontier });
  };
}

function row(stream: StreamRef, openTime: number): Candle {
  return { stream, openTime, closeTime: closeTimeOf(stream.interval, openTime), eventTime: openTime, closed: true, open: '1', high: '2', low: '0.5', close: '1.5', volume: '3', source: 'rest', raw: undefined, receivedAt: 0 };
}

const clock: Clock = { now: () => Date.now(), monotonic: () => Date.now() };

function setup(intervals: ('1m' | '5m')[] = ['1m'], log = pino({ level: 'silent' })) {
  const config = EnvSchema.parse({ CONNECTOR_VENUES: 'pionex', CONNECTOR_PIONEX_SYMBOLS: 'BTC_USDT,ETH_USDT', CONNECTOR_PIONEX_INTERVALS: intervals.join(','), CONNECTOR_STALE_STREAM_MS: 30_000 });
  const streams = registerVenueStreams(new StreamRegistry(), pionexSpot, ['BTC_USDT', 'ETH_USDT'], intervals);
  const rest = new FakeRest();
  const status = new StatusStream();
  const events: StatusEvent[] = [];
  status.subscribe((e) => events.push(e));
  const got: Candle[] = [];
  const poller = new RestPoller({
    config,
    venue: pionexSpot,
    streams,
    fetch: rest.fetch,
    handlers: { candle: (c) => got.push(c), resync: () => undefined },
    status,
    log,
    clock,
    retryDelaysMs: [1000, 2000, 5000],
  });
  const of = (name: string): number[] => got.filter((c) => c.stream.name === name).map((c) => c.openTime);
  return { poller, rest, got, events, streams, of };
}

let poller: RestPoller | undefined;
beforeEach(() => {
  vi.useFakeTimers({ now: T0 + 10_000 });
});
afterEach(async () => {
  await poller?.close();
  poller = undefined;
  vi.useRealTimers();
});

describe('REST poller', () => {
  it('polls each stream once just after each of its candles closes and hands on every closed candle once, in order', async () => {
    const s = setup(['1m', '5m']);
    poller = s.poller;
    await s.poller.start();
    await vi.advanceTimersByTimeAsync(0);
    // At start: each stream's last closed candle.
    expect(s.rest.calls.map((c) => [c.stream, c.from, c.to])).toEqual([
      ['pionex:btc_usdt@kline_1m', T0 - MIN, T0],
      ['pionex:btc_usdt@kline_5m', T0 - 5 * MIN, T0],
      ['pionex:eth_usdt@kline_1m', T0 - MIN, T0],
      ['pionex:eth_usdt@kline_5m', T0 - 5 * MIN, T0],
    ]);
    await vi.advanceTimersByTimeAsync(10 * MIN);
    const m1 = s.rest.calls.filter((c) => c.stream === 'pionex:btc_usdt@kline_1m');
    // One poll per close, each within a tick of close + lag, each asking for just the candle that closed.
    expect(m1).toHaveLength(11);
    for (const [i, c] of m1.slice(1).entries()) {
      const close = T0 + (i + 1) * MIN;
      expect(c.at - close).toBeGreaterThanOrEqual(POLL_LAG_MS);
      expect(c.at - close).toBeLessThan(POLL_LAG_MS + 200);
      expect([c.from, c.to]).toEqual([close - MIN, close]);
    }
    expect(s.rest.calls.filter((c) => c.stream === 'pionex:btc_usdt@kline_5m')).toHaveLength(3);
    const minutes = Array.from({ length: 11 }, (_, i) => T0 - MIN + i * MIN);
    expect(s.of('pionex:btc_usdt@kline_1m')).toEqual(minutes);
    expect(s.of('pionex:eth_usdt@kline_1m')).toEqual(minutes);
    expect(s.of('pionex:eth_usdt@kline_5m')).toEqual([T0 - 5 * MIN, T0, T0 + 5 * MIN]);
    expect(s.got.every((c) => c.closed && c.source === 'rest')).toBe(true);
    const snap = s.poller.snapshot();
    expect(snap).toMatchObject({ venue: 'pionex', connections: [], streamsConfigured: 4, streamsLive: 4, staleStreams: [] });
    expect(snap.poll).toMatchObject({ streamsPolled: 4, polls: 4 + 2 * 10 + 2 * 2, failures: 0, lagRetries: 0 });
    expect(snap.poll?.lagMs).toBeGreaterThanOrEqual(POLL_LAG_MS);
  });

  it('asks again after 1 s while REST has not sealed the candle (no later row yet), and hands it on once it has', async () => {
    const s = setup();
    poller = s.poller;
    s.rest.lagMs = 5_000; // REST starts the next candle 5 s after the close
    await s.poller.start();
    await vi.advanceTimersByTimeAsync(50 * 1000 + 100); // just past the close of T0's candle + lag
    const before = s.of('pionex:btc_usdt@kline_1m');
    expect(before).toEqual([T0 - MIN]);
    await vi.advanceTimersByTimeAsync(5_000);
    expect(s.of('pionex:btc_usdt@kline_1m')).toEqual([T0 - MIN]);
    await vi.advanceTimersByTimeAsync(5_000);
    expect(s.of('pionex:btc_usdt@kline_1m')).toEqual([T0 - MIN, T0]);
    const asks = s.rest.calls.filter((c) => c.stream === 'pionex:btc_usdt@kline_1m' && c.from === T0).map((c) => c.at - (T0 + MIN));
    // 1.5 s after the close (no later row yet), then 1, 2 and 5 s later (REST has the next row from 5 s on).
    expect(asks.length).toBe(4);
    expect(asks[3]).toBeGreaterThan(5_000);
    expect(s.poller.snapshot().poll?.lagRetries).toBe(6); // three re-asks on each stream
  });

  it('keeps its cursor while polls fail and, once REST answers, hands on everything since, in order', async () => {
    const s = setup();
    poller = s.poller;
    await s.poller.start();
    await vi.advanceTimersByTimeAsync(60_000); // T0's candle delivered at T0 + 61.5 s
    s.rest.failing = true;
    await vi.advanceTimersByTimeAsync(4 * MIN);
    expect(s.of('pionex:btc_usdt@kline_1m')).toEqual([T0 - MIN, T0]);
    expect(s.poller.snapshot().poll?.failures).toBeGreaterThan(2);
    s.rest.failing = false;
    await vi.advanceTimersByTimeAsync(6_000);
    expect(s.of('pionex:btc_usdt@kline_1m')).toEqual([T0 - MIN, T0, T0 + MIN, T0 + 2 * MIN, T0 + 3 * MIN, T0 + 4 * MIN]);
    expect(s.of('pionex:eth_usdt@kline_1m')).toEqual([T0 - MIN, T0, T0 + MIN, T0 + 2 * MIN, T0 + 3 * MIN, T0 + 4 * MIN]);
  });

  it('logs a failing spell of the venue once (not once per stream) and its end once', async () => {
    const lines: { event?: string }[] = [];
    const s = setup(['1m', '5m'], pino({ level: 'info' }, { write: (line: string) => lines.push(JSON.parse(line) as { event?: string }) }));
    poller = s.poller;
    await s.poller.start();
    await vi.advanceTimersByTimeAsync(1000);
    s.rest.failing = true;
    await vi.advanceTimersByTimeAsync(6 * MIN);
    expect(s.poller.snapshot().poll?.failures).toBeGreaterThan(8);
    s.rest.failing = false;
    await vi.advanceTimersByTimeAsync(10_000);
    expect(lines.map((l) => l.event)).toEqual(['poll.failed', 'poll.recovered']);
  });

  it('steps over a hole REST has moved past (the pipeline counts it), and never invents it', async () => {
    const s = setup();
    poller = s.poller;
    s.rest.holes.add(T0 + MIN);
    await s.poller.start();
    await vi.advanceTimersByTimeAsync(4 * MIN);
    expect(s.of('pionex:btc_usdt@kline_1m')).toEqual([T0 - MIN, T0, T0 + 2 * MIN, T0 + 3 * MIN]);
  });

  it('starts no poll while paused (the pipeline is full) and catches up on resume', async () => {
    const s = setup();
    poller = s.poller;
    await s.poller.start();
    await vi.advanceTimersByTimeAsync(0);
    s.poller.pause();
    const calls = s.rest.calls.length;
    await vi.advanceTimersByTimeAsync(3 * MIN);
    expect(s.rest.calls.length).toBe(calls);
    expect(s.poller.snapshot().paused).toBe(true);
    s.poller.resume();
    await vi.advanceTimersByTimeAsync(0);
    expect(s.of('pionex:btc_usdt@kline_1m')).toEqual([T0 - MIN, T0, T0 + MIN, T0 + 2 * MIN]);
  });

  it('warns at start when a boundary where every stream closes at once takes more than half the shortest interval to poll', async () => {
    const lines: string[] = [];
    const log = pino({ level: 'warn' }, { write: (line: string) => lines.push(line) });
    const symbols = Array.from({ length: 360 }, (_, i) => `S${i}_USDT`);
    const make = (n: number): RestPoller => {
      const config = EnvSchema.parse({ CONNECTOR_VENUES: 'pionex', CONNECTOR_PIONEX_SYMBOLS: symbols.slice(0, n).join(',') });
      const streams = registerVenueStreams(new StreamRegistry(), pionexSpot, symbols.slice(0, n), ['1m']);
      return new RestPoller({ config, venue: pionexSpot, streams, fetch: new FakeRest().fetch, handlers: { candle: () => undefined, resync: () => undefined }, status: new StatusStream(), log, clock });
    };
    // 240 one-minute streams at 8 requests/s: the last poll of a boundary leaves 30 s after the close, half the interval.
    poller = make(240);
    await poller.start();
    await poller.close();
    expect(lines).toEqual([]);
    poller = make(360);
    await poller.start();
    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0] ?? '{}')).toMatchObject({ event: 'config.warning', venue: 'pionex', streams: 360, burstSeconds: 45 });
  });

  it('reports a stream stale once its oldest undelivered candle is overdue by CONNECTOR_STALE_STREAM_MS, and live again when it arrives', async () => {
    const s = setup();
    poller = s.poller;
    await s.poller.start();
    await vi.advanceTimersByTimeAsync(1000);
    s.rest.failing = true;
    // T0's candle closes at T0 + 60 s; overdue past T0 + 60 + 1.5 + 30 s.
    await vi.advanceTimersByTimeAsync(nextOpenTime('1m', T0) + POLL_LAG_MS + 30_000 - Date.now() - 500);
    expect(s.poller.snapshot().staleStreams).toEqual([]);
    await vi.advanceTimersByTimeAsync(1500);
    expect(s.poller.snapshot()).toMatchObject({ streamsLive: 0, staleStreams: ['pionex:btc_usdt@kline_1m', 'pionex:eth_usdt@kline_1m'] });
    expect(s.events.filter((e) => e.type === 'stream.stale')).toHaveLength(2);
    s.rest.failing = false;
    await vi.advanceTimersByTimeAsync(6_000);
    expect(s.poller.snapshot()).toMatchObject({ streamsLive: 2, staleStreams: [] });
    expect(s.events.filter((e) => e.type === 'stream.live')).toHaveLength(2);
    expect(s.poller.stats().staleEvents).toBe(2);
  });
});
