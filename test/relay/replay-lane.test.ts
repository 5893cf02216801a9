/** Resume replays' share of the venue REST (relay/replay-lane.ts): below live gap recovery. */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ReplayLane } from '../../src/relay/replay-lane.ts';

afterEach(() => {
  vi.useRealTimers();
});

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve = (): void => undefined;
  const promise = new Promise<void>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

describe('replay lane', () => {
  it('holds a replay fetch back while a gap recovery is in flight, and runs it once the recovery is over', async () => {
    vi.useFakeTimers();
    const lane = new ReplayLane();
    const recovery = deferred();
    const recovering = lane.recovery(() => recovery.promise);
    let ran = false;
    const replay = lane.replay('binance', new AbortController().signal, () => {
      ran = true;
      return Promise.resolve('rows');
    });
    await vi.advanceTimersByTimeAsync(5000);
    expect(ran).toBe(false);
    recovery.resolve();
    await recovering;
    await vi.advanceTimersByTimeAsync(100);
    expect(ran).toBe(true);
    expect(await replay).toBe('rows');
  });

  it('runs one replay fetch per venue at a time, in order, and a failure does not block the next', async () => {
    const lane = new ReplayLane();
    const signal = new AbortController().signal;
    const first = deferred();
    const order: string[] = [];
    const a = lane.replay('binance', signal, async () => {
      order.push('a start');
      await first.promise;
      order.push('a end');
      throw new Error('REST down');
    });
    const b = lane.replay('binance', signal, () => {
      order.push('b');
      return Promise.resolve();
    });
    const other = lane.replay('binance-usdm', signal, () => {
      order.push('usdm');
      return Promise.resolve();
    });
    await other;
    expect(order).toEqual(['a start', 'usdm']);
    first.resolve();
    await expect(a).rejects.toThrow('REST down');
    await b;
    expect(order).toEqual(['a start', 'usdm', 'a end', 'b']);
  });

  it('gives up a waiting replay when its client goes (abort)', async () => {
    vi.useFakeTimers();
    const lane = new ReplayLane();
    const recovery = deferred();
    void lane.recovery(() => recovery.promise);
    const abort = new AbortController();
    const replay = lane.replay('binance', abort.signal, () => Promise.resolve());
    const settled = expect(replay).rejects.toThrow();
    abort.abort(new Error('client gone'));
    await vi.advanceTimersByTimeAsync(100);
    await settled;
    recovery.resolve();
  });
});
