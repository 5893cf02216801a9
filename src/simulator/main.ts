/**
 * `npm run simulator`: run venue simulators on their own (one server each), print their URLs, stop on
 * SIGINT/SIGTERM.
 *
 *   node src/simulator/main.ts [--venues <id>,<id>…] [--port 9443] [--host 127.0.0.1]
 *
 * `--venues` (or the SIMULATOR_VENUES variable; the flag wins; `--profiles` / SIMULATOR_PROFILES are
 * the older names) picks the venues from the simulator registry (src/venues/simulators.ts); default:
 * the first registered one. Each venue listens on `--port` + its position in the registry, so a venue
 * keeps its port whichever others run beside it.
 *
 * The entry point only: the engine (engine.ts) never imports the registry.
 */
import { parseArgs } from 'node:util';
import type { VenueSimulator } from './dialect.ts';
import { SIMULATORS } from '../venues/simulators.ts';

function usage(message: string): never {
  console.error(message);
  process.exit(64);
}

const { values } = parseArgs({
  options: {
    venues: { type: 'string' },
    profiles: { type: 'string' },
    port: { type: 'string', default: '9443' },
    host: { type: 'string', default: '127.0.0.1' },
  },
});

const known = SIMULATORS.map((s) => s.id);
const base = Number(values.port);
if (!/^[0-9]{1,5}$/.test(values.port) || base > 65_535 - known.length) usage(`invalid --port ${values.port}: expected an integer 0-${65_535 - known.length}`);
const raw = values.venues ?? values.profiles ?? process.env.SIMULATOR_VENUES ?? process.env.SIMULATOR_PROFILES ?? known[0] ?? '';
const ids: string[] = [];
for (const part of raw.split(',')) {
  const id = part.trim();
  if (id === '') continue;
  if (!known.includes(id)) usage(`unknown simulator venue ${JSON.stringify(id)}: expected one of ${known.join(', ')}`);
  if (!ids.includes(id)) ids.push(id);
}
if (ids.length === 0) usage(`no simulator venue given: expected one or more of ${known.join(', ')}`);

const sims: VenueSimulator[] = [];
for (const [index, venue] of SIMULATORS.entries()) {
  if (!ids.includes(venue.id)) continue;
  // Port 0 stays 0 (any free port) for every venue.
  const sim = await venue.start({ host: values.host, port: base === 0 ? 0 : base + index });
  sims.push(sim);
  const symbol = venue.chaosSymbols[0] ?? '';
  console.log(`${venue.id} simulator: ws ${sim.wsUrl === '' ? '(none: REST only)' : sim.wsUrl}  rest ${sim.restUrl}`);
  if (sim.wsUrl !== '') console.log(`  stream key for ${symbol} 1m: ${venue.streamKey(symbol, '1m')}`);
}

let stopping = false;
function stop(): void {
  if (stopping) process.exit(1); // second signal: leave at once
  stopping = true;
  void Promise.all(sims.map((s) => s.close())).then(() => process.exit(0));
}
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
