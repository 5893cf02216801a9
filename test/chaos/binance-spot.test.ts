/**
 * Seeded chaos on Binance spot alone (1s candles, real time): two seeds of 110 faults each (see ci.ts).
 */
import { describe, expect, it } from 'vitest';
import { runChaos, summaryLine } from './runner.ts';
import { FAULTS, SEEDS, expectClean } from './ci.ts';

describe('seeded chaos: Binance spot alone', () => {
  for (const seed of SEEDS) {
    it(
      `delivers every closed candle to both relay clients exactly once, in order, with Binance's values and its holes left absent, through ${FAULTS} faults (seed ${seed}), inside Binance's limits`,
      async () => {
        const report = await runChaos({ seed, faults: FAULTS, streams: 40 });
        console.log(summaryLine(report));
        expectClean(report);
        // The attack was real: candles were audited, lost upstream and recovered over REST, holes were met.
        expect(report.candles).toBeGreaterThan(2 * 40 * 30);
        expect(report.daemon.recovered).toBeGreaterThan(0);
        expect(report.holesInjected).toBeGreaterThan(0);
        expect(report.daemon.reconnections).toBeGreaterThan(0);
      },
      180_000,
    );
  }
});
