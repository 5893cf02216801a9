/**
 * The JetStream sink on its own (no daemon), against a real `nats-server -js`: catch-up of a shed
 * range, msg-id dedup across publishers, a broker that is down, and the subject and id naming.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { connect } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import type { Candle, StreamRef } from '../../src/core/candle.ts';
import { JetStreamSink, msgIdOf, subjectOf, type JetStreamSinkConfig } from '../../src/sinks/jetstream.ts';
import { StreamRegistry } from '../../src/core/streams.ts';
import { EnvSchema } from '../../src/config/schema.ts';
import { candle, streams } from '../helpers/candles.ts';
import { NATS_SERVER_MISSING, NatsServer } from '../helpers/nats-server.ts';
import { readAll } from '../helpers/jetstream.ts';
import { History } from '../../src/relay/history.ts';
import { klinePayload } from '../../src/relay/protocol.ts';

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
  const out = new Map<string, number[]>();
  for (const m of await readAll(config.url, config.stream)) out.set(m.subject, [...(out.get(m.subject) ?? []), m.t]);
  return out;
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
      now: () => T0 + 10 * MIN,
      recover: (stream, from, to) => {
        calls.push([stream.name, from, to]);
        const out: Candle[] = [];
        for (let t = from; t < to; t += MIN) out.push(candle(stream, t, true, t + 1, 'rest'));
        return Promise.resolve({ candles: out, frontier: to }); // REST has served a later row: the range is final
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
    const s = sink(config, { now: () => T0 + 10 * MIN });
    await s.deliver(run(btc, T0, 2));
    s.onGap(btc, T0 + 2 * MIN);
    await s.deliver(run(btc, T0 + 5 * MIN, 1));
    expect(s.gaps()).toEqual([{ stream: btc.name, from: T0 + 2 * MIN }]);
    expect(s.counters().gaps).toBe(1);
    expect((await stored(config)).get(subjectOf(config.subjectPrefix, btc))).toEqual([T0, T0 + MIN, T0 + 5 * MIN]);
  });

  it('stores a candle once however often it is handed over: a retried batch is not republished, and a second publisher (a restarted daemon, the HA partner) finds it stored and skips it', async () => {
    const { refs } = streams([['btcusdt', '1m'], ['ethusdt', '1m']]);
    const config = configFor();
    const batch = refs.flatMap((r) => run(r, T0, 5));
    const first = sink(config, { now: () => T0 + 10 * MIN });
    await first.deliver(batch);
    await first.deliver(batch); // the runner retrying a batch whose acks it never saw
    expect(first.counters()).toMatchObject({ published: 10, duplicates: 0 });

    const twin = sink(config, { now: () => T0 + 10 * MIN });
    await twin.deliver(batch);
    // It asks the server where each subject stands and publishes nothing already there.
    expect(twin.counters()).toMatchObject({ published: 0, duplicates: 0, conflicts: 0 });
    const got = await stored(config);
    for (const r of refs) expect(got.get(subjectOf(config.subjectPrefix, r))).toEqual(Array.from({ length: 5 }, (_, i) => T0 + i * MIN));
  });

  it('an HA partner that comes back after the duplicate window has passed stores nothing twice and nothing out of order', async () => {
    const { refs } = streams([['btcusdt', '1m'], ['ethusdt', '1m']]);
    const config = configFor();
    // An existing stream with a 200 ms duplicate window (used as it is): Nats-Msg-Id alone would let
    // the late partner store every candle a second time, after the newer ones.
    const nc = await connect({ servers: config.url });
    const jsm = await jetstreamManager(nc);
    await jsm.streams.add({ name: config.stream, subjects: [`${config.subjectPrefix}.>`], duplicate_window: 200_000_000 });
    await nc.close();
    const now = (): number => T0 + 10 * MIN;
    const a = sink(config, { now });
    await a.deliver(refs.flatMap((r) => run(r, T0, 5)));
    await new Promise((r) => setTimeout(r, 400));
    const b = sink(config, { now });
    // B lagged behind: it hands over candles A stored long ago, then two new ones.
    await b.deliver(refs.flatMap((r) => run(r, T0 + 2 * MIN, 5)));
    expect(b.counters()).toMatchObject({ published: 4, duplicates: 0 });
    const got = await stored(config);
    for (const r of refs) expect(got.get(subjectOf(config.subjectPrefix, r))).toEqual(Array.from({ length: 7 }, (_, i) => T0 + i * MIN));
  });

  it('two replicas publishing the same subjects at the same time store every candle exactly once, in order (the loser of each race looks again)', async () => {
    const { refs } = streams([['btcusdt', '1m'], ['ethusdt', '1m'], ['bnbusdt', '1m']]);
    const config = configFor();
    const now = (): number => T0 + 60 * MIN;
    const a = sink(config, { now });
    const b = sink(config, { now });
    const batches = [0, 1, 2, 3, 4].map((k) => refs.flatMap((r) => run(r, T0 + k * 8 * MIN, 8)));
    // Both get every batch, in order, racing each other batch by batch.
    for (const batch of batches) await Promise.all([a.deliver(batch), b.deliver(batch)]);
    const got = await stored(config);
    for (const r of refs) expect(got.get(subjectOf(config.subjectPrefix, r))).toEqual(Array.from({ length: 40 }, (_, i) => T0 + i * MIN));
    const ca = a.counters();
    const cb = b.counters();
    expect(ca.published + cb.published).toBe(120);
    expect(ca.conflicts + cb.conflicts + ca.duplicates + cb.duplicates).toBeGreaterThan(0);
  });

  it('a replica that restarts after an outage fills the range the subject misses from REST before its first new candle', async () => {
    const { refs } = streams([['btcusdt', '1m']]);
    const btc = refs[0] as StreamRef;
    const config = configFor();
    const now = (): number => T0 + 20 * MIN;
    await sink(config, { now }).deliver(run(btc, T0, 3));
    const calls: [number, number][] = [];
    const restarted = sink(config, {
      now,
      recover: (stream, from, to) => {
        calls.push([from, to]);
        const out: Candle[] = [];
        for (let t = from; t < to; t += MIN) if (t !== T0 + 5 * MIN) out.push(candle(stream, t, true, t + 1, 'rest')); // T0+5: a hole the venue never had
        return Promise.resolve({ candles: out, frontier: to });
      },
    });
    await restarted.deliver(run(btc, T0 + 8 * MIN, 2));
    expect(calls).toEqual([[T0 + 3 * MIN, T0 + 8 * MIN]]);
    expect((await stored(config)).get(subjectOf(config.subjectPrefix, btc))).toEqual([0, 1, 2, 3, 4, 6, 7, 8, 9].map((i) => T0 + i * MIN));
    expect(restarted.counters()).toMatchObject({ published: 6, recovered: 4, holes: 1 });
  });

  it('does not publish past a missing range REST has not got yet: the batch fails and its retry fills the rest, nothing skipped', async () => {
    const { refs } = streams([['btcusdt', '1m']]);
    const btc = refs[0] as StreamRef;
    const config = configFor();
    // 8 minutes in: with the 5-minute hole horizon, candles from T0+3 on may just not have reached REST yet.
    const now = (): number => T0 + 8 * MIN;
    await sink(config, { now }).deliver(run(btc, T0, 2));
    let restHas = T0 + 3 * MIN; // REST lags: it has served candles up to this open time (exclusive)
    const s = sink(config, {
      now,
      recover: (stream, from, to) => {
        const out: Candle[] = [];
        for (let t = from; t < Math.min(to, restHas); t += MIN) out.push(candle(stream, t, true, t + 1, 'rest'));
        return Promise.resolve({ candles: out, frontier: restHas - MIN });
      },
    });
    await expect(s.deliver(run(btc, T0 + 6 * MIN, 1))).rejects.toThrow(/REST has not got/);
    expect((await stored(config)).get(subjectOf(config.subjectPrefix, btc))).toEqual([0, 1, 2].map((i) => T0 + i * MIN));
    expect(s.counters().lagSeconds).toBeGreaterThan(0);
    restHas = T0 + 7 * MIN;
    await s.deliver(run(btc, T0 + 6 * MIN, 1));
    expect((await stored(config)).get(subjectOf(config.subjectPrefix, btc))).toEqual([0, 1, 2, 3, 4, 5, 6].map((i) => T0 + i * MIN));
    expect(s.counters()).toMatchObject({ holes: 0, lagSeconds: 0 });
  });

  it('fills a missing range from the relay history where it still holds it, and asks REST only for what is older', async () => {
    const { refs } = streams([['btcusdt', '1m']]);
    const btc = refs[0] as StreamRef;
    const config = configFor();
    const now = (): number => T0 + 20 * MIN;
    await sink(config, { now }).deliver(run(btc, T0, 2));
    const history = new History(4);
    for (let i = 0; i < 8; i++) history.append(btc.id, T0 + i * MIN, klinePayload(candle(btc, T0 + i * MIN, true), T0 + i * MIN));
    // The history holds T0+4..T0+7 (capacity 4); T0+2..T0+3 only REST has.
    const calls: [number, number][] = [];
    const s = sink(config, {
      now,
      history: {
        oldest: (ref) => history.oldest(ref.id),
        read: (ref, from, to, max) => history.read(ref.id, from, max, Number.POSITIVE_INFINITY).filter((e) => e.openTime < to),
      },
      recover: (stream, from, to) => {
        calls.push([from, to]);
        const out: Candle[] = [];
        for (let t = from; t < to; t += MIN) out.push(candle(stream, t, true, t + 1, 'rest'));
        return Promise.resolve({ candles: out, frontier: to });
      },
    });
    await s.deliver(run(btc, T0 + 8 * MIN, 1));
    expect(calls).toEqual([[T0 + 2 * MIN, T0 + 4 * MIN]]);
    expect((await stored(config)).get(subjectOf(config.subjectPrefix, btc))).toEqual(Array.from({ length: 9 }, (_, i) => T0 + i * MIN));
    expect(s.counters()).toMatchObject({ recovered: 2, published: 7 });
  });

  it('rejects deliver while the broker is down (the runner retries), and the same batch goes through once it is back', async () => {
    const { refs } = streams([['btcusdt', '1m']]);
    const btc = refs[0] as StreamRef;
    const config = configFor();
    const s = sink(config, { now: () => T0 + 10 * MIN });
    await s.deliver(run(btc, T0, 2));
    await broker.stop();
    const batch = run(btc, T0 + 2 * MIN, 3);
    await expect(s.deliver(batch)).rejects.toThrow();
    // Behind by the oldest candle it was handed: T0+2's close, 7 minutes before its clock's now.
    expect(s.counters().lagSeconds).toBeGreaterThan(400);
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
    expect(s.counters().lagSeconds).toBe(0);
    expect((await stored(config)).get(subjectOf(config.subjectPrefix, btc))).toEqual(Array.from({ length: 5 }, (_, i) => T0 + i * MIN));
  }, 60_000);
});
