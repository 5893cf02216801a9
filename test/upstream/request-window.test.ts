/**
 * A venue's request cap per rolling window (RestProtocol.requestWindow; BingX: 500 requests per 10 s
 * per IP over all market data), counted by the IP's RestGate over every client that shares it. Time is
 * the subject: fake timers.
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
    const request = (): Promise<number> =>
      gate.pass(
        () => Promise.resolve(sentAt.push(Date.now())),
        signal,
        () => gate.windowWaitMs(5, 1000),
      );
    // Two clients (spot and swap) asking at once, 12 requests each.
    const all = Promise.all(Array.from({ length: 24 }, () => request()));
    await vi.advanceTimersByTimeAsync(10_000);
    await all;
    expect(sentAt).toHaveLength(24);
    for (const t of sentAt) expect(sentAt.filter((u) => u > t - 1000 && u <= t).length).toBeLessThanOrEqual(5);
    // And it is a window, not a crawl: the 24 went out within five windows.
    expect((sentAt.at(-1) ?? 0) - (sentAt[0] ?? 0)).toBeLessThan(5000);
  });

  it('keeps no send times for a gate nobody counts a window on, and only as many as the largest window needs', async () => {
    const gate = new RestGate(clock);
    const signal = new AbortController().signal;
    for (let i = 0; i < 50; i++) await gate.pass(() => Promise.resolve(i), signal);
    expect(gate.windowWaitMs(3, 1000)).toBe(0); // the 50 before anyone counted are not counted
    for (let i = 0; i < 3; i++) await gate.pass(() => Promise.resolve(i), signal);
    expect(gate.windowWaitMs(3, 1000)).toBe(1001);
    await vi.advanceTimersByTimeAsync(1000);
    expect(gate.windowWaitMs(3, 1000)).toBe(0);
  });
});
