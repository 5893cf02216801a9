/**
 * `npm run simulator`: run the Binance simulator on its own, print its URLs, stop on SIGINT/SIGTERM.
 *
 *   node src/venues/binance/simulator/main.ts [--profiles binance,binance-usdm] [--port 9443]
 *                                             [--usdm-port 9444] [--host 127.0.0.1]
 *
 * `--profiles` (or the SIMULATOR_PROFILES variable; the flag wins) picks which markets to serve, one
 * server each: `binance` (spot, the default), `binance-usdm` (USD-M futures), or both.
 */
import { parseArgs } from 'node:util';
import { BinanceSimulator } from './server.ts';
import { SIMULATOR_PROFILE_IDS, isSimulatorProfileId } from './profiles.ts';
import type { SimulatorProfileId } from './profiles.ts';

function usage(message: string): never {
  console.error(message);
  process.exit(64);
}

function parsePort(name: string, raw: string): number {
  const port = Number(raw);
  if (!/^[0-9]{1,5}$/.test(raw) || port > 65_535) usage(`invalid --${name} ${raw}: expected an integer 0-65535`);
  return port;
}

const { values } = parseArgs({
  options: {
    profiles: { type: 'string' },
    port: { type: 'string', default: '9443' },
    'usdm-port': { type: 'string', default: '9444' },
    host: { type: 'string', default: '127.0.0.1' },
  },
});

const rawProfiles = values.profiles ?? process.env.SIMULATOR_PROFILES ?? 'binance';
const profiles: SimulatorProfileId[] = [];
for (const part of rawProfiles.split(',')) {
  const id = part.trim();
  if (id === '') continue;
  if (!isSimulatorProfileId(id)) usage(`unknown simulator profile ${JSON.stringify(id)}: expected one of ${SIMULATOR_PROFILE_IDS.join(', ')}`);
  if (!profiles.includes(id)) profiles.push(id);
}
if (profiles.length === 0) usage(`no simulator profile given: expected one or more of ${SIMULATOR_PROFILE_IDS.join(', ')}`);
const ports: Record<SimulatorProfileId, number> = {
  binance: parsePort('port', values.port),
  'binance-usdm': parsePort('usdm-port', values['usdm-port']),
};

const sims: BinanceSimulator[] = [];
for (const profile of profiles) {
  const sim = await BinanceSimulator.start({ host: values.host, port: ports[profile], profile });
  sims.push(sim);
  if (profile === 'binance') {
    console.log(`binance simulator (spot): ws ${sim.wsUrl}  rest ${sim.restUrl}`);
    console.log(`  e.g. ${sim.wsUrl}/stream?streams=btcusdt@kline_1s/ethusdt@kline_1m`);
    console.log(`       ${sim.restUrl}${sim.paths.klines}?symbol=BTCUSDT&interval=1m&limit=5`);
  } else {
    console.log(`binance-usdm simulator (USD-M futures): ws ${sim.wsUrl}  rest ${sim.restUrl}`);
    console.log(`  e.g. ${sim.wsUrl}/stream?streams=btcusdt@kline_1m/ethusdt@kline_5m`);
    console.log(`       ${sim.restUrl}${sim.paths.klines}?symbol=BTCUSDT&interval=1m&limit=1500`);
    console.log(`  legacy ${sim.wsRootUrl}/ws and /stream accept subscriptions and send no klines (as Binance since 2026-04)`);
  }
}

let stopping = false;
function stop(): void {
  if (stopping) process.exit(1); // second signal: leave at once
  stopping = true;
  void Promise.all(sims.map((s) => s.close())).then(() => process.exit(0));
}
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
