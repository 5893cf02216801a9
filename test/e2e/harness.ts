/** Shared set-up for end-to-end tests: a simulator, the real daemon graph, and recording relay clients. */
import { WebSocket } from 'ws';
import { pino } from 'pino';
import { BinanceSimulator, type SimulatorOptions } from '../../src/venues/binance/simulator/server.ts';
import { klineAt } from '../../src/venues/binance/simulator/klines.ts';
import { EnvSchema, type Config } from '../../src/config/schema.ts';
import { startConnector, type Connector, type ConnectorDeps } from '../../src/app.ts';
import type { StatusEvent } from '../../src/core/status.ts';

export interface KlineMsg {
  stream: string;
  t: number;
  x: boolean;
  E: number;
  k: Record<string, unknown>;
}

export class RecordingClient {
  readonly ws: WebSocket;
  readonly messages: KlineMsg[] = [];
  readonly other: unknown[] = [];
  closeCode: number | undefined;
  readonly opened: Promise<void>;
  readonly closedP: Promise<number>;

  constructor(url: string) {
    this.ws = new WebSocket(url);
    this.opened = new Promise((resolve, reject) => {
      this.ws.once('open', () => {
        resolve();
      });
      this.ws.once('error', reject);
    });
    this.closedP = new Promise((resolve) => {
      this.ws.once('close', (code) => {
        this.closeCode = code;
        resolve(code);
      });
    });
    this.ws.on('message', (data: Buffer) => {
      const msg = JSON.parse(data.toString('utf8')) as {
        stream?: string;
        data?: { e?: string; E: number; k: Record<string, unknown> };
        e?: string;
        E?: number;
        k?: Record<string, unknown>;
      };
      if (msg.data?.e === 'kline' && msg.stream !== undefined) {
        const k = msg.data.k;
        this.messages.push({ stream: msg.stream, t: k.t as number, x: k.x as boolean, E: msg.data.E, k });
      } else if (msg.e === 'kline' && msg.k !== undefined) {
        // Raw (`/ws`) events carry no stream name: derive it from the payload, as a Binance client does.
        const k = msg.k;
        const stream = `${String(k.s).toLowerCase()}@kline_${String(k.i)}`;
        this.messages.push({ stream, t: k.t as number, x: k.x as boolean, E: msg.E ?? 0, k });
      } else {
        this.other.push(msg);
      }
    });
  }

  closedCandles(stream: string): number[] {
    return this.messages.filter((m) => m.stream === stream && m.x).map((m) => m.t);
  }
}

/** The loopback, quiet settings of an end-to-end daemon, under `env` (which wins). */
export function e2eConfig(env: Record<string, unknown>): Config {
  return EnvSchema.parse({
    CONNECTOR_RELAY_HOST: '127.0.0.1',
    CONNECTOR_RELAY_PORT: 0,
    CONNECTOR_HEALTH_CHECK_HOST: '127.0.0.1',
    CONNECTOR_WSS_HEALTH_CHECK_PORT: 0,
    CONNECTOR_RECONNECT_BASE_MS: 300,
    CONNECTOR_RECONNECT_MAX_MS: 1000,
    CONNECTOR_LOG_LEVEL: 'silent',
    ...env,
  });
}

/**
 * The daemon of a venue's end-to-end test, on `now` (the simulators' clock, e.g. 60x), with fast gap
 * retries; its status events (relay client churn aside) as JSON lines for failure messages.
 */
export async function startVenueDaemon(env: Record<string, unknown>, now: () => number, deps: Partial<ConnectorDeps> = {}): Promise<{ connector: Connector; events: string[] }> {
  const connector = await startConnector(e2eConfig(env), {
    log: pino({ level: 'silent' }),
    clock: { now, monotonic: () => performance.now() },
    collectDefaultMetrics: false,
    gapRetryDelaysMs: [50, 100, 200, 500],
    ...deps,
  });
  const events: string[] = [];
  connector.status.subscribe((e) => {
    if (e.type !== 'relay.client.open' && e.type !== 'relay.client.close') events.push(JSON.stringify(e));
  });
  return { connector, events };
}

export function testConfig(sim: BinanceSimulator, overrides: Record<string, unknown>): Config {
  return EnvSchema.parse({
    CONNECTOR_BINANCE_WS_URL: sim.wsUrl,
    CONNECTOR_BINANCE_REST_URL: sim.restUrl,
    CONNECTOR_RELAY_HOST: '127.0.0.1',
    CONNECTOR_RELAY_PORT: 0,
    CONNECTOR_HEALTH_CHECK_HOST: '127.0.0.1',
    CONNECTOR_WSS_HEALTH_CHECK_PORT: 0,
    CONNECTOR_RECONNECT_BASE_MS: 50,
    CONNECTOR_RECONNECT_MAX_MS: 500,
    CONNECTOR_LOG_LEVEL: 'silent',
    ...overrides,
  });
}

export async function startStack(
  simOptions: SimulatorOptions,
  overrides: Record<string, unknown>,
  deps: Partial<ConnectorDeps> = {},
): Promise<{ sim: BinanceSimulator; connector: Connector; relayUrl: string; events: StatusEvent[]; stop: () => Promise<void> }> {
  const sim = await BinanceSimulator.start({ openUpdateMs: 100, ...simOptions });
  const config = testConfig(sim, overrides);
  const connector = await startConnector(config, {
    log: pino({ level: 'silent' }),
    collectDefaultMetrics: false,
    gapRetryDelaysMs: [50, 100, 200, 500],
    ...deps,
  });
  const relayUrl = `ws://127.0.0.1:${connector.relayAddress.port}`;
  // Kept for failure messages: what the daemon did about each stream.
  const events: StatusEvent[] = [];
  connector.status.subscribe((e) => {
    if (e.type !== 'relay.client.open' && e.type !== 'relay.client.close') events.push(e);
  });
  return {
    sim,
    connector,
    relayUrl,
    events,
    stop: async () => {
      await connector.shutdown('test');
      await sim.close();
    },
  };
}

/** Assert-friendly summary of one stream's closed candles: gaps, duplicates, disorder, wrong values. */
export function audit(client: { readonly messages: readonly KlineMsg[] }, stream: string, stepMs: number): { count: number; missing: number; duplicated: number; outOfOrder: number; wrong: number } {
  const closed = client.messages.filter((m) => m.stream === stream && m.x);
  let missing = 0;
  let duplicated = 0;
  let outOfOrder = 0;
  let wrong = 0;
  const [symbol, rest] = stream.split('@kline_') as [string, string];
  for (let i = 0; i < closed.length; i++) {
    const m = closed[i]!;
    const truth = klineAt(symbol, rest, m.t);
    const k = m.k;
    if (k.o !== truth.o || k.h !== truth.h || k.l !== truth.l || k.c !== truth.c || k.v !== truth.v || k.n !== truth.n || k.q !== truth.q || k.V !== truth.V || k.Q !== truth.Q || k.T !== truth.T) wrong++;
    if (i === 0) continue;
    const prev = closed[i - 1]!.t;
    if (m.t === prev) duplicated++;
    else if (m.t < prev) outOfOrder++;
    else missing += (m.t - prev) / stepMs - 1;
  }
  return { count: closed.length, missing, duplicated, outOfOrder, wrong };
}

export async function until(cond: () => boolean | Promise<boolean>, what: string, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A failure message that shows what the client got and what the daemon did for one stream. */
export function explain(client: RecordingClient, stream: string, events: readonly StatusEvent[]): string {
  const times = client.closedCandles(stream);
  const t0 = times[0] ?? 0;
  const mine = events.filter((e) => ('stream' in e && e.stream === stream) || e.type.startsWith('connection.') || e.type === 'breaker');
  return `${stream}: received ${JSON.stringify(times.map((t) => (t - t0) / 1000))} (s after ${new Date(t0).toISOString()})\n` + mine.map((e) => JSON.stringify(e)).join('\n');
}
