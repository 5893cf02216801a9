/** The venue-agnostic REST gate (core/rest-gate.ts) on its own; time is the subject: fake timers. */
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

describe('RestGate', () => {
  it('lets nothing through while closed and everything waiting through once the window has passed', async () => {
    const gate = new RestGate(clock);
    const sent: number[] = [];
    const send = (i: number) => () => {
      sent.push(i);
      return Promise.resolve(i);
    };
    const signal = new AbortController().signal;
    expect(await gate.pass(send(0), signal)).toBe(0); // open: at once
    gate.close(2000, '429');
    const waiting = [1, 2, 3].map((i) => gate.pass(send(i), signal));
    await vi.advanceTimersByTimeAsync(1999);
    expect(sent).toEqual([0]);
    await vi.advanceTimersByTimeAsync(1);
    expect(await Promise.all(waiting)).toEqual([1, 2, 3]);
    expect(gate.state).toEqual({ kind: 'open' });
  });

  it('keeps the longer window when a shorter one is announced inside it (a 429 never shortens a 418 ban)', async () => {
    const gate = new RestGate(clock);
    gate.close(120_000, '418');
    gate.close(1000, '429');
    expect(gate.state).toMatchObject({ kind: 'closed', cause: '418' });
    expect(gate.opensAt()).toBe(Date.now() + 120_000);
    let sent = false;
    const p = gate.pass(() => Promise.resolve((sent = true)), new AbortController().signal);
    await vi.advanceTimersByTimeAsync(60_000);
    gate.close(120_000, '429'); // extended from now: later than the ban's end
    await vi.advanceTimersByTimeAsync(61_000);
    expect(sent).toBe(false);
    await vi.advanceTimersByTimeAsync(60_000);
    await p;
    expect(sent).toBe(true);
    expect(gate.opensAt()).toBeUndefined();
  });

  it("waits for the caller's own budget too, checked together with the window just before sending", async () => {
    const gate = new RestGate(clock);
    let budgetFreeAt = Date.now() + 5000;
    const sentAt: number[] = [];
    const p = gate.pass(
      () => Promise.resolve(sentAt.push(Date.now())),
      new AbortController().signal,
      () => Math.max(0, budgetFreeAt - Date.now()),
    );
    await vi.advanceTimersByTimeAsync(3000);
    gate.close(4000, '403'); // closes while the request waits for budget: the window wins
    budgetFreeAt = 0;
    await vi.advanceTimersByTimeAsync(3999);
    expect(sentAt).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    await p;
    expect(sentAt).toHaveLength(1);
  });

  it('rejects a waiting request with the abort reason, and sends nothing', async () => {
    const gate = new RestGate(clock);
    gate.close(10_000, '429');
    const ac = new AbortController();
    let sent = false;
    const p = gate.pass(() => Promise.resolve((sent = true)), ac.signal);
    ac.abort(new Error('closing'));
    await expect(p).rejects.toThrow('closing');
    await vi.advanceTimersByTimeAsync(10_000);
    expect(sent).toBe(false);
  });
});
