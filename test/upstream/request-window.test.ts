/**
 * A venue's request cap per rolling window (RestPage.window; OKX 40 per 2 s on /market/candles, BingX
 * 500 per 10 s per IP over all market data), kept by the IP's RestGate for every client that shares it.
 * Time is the subject: fake timers.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { Clock } from '../../src/core/clock.ts';
import { RestGate } from '../../src/core/rest-gate.ts';

const clock: Clock = { now: () => Date.now(), monotonic: () => Date.now() };

beforeEach(() => {
  vi.useFakeTimers({ now: 1_700_000_000_000 });
});
afterEach(() => {
  vi.useRealTimers();
});

describe('request windows', () => {
  it('lets no more than the cap leave in any trailing window, counting two clients of one gate together', async () => {
    const gate = new RestGate(clock);
    const sentAt: number[] = [];
    const signal = new AbortController().signal;
    // Two clients (spot and swap) asking at once, 12 requests each, through the window of one key.
    const request = async (): Promise<void> => {
      const window = gate.window('market-data', 5, 1000);
      await gate.pass(
        () => {
          const slot = window.take(Date.now());
          sentAt.push(Date.now());
          slot.end = Date.now(); // answered at once
          return Promise.resolve();
        },
        signal,
        () => window.waitMs(Date.now()),
      );
    };
    const all = Promise.all(Array.from({ length: 24 }, () => request()));
    await vi.advanceTimersByTimeAsync(10_000);
    await all;
    expect(sentAt).toHaveLength(24);
    for (const t of sentAt) expect(sentAt.filter((u) => u > t - 1000 && u <= t).length).toBeLessThanOrEqual(5);
    // And it is a window, not a crawl: the 24 went out within five windows.
    expect((sentAt.at(-1) ?? 0) - (sentAt[0] ?? 0)).toBeLessThan(5000);
  });

  it('is one window per key on a gate, and counts a request until a window after its answer, not after it left', async () => {
    const gate = new RestGate(clock);
    expect(gate.window('a', 2, 1000)).toBe(gate.window('a', 2, 1000));
    expect(gate.window('a', 2, 1000)).not.toBe(gate.window('b', 2, 1000));
    const w = gate.window('a', 2, 1000);
    const first = w.take(Date.now());
    w.take(Date.now()).end = Date.now();
    // Full: the answered one frees its slot a window after its answer.
    expect(w.waitMs(Date.now())).toBe(1001);
    const solo = gate.window('c', 1, 1000);
    solo.take(Date.now());
    // Full with only a request in flight: look again soon.
    expect(solo.waitMs(Date.now())).toBe(50);
    await vi.advanceTimersByTimeAsync(500);
    first.end = Date.now(); // answered after 500 ms
    await vi.advanceTimersByTimeAsync(600);
    // The second (answered at 0) has left the window; the first counts until 1500.
    expect(w.waitMs(Date.now())).toBe(0);
    w.take(Date.now());
    expect(w.waitMs(Date.now())).toBe(1500 - 1100 + 1);
  });
});
