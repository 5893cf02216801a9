/**
 * What "latency" is for a REST-polled venue, measured: the time from a candle's close (its `T` + 1 ms,
 * the exchange's boundary) to the moment a relay client receives the closed candle, on real time.
 *
 *   node bench/poll-latency.ts [--streams 40] [--minutes 3]
 *
 * The real daemon (startConnector) against the Pionex simulator on loopback, `--streams` 1m streams
 * (one symbol each), one combined relay client. A poll leaves `poll.lagMs` (1.5 s) after the close; a
 * boundary's polls leave at the paced rate (8 requests/s), so the k-th stream of a boundary waits about
 * k / 8 s more: the figures are that schedule plus loopback and the pipeline (a real venue adds its
 * round trip). Prints p50 / p90 / p99 / max over the closed candles received after the first boundary.
 * A benchmark, not a test: figures depend on the machine and the network.
 */
import { pino } from 'pino';
import { WebSocket } from 'ws';
import { startConnector } from '../src/app.ts';
import { EnvSchema } from '../src/config/schema.ts';
import { pionexSimulator } from '../src/venues/pionex/simulator/index.ts';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? (process.argv[i + 1] ?? fallback) : fallback;
}

const STREAMS = Number(arg('streams', '40'));
const MINUTES = Number(arg('minutes', '3'));
const symbols = Array.from({ length: STREAMS }, (_, i) => `P${i}_USDT`);

const sim = await pionexSimulator.start();
const config = EnvSchema.parse({
  CONNECTOR_VENUES: 'pionex',
  CONNECTOR_PIONEX_SYMBOLS: symbols.join(','),
  CONNECTOR_PIONEX_REST_URL: sim.restUrl,
  CONNECTOR_RELAY_HOST: '127.0.0.1',
  CONNECTOR_RELAY_PORT: 0,
  CONNECTOR_WSS_HEALTH_CHECK_ENABLED: false,
  CONNECTOR_LOG_LEVEL: 'silent',
});
const connector = await startConnector(config, { log: pino({ level: 'warn' }), collectDefaultMetrics: false });
const names = symbols.map((s) => `pionex:${s.toLowerCase()}@kline_1m`);
const client = new WebSocket(`ws://127.0.0.1:${connector.relayAddress.port}/stream?streams=${names.join('/')}`);
const started = Date.now();
const firstBoundary = Math.ceil(started / 60_000) * 60_000;
const delays: number[] = [];
client.on('message', (data: Buffer) => {
  const msg = JSON.parse(data.toString('utf8')) as { data?: { k?: { T?: number; x?: boolean } } };
  const k = msg.data?.k;
  // The candles of the start-up poll closed before the daemon started: only boundaries it waited for count.
  if (k?.x === true && typeof k.T === 'number' && k.T + 1 >= firstBoundary) delays.push(Date.now() - (k.T + 1));
});
await new Promise((resolve) => setTimeout(resolve, firstBoundary - started + MINUTES * 60_000 + 15_000));
client.close();
await connector.shutdown('bench');
await sim.close();

delays.sort((a, b) => a - b);
const q = (p: number): number => delays[Math.min(delays.length - 1, Math.floor(p * delays.length))] ?? Number.NaN;
console.log(
  `pionex poll latency (close → relay client), ${STREAMS} x 1m streams, ${delays.length} candles over ${MINUTES} boundaries: ` +
    `p50 ${q(0.5)} ms, p90 ${q(0.9)} ms, p99 ${q(0.99)} ms, max ${delays.at(-1) ?? Number.NaN} ms ` +
    `(poll lag 1500 ms + position in the boundary's paced queue at 8 requests/s); REST requests ${sim.counters.restRequests}, max per second ${sim.counters.restBudgetUsedMax}, ` +
    `429s ${sim.counters.restLimited + sim.counters.restBanned}`,
);
