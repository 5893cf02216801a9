/**
 * The chaos schedule: the same seed draws the same faults, every kind shows up, each venue draws its own statuses.
 */
import { describe, expect, it } from 'vitest';
import { describeFault, makeSchedule } from './runner.ts';
import { BOTH, FAULTS, SEEDS } from './ci.ts';

describe('seeded chaos: the fault schedule', () => {
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
});
