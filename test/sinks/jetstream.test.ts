/**
 * The JetStream sink on its own (no daemon), against a real `nats-server -js`: catch-up of a shed
 * range, msg-id dedup across publishers, a broker that is down, and the subject and id naming.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { connect } from '@nats-io/transport-node';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import type { Candle, StreamRef } from '../../src/core/candle.ts';
import { JetStreamSink, msgIdOf, subjectOf, type JetStreamSinkConfig } from '../../src/sinks/jetstream.ts';
import { StreamRegistry } from '../../src/core/streams.ts';
import { EnvSchema } from '../../src/config/schema.ts';
import { candle, streams } from '../helpers/candles.ts';
import { NATS_SERVER_MISSING, NatsServer } from '../helpers/nats-server.ts';

const T0 = 1_700_000_000_000;
const MIN = 60_000;

let broker: NatsServer;
let streamNo = 0;
let sinks: JetStreamSink[] = [];

/** A fresh JetStream stream name per test, so tests share one broker without seeing each other's candles. */
function configFor(): JetStreamSinkConfig {
  streamNo++;
  return { url: broker.url, token: undefined, user: undefined, password: undefined, stream: `T${streamNo}`, subjectPrefix: `t${streamNo}`, maxAgeHours: 1, maxInflight: 4 };
}

function sink(config: JetStreamSinkConfig, options: Partial<ConstructorParameters<typeof JetStreamSink>[0]> = {}): JetStreamSink {
  const s = new JetStreamSink({ config, ackTimeoutMs: 1000, reconnectWaitMs: 100, ...options });
  sinks.push(s);
  return s;
}

const run = (stream: StreamRef, from: number, n: number): Candle[] => Array.from({ length: n }, (_, i) => candle(stream, from + i * MIN, true));

/** Open times per subject, in stream order, read with an ordered consumer. */
async function stored(config: JetStreamSinkConfig): Promise<Map<string, number[]>> {
  const nc = await connect({ servers: config.url });
  try {
    const total = (await (await jetstreamManager(nc)).streams.info(config.stream)).state.messages;
    const consumer = await jetstream(nc).consumers.get(config.stream);
    const out = new Map<string, number[]>();
    let seen = 0;
    while (seen < total) {
      for await (const m of await consumer.fetch({ max_messages: total - seen, expires: 2000 })) {
        seen++;
        const t = m.json<{ k: { t: number } }>().k.t;
        const list = out.get(m.subject);
        if (list === undefined) out.set(m.subject, [t]);
        else list.push(t);
      }
    }
    return out;
  } finally {
    await nc.close();
  }
}

describe('subject and message id (contract §9)', () => {
  it('names the subject <prefix>.<venue>.<SYMBOL>.<interval> with the symbol upper-cased and any . as _, and the id <venue>:<SYMBOL>:<interval>:<openTime>', () => {
    const registry = new StreamRegistry();
    const okx = registry.register('okx', 'okx:btc-usdt-swap@kline_1m', 'btc-usdt-swap', '1m');
    const dotted = registry.register('kraken', 'kraken:xbt.usd@kline_1h', 'XBT.USD', '1h');
    expect(subjectOf('candles', okx)).toBe('candles.okx.BTC-USDT-SWAP.1m');
    expect(subjectOf('candles', dotted)).toBe('candles.kraken.XBT_USD.1h');
    expect(msgIdOf(candle(okx, T0, true))).toBe(`okx:BTC-USDT-SWAP:1m:${T0}`);
  });
});

describe('configuration (CONNECTOR_NATS_*)', () => {
  const issues = (env: Record<string, string>): string[] => {
    const r = EnvSchema.safeParse(env);
    return r.success ? [] : r.error.issues.map((i) => `${String(i.path[0])}: ${i.message}`);
  };

  it('is off without CONNECTOR_NATS_URL, and with it has the documented defaults', () => {
    expect(EnvSchema.parse({}).nats).toBeUndefined();
    expect(EnvSchema.parse({ CONNECTOR_NATS_URL: 'nats://127.0.0.1:4222' }).nats).toEqual({
      url: 'nats://127.0.0.1:4222',
      token: undefined,
      user: undefined,
      password: undefined,
      stream: 'CANDLES',
      subjectPrefix: 'candles',
      maxAgeHours: 168,
      maxInflight: 256,
    });
  });

  it('refuses credentials that cannot be used as written, naming the variable', () => {
    const url = { CONNECTOR_NATS_URL: 'nats://127.0.0.1:4222' };
    expect(issues({ CONNECTOR_NATS_TOKEN: 't' })).toEqual(['CONNECTOR_NATS_TOKEN: has no effect without CONNECTOR_NATS_URL: set it or unset this']);
    expect(issues({ ...url, CONNECTOR_NATS_USER: 'u' })).toEqual(['CONNECTOR_NATS_PASSWORD: CONNECTOR_NATS_USER and CONNECTOR_NATS_PASSWORD go together: set both or neither']);
    expect(issues({ ...url, CONNECTOR_NATS_TOKEN: 't', CONNECTOR_NATS_USER: 'u', CONNECTOR_NATS_PASSWORD: 'p' })[0]).toMatch(/^CONNECTOR_NATS_TOKEN: .*exclude each other/);
    expect(issues({ CONNECTOR_NATS_URL: 'http://x' })[0]).toMatch(/^CONNECTOR_NATS_URL: expected a URL with scheme nats:\/\/ or tls:\/\//);
    expect(issues({ ...url, CONNECTOR_NATS_SUBJECT_PREFIX: 'candles.>' })[0]).toMatch(/^CONNECTOR_NATS_SUBJECT_PREFIX: /);
  });
});

describe.skipIf(NATS_SERVER_MISSING !== undefined)(`the JetStream sink against a real nats-server${NATS_SERVER_MISSING === undefined ? '' : ` (skipped: ${NATS_SERVER_MISSING})`}`, () => {
  beforeAll(async () => {
    broker = await NatsServer.start();
  });
  afterAll(async () => {
    await broker.dispose();
  });
  afterEach(async () => {
    for (const s of sinks) await s.close();
    sinks = [];
    if (broker.pid === undefined) await broker.restart();
  });

  it('fills a range the runner shed from recover, ahead of the next live candle, so the subject stays gap-free and in order', async () => {
    const { refs } = streams([['btcusdt', '1m'], ['ethusdt', '1m']]);
    const [btc, eth] = refs as [StreamRef, StreamRef];
    const calls: [string, number, number][] = [];
    const config = configFor();
    const s = sink(config, {
      recover: (stream, from, to) => {
        calls.push([stream.name, from, to]);
        const out: Candle[] = [];
        for (let t = from; t < to; t += MIN) out.push(candle(stream, t, true, t + 1, 'rest'));
        return Promise.resolve({ candles: out, frontier: to - MIN });
      },
    });
    await s.deliver([...run(btc, T0, 3), ...run(eth, T0, 3)]);
    s.onGap(btc, T0 + 3 * MIN); // candles 3..6 of btc shed by the runner
    s.onGap(btc, T0 + 5 * MIN); // a later report of the same unfilled range changes nothing
    expect(s.gaps()).toEqual([{ stream: btc.name, from: T0 + 3 * MIN }]);
    await s.deliver([...run(btc, T0 + 7 * MIN, 2), ...run(eth, T0 + 3 * MIN, 1)]);

    expect(calls).toEqual([[btc.name, T0 + 3 * MIN, T0 + 7 * MIN]]);
    expect(s.gaps()).toEqual([]);
    const got = await stored(config);
    expect(got.get(subjectOf(config.subjectPrefix, btc))).toEqual(Array.from({ length: 9 }, (_, i) => T0 + i * MIN));
    expect(got.get(subjectOf(config.subjectPrefix, eth))).toEqual(Array.from({ length: 4 }, (_, i) => T0 + i * MIN));
    expect(s.counters()).toMatchObject({ published: 13, duplicates: 0, recovered: 4, gaps: 0, inflight: 0 });
  });

  it('without recover, keeps the shed range as the position to resume from (gaps) and publishes what it is handed', async () => {
    const { refs } = streams([['btcusdt', '1m']]);
    const btc = refs[0] as StreamRef;
    const config = configFor();
    const s = sink(config);
    await s.deliver(run(btc, T0, 2));
    s.onGap(btc, T0 + 2 * MIN);
    await s.deliver(run(btc, T0 + 5 * MIN, 1));
    expect(s.gaps()).toEqual([{ stream: btc.name, from: T0 + 2 * MIN }]);
    expect(s.counters().gaps).toBe(1);
    expect((await stored(config)).get(subjectOf(config.subjectPrefix, btc))).toEqual([T0, T0 + MIN, T0 + 5 * MIN]);
  });

  it('stores a candle once however often it is handed over: a retried batch is not republished, a second publisher (a restarted daemon, an HA twin) gets duplicate acks', async () => {
    const { refs } = streams([['btcusdt', '1m'], ['ethusdt', '1m']]);
    const config = configFor();
    const batch = refs.flatMap((r) => run(r, T0, 5));
    const first = sink(config);
    await first.deliver(batch);
    await first.deliver(batch); // the runner retrying a batch whose acks it never saw
    expect(first.counters()).toMatchObject({ published: 10, duplicates: 0 });

    const twin = sink(config);
    await twin.deliver(batch);
    expect(twin.counters()).toMatchObject({ published: 0, duplicates: 10 });
    const got = await stored(config);
    for (const r of refs) expect(got.get(subjectOf(config.subjectPrefix, r))).toEqual(Array.from({ length: 5 }, (_, i) => T0 + i * MIN));
  });

  it('rejects deliver while the broker is down (the runner retries), and the same batch goes through once it is back', async () => {
    const { refs } = streams([['btcusdt', '1m']]);
    const btc = refs[0] as StreamRef;
    const config = configFor();
    const s = sink(config);
    await s.deliver(run(btc, T0, 2));
    await broker.stop();
    const batch = run(btc, T0 + 2 * MIN, 3);
    await expect(s.deliver(batch)).rejects.toThrow();
    await broker.restart();
    // The client reconnects by itself; the runner's retry is this call again with the same batch.
    let delivered = false;
    for (let attempt = 0; attempt < 20 && !delivered; attempt++) {
      delivered = await s.deliver(batch).then(
        () => true,
        () => false,
      );
    }
    expect(delivered).toBe(true);
    expect((await stored(config)).get(subjectOf(config.subjectPrefix, btc))).toEqual(Array.from({ length: 5 }, (_, i) => T0 + i * MIN));
  }, 60_000);
});
