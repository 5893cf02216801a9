/**
 * `npm run demo`: the real daemon against the bundled simulators, plus a sample consumer on
 * the relay printing closed candles. Needs no network. Ctrl-C stops everything gracefully.
 *
 * Any CONNECTOR_* variable still applies (e.g. CONNECTOR_SYMBOLS, CONNECTOR_RELAY_PORT); the demo
 * only points the upstream URLs at the simulator and defaults to 1s and 1m candles so output flows.
 *
 * `--venues binance,bybit-spot,okx,…` runs any venues of the simulator registry side by side, each
 * against its own simulator (its own port, its own candles; 1m, Binance spot 1s and 1m): the consumer
 * prints every venue's candles from one relay connection. `--usdm` = `--venues binance,binance-usdm`.
 *
 * `--nats` starts a local `nats-server -js` (it must be on PATH: Debian/Ubuntu `apt-get install
 * nats-server`, or the NATS release binary) on a free loopback port with a temporary store, runs the
 * daemon with CONNECTOR_NATS_URL pointing at it, and prints what a JetStream reader
 * (src/demo/nats-consumer.ts) gets from the stream. The server is stopped by its pid at the end.
 */
import type { VenueSimulator } from '../simulator/dialect.ts';
import { simulatorFor } from '../venues/simulators.ts';
import { VENUES, venueById } from '../venues/index.ts';
import { loadConfig } from '../config/load.ts';
import { ConfigError } from '../core/errors.ts';
import { createLogger } from '../ops/logger.ts';
import { startConnector } from '../app.ts';
import { runConsumer } from './consumer.ts';
import { readCandles } from './nats-consumer.ts';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';

/** A local `nats-server -js` for `--nats`, on a free port; resolves once it says it is ready. */
async function startNats(): Promise<{ url: string; proc: ChildProcess; stop: () => void }> {
  const port = await new Promise<number>((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => {
        resolve(typeof addr === 'object' && addr !== null ? addr.port : 0);
      });
    });
  });
  const store = mkdtempSync(path.join(tmpdir(), 'demo-nats-'));
  const proc = spawn('nats-server', ['-js', '-sd', store, '-a', '127.0.0.1', '-p', String(port)], { stdio: ['ignore', 'pipe', 'pipe'] });
  const stop = (): void => {
    if (proc.pid !== undefined && proc.exitCode === null) process.kill(proc.pid, 'SIGTERM');
    rmSync(store, { recursive: true, force: true });
  };
  await new Promise<void>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => {
      stop();
      reject(new Error(`nats-server did not start within 10 s: ${out}`));
    }, 10_000);
    const onData = (d: Buffer): void => {
      out += d.toString('utf8');
      if (out.includes('Server is ready')) {
        clearTimeout(timer);
        resolve();
      }
    };
    proc.stdout.on('data', onData);
    proc.stderr.on('data', onData);
    proc.once('error', (err) => {
      clearTimeout(timer);
      reject(new Error(`--nats needs nats-server on PATH (apt-get install nats-server): ${err.message}`));
    });
  });
  return { url: `nats://127.0.0.1:${port}`, proc, stop };
}

// `--venues a,b,…`: any venues of the simulator registry, each against its own simulator; `--usdm` is
// the older spelling of `--venues binance,binance-usdm`. Default: Binance spot alone.
const venuesArg = process.argv.indexOf('--venues');
const venueIds = (venuesArg >= 0 ? (process.argv[venuesArg + 1] ?? '') : process.argv.includes('--usdm') ? 'binance,binance-usdm' : 'binance')
  .split(',')
  .map((v) => v.trim())
  .filter((v) => v.length > 0);
const sims: VenueSimulator[] = [];
const venueEnv: Record<string, string> = { CONNECTOR_VENUES: venueIds.join(',') };
for (const id of venueIds) {
  const module = simulatorFor(id);
  const adapter = venueById(id);
  if (module === undefined || adapter === undefined) {
    process.stderr.write(`demo: unknown venue ${id}; known: ${VENUES.map((v) => v.id).join(', ')}\n`);
    await Promise.all(sims.map((x) => x.close()));
    process.exit(64);
  }
  const sim = await module.start({ host: '127.0.0.1', port: 0 });
  sims.push(sim);
  const vars = adapter.env.vars;
  // Binance spot keeps the demo's old defaults (3 symbols, 1s and 1m); other venues three of their simulator's symbols at 1m.
  const spot = vars.symbols === 'CONNECTOR_SYMBOLS';
  venueEnv[vars.symbols] = process.env[vars.symbols] ?? (spot ? 'btcusdt,ethusdt,bnbusdt' : module.chaosSymbols.slice(0, 3).join(','));
  venueEnv[vars.intervals] = process.env[vars.intervals] ?? (spot ? '1s,1m' : '1m');
  // A REST-polled venue's simulator has no WebSocket (and its WS_URL is not read).
  if (sim.wsUrl !== '') venueEnv[vars.wsUrl] = sim.wsUrl;
  venueEnv[vars.restUrl] = sim.restUrl;
  process.stdout.write(`demo: ${adapter.title} simulator on ${sim.wsUrl === '' ? 'REST only' : sim.wsUrl} (REST ${sim.restUrl})\n`);
}
const nats = process.argv.includes('--nats') ? await startNats() : undefined;
if (nats !== undefined) process.stdout.write(`demo: nats-server -js on ${nats.url}; every closed candle goes to JetStream stream CANDLES\n`);
async function closeSimulators(): Promise<void> {
  await Promise.all(sims.map((x) => x.close()));
  nats?.stop();
}

let loaded: ReturnType<typeof loadConfig>;
try {
  loaded = loadConfig({
    env: {
      CONNECTOR_SYMBOLS: 'btcusdt,ethusdt,bnbusdt',
      CONNECTOR_INTERVALS: '1s,1m',
      CONNECTOR_RELAY_HOST: '127.0.0.1',
      CONNECTOR_HEALTH_CHECK_HOST: '127.0.0.1',
      CONNECTOR_LOG_LEVEL: 'warn',
      ...process.env,
      CONNECTOR_ENV: 'development',
      ...(nats === undefined ? {} : { CONNECTOR_NATS_URL: nats.url }),
      ...venueEnv,
    },
  });
} catch (err) {
  if (err instanceof ConfigError) {
    for (const line of err.issues) process.stderr.write(`config error: ${line}\n`);
    await closeSimulators();
    process.exit(78);
  }
  throw err;
}
const { config } = loaded;
const log = createLogger(config.logLevel);
const connector = await startConnector(config, { log });
const relayUrl = `ws://127.0.0.1:${connector.relayAddress.port}`;
process.stdout.write(
  `demo: relay on ${relayUrl}  (try: ${relayUrl}/ws/btcusdt@kline_1s)\n` +
    (connector.httpAddress === undefined
      ? 'demo: ops server disabled (CONNECTOR_WSS_HEALTH_CHECK_ENABLED=false)\n'
      : `demo: ops on http://127.0.0.1:${connector.httpAddress.port}/ready and /metrics\n`),
);

const streams = connector.registry.all().map((s) => s.name);
const stopConsumer = runConsumer({ url: relayUrl, streams, ...(config.relay.token === undefined ? {} : { token: config.relay.token }) });
const stopReader =
  nats === undefined
    ? undefined
    : await readCandles({
        url: nats.url,
        subject: 'candles.>',
        since: new Date(),
        onCandle: (subject, e) => {
          process.stdout.write(`nats: ${subject} ${new Date(e.k.t).toISOString()} c=${e.k.c}\n`);
        },
      });

let stopping = false;
async function stop(signal: string): Promise<void> {
  if (stopping) process.exit(1); // second signal: now
  stopping = true;
  process.stdout.write(`demo: ${signal}, shutting down\n`);
  stopConsumer();
  await stopReader?.();
  const { drained } = await connector.shutdown(signal);
  await closeSimulators();
  process.stdout.write(`demo: stopped (${drained ? 'drained' : 'grace exceeded'})\n`);
  process.exit(0);
}
process.on('SIGINT', () => void stop('SIGINT'));
process.on('SIGTERM', () => void stop('SIGTERM'));

// `npm run demo -- --seconds 20` stops by itself (used by the README smoke check).
const secondsArg = process.argv.indexOf('--seconds');
const seconds = secondsArg >= 0 ? Number(process.argv[secondsArg + 1] ?? '0') : 0;
if (seconds > 0) setTimeout(() => void stop('timer'), seconds * 1000).unref();
