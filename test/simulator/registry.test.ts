/**
 * The simulator registry (src/venues/simulators.ts): each entry is a venue the daemon knows, its chaos
 * symbols are valid for that venue and disjoint from every other's, its ground truth is the candle
 * the relay must send, and its simulator starts and serves on port 0.
 */
import { describe, expect, it } from 'vitest';
import { nextOpenTime } from '../../src/core/intervals.ts';
import { VENUES } from '../../src/venues/index.ts';
import { SIMULATORS, simulatorFor } from '../../src/venues/simulators.ts';

const T0 = Date.UTC(2026, 0, 5, 12, 0, 0);

describe('the simulator registry', () => {
  it('lists each venue once, each a venue of src/venues/index.ts, with at least 40 valid chaos symbols disjoint from every other venue’s', () => {
    const ids = SIMULATORS.map((s) => s.id);
    expect(new Set(ids).size).toBe(ids.length);
    const seen = new Map<string, string>();
    for (const sim of SIMULATORS) {
      const adapter = VENUES.find((v) => v.id === sim.id);
      expect(adapter, sim.id).toBeDefined();
      if (adapter === undefined) continue;
      expect(simulatorFor(sim.id)).toBe(sim);
      expect(sim.chaosSymbols.length, sim.id).toBeGreaterThanOrEqual(40);
      for (const symbol of sim.chaosSymbols) {
        const written = adapter.env.symbolCase === 'lower' ? symbol.toLowerCase() : symbol.toUpperCase();
        expect(adapter.env.symbolPattern.test(written), `${sim.id} ${symbol}`).toBe(true);
        const key = symbol.toLowerCase();
        expect(seen.get(key), `${symbol} of ${sim.id}`).toBeUndefined();
        seen.set(key, sim.id);
      }
      expect(sim.gateStatuses.length, sim.id).toBeGreaterThan(0);
      // A venue without a kline WebSocket (REST-polled) opens no socket: it allows no inbound frames at all.
      if (adapter.source === 'rest-poll') expect(sim.auditLimits).toMatchObject({ maxInboundPerSecond: 0, maxConnectsPerWindow: 0 });
      else expect(sim.auditLimits.maxInboundPerSecond).toBeGreaterThan(0);
    }
  });

  it('gives, per venue, the closed candle the relay must send: native symbol, canonical interval, close time', () => {
    for (const sim of SIMULATORS) {
      const adapter = VENUES.find((v) => v.id === sim.id);
      const interval = Object.keys(adapter?.env.intervals ?? {}).includes('1m') ? '1m' : undefined;
      expect(interval, sim.id).toBe('1m');
      const symbol = sim.chaosSymbols[0] ?? '';
      const [spec] = adapter?.streams([symbol], ['1m']) ?? [];
      const k = sim.truth(symbol, '1m', T0);
      expect(k.s, sim.id).toBe(spec?.symbol);
      expect(k.i).toBe('1m');
      expect(k.T).toBe(nextOpenTime('1m', T0) - 1);
      expect(Number(k.h)).toBeGreaterThanOrEqual(Math.max(Number(k.o), Number(k.c)));
    }
  });

  it('starts every venue’s simulator on port 0 with a REST origin, and closes it', async () => {
    for (const sim of SIMULATORS) {
      const s = await sim.start({ host: '127.0.0.1', port: 0 });
      try {
        expect(s.venue).toBe(sim.id);
        expect(s.restUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
        expect(s.sockets()).toEqual([]);
      } finally {
        await s.close();
      }
    }
  });
});
