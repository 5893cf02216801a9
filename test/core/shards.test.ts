/**
 * The shard hash (contract §10, ARCHITECTURE.md §10): stable, documented, balanced, and consistent
 * (growing the shard count moves symbols only to the new shard).
 */
import { describe, expect, it } from 'vitest';
import { fnv1a64, jumpHash, parseShard, podOrdinal, shardOf } from '../../src/core/shards.ts';

describe('shardOf', () => {
  it('is the documented hash: jump consistent hash of FNV-1a 64 of `<venue>:<SYMBOL>` (values cross-checked with an independent implementation)', () => {
    // FNV-1a 64 test vectors (the algorithm's reference: "" and "a").
    expect(fnv1a64('')).toBe(0xcbf29ce484222325n);
    expect(fnv1a64('a')).toBe(0xaf63dc4c8601ec8cn);
    // Pinned: a change here re-shards every deployment, so it must be deliberate (and documented).
    expect(['BTCUSDT', 'ETHUSDT', 'BNBUSDT', 'SOLUSDT', 'XRPUSDT'].map((s) => shardOf('binance', s, 3))).toEqual([0, 1, 0, 0, 0]);
    expect(jumpHash(123456789n, 1000)).toBe(294);
  });

  it('puts a symbol on the same shard whatever its case, and spreads 3000 symbols evenly over 3 shards', () => {
    expect(shardOf('binance', 'btcusdt', 7)).toBe(shardOf('binance', 'BTCUSDT', 7));
    const counts = [0, 0, 0];
    for (let i = 0; i < 3000; i++) counts[shardOf('binance', `SYM${i}USDT`, 3)]! += 1;
    for (const c of counts) expect(Math.abs(c - 1000)).toBeLessThan(100);
  });

  it('moves a symbol only to the new shard when the count grows (consistent), about 1/(n+1) of them', () => {
    for (const n of [1, 2, 3, 5, 8]) {
      let moved = 0;
      for (let i = 0; i < 2000; i++) {
        const before = shardOf('okx', `S${i}-USDT`, n);
        const after = shardOf('okx', `S${i}-USDT`, n + 1);
        if (after !== before) {
          expect(after).toBe(n);
          moved++;
        }
      }
      expect(Math.abs(moved / 2000 - 1 / (n + 1))).toBeLessThan(0.05);
    }
  });
});

describe('parseShard and podOrdinal', () => {
  it('reads i/n and refuses what is not one, saying why', () => {
    expect(parseShard('2/3')).toEqual({ index: 2, count: 3 });
    expect(parseShard(' 0 / 1 ')).toEqual({ index: 0, count: 1 });
    expect(parseShard('3/3')).toMatch(/index below the count/);
    expect(parseShard('0/0')).toMatch(/count from 1/);
    expect(parseShard('one/3')).toMatch(/expected <index>\/<count>/);
    expect(parseShard('-1/3')).toMatch(/expected <index>\/<count>/);
  });

  it('takes the ordinal from a StatefulSet pod name', () => {
    expect(podOrdinal('connector-0')).toBe(0);
    expect(podOrdinal('kline-connector-sharded-17')).toBe(17);
    expect(podOrdinal('connector')).toBeUndefined();
    expect(podOrdinal('3f2a9c1b7e4d')).toBeUndefined();
  });
});
