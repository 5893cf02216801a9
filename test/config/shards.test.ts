/** CONNECTOR_SHARD / CONNECTOR_SHARD_COUNT (contract §10): which streams a replica owns, and the errors that name the variable. */
import { describe, expect, it } from 'vitest';
import { shardOf } from '../../src/core/shards.ts';
import { issuesOf, load } from './helpers.ts';

const SYMBOLS = Array.from({ length: 30 }, (_, i) => `s${i}usdt`);
const base = { CONNECTOR_SYMBOLS: SYMBOLS.join(','), CONNECTOR_INTERVALS: '1m,1h' };

describe('shards', () => {
  it('without shard variables, one replica owns every symbol', () => {
    const { config } = load(base);
    expect(config.shard).toEqual({ index: 0, count: 1, from: 'default' });
    expect(config.venues[0]?.symbols).toEqual(SYMBOLS);
    expect(config.venues[0]?.elsewhere).toBeUndefined();
  });

  it('CONNECTOR_SHARD=i/n: n replicas with the same configuration own every symbol exactly once, and know where the others are', () => {
    const owned = [0, 1, 2].map((i) => load({ ...base, CONNECTOR_SHARD: `${i}/3` }).config);
    const all = owned.flatMap((c) => c.venues[0]?.symbols ?? []);
    expect([...all].sort()).toEqual([...SYMBOLS].sort());
    expect(new Set(all).size).toBe(SYMBOLS.length);
    for (const [i, c] of owned.entries()) {
      expect(c.shard).toMatchObject({ index: i, count: 3 });
      for (const s of c.venues[0]?.symbols ?? []) expect(shardOf('binance', s, 3)).toBe(i);
      for (const e of c.venues[0]?.elsewhere ?? []) expect(e.shard).toBe(shardOf('binance', e.symbol, 3));
      expect((c.venues[0]?.symbols.length ?? 0) + (c.venues[0]?.elsewhere?.length ?? 0)).toBe(SYMBOLS.length);
      expect(c.venues[0]?.intervals).toEqual(['1m', '1h']); // every interval of an owned symbol
    }
  });

  it('CONNECTOR_SHARD_COUNT takes the index from the pod ordinal mod the count (pods i and i+n are a pair), from CONNECTOR_POD_NAME or HOSTNAME', () => {
    expect(load({ ...base, CONNECTOR_SHARD_COUNT: '3', CONNECTOR_POD_NAME: 'connector-4' }).config.shard).toMatchObject({ index: 1, count: 3 });
    expect(load({ ...base, CONNECTOR_SHARD_COUNT: '3', HOSTNAME: 'connector-2' }).config.shard).toMatchObject({ index: 2, count: 3 });
    const pair = [0, 3].map((o) => load({ ...base, CONNECTOR_SHARD_COUNT: '3', CONNECTOR_POD_NAME: `connector-${o}` }).config.venues[0]?.symbols);
    expect(pair[0]).toEqual(pair[1]);
  });

  it('refuses what cannot be a shard, naming the variable', () => {
    expect(issuesOf({ ...base, CONNECTOR_SHARD: '3/3' }).join('\n')).toMatch(/^CONNECTOR_SHARD="3\/3" \(environment\): expected an index below the count/m);
    expect(issuesOf({ ...base, CONNECTOR_SHARD: 'first' }).join('\n')).toMatch(/^CONNECTOR_SHARD="first".*expected <index>\/<count>/m);
    expect(issuesOf({ ...base, CONNECTOR_SHARD: '0/3', CONNECTOR_SHARD_COUNT: '4' }).join('\n')).toMatch(/^CONNECTOR_SHARD_COUNT="4".*contradicts CONNECTOR_SHARD=0\/3/m);
    expect(issuesOf({ ...base, CONNECTOR_SHARD_COUNT: '3', HOSTNAME: '3f2a9c1b7e4d' }).join('\n')).toMatch(/^CONNECTOR_SHARD_COUNT="3".*needs the pod's ordinal.*"3f2a9c1b7e4d"/m);
    expect(issuesOf({ ...base, CONNECTOR_SHARD_COUNT: '3' }).join('\n')).toMatch(/^CONNECTOR_SHARD_COUNT="3".*needs the pod's ordinal/m);
  });

  it('refuses a shard that would own no stream at all, rather than run an idle replica', () => {
    // One symbol over 4 shards: three of them own nothing.
    const empty = [0, 1, 2, 3].filter((i) => shardOf('binance', 'btcusdt', 4) !== i);
    for (const i of empty) expect(issuesOf({ CONNECTOR_SYMBOLS: 'btcusdt', CONNECTOR_SHARD: `${i}/4` }).join('\n')).toMatch(/CONNECTOR_SHARD=.*owns none of the 1 configured symbols/);
  });
});
