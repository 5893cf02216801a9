import { afterEach, describe, expect, it } from 'vitest';
import { AttemptBudget, ReconnectBackoff, reconnectDelay, reconnectEnvelope } from '../../src/upstream/backoff.ts';
import { BinanceSimulator } from '../../src/venues/binance/simulator/server.ts';
import { eventsOf, startHarness, testConfig, waitFor, type Harness } from './helpers.ts';

const timing = { baseMs: 1000, maxMs: 60_000, jitter: 0.25 };

describe('reconnect backoff', () => {
  it('keeps every delay inside the jittered exponential envelope', () => {
    let seed = 1;
    const random = (): number => {
      seed = (seed * 16807) % 2147483647;
      return (seed - 1) / 2147483646;
    };
    for (let attempt = 1; attempt <= 30; attempt++) {
      const { min, max } = reconnectEnvelope(attempt, timing);
      const nominal = Math.min(60_000, 1000 * 2 ** (attempt - 1));
      expect(min).toBe(Math.floor(nominal * 0.75));
      expect(max).toBe(Math.ceil(nominal * 1.25));
      for (let i = 0; i < 200; i++) {
        const d = reconnectDelay(attempt, timing, random);
        expect(d).toBeGreaterThanOrEqual(min);
        expect(d).toBeLessThanOrEqual(max);
      }
    }
    // The extremes of u map to the edges of the envelope.
    expect(reconnectDelay(3, timing, () => 0)).toBe(3000);
    expect(reconnectDelay(3, timing, () => 0.999_999)).toBe(5000);
    expect(reconnectDelay(3, timing, () => 0.5)).toBe(4000);
    expect(reconnectDelay(100, timing, () => 0.5)).toBe(60_000);
  });

  it('is an immutable cockatiel backoff: next() returns the following step', () => {
    const first = new ReconnectBackoff(timing, () => 0.5);
    const second = first.next();
    const third = second.next();
    expect([first.attempt, first.duration]).toEqual([1, 1000]);
    expect([second.attempt, second.duration]).toEqual([2, 2000]);
    expect([third.attempt, third.duration]).toEqual([3, 4000]);
    expect(first.duration).toBe(1000);
  });
});

describe('attempt budget', () => {
  it('allows at most `limit` attempts in any sliding window, however many are asked for', () => {
    const budget = new AttemptBudget(60, 300_000);
    let granted = 0;
    const grantedAt: number[] = [];
    // A storm: an attempt asked for every 100 ms for 20 minutes.
    for (let t = 0; t < 20 * 60_000; t += 100) {
      if (budget.take(t)) {
        granted++;
        grantedAt.push(t);
      }
    }
    for (let i = 60; i < grantedAt.length; i++) expect(grantedAt[i]! - grantedAt[i - 60]!).toBeGreaterThanOrEqual(300_000);
    expect(granted).toBeLessThanOrEqual(4 * 60);
    expect(budget.nextAt(grantedAt.at(-1)!)).toBe(grantedAt.at(-60)! + 300_000);
  });
});

describe('pool reconnect schedule', () => {
  let sim: BinanceSimulator | undefined;
  let h: Harness | undefined;
  afterEach(async () => {
    await h?.pool.close();
    await sim?.close();
  });

  it('backs off exponentially through failures and starts over after enough consecutive successes', async () => {
    const s = await BinanceSimulator.start({ openUpdateMs: 100 });
    sim = s;
    h = startHarness(
      testConfig(s.wsUrl, {
        CONNECTOR_SYMBOLS: ['btcusdt'],
        CONNECTOR_RECONNECT_BASE_MS: 20,
        CONNECTOR_RECONNECT_MAX_MS: 1000,
        CONNECTOR_RECONNECT_RESET_AFTER_SUCCESSES: 2,
        CONNECTOR_CIRCUIT_BREAKER_FAILURE_THRESHOLD: 100,
      }),
      { random: () => 0.5 }, // u = 0.5: the jitter factor is exactly 1
    );
    const x = h;
    const delays = (): number[] => eventsOf(x.events, 'connection.reconnect').map((e) => e.delayMs);
    s.faults.refuseConnections(3, 503);
    await x.pool.start();
    await waitFor('first success', () => s.counters.connectionsOpened === 1);
    expect(delays()).toEqual([20, 40, 80]); // success #1 (not yet 2 in a row): the counter keeps going
    s.faults.dropAll();
    await waitFor('second success', () => s.counters.connectionsOpened === 2);
    expect(delays()).toEqual([20, 40, 80, 160]); // success #2: reset
    s.faults.dropAll();
    await waitFor('third success', () => s.counters.connectionsOpened === 3);
    expect(delays()).toEqual([20, 40, 80, 160, 20]);
  });
});
