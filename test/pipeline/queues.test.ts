import { describe, expect, it } from 'vitest';
import { RingDeque } from '../../src/pipeline/ring.ts';
import { ClosedFifo, OpenLatest } from '../../src/pipeline/queues.ts';
import { candle, streams } from '../helpers/candles.ts';

describe('RingDeque', () => {
  it('keeps FIFO and LIFO order across growth and wrap-around', () => {
    const d = new RingDeque<number>(2);
    const model: number[] = [];
    let seed = 7;
    for (let i = 0; i < 5000; i++) {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      const op = seed % 3;
      if (op === 0 || model.length === 0) {
        d.push(i);
        model.push(i);
      } else if (op === 1) {
        expect(d.shift()).toBe(model.shift());
      } else {
        expect(d.pop()).toBe(model.pop());
      }
      expect(d.length).toBe(model.length);
      expect(d.peek()).toBe(model[0]);
    }
  });
});

describe('ClosedFifo', () => {
  it('never drops: it reports full at its bound and keeps accepting what was already in flight', () => {
    const { refs } = streams([['btcusdt', '1m']]);
    const q = new ClosedFifo(3);
    const ref = refs[0]!;
    expect(q.push(candle(ref, 0, true))).toBe(false);
    expect(q.push(candle(ref, 60_000, true))).toBe(false);
    expect(q.push(candle(ref, 120_000, true))).toBe(true);
    expect(q.push(candle(ref, 180_000, true))).toBe(true);
    expect(q.depth).toBe(4);
    expect([q.shift(), q.shift(), q.shift(), q.shift()].map((c) => c?.openTime)).toEqual([0, 60_000, 120_000, 180_000]);
    expect(q.lowWater).toBe(1);
  });
});

describe('OpenLatest', () => {
  it('keeps only the latest update per stream and drains newest stream first', () => {
    const { refs } = streams([['a', '1m'], ['b', '1m'], ['c', '1m']]);
    const [a, b, c] = refs as [typeof refs[0], typeof refs[0], typeof refs[0]];
    const q = new OpenLatest(10);
    q.put(candle(a, 0, false, 1));
    q.put(candle(b, 0, false, 2));
    q.put(candle(a, 0, false, 3)); // supersedes a@1
    q.put(candle(c, 0, false, 4));
    expect(q.depth).toBe(3);
    expect(q.skipped).toBe(1);
    const out = [q.pop(), q.pop(), q.pop(), q.pop()];
    expect(out.map((x) => x && `${x.stream.name}@${x.eventTime}`)).toEqual(['c@kline_1m@4', 'b@kline_1m@2', 'a@kline_1m@3', undefined]);
  });

  it('evicts the stalest stream at its bound and counts it', () => {
    const { refs } = streams([['a', '1m'], ['b', '1m'], ['c', '1m']]);
    const q = new OpenLatest(2);
    q.put(candle(refs[0]!, 0, false, 1));
    q.put(candle(refs[1]!, 0, false, 2));
    q.put(candle(refs[2]!, 0, false, 3));
    expect(q.depth).toBe(2);
    expect(q.skipped).toBe(1);
    expect([q.pop()?.stream.name, q.pop()?.stream.name, q.pop()]).toEqual(['c@kline_1m', 'b@kline_1m', undefined]);
  });
});
