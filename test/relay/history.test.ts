/** The resume history (relay/history.ts): a bounded ring per stream, read back by open time. */
import { describe, expect, it } from 'vitest';
import { History } from '../../src/relay/history.ts';

const payload = (i: number): Buffer => Buffer.from(`{"i":${i},"pad":"${'x'.repeat(200 + (i % 97))}"}`);

describe('relay history', () => {
  it('keeps exactly the last `capacity` candles of each stream, byte for byte, across slab boundaries and wraps', () => {
    const h = new History(300);
    for (let i = 0; i < 2000; i++) {
      h.append(0, i * 1000, payload(i));
      if (i % 2 === 0) h.append(1, i * 1000, payload(-i));
    }
    const all = h.read(0, 0, 10_000, Number.MAX_SAFE_INTEGER);
    expect(all.map((e) => e.openTime)).toEqual(Array.from({ length: 300 }, (_, k) => (1700 + k) * 1000));
    for (const e of all) expect(e.payload.equals(payload(e.openTime / 1000))).toBe(true);
    expect(all.map((e) => e.seq)).toEqual(Array.from({ length: 300 }, (_, k) => 1700 + k));
    expect(h.oldest(0)).toBe(1_700_000);
    expect(h.newest(0)).toBe(1_999_000);
    expect(h.seq(0)).toBe(2000);
    expect(h.candles).toBe(600);
    let bytes = 0;
    for (let i = 1700; i < 2000; i++) bytes += payload(i).length;
    for (let i = 800; i < 1000; i++) bytes += payload(-2 * i).length;
    for (let i = 700; i < 800; i++) bytes += payload(-2 * i).length;
    expect(h.bytes).toBe(bytes);
  });

  it('reads from the first candle at or after `from`, within the count and byte limits (always at least one)', () => {
    const h = new History(100);
    for (let i = 0; i < 50; i++) h.append(3, i * 60_000, payload(i));
    expect(h.read(3, 10 * 60_000 + 1, 3, Number.MAX_SAFE_INTEGER).map((e) => e.openTime / 60_000)).toEqual([11, 12, 13]);
    expect(h.read(3, 0, 100, 1).length).toBe(1);
    expect(h.read(3, 50 * 60_000, 100, 1_000_000)).toEqual([]);
    expect(h.read(4, 0, 100, 1_000_000)).toEqual([]);
  });

  it('holds nothing when disabled (capacity 0)', () => {
    const h = new History(0);
    h.append(0, 0, payload(0));
    expect(h.enabled).toBe(false);
    expect(h.candles).toBe(0);
    expect(h.read(0, 0, 10, 1000)).toEqual([]);
  });
});
