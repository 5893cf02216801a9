/**
 * Three shards of one configuration (contract §10), end to end: three real daemons against one
 * simulator, each with CONNECTOR_SHARD=i/3. Together they subscribe every upstream stream exactly
 * once (what the simulator saw, not what the daemons say), each relay serves its own shard's streams
 * with candles, and a SUBSCRIBE for another shard's stream gets code 2 naming the shard that has it.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { startConnector, type Connector } from '../../src/app.ts';
import { shardOf } from '../../src/core/shards.ts';
import { BinanceSimulator } from '../../src/venues/binance/simulator/server.ts';
import { RecordingClient, testConfig, until } from './harness.ts';

const SYMBOLS = ['btcusdt', 'ethusdt', 'bnbusdt', 'solusdt', 'xrpusdt', 'adausdt', 'dogeusdt', 'ethbtc', 'ltcusdt', 'dotusdt', 'linkusdt', 'trxusdt'];
const INTERVALS = ['1s', '1m'];
const ALL = SYMBOLS.flatMap((s) => INTERVALS.map((i) => `${s}@kline_${i}`));

let cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.reverse()) await c();
  cleanups = [];
});

describe('three shards of one configuration', () => {
  it('cover every stream exactly once between them, each relay serving its own and naming the shard of the others', async () => {
    const sim = await BinanceSimulator.start({ host: '127.0.0.1', port: 0, openUpdateMs: 200 });
    cleanups.push(() => sim.close());
    const shards: Connector[] = [];
    for (let i = 0; i < 3; i++) {
      const c = await startConnector(testConfig(sim, { CONNECTOR_SYMBOLS: SYMBOLS.join(','), CONNECTOR_INTERVALS: INTERVALS.join(','), CONNECTOR_SHARD: `${i}/3` }), {
        log: pino({ level: 'silent' }),
        collectDefaultMetrics: false,
      });
      cleanups.push(async () => {
        await c.shutdown('test');
      });
      shards.push(c);
    }
    const owned = shards.map((c) => c.registry.all().map((s) => s.name).sort());
    // Union and disjointness, as the daemons registered them...
    expect(owned.flat().sort()).toEqual([...ALL].sort());
    expect(new Set(owned.flat()).size).toBe(ALL.length);
    // ...and as the simulator saw them subscribed: every stream once, by the shard the hash names.
    await until(() => sim.sockets().flatMap((s) => s.streams).length >= ALL.length, 'all upstream subscriptions', 15_000);
    const upstream = sim.sockets().flatMap((s) => s.streams);
    expect([...upstream].sort()).toEqual([...ALL].sort());
    for (const [i, names] of owned.entries()) {
      expect(names.length).toBeGreaterThan(0);
      for (const n of names) expect(shardOf('binance', n.split('@')[0] ?? '', 3)).toBe(i);
      // Both intervals of a symbol on the same shard.
      for (const n of names) for (const iv of INTERVALS) expect(names).toContain(`${n.split('@')[0] ?? ''}@kline_${iv}`);
    }

    for (const [i, c] of shards.entries()) {
      const client = new RecordingClient(`ws://127.0.0.1:${c.relayAddress.port}/ws`);
      cleanups.push(async () => {
        client.ws.terminate();
        await client.closedP;
      });
      await client.opened;
      const mine = owned[i] ?? [];
      client.ws.send(JSON.stringify({ method: 'SUBSCRIBE', params: mine, id: 1 }));
      const other = (i + 1) % 3;
      const foreign = owned[other]?.[0] ?? '';
      client.ws.send(JSON.stringify({ method: 'SUBSCRIBE', params: [foreign], id: 2 }));
      await until(() => client.other.some((m) => (m as { id?: unknown }).id === 2), `shard ${i}: the answer to the foreign SUBSCRIBE`);
      expect(client.other).toContainEqual({ result: null, id: 1 });
      const refusal = (client.other.find((m) => (m as { id?: unknown }).id === 2) as { error: { code: number; msg: string } }).error;
      expect(refusal.code).toBe(2);
      expect(refusal.msg).toContain(`served by shard ${other}/3`);
      expect(refusal.msg).toContain(`this relay is shard ${i}/3`);
      // Its own streams carry candles; nothing of another shard's ever arrives.
      await until(() => mine.every((s) => client.messages.some((m) => m.stream === s)), `shard ${i}: candles on every own stream`, 15_000);
      expect(client.messages.every((m) => mine.includes(m.stream))).toBe(true);
    }
  }, 60_000);
});
