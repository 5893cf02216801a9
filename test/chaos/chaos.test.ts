/**
 * The seeded chaos suite in CI: fixed seeds only (a failing run must replay exactly with
 * `npm run chaos -- --venues … --seed N --faults N`), each run against fresh simulators and a fresh
 * daemon: 2 × 110 faults on Binance spot alone (1s candles, real time), then Binance spot and USD-M
 * side by side in one daemon (1m candles, both simulators and the daemon on one 60× wall clock; see
 * runner.ts) with the faults drawn over both venues, then OKX alone (1s bars, real time).
 * Longer attacks: `npm run chaos -- --faults 1000 --seed 42 [--venues binance,binance-usdm]`.
 */
import { describe, expect, it } from 'vitest';
import { describeFault, failureText, makeSchedule, runChaos, summaryLine, violations, type ChaosReport } from './runner.ts';
import { simulatorFor } from '../../src/venues/simulators.ts';

const FAULTS = 110;
const SEEDS = [20250101, 7] as const;
/** Side by side: 20 streams per venue, ~70 faults (~35 per venue) keep the file under ~3 min on 2 cores. */
const BOTH = { seed: 20260401, faults: 70, streams: 20 } as const;
/** BingX spot and swap side by side (no closed flag, gzip frames): 10 streams each, 60 faults, ~35 s on 2 cores. */
const BINGX = { seed: 17, faults: 60, streams: 10 } as const;
/** OKX alone (it has 1s bars: real time, 1s candles): 20 streams, 60 faults, ~40 s on 2 cores. */
const OKX = { seed: 20261201, faults: 60, streams: 20 } as const;
/**
 * Bybit spot and linear side by side (~30 s). A Bybit 403 is a ten-minute REST ban (rate-limit.mdx),
 * which no bounded run can wait out (the daemon rightly sends nothing in it, so its gaps stay open), so
 * this seed is one whose schedule draws none: its restErrors are 429s and 500s on both venues.
 * test/e2e/bybit.test.ts covers the 403 itself.
 */
const BYBIT = { seed: 185, faults: 60, streams: 20, venues: ['bybit-spot', 'bybit-linear'] } as const;
/** Pionex alone (REST-polled, no WebSocket; 1m on the 60x clock): ~60 faults, of which its REST errors, holes and garbage bite, in about 40 s. */
const PIONEX = { seed: 7, faults: 60, streams: 20 } as const;
/** Every venue side by side in ONE daemon (issues 16 and 17: Binance with Bybit and OKX, and with BingX and Pionex): 5 streams each, 60 faults over all eight. */
const ALL = { seed: 2026, faults: 60, streams: 5, venues: ['binance', 'binance-usdm', 'bybit-spot', 'bybit-linear', 'okx', 'bingx-spot', 'bingx-swap', 'pionex'] } as const;

/** Everything that must be zero or under its venue's limit, spelled out per venue (violations() is what the CLI uses). */
function expectClean(report: ChaosReport): void {
  const problems = violations(report);
  expect(problems, failureText(report, problems)).toEqual([]);
  expect(report.settled).toBe(true);
  expect(report).toMatchObject({ lost: 0, duplicated: 0, outOfOrder: 0, wrong: 0, invented: 0, openAfterClosed: 0 });
  for (const v of report.venues) {
    expect({ venue: v.venue, lost: v.lost, duplicated: v.duplicated, outOfOrder: v.outOfOrder, wrong: v.wrong, invented: v.invented }).toEqual({
      venue: v.venue,
      lost: 0,
      duplicated: 0,
      outOfOrder: 0,
      wrong: 0,
      invented: 0,
    });
    const limits = v.limits; // the venue's own (its simulator module's auditLimits)
    expect(v.sim.maxInboundPerSecond, v.venue).toBeLessThanOrEqual(limits.maxInboundPerSecond);
    expect(v.sim.maxConnectsPerWindow, v.venue).toBeLessThanOrEqual(limits.maxConnectsPerWindow);
    expect(v.sim.maxRestBudget, v.venue).toBeLessThan(limits.maxRestBudget);
    expect(v.sim.restInsideRetryAfter, v.venue).toBe(0);
    expect(v.sim.closedByRateLimit, v.venue).toBe(0);
  }
}

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

  it('draws a two-venue schedule that hits both venues, replays from its seed, and leaves one-venue schedules as they were', () => {
    const two = makeSchedule(BOTH.seed, BOTH.faults, BOTH.streams, 450, 2);
    expect(makeSchedule(BOTH.seed, BOTH.faults, BOTH.streams, 450, 2)).toEqual(two);
    const per = [0, 1].map((v) => two.filter((s) => s.venue === v));
    for (const list of per) {
      expect(list.length).toBeGreaterThan(BOTH.faults / 4);
      expect(list.some((s) => s.fault.kind === 'hole')).toBe(true);
    }
    expect(two.every((s) => s.venue === 0 || s.venue === 1)).toBe(true);
    // With one venue nothing extra is drawn: the same seed gives the same spot attack as before venues existed.
    const one = makeSchedule(42, 50, 40, 450);
    expect(one.every((s) => s.venue === 0)).toBe(true);
    expect(one.slice(0, 3).map((s) => `${s.at} ${describeFault(s.fault)}`)).toEqual(
      makeSchedule(42, 3, 40, 450, 1).map((s) => `${s.at} ${describeFault(s.fault)}`),
    );
  });

  it('draws each venue’s restErrors from its own gate statuses (and 500), and Binance’s from 429, 418 and 500 by default', () => {
    const statuses = (list: ReturnType<typeof makeSchedule>, venue: number): Set<number> =>
      new Set(list.flatMap((s) => (s.venue === venue && s.fault.kind === 'restErrors' ? [s.fault.status] : [])));
    const mixed = makeSchedule(11, 400, 20, 450, 2, [[429, 418, 500], [403, 500]]);
    expect([...statuses(mixed, 0)].sort()).toEqual([418, 429, 500]);
    expect([...statuses(mixed, 1)].sort()).toEqual([403, 500]);
    expect([...statuses(makeSchedule(11, 400, 20, 450), 0)].sort()).toEqual([418, 429, 500]);
  });

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
      for (const c of report.clients) expect(c.candles, `${c.client}/${c.venue}`).toBeGreaterThan(BOTH.streams * 15);
      for (const v of report.venues) {
        expect(v.faults, v.venue).toBeGreaterThan(0);
        expect(v.sim.connectionsOpened, v.venue).toBeGreaterThan(2);
        expect(v.sim.restRequests, v.venue).toBeGreaterThan(0);
      }
      expect(report.daemon.recovered).toBeGreaterThan(0);
      expect(report.holesInjected).toBeGreaterThan(0);
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
      for (const c of report.clients) expect(c.candles, `${c.client}/${c.venue}`).toBeGreaterThan(BINGX.streams * 15);
      for (const v of report.venues) {
        expect(v.faults, v.venue).toBeGreaterThan(0);
        expect(v.sim.restRequests, v.venue).toBeGreaterThan(0);
      }
      expect(report.holesInjected).toBeGreaterThan(0);
      expect(report.daemon.reconnections).toBeGreaterThan(0);
    },
    120_000,
  );

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
      for (const c of report.clients) expect(c.candles, `${c.client}/${c.venue}`).toBeGreaterThan(BYBIT.streams * 15);
      for (const v of report.venues) {
        expect(v.faults, v.venue).toBeGreaterThan(0);
        expect(v.sim.restRequests, v.venue).toBeGreaterThan(0);
      }
      expect(report.daemon.recovered).toBeGreaterThan(0);
      expect(report.holesInjected).toBeGreaterThan(0);
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

  it(
    `delivers every closed candle of all eight venues, side by side in one daemon, to both relay clients exactly once, in order, with each venue's values and holes left absent, through ${ALL.faults} faults over them (seed ${ALL.seed}), inside each venue's limits`,
    async () => {
      const statuses = ALL.venues.map((id) => [...(simulatorFor(id)?.gateStatuses ?? []), 500] as const);
      const schedule = makeSchedule(ALL.seed, ALL.faults, ALL.streams, 450, ALL.venues.length, statuses);
      // A Bybit 403 is a ten-minute ban no bounded run waits out (see BYBIT): this seed draws none for either Bybit venue.
      expect(schedule.some((s) => (s.venue === 2 || s.venue === 3) && s.fault.kind === 'restErrors' && s.fault.status === 403)).toBe(false);
      const report = await runChaos({ ...ALL, venues: [...ALL.venues] });
      console.log(summaryLine(report));
      expectClean(report);
      expect(report.venues.map((v) => v.venue)).toEqual([...ALL.venues]);
      for (const c of report.clients) expect(c.candles, `${c.client}/${c.venue}`).toBeGreaterThan(ALL.streams * 10);
      expect(report.venues.filter((v) => v.faults > 0).length).toBeGreaterThan(5);
      expect(report.holesInjected).toBeGreaterThan(0);
    },
    150_000,
  );
});
