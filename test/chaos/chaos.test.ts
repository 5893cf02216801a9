/**
 * The seeded chaos suite in CI: fixed seeds only (a failing run must replay exactly with
 * `npm run chaos -- --seed N --faults N`), 2 × 110 faults, each run against a fresh simulator and daemon.
 * Longer attacks: `npm run chaos -- --faults 1000 --seed 42`.
 */
import { describe, expect, it } from 'vitest';
import { DEFAULT_LIMITS, describeFault, failureText, makeSchedule, runChaos, summaryLine, violations } from './runner.ts';

const FAULTS = 110;
const SEEDS = [20250101, 7] as const;

describe('seeded chaos: simulator faults against the real daemon, audited against ground truth', () => {
  it('draws the same fault schedule from the same seed, and a different one from another', () => {
    const a = makeSchedule(42, 50, 40, 450).map((s) => `${s.at} ${describeFault(s.fault)}`);
    const b = makeSchedule(42, 50, 40, 450).map((s) => `${s.at} ${describeFault(s.fault)}`);
    const c = makeSchedule(43, 50, 40, 450).map((s) => `${s.at} ${describeFault(s.fault)}`);
    expect(a).toEqual(b);
    expect(a).not.toEqual(c);
    // Every kind shows up in a schedule of CI size.
    const kinds = new Set(makeSchedule(SEEDS[0], FAULTS, 40, 450).map((s) => s.fault.kind));
    expect([...kinds].sort()).toEqual(
      ['closeAll', 'closeMidSubscribe', 'dropAll', 'garbage', 'hole', 'refuseConnections', 'restErrors', 'serverShutdown', 'stallSockets', 'stallStreams'].sort(),
    );
  });

  for (const seed of SEEDS) {
    it(
      `delivers every closed candle to both relay clients exactly once, in order, with Binance's values and its holes left absent, through ${FAULTS} faults (seed ${seed}), inside Binance's limits`,
      async () => {
        const report = await runChaos({ seed, faults: FAULTS, streams: 40 });
        console.log(summaryLine(report));
        const problems = violations(report);
        expect(problems, failureText(report, problems)).toEqual([]);
        // The same, spelled out (violations() is what the CLI uses).
        expect(report.settled).toBe(true);
        expect(report).toMatchObject({ lost: 0, duplicated: 0, outOfOrder: 0, wrong: 0, invented: 0, openAfterClosed: 0 });
        expect(report.sim.maxInboundPerSecond).toBeLessThanOrEqual(DEFAULT_LIMITS.maxInboundPerSecond);
        expect(report.sim.maxConnects5min).toBeLessThanOrEqual(DEFAULT_LIMITS.maxConnects5min);
        expect(report.sim.maxRestWeight1m).toBeLessThan(DEFAULT_LIMITS.maxRestWeight1m);
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
