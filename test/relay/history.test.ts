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

  it('costs memory in proportion to the candles a stream holds, not to its capacity (a new stream, a small capacity)', () => {
    // 2000 streams that have each seen one candle of a 1440-candle history: the seed's budget case
    // a minute after start, when the 1m streams hold one candle each.
    const h = new History(1440);
    const one = payload(1);
    for (let s = 0; s < 2000; s++) h.append(s, 0, one);
    expect(h.allocatedBytes / 2000).toBeLessThan(2 * 1024);
    // Growing to full keeps every candle intact: about the payload plus the per-entry index (24 B).
    const full = new History(1440);
    for (let i = 0; i < 3000; i++) full.append(0, i * 1000, payload(i));
    const held = full.read(0, 0, 10_000, Number.MAX_SAFE_INTEGER);
    expect(held.map((e) => e.openTime)).toEqual(Array.from({ length: 1440 }, (_, k) => (1560 + k) * 1000));
    for (const e of held) expect(e.payload.equals(payload(e.openTime / 1000))).toBe(true);
    expect(full.allocatedBytes).toBeLessThan(1.2 * full.bytes + 1440 * 24);
    // A small capacity: slabs no bigger than a fraction of what the ring holds.
    const small = new History(60);
    for (let i = 0; i < 1000; i++) small.append(0, i * 1000, payload(i));
    expect(small.read(0, 0, 100, Number.MAX_SAFE_INTEGER).map((e) => e.openTime)).toEqual(Array.from({ length: 60 }, (_, k) => (940 + k) * 1000));
    expect(small.allocatedBytes).toBeLessThan(1.5 * small.bytes + 60 * 24);
  });

  it('holds nothing when disabled (capacity 0)', () => {
    const h = new History(0);
    h.append(0, 0, payload(0));
    expect(h.enabled).toBe(false);
    expect(h.candles).toBe(0);
    expect(h.read(0, 0, 10, 1000)).toEqual([]);
  });
});
