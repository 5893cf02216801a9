import { monitorEventLoopDelay } from 'node:perf_hooks';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { BinanceSimulator } from '../../src/venues/binance/simulator/server.ts';
import { eventsOf, sleep, startHarness, testConfig, waitFor, type Harness } from './helpers.ts';

let sim: BinanceSimulator | undefined;
let h: Harness | undefined;

afterEach(async () => {
  await h?.pool.close();
  await sim?.close();
  h = undefined;
  sim = undefined;
});

async function simulator(openUpdateMs = 100): Promise<BinanceSimulator> {
  sim = await BinanceSimulator.start({ openUpdateMs });
  return sim;
}

/**
 * How late this process ran its timers while a deadline was being waited for (max event-loop delay,
 * ms). On a loaded 2-core machine the process can be off the CPU for hundreds of ms; the pool's 50 ms
 * tick runs that much later and so does its deadline check. A bound of "deadline + tick + this" still
 * fails when a deadline is missed (a stall of seconds), but not because other tests took the CPU.
 */
function schedulingSlack(): { stop: () => number } {
  const h = monitorEventLoopDelay({ resolution: 10 });
  h.enable();
  return {
    stop: () => {
      h.disable();
      return h.max / 1e6;
    },
  };
}

function allLive(x: Harness): boolean {
  return x.pool.snapshot().streamsLive === x.streams.length;
}

describe('UpstreamPool (Binance spot) placement', () => {
  it('spreads 2000 streams over sockets with none above its cap, and every stream delivers', async () => {
    const s = await simulator(1000);
    const symbols = Array.from({ length: 125 }, (_, i) => `sym${i}usdt`);
    const intervals = ['1s', '1m', '3m', '5m', '15m', '30m', '1h', '2h', '4h', '6h', '8h', '12h', '1d', '3d', '1w', '1M'];
    h = startHarness(
      testConfig(s.wsUrl, {
        CONNECTOR_SYMBOLS: symbols,
        CONNECTOR_INTERVALS: intervals,
        CONNECTOR_MAX_STREAMS_PER_CONNECTION: 200,
        CONNECTOR_MAX_CONNECTIONS: 10,
        CONNECTOR_STALE_STREAM_MS: 20_000,
        CONNECTOR_PING_TIMEOUT_MS: 20_000,
      }),
      { keepCandles: false },
    );
    expect(h.streams).toHaveLength(2000);
    await h.pool.start();
    const x = h;
    await waitFor('2000 live streams', () => allLive(x), 20_000, 50);
    const sockets = s.sockets();
    expect(sockets).toHaveLength(10);
    for (const sock of sockets) expect(sock.streams.length).toBeLessThanOrEqual(200);
    expect(new Set(sockets.flatMap((k) => k.streams)).size).toBe(2000);
    expect(s.counters.maxInboundPerSecondSeen).toBeLessThanOrEqual(5);
  });

  it('subscribes streams that do not fit in the URL with paced SUBSCRIBE frames (≤ 5 inbound/s)', async () => {
    const s = await simulator(500);
    // 700 names of up to 29 bytes: ~20 KB, more than twice the URL limit, on one socket (symbols ≤ 20 chars).
    const symbols = Array.from({ length: 350 }, (_, i) => `longsymbolnam${i}usdt`);
    h = startHarness(
      testConfig(s.wsUrl, {
        CONNECTOR_SYMBOLS: symbols,
        CONNECTOR_INTERVALS: ['1s', '1m'],
        CONNECTOR_MAX_STREAMS_PER_CONNECTION: 1000,
        CONNECTOR_MAX_CONNECTIONS: 1,
        CONNECTOR_STALE_STREAM_MS: 20_000,
        CONNECTOR_PING_TIMEOUT_MS: 20_000,
      }),
      { keepCandles: false },
    );
    await h.pool.start();
    const x = h;
    await waitFor('700 live streams on one socket', () => allLive(x), 15_000, 50);
    const sockets = s.sockets();
    expect(sockets).toHaveLength(1);
    expect(sockets[0]!.streams).toHaveLength(700);
    expect(sockets[0]!.inboundTotal).toBeGreaterThanOrEqual(2); // at least two SUBSCRIBE frames
    expect(s.counters.maxInboundPerSecondSeen).toBeLessThanOrEqual(5);
    expect(s.counters.closedByRateLimit).toBe(0);
  });
});

describe('UpstreamPool (Binance spot) recovery', () => {
  it('replaces a stalled socket within its liveness deadline and resyncs its streams', async () => {
    const s = await simulator();
    h = startHarness(testConfig(s.wsUrl));
    await h.pool.start();
    const x = h;
    await waitFor('live', () => allLive(x));
    const slack = schedulingSlack();
    const stalledAt = performance.now();
    s.faults.stallSockets(10_000);
    await waitFor('socket dropped', () => eventsOf(x.events, 'connection.state').some((e) => e.to === 'disconnected'));
    const detectedMs = performance.now() - stalledAt;
    const lateMs = slack.stop();
    // Liveness deadline 600 ms (or the earlier pong deadline), checked every 50 ms, plus however late
    // this process ran its timers meanwhile (the stall lasts 10 s: a missed deadline still fails).
    expect(detectedMs).toBeLessThan(600 + 50 + 2 * lateMs + 250);
    await waitFor('new socket live', () => s.counters.connectionsOpened === 2 && allLive(x));
    expect(new Set(x.resyncs.map((r) => r.stream))).toEqual(new Set(x.streams.map((r) => r.name)));
  });

  it('marks a silent stream stale within its deadline, replaces its socket, and resyncs it when it is back', async () => {
    const s = await simulator();
    h = startHarness(testConfig(s.wsUrl));
    await h.pool.start();
    const x = h;
    await waitFor('live', () => allLive(x));
    const slack = schedulingSlack();
    const t0 = performance.now();
    s.faults.stallStreams(['btcusdt@kline_1s'], 1500);
    await waitFor('stale event', () => eventsOf(x.events, 'stream.stale').length > 0);
    const staleMs = performance.now() - t0;
    // Stale deadline 800 ms on the pool's 50 ms tick, plus this process's scheduling delay (see schedulingSlack).
    expect(staleMs).toBeLessThan(800 + 50 + 2 * slack.stop() + 250);
    expect(eventsOf(x.events, 'stream.stale')[0]!.stream).toBe('btcusdt@kline_1s');
    await waitFor('replacement socket', () => s.counters.connectionsOpened >= 2);
    await waitFor('stream live again', () => eventsOf(x.events, 'stream.live').some((e) => e.stream === 'btcusdt@kline_1s'), 5000);
    await waitFor('resync', () => x.resyncs.some((r) => r.stream === 'btcusdt@kline_1s'));
    // The healthy stream never lost data: no resync for it.
    expect(x.resyncs.filter((r) => r.stream === 'ethusdt@kline_1s')).toEqual([]);
    await waitFor('old socket closed', () => s.sockets().length === 1);
  });

  it('backs off replacements for a stream that stays silent (no replacement loop)', async () => {
    const s = await simulator();
    h = startHarness(testConfig(s.wsUrl));
    await h.pool.start();
    const x = h;
    await waitFor('live', () => allLive(x));
    s.faults.stallStreams(['btcusdt@kline_1s'], 60_000);
    await sleep(4000);
    // Without backoff a replacement would follow every 800 ms (~5 in 4 s); with it they come at
    // ~0.8 s, then 1.6 s and 3.2 s after each new socket opens.
    const rotations = eventsOf(x.events, 'connection.rotation').length;
    expect(rotations).toBeGreaterThanOrEqual(1);
    expect(rotations).toBeLessThanOrEqual(2);
    expect(eventsOf(x.events, 'stream.stale').filter((e) => e.stream === 'btcusdt@kline_1s')).toHaveLength(1);
    expect(x.pool.snapshot().staleStreams).toEqual(['btcusdt@kline_1s']);
    expect(s.sockets().length).toBeLessThanOrEqual(2);
  });

  it('treats an HTTP 429 at upgrade as a rate limit and holds further attempts', async () => {
    const s = await simulator();
    h = startHarness(testConfig(s.wsUrl));
    s.faults.refuseConnections(1, 429);
    await h.pool.start();
    const x = h;
    await waitFor('ratelimit event', () => eventsOf(x.events, 'ratelimit').length > 0);
    expect(eventsOf(x.events, 'ratelimit')[0]).toMatchObject({ scope: 'ws', kind: '429' });
    expect(eventsOf(x.events, 'ratelimit')[0]!.retryAfterMs).toBeGreaterThanOrEqual(1000);
    await sleep(500);
    expect(s.counters.connectionsOpened + s.counters.connectionsRefused).toBe(1);
  });

  it('resyncs every stream of a lost socket and reconnects', async () => {
    const s = await simulator();
    h = startHarness(testConfig(s.wsUrl));
    await h.pool.start();
    const x = h;
    await waitFor('live', () => allLive(x));
    const before = x.candles.length;
    s.faults.dropAll();
    await waitFor('resyncs', () => x.resyncs.length === 2);
    for (const r of x.resyncs) expect(r.at).toBeGreaterThanOrEqual(before); // before the stream's next candle
    expect(x.pool.stats().reconnections).toBeGreaterThanOrEqual(1);
    await waitFor('live again', () => allLive(x));
  });

  it('gives up on a connection after maxRetries and re-places its streams on a healthy socket', async () => {
    const s = await simulator();
    // Sockets carrying ethusdt are sent to a closed port: that connection can never open.
    const dead = 'ws://127.0.0.1:1';
    h = startHarness(
      testConfig(s.wsUrl, {
        CONNECTOR_INITIAL_CONNECTIONS: 2,
        CONNECTOR_MAX_STREAMS_PER_CONNECTION: 5,
        CONNECTOR_RECONNECT_MAX_RETRIES: 2,
        CONNECTOR_CIRCUIT_BREAKER_FAILURE_THRESHOLD: 100,
      }),
      { wsFactory: (url, options) => new WebSocket(url.includes('ethusdt') ? url.replace(s.wsUrl, dead) : url, options) },
    );
    await h.pool.start();
    const x = h;
    await waitFor('failed', () => eventsOf(x.events, 'connection.state').some((e) => e.to === 'failed'));
    await waitFor('both live on one socket', () => allLive(x));
    const sockets = s.sockets();
    expect(sockets).toHaveLength(1);
    expect([...sockets[0]!.streams].sort()).toEqual(['btcusdt@kline_1s', 'ethusdt@kline_1s']);
    const snap = x.pool.snapshot();
    expect(snap.connections.map((c) => c.state)).toEqual(['connected']);
    expect(x.pool.stats().connectionErrors).toBe(3); // the first try and 2 retries
  });

  it('opens the breaker after 5 consecutive failures, half-opens after the recovery time and closes on success', async () => {
    const s = await simulator();
    h = startHarness(testConfig(s.wsUrl, { CONNECTOR_CIRCUIT_BREAKER_FAILURE_THRESHOLD: 5 }));
    s.faults.refuseConnections(5, 503);
    await h.pool.start();
    const x = h;
    await waitFor('breaker open', () => x.pool.snapshot().breaker === 'open');
    expect(s.counters.connectionsRefused).toBe(5);
    expect(x.pool.snapshot().connections[0]!.state).toBe('suspended');
    const openedAt = performance.now();
    await waitFor('breaker closed', () => eventsOf(x.events, 'breaker').some((e) => e.to === 'closed'), 5000);
    // Recovery timeout 1 s: no trial before it.
    expect(performance.now() - openedAt).toBeGreaterThanOrEqual(900);
    expect(eventsOf(x.events, 'breaker').map((e) => `${e.from}>${e.to}`)).toEqual(['closed>open', 'open>half-open', 'half-open>closed']);
    await waitFor('live', () => allLive(x));
    expect(s.counters.connectionsOpened).toBe(1);
  });

  it('holds new attempts to the 5-minute budget and every socket under 5 inbound messages/s in a fault storm', async () => {
    const s = await simulator();
    h = startHarness(
      testConfig(s.wsUrl, {
        CONNECTOR_SYMBOLS: ['btcusdt', 'ethusdt', 'bnbusdt', 'solusdt'],
        CONNECTOR_MAX_STREAMS_PER_CONNECTION: 2,
        CONNECTOR_MAX_CONNECTION_ATTEMPTS_PER_5MIN: 12,
        CONNECTOR_CIRCUIT_BREAKER_FAILURE_THRESHOLD: 1000,
        CONNECTOR_RECONNECT_BASE_MS: 5,
        CONNECTOR_RECONNECT_MAX_MS: 20,
      }),
    );
    await h.pool.start();
    const x = h;
    await waitFor('live', () => allLive(x));
    for (let i = 0; i < 10; i++) {
      s.faults.refuseConnections(2, 503);
      s.faults.dropAll();
      await sleep(120);
    }
    await sleep(300);
    const attempts = s.counters.connectionsOpened + s.counters.connectionsRefused;
    expect(attempts).toBeLessThanOrEqual(12);
    expect(x.pool.stats().connectionAttempts).toBeLessThanOrEqual(12);
    expect(eventsOf(x.events, 'ratelimit').some((e) => e.kind === 'attempt-budget')).toBe(true);
    expect(s.counters.maxInboundPerSecondSeen).toBeLessThanOrEqual(5);
  });

  it('waits at least 2 minutes after a 1008 "Too many requests" close before any new attempt', async () => {
    const s = await simulator();
    h = startHarness(testConfig(s.wsUrl));
    await h.pool.start();
    const x = h;
    await waitFor('live', () => allLive(x));
    s.faults.closeAll(1008, 'Too many requests');
    await waitFor('ratelimit event', () => eventsOf(x.events, 'ratelimit').length > 0);
    expect(eventsOf(x.events, 'ratelimit')[0]).toMatchObject({ scope: 'ws', kind: '1008' });
    expect(eventsOf(x.events, 'ratelimit')[0]!.retryAfterMs).toBeGreaterThanOrEqual(120_000);
    await sleep(800);
    expect(s.counters.connectionsOpened + s.counters.connectionsRefused).toBe(1);
  });

  it('counts garbage frames as parse errors and keeps ingesting', async () => {
    const s = await simulator();
    h = startHarness(testConfig(s.wsUrl));
    await h.pool.start();
    const x = h;
    await waitFor('live', () => allLive(x));
    s.faults.garbage(16);
    await waitFor('parse errors counted', () => x.pool.stats().parseErrors === 14); // 16 frames: 2 are control replies
    const after = x.candles.length;
    await waitFor('more candles', () => x.candles.length > after + 4);
    expect(eventsOf(x.events, 'parse.error').length).toBeGreaterThanOrEqual(1);
    expect(eventsOf(x.events, 'parse.error').length).toBeLessThanOrEqual(2); // rate-limited
    expect(s.counters.connectionsOpened).toBe(1);
  });
});

describe('UpstreamPool (Binance spot) rotation (make-before-break)', () => {
  async function expectCleanRotation(x: Harness, s: BinanceSimulator, reason: string, trigger: () => Promise<void> = () => Promise.resolve()): Promise<void> {
    // At the moment the old socket is retired, the new one has delivered every stream. Listening
    // starts before the trigger, so a rotation that completes quickly (or on a loaded machine) is seen.
    const checks: boolean[] = [];
    const sub = x.status.on('connection.rotation', (e) => {
      const snap = x.pool.snapshot();
      const next = snap.connections.find((c) => c.id !== e.connId);
      checks.push(next !== undefined && next.liveStreams === next.streams && s.sockets().length === 2);
    });
    await trigger();
    await waitFor('rotation', () => checks.length > 0, 5000);
    sub.dispose();
    expect(checks).toEqual([true]);
    expect(eventsOf(x.events, 'connection.rotation')[0]!.reason).toContain(reason);
    await waitFor('old socket closed', () => s.sockets().length === 1);
    expect(x.resyncs).toEqual([]);
    expect(eventsOf(x.events, 'connection.state').filter((e) => e.to === 'disconnected')).toEqual([]);
  }

  it('rotates on serverShutdown: the old socket closes only after the new one delivered, with no resync', async () => {
    const s = await simulator();
    h = startHarness(testConfig(s.wsUrl));
    await h.pool.start();
    const x = h;
    await waitFor('live', () => allLive(x));
    await expectCleanRotation(x, s, 'server shutdown', async () => {
      s.faults.serverShutdown();
      await waitFor('notice', () => eventsOf(x.events, 'server.shutdown-notice').length === 1);
    });
  });

  it('rotates a socket past its max age the same way', async () => {
    const s = await simulator();
    const config = testConfig(s.wsUrl);
    // The schema floor for max age is 10 s; this test shortens it after validation to keep the suite fast.
    h = startHarness({ ...config, pool: { ...config.pool, maxAgeMs: 1200 } }, { random: () => 0.5 });
    await h.pool.start();
    const x = h;
    await waitFor('live', () => allLive(x));
    await expectCleanRotation(x, s, 'max age');
  });
});

describe('UpstreamPool (Binance spot) flow control and observation', () => {
  it('suspends liveness and staleness deadlines while paused', async () => {
    const s = await simulator();
    h = startHarness(testConfig(s.wsUrl));
    await h.pool.start();
    const x = h;
    await waitFor('live', () => allLive(x));
    x.pool.pause();
    expect(x.pool.snapshot().paused).toBe(true);
    await sleep(1500); // past both the 600 ms liveness and the 800 ms stale deadlines
    expect(eventsOf(x.events, 'stream.stale')).toEqual([]);
    expect(eventsOf(x.events, 'connection.state').filter((e) => e.to === 'disconnected')).toEqual([]);
    const n = x.candles.length;
    x.pool.resume();
    await waitFor('candles flow again', () => x.candles.length > n + 4);
    expect(s.counters.connectionsOpened).toBe(1);
  });

  it('reports connections, live streams, breaker and last message time in snapshot and stats', async () => {
    const s = await simulator();
    const startedAt = Date.now();
    h = startHarness(testConfig(s.wsUrl));
    await h.pool.start();
    const x = h;
    await waitFor('live', () => allLive(x));
    const snap = x.pool.snapshot();
    const readAt = Date.now();
    expect(snap).toMatchObject({ venue: 'binance', streamsConfigured: 2, streamsLive: 2, staleStreams: [], breaker: 'closed', paused: false });
    expect(snap.connections).toHaveLength(1);
    expect(snap.connections[0]).toMatchObject({ state: 'connected', streams: 2, liveStreams: 2 });
    // Wall-clock ms of a frame of this run (not monotonic, not zero), however slowly the machine ran it.
    expect(snap.lastMessageAt).toBeGreaterThanOrEqual(startedAt);
    expect(snap.lastMessageAt).toBeLessThanOrEqual(readAt);
    const st = x.pool.stats();
    expect(st.candles).toBe(x.candles.length);
    expect(st.messages).toBeGreaterThanOrEqual(st.candles);
    expect(st.connectionAttempts).toBe(1);
    const states = eventsOf(x.events, 'connection.state').map((e) => `${e.from}>${e.to}`);
    expect(states).toEqual(['connecting>connected']);
    await x.pool.close();
    await x.pool.close(); // idempotent
    expect(eventsOf(x.events, 'connection.state').at(-1)).toMatchObject({ to: 'closed' });
  });
});
