/**
 * The JetStream sink end to end (contract §9): the real daemon (startConnector) against the simulator,
 * a real relay client, and a real `nats-server -js` (test/helpers/nats-server.ts), stopped and started
 * by its pid. What lands in the stream is read back with an ordered consumer.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstreamManager, StorageType } from '@nats-io/jetstream';
import { NATS_SERVER_MISSING, NatsServer } from '../helpers/nats-server.ts';
import { auditStream, readAll } from '../helpers/jetstream.ts';
import { RecordingClient, startStack, until } from './harness.ts';
import { value } from '../helpers/prometheus.ts';
import { readCandles } from '../../src/demo/nats-consumer.ts';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { ROOT } from './spawn.ts';

const SYMBOLS = ['btcusdt', 'ethusdt', 'bnbusdt'];
const STREAMS = SYMBOLS.map((s) => `${s}@kline_1s`);
const subjectOf = (stream: string): string => `candles.binance.${(stream.split('@')[0] ?? '').toUpperCase()}.1s`;

let cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.reverse()) await c();
  cleanups = [];
});

async function startBroker(): Promise<NatsServer> {
  const broker = await NatsServer.start();
  cleanups.push(() => broker.dispose());
  return broker;
}

async function startDaemon(broker: NatsServer, extra: Record<string, unknown> = {}) {
  const stack = await startStack(
    {},
    { CONNECTOR_SYMBOLS: SYMBOLS.join(','), CONNECTOR_INTERVALS: '1s', CONNECTOR_NATS_URL: broker.url, ...extra },
    { sinkRetryMs: { initialMs: 50, maxMs: 250 } },
  );
  cleanups.push(stack.stop);
  const client = new RecordingClient(`${stack.relayUrl}/stream?streams=${STREAMS.join('/')}`);
  await client.opened;
  cleanups.push(async () => {
    client.ws.close();
    await client.closedP;
  });
  return { stack, client };
}

/** What the sink reports in /ready's body (contract §9: its state there, never a 503). */
async function readySink(port: number): Promise<{ status: number; sink: { state: string; counters: { published: number; duplicates: number } | null } | undefined }> {
  const res = await fetch(`http://127.0.0.1:${port}/ready`);
  const body = (await res.json()) as { sinks: { name: string; state: string; counters: { published: number; duplicates: number } | null }[] };
  return { status: res.status, sink: body.sinks.find((s) => s.name === 'jetstream') };
}

describe('end to end: CONNECTOR_NATS_URL unset', () => {
  it('builds no JetStream sink at all: no runner, nothing queued on the hot path', async () => {
    const stack = await startStack({}, { CONNECTOR_SYMBOLS: SYMBOLS.join(','), CONNECTOR_INTERVALS: '1s' });
    cleanups.push(stack.stop);
    expect(stack.connector.config.nats).toBeUndefined();
    expect(stack.connector.pipeline.sinkStats()).toEqual([]);
  });
});

describe.skipIf(NATS_SERVER_MISSING !== undefined)(`end to end: the JetStream sink against a real nats-server${NATS_SERVER_MISSING === undefined ? '' : ` (skipped: ${NATS_SERVER_MISSING})`}`, () => {
  it('every closed candle of a daemon run lands in the stream it created, exactly once and in order per subject, with its Nats-Msg-Id', async () => {
    const broker = await startBroker();
    const { stack, client } = await startDaemon(broker);
    await until(() => STREAMS.every((s) => client.closedCandles(s).length >= 4), 'four closed candles per stream on the relay', 15_000);
    await stack.stop();
    cleanups = cleanups.filter((c) => c !== stack.stop);

    const nc: NatsConnection = await connect({ servers: broker.url });
    const info = await (await jetstreamManager(nc)).streams.info('CANDLES');
    await nc.close();
    expect(info.config.subjects).toEqual(['candles.>']);
    expect(info.config.storage).toBe(StorageType.File);
    expect(info.config.duplicate_window).toBeGreaterThanOrEqual(2 * 60 * 1e9);
    expect(info.config.max_age).toBe(168 * 3600 * 1e9);

    const stored = await readAll(broker.url);
    expect(stored.every((m) => m.x)).toBe(true); // closed candles only
    const audits = auditStream(stored, 1000);
    for (const stream of STREAMS) {
      const a = audits.get(subjectOf(stream));
      expect(a, `subject ${subjectOf(stream)} in the stream`).toBeDefined();
      if (a === undefined) continue;
      expect({ duplicated: a.duplicated, outOfOrder: a.outOfOrder, missing: a.missing }).toEqual({ duplicated: 0, outOfOrder: 0, missing: 0 });
      // Everything the relay client saw close is there (the stream may start earlier: the daemon ran before the client subscribed).
      for (const t of client.closedCandles(stream)) expect(a.times).toContain(t);
    }
    for (const m of stored) expect(m.msgId).toBe(`binance:${m.s}:1s:${m.t}`);
    expect(new Set(stored.map((m) => m.msgId)).size).toBe(stored.length);
  }, 30_000);

  it('an existing stream is used as it is: its settings are not changed and the candles land in it', async () => {
    const broker = await startBroker();
    const nc = await connect({ servers: broker.url });
    const jsm = await jetstreamManager(nc);
    await jsm.streams.add({ name: 'CANDLES', subjects: ['candles.>'], storage: StorageType.Memory, max_age: 3600 * 1e9, description: 'made by ops' });
    const { stack, client } = await startDaemon(broker);
    await until(() => STREAMS.every((s) => client.closedCandles(s).length >= 2), 'two closed candles per stream on the relay', 15_000);
    await stack.stop();
    cleanups = cleanups.filter((c) => c !== stack.stop);
    const info = await jsm.streams.info('CANDLES');
    await nc.close();
    expect({ storage: info.config.storage, max_age: info.config.max_age, description: info.config.description }).toEqual({
      storage: StorageType.Memory,
      max_age: 3600 * 1e9,
      description: 'made by ops',
    });
    const audits = auditStream(await readAll(broker.url), 1000);
    for (const stream of STREAMS) for (const t of client.closedCandles(stream)) expect(audits.get(subjectOf(stream))?.times).toContain(t);
  }, 30_000);

  it('a broker restart mid-run loses nothing and duplicates nothing, and the relay keeps delivering while the broker is down (/ready stays 200)', async () => {
    const broker = await startBroker();
    const { stack, client } = await startDaemon(broker);
    const httpPort = stack.connector.httpAddress?.port ?? 0;
    await until(() => STREAMS.every((s) => client.closedCandles(s).length >= 3), 'three closed candles per stream before the broker stops', 15_000);

    await broker.stop();
    const atStop = new Map(STREAMS.map((s) => [s, client.closedCandles(s).length]));
    // The relay does not wait for the broker: new candles keep closing on it while the broker is away.
    await until(() => STREAMS.every((s) => client.closedCandles(s).length >= (atStop.get(s) ?? 0) + 4), 'four more closed candles per stream on the relay while the broker is down', 15_000);
    await until(() => stack.connector.pipeline.sinkStats().some((s) => s.name === 'jetstream' && s.state === 'failing'), 'the sink failing while the broker is down', 15_000);
    const down = await readySink(httpPort);
    expect(down.status).toBe(200);
    expect(down.sink?.state).toBe('failing');

    await broker.restart();
    const lastRelayed = new Map(STREAMS.map((s) => [s, client.closedCandles(s).at(-1) ?? 0]));
    await until(() => stack.connector.pipeline.sinkStats().some((s) => s.name === 'jetstream' && s.state === 'ok'), 'the sink ok again after the broker restart', 20_000);
    const metrics = await (await fetch(`http://127.0.0.1:${httpPort}/metrics`)).text();
    await stack.stop();
    cleanups = cleanups.filter((c) => c !== stack.stop);

    const stored = await readAll(broker.url);
    const audits = auditStream(stored, 1000);
    for (const stream of STREAMS) {
      const a = audits.get(subjectOf(stream));
      expect({ duplicated: a?.duplicated, outOfOrder: a?.outOfOrder, missing: a?.missing }).toEqual({ duplicated: 0, outOfOrder: 0, missing: 0 });
      for (const t of client.closedCandles(stream)) expect(a?.times).toContain(t);
      expect(a?.times.at(-1)).toBeGreaterThanOrEqual(lastRelayed.get(stream) ?? Infinity);
    }
    expect(new Set(stored.map((m) => m.msgId)).size).toBe(stored.length);
    // The sink's own figures: what it counted as stored is what the stream holds (one daemon, a fresh store).
    const counters = stack.connector.pipeline.sinkStats().find((s) => s.name === 'jetstream')?.counters;
    expect(counters?.published).toBe(stored.length);
    expect(counters?.inflight).toBe(0);
    expect(value(metrics, 'connector_sink_published_total{sink="jetstream"}')).toBeGreaterThan(0);
    expect(value(metrics, 'connector_sink_duplicates_total{sink="jetstream"}')).toBeGreaterThanOrEqual(0);
    expect(value(metrics, 'connector_sink_inflight{sink="jetstream"}')).toBeGreaterThanOrEqual(0);
    expect(value(metrics, 'connector_sink_errors_total{sink="jetstream"}')).toBeGreaterThan(0);
  }, 60_000);

  it('the README reader (src/demo/nats-consumer.ts) reads every subject from a point in time, in order and gap-free, and follows new candles', async () => {
    const broker = await startBroker();
    const { client } = await startDaemon(broker);
    await until(() => STREAMS.every((s) => client.closedCandles(s).length >= 3), 'three closed candles per stream before the reader starts', 15_000);
    const since = new Date();
    const got = new Map<string, number[]>();
    const stop = await readCandles({
      url: broker.url,
      subject: 'candles.binance.*.1s',
      since,
      onCandle: (subject, e) => {
        got.set(subject, [...(got.get(subject) ?? []), e.k.t]);
      },
    });
    cleanups.push(stop);
    await until(() => STREAMS.every((s) => (got.get(subjectOf(s))?.length ?? 0) >= 4), 'four candles per subject through the reader', 20_000);
    for (const stream of STREAMS) {
      const times = got.get(subjectOf(stream)) ?? [];
      // From about the start time on (stored at or after it), contiguous, ascending.
      expect(times[0]).toBeGreaterThanOrEqual(since.getTime() - 3000);
      for (let i = 1; i < times.length; i++) expect(times[i]).toBe((times[i - 1] ?? 0) + 1000);
    }
  }, 40_000);
});

describe('README: reading the candle stream from NATS', () => {
  it('shows the reader exactly as src/demo/nats-consumer.ts runs it', () => {
    const source = readFileSync(path.join(ROOT, 'src/demo/nats-consumer.ts'), 'utf8');
    const core = /\/\/ --- README: begin\n([\s\S]*?)\n\s*\/\/ --- README: end/.exec(source)?.[1] ?? '';
    expect(core.length).toBeGreaterThan(100);
    const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8');
    const dedent = (text: string): string => text.split('\n').map((l) => l.replace(/^ {2}/, '')).join('\n');
    expect(readme).toContain(dedent(core));
  });
});
