/**
 * Seeded chaos on OKX alone (1s bars, real time) and on Pionex alone (REST-polled, 1m on the 60x clock).
 */
import { describe, expect, it } from 'vitest';
import { runChaos, summaryLine } from './runner.ts';
import { OKX, PIONEX, expectClean } from './ci.ts';

describe('seeded chaos: OKX and Pionex, each alone', () => {
  it(
    `delivers every closed OKX candle (spot and perpetuals) to both relay clients exactly once, in order, with OKX's values and its holes left absent, through ${OKX.faults} faults (seed ${OKX.seed}), inside OKX's limits`,
    async () => {
      const report = await runChaos({ ...OKX, venues: ['okx'] });
      console.log(summaryLine(report));
      expectClean(report);
      expect(report.venues.map((v) => [v.venue, v.interval, v.streams])).toEqual([['okx', '1s', OKX.streams]]);
      expect(report.candles).toBeGreaterThan(2 * OKX.streams * 15);
      expect(report.daemon.recovered).toBeGreaterThan(0);
      expect(report.holesInjected).toBeGreaterThan(0);
      expect(report.daemon.reconnections).toBeGreaterThan(0);
    },
    120_000,
  );

  it(
    `delivers every closed candle of Pionex (polled from REST, no WebSocket) to both relay clients exactly once, in order, as its REST rows with its holes left absent, through ${PIONEX.faults} faults (seed ${PIONEX.seed}), under its 10 requests/s and never inside a 429's window`,
    async () => {
      const report = await runChaos({ ...PIONEX, venues: ['pionex'] });
      console.log(summaryLine(report));
      expectClean(report);
      const v = report.venues[0];
      expect([v?.venue, v?.interval, v?.streams]).toEqual(['pionex', '1m', PIONEX.streams]);
      // No socket at all; REST carried everything, refusals and holes included.
      expect(v?.sim.connectionsOpened).toBe(0);
      for (const c of report.clients) expect(c.candles, c.client).toBeGreaterThan(PIONEX.streams * 15);
      expect(report.holesInjected).toBeGreaterThan(0);
      // At 60x a stream's candle closes every real second and the daemon lets out 8 requests/s for 20 streams: a poll carries 2-3 candles.
      expect(v?.sim.restRequests).toBeGreaterThan(PIONEX.streams * 5);
    },
    120_000,
  );
});
