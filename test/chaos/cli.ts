/**
 * `npm run chaos -- --faults 1000 --seed 42 [--streams 40] [--gap 450] [--quiet]`
 * Runs the seeded chaos suite once and prints a one-line summary; exits 1 if anything that must be zero
 * is not (then the seed and the whole fault list are printed to stderr for an exact replay).
 */
import { parseArgs } from 'node:util';
import { failureText, runChaos, summaryLine, violations } from './runner.ts';

function num(name: string, v: string | undefined, fallback: number): number {
  if (v === undefined) return fallback;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) {
    console.error(`--${name}: expected a non-negative integer, got ${v}`);
    process.exit(2);
  }
  return n;
}

const { values } = parseArgs({
  options: {
    seed: { type: 'string' },
    faults: { type: 'string' },
    streams: { type: 'string' },
    gap: { type: 'string' },
    quiet: { type: 'boolean', default: false },
  },
});

const seed = num('seed', values.seed, 42);
const report = await runChaos({
  seed,
  faults: num('faults', values.faults, 200),
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
