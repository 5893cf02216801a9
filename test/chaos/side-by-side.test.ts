/**
 * Seeded chaos on two markets of one venue in one daemon: Binance spot and USD-M, BingX spot and swap, Bybit
 * spot and linear (1m candles on the 60x clock; see ci.ts and runner.ts).
 */
import { describe, expect, it } from 'vitest';
import { makeSchedule, runChaos, summaryLine } from './runner.ts';
import { BINGX, BOTH, BYBIT, expectClean, expectEveryVenueAttacked } from './ci.ts';

describe('seeded chaos: two markets of one venue side by side in one daemon', () => {
  it(
    `delivers every closed candle of Binance spot and USD-M, side by side in one daemon, to both relay clients (each subscribed to both venues) exactly once, in order, with each venue's values and holes left absent, through ${BOTH.faults} faults over both venues (seed ${BOTH.seed}), inside each venue's limits`,
    async () => {
      const report = await runChaos({ ...BOTH, venues: ['binance', 'binance-usdm'] });
      console.log(summaryLine(report));
      expectClean(report);
      expect(report.venues.map((v) => [v.venue, v.interval, v.streams])).toEqual([
        ['binance', '1m', BOTH.streams],
        ['binance-usdm', '1m', BOTH.streams],
      ]);
      // Both clients audited both venues, and the attack was real on each.
      expect(report.clients.map((c) => `${c.client}/${c.venue}`).sort()).toEqual(['combined/binance', 'combined/binance-usdm', 'raw/binance', 'raw/binance-usdm']);
      expectEveryVenueAttacked(report, BOTH.streams * 15);
      for (const v of report.venues) expect(v.sim.connectionsOpened, v.venue).toBeGreaterThan(2);
      expect(report.daemon.recovered).toBeGreaterThan(0);
      expect(report.daemon.reconnections).toBeGreaterThan(0);
    },
    180_000,
  );

  it(
    `delivers every closed candle of BingX spot and swap (closed by the next candle's start, final values from REST) to both relay clients exactly once, in order, with each venue's values and holes left absent, through ${BINGX.faults} faults (seed ${BINGX.seed}), inside each venue's limits`,
    async () => {
      const report = await runChaos({ ...BINGX, venues: ['bingx-spot', 'bingx-swap'] });
      console.log(summaryLine(report));
      expectClean(report);
      expect(report.venues.map((v) => [v.venue, v.interval, v.streams])).toEqual([
        ['bingx-spot', '1m', BINGX.streams],
        ['bingx-swap', '1m', BINGX.streams],
      ]);
      expectEveryVenueAttacked(report, BINGX.streams * 15);
      expect(report.daemon.reconnections).toBeGreaterThan(0);
    },
    120_000,
  );

  it(
    `delivers every closed candle of Bybit spot and linear, side by side in one daemon, to both relay clients exactly once, in order, with Bybit's values and holes left absent, through ${BYBIT.faults} faults (seed ${BYBIT.seed}), inside Bybit's limits`,
    async () => {
      const schedule = makeSchedule(BYBIT.seed, BYBIT.faults, BYBIT.streams, 450, 2, [
        [403, 429, 500],
        [403, 429, 500],
      ]);
      expect(schedule.some((s) => s.fault.kind === 'restErrors' && s.fault.status === 403)).toBe(false);
      const report = await runChaos({ ...BYBIT, venues: [...BYBIT.venues] });
      console.log(summaryLine(report));
      expectClean(report);
      expectEveryVenueAttacked(report, BYBIT.streams * 15);
      expect(report.daemon.recovered).toBeGreaterThan(0);
    },
    120_000,
  );
});
