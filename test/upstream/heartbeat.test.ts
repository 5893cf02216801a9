/**
 * Heartbeat, health-check and idle semantics of the upstream pool (issue 11 point 5), with the
 * original production figures. Real sockets to the simulator; the pool's tick timers are faked and its
 * monotonic clock is a hand-moved one, so the deadlines are exact and nothing waits for them in real time.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { BinanceSimulator } from '../../src/venues/binance/simulator/server.ts';
import type { Clock } from '../../src/core/clock.ts';
import { eventsOf, sleep, startHarness, testConfig, waitFor, type Harness } from './helpers.ts';

let sim: BinanceSimulator | undefined;
let h: Harness | undefined;

afterEach(async () => {
  // The pool's fake interval is cleared while the fake timers are installed; the simulator's is real.
  await h?.pool.close();
  vi.useRealTimers();
  await sim?.close();
  h = undefined;
  sim = undefined;
});

/** A monotonic clock that moves only when the test says so (wall time stays real). */
function manualClock(): Clock & { t: number } {
  const c = {
    t: 1_000_000,
    now: () => Date.now(),
    monotonic: () => c.t,
  };
  return c;
}

/** Move the pool's clock and its (fake) tick timers forward together, one tick period at a time. */
function advance(clock: { t: number }, ms: number, step = 1000): void {
  for (let done = 0; done < ms; done += step) {
    const d = Math.min(step, ms - done);
    clock.t += d;
    vi.advanceTimersByTime(d);
  }
}

const PRODUCTION_HEARTBEAT = {
  CONNECTOR_PING_TIMEOUT_MS: 60_000,
  CONNECTOR_PONG_TIMEOUT_MS: 5000,
  CONNECTOR_MAX_MISSED_PINGS: 3,
  CONNECTOR_STALE_STREAM_MS: 60_000,
  CONNECTOR_HEALTH_CHECK_INTERVAL_MS: 30_000,
};

function disconnects(x: Harness) {
  return eventsOf(x.events, 'connection.state').filter((e) => e.to === 'disconnected');
}

describe('upstream heartbeat', () => {
  it('tolerates missed pongs up to CONNECTOR_MAX_MISSED_PINGS=3: the third unanswered ping replaces the socket, well before the liveness deadline', async () => {
    const s = (sim = await BinanceSimulator.start({ openUpdateMs: 100 }));
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
    const clock = manualClock();
    const x = (h = startHarness(testConfig(s.wsUrl, PRODUCTION_HEARTBEAT), { clock }));
    await x.pool.start();
    await waitFor('live', () => x.pool.snapshot().streamsLive === 2);
    // The simulator stops sending anything, and stops answering pings.
    s.faults.stallSockets(600_000);
    await sleep(100); // frames already in flight land (stamped with the unmoved clock)
    const inbound = () => s.sockets()[0]?.inboundTotal ?? 0;
    const before = inbound();

    // 20 s of silence (pingTimeout / maxMissedPings): the first client ping.
    advance(clock, 20_000);
    await waitFor('first ping reaches the simulator', () => inbound() === before + 1);
    // 25 s: first pong missed; tolerated, the socket is probed again at once.
    advance(clock, 5000);
    await waitFor('second ping', () => inbound() === before + 2);
    expect(disconnects(x)).toEqual([]);
    // 30 s: second pong missed; still tolerated.
    advance(clock, 5000);
    await waitFor('third ping', () => inbound() === before + 3);
    advance(clock, 4000);
    expect(disconnects(x)).toEqual([]);
    expect(x.pool.snapshot().connections[0]?.state).toBe('connected');
    // 35 s: the third missed pong: replaced (the liveness deadline would only have fired at 60 s).
    advance(clock, 1000);
    const lost = disconnects(x);
    expect(lost).toHaveLength(1);
    expect(lost[0]!.reason).toMatch(/3 pings in a row unanswered within 5000 ms/);
    expect(inbound()).toBe(before + 3);
  });

  it('grades socket quality every CONNECTOR_HEALTH_CHECK_INTERVAL_MS, not on every liveness tick', async () => {
    const s = (sim = await BinanceSimulator.start({ openUpdateMs: 100 }));
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
    const clock = manualClock();
    const x = (h = startHarness(testConfig(s.wsUrl, PRODUCTION_HEARTBEAT), { clock }));
    await x.pool.start();
    await waitFor('live', () => x.pool.snapshot().streamsLive === 2);
    const grades = () => eventsOf(x.events, 'connection.quality').map((e) => e.grade);
    // Opening grades the socket 'good'; the measured grade (no silence at all: 'excellent') waits for
    // the first health check, however many liveness ticks run before it (the clock stands still).
    expect(grades()).toEqual(['good']);
    vi.advanceTimersByTime(29_000);
    expect(grades()).toEqual(['good']);
    vi.advanceTimersByTime(1000);
    expect(grades()).toEqual(['good', 'excellent']);
    // 16 s of silence (gap 16/60 >= 0.25: 'poor', still short of the first ping) shows at the next check only.
    s.faults.stallSockets(600_000);
    await sleep(100);
    clock.t += 16_000;
    vi.advanceTimersByTime(29_000);
    expect(grades()).toEqual(['good', 'excellent']);
    vi.advanceTimersByTime(1000);
    expect(grades()).toEqual(['good', 'excellent', 'poor']);
  });
});

describe('upstream idle sockets', () => {
  it('opens CONNECTOR_INITIAL_CONNECTIONS sockets; one left without streams is closed after CONNECTOR_IDLE_TIMEOUT_MS', async () => {
    const s = (sim = await BinanceSimulator.start({ openUpdateMs: 100 }));
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
    const clock = manualClock();
    const config = testConfig(s.wsUrl, {
      CONNECTOR_INITIAL_CONNECTIONS: 3,
      CONNECTOR_IDLE_TIMEOUT_MS: 300_000,
      // No liveness, ping or staleness deadline inside the 5 simulated minutes: only idleness is tested.
      CONNECTOR_PING_TIMEOUT_MS: 3_600_000,
      CONNECTOR_STALE_STREAM_MS: 3_600_000,
    });
    const x = (h = startHarness(config, { clock }));
    await x.pool.start();
    await waitFor('three sockets open', () => s.sockets().length === 3 && x.pool.snapshot().streamsLive === 2);
    expect(s.sockets().map((k) => k.streams.length).sort()).toEqual([0, 1, 1]);

    advance(clock, 299_000);
    expect(eventsOf(x.events, 'connection.state').filter((e) => e.to === 'closed')).toEqual([]);
    advance(clock, 1000);
    const closed = eventsOf(x.events, 'connection.state').filter((e) => e.to === 'closed');
    expect(closed).toHaveLength(1);
    expect(closed[0]).toMatchObject({ streams: 0 });
    expect(closed[0]!.reason).toMatch(/idle/);
    await waitFor('the idle socket is gone', () => s.sockets().length === 2);
    expect(s.sockets().every((k) => k.streams.length === 1)).toBe(true);
    expect(x.pool.snapshot().streamsLive).toBe(2);
  });
});
