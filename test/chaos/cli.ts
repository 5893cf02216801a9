/**
 * `npm run chaos -- --faults 1000 --seed 42 [--venues binance,binance-usdm] [--streams 40] [--gap 450] [--quiet]`
 * Runs the seeded chaos suite once and prints its summary (one line; with several venues, then a line
 * per venue); exits 1 if anything that must be zero is not (then the seed and the whole fault list are
 * printed to stderr for an exact replay). `--venues`: any venues of the simulator registry
 * (src/venues/simulators.ts); the daemon's default venue (Binance spot) alone by default; `--streams`
 * is per venue.
 */
import { parseArgs } from 'node:util';
import { CHAOS_VENUE_IDS, failureText, isChaosVenueId, runChaos, summaryLine, violations, type ChaosVenueId } from './runner.ts';

function num(name: string, v: string | undefined, fallback: number): number {
  if (v === undefined) return fallback;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) {
    console.error(`--${name}: expected a non-negative integer, got ${v}`);
    process.exit(2);
  }
  return n;
}

function venueList(v: string | undefined): ChaosVenueId[] | undefined {
  if (v === undefined) return undefined; // the runner's default
  const ids = v.split(',').map((s) => s.trim());
  const bad = ids.filter((id) => !isChaosVenueId(id));
  if (bad.length > 0 || ids.length === 0 || new Set(ids).size !== ids.length) {
    console.error(`--venues: expected distinct ids from ${CHAOS_VENUE_IDS.join(', ')} (comma list), got ${v}`);
    process.exit(2);
  }
  return ids.filter(isChaosVenueId);
}

const { values } = parseArgs({
  options: {
    seed: { type: 'string' },
    faults: { type: 'string' },
    venues: { type: 'string' },
    streams: { type: 'string' },
    gap: { type: 'string' },
    quiet: { type: 'boolean', default: false },
  },
});

const seed = num('seed', values.seed, 42);
const venues = venueList(values.venues);
const report = await runChaos({
  seed,
  faults: num('faults', values.faults, 200),
  ...(venues === undefined ? {} : { venues }),
  streams: num('streams', values.streams, 40),
  meanGapMs: num('gap', values.gap, 450),
  log: values.quiet ? undefined : (line) => {
    console.error(line);
  },
});
console.log(summaryLine(report));
const problems = violations(report);
if (problems.length > 0) {
  console.error(failureText(report, problems));
  process.exitCode = 1;
}
