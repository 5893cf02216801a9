/**
 * The sink contract end to end: the real daemon (startConnector) against the simulator, a real relay
 * client, real HTTP for /ready and /metrics, and sinks that fail the way a broker does.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { Candle, CandleSink } from '../../src/core/candle.ts';
import type { StatusEventOf } from '../../src/core/status.ts';
import { audit, explain, RecordingClient, startStack, until } from './harness.ts';
import { value } from '../helpers/prometheus.ts';

const SYMBOLS = ['btcusdt', 'ethusdt', 'bnbusdt', 'solusdt', 'xrpusdt'];
const STREAMS = SYMBOLS.map((s) => `${s}@kline_1s`);
let stop: (() => Promise<void>) | undefined;

afterEach(async () => {
  await stop?.();
  stop = undefined;
});

const openTimes = (got: readonly Candle[], stream: string): number[] => got.filter((c) => c.stream.name === stream).map((c) => c.openTime);

interface ReadySink {
  name: string;
  state: string;
  pending: number;
  errors: number;
  lastError: string | null;
}

describe('end to end: sinks beside the relay', () => {
  it('a sink whose deliver rejects, then recovers, gets every closed candle exactly once and in order, while the relay client gets each one as it closes', async () => {
    let down = true;
    const got: Candle[] = [];
    const broker: CandleSink = {
      name: 'broker',
      closedOnly: true,
      deliver(batch) {
        if (down) return Promise.reject(new Error('broker unreachable'));
        got.push(...batch);
        return Promise.resolve();
      },
    };
    const stack = await startStack({}, { CONNECTOR_SYMBOLS: SYMBOLS.join(','), CONNECTOR_INTERVALS: '1s' }, { sinks: [broker], sinkRetryMs: { initialMs: 50, maxMs: 250 } });
    stop = stack.stop;
    const client = new RecordingClient(`${stack.relayUrl}/stream?streams=${STREAMS.join('/')}`);
    await client.opened;
    await until(() => STREAMS.every((s) => client.closedCandles(s).length >= 3), 'three closed candles per stream on the relay while the sink fails');
    expect(got).toHaveLength(0);
    const relayedWhileDown = new Map(STREAMS.map((s) => [s, client.closedCandles(s)]));

    // While it fails: a state in /ready (still 200) and in the metrics; the relay and upstream never wait.
    const base = `http://127.0.0.1:${stack.connector.httpAddress?.port ?? 0}`;
    const ready = await fetch(`${base}/ready`);
    expect(ready.status).toBe(200);
    const body = (await ready.json()) as { sinks: ReadySink[]; reasons: string[] };
    expect(body.sinks).toEqual([expect.objectContaining({ name: 'broker', state: 'failing', lastError: 'broker unreachable' })]);
    expect(body.reasons.some((r) => r.startsWith('sink broker: failing'))).toBe(true);
    let text = await (await fetch(`${base}/metrics`)).text();
    expect(value(text, 'connector_sink_errors_total{sink="broker"}')).toBeGreaterThanOrEqual(2);
    expect(value(text, 'connector_sink_state{sink="broker",state="failing"}')).toBe(1);
    expect(value(text, 'connector_sink_state{sink="broker",state="ok"}')).toBe(0);
    expect(value(text, 'connector_sink_pending{sink="broker"}')).toBeGreaterThanOrEqual(3 * STREAMS.length);
    expect(value(text, 'connector_sink_delivered_total{sink="broker"}')).toBe(0);
    expect(stack.connector.pipeline.stats().blockingEvents).toBe(0);

    down = false;
    const relayedLast = new Map(STREAMS.map((s) => [s, client.closedCandles(s).at(-1) ?? 0]));
    await until(() => STREAMS.every((s) => openTimes(got, s).some((t) => t >= (relayedLast.get(s) ?? 0))), 'the sink to catch up with the relay');
    for (const s of STREAMS) {
      const times = openTimes(got, s);
      for (let i = 1; i < times.length; i++) expect(times[i]! - times[i - 1]!, `${s} #${i}: ${JSON.stringify(times)}`).toBe(1000);
      for (const t of relayedWhileDown.get(s) ?? []) expect(times, `${s} lacks ${t}`).toContain(t);
      expect(audit(client, s, 1000), explain(client, s, stack.events)).toMatchObject({ missing: 0, duplicated: 0, outOfOrder: 0 });
    }
    expect(got.every((c) => c.closed)).toBe(true);
    const changes = stack.events.filter((e): e is StatusEventOf<'sink.state'> => e.type === 'sink.state').map((e) => `${e.from}->${e.to}`);
    expect(changes).toEqual(['ok->failing', 'failing->ok']);
    text = await (await fetch(`${base}/metrics`)).text();
    expect(value(text, 'connector_sink_state{sink="broker",state="ok"}')).toBe(1);
    expect(value(text, 'connector_sink_delivered_total{sink="broker"}')).toBeGreaterThanOrEqual(got.length - STREAMS.length);
    expect(stack.connector.pipeline.stats().blockingEvents).toBe(0);
  });

  it('a sink that never settles holds neither the relay nor another sink, never pauses upstream, sheds at its bound and is stopped at shutdown', async () => {
    const gaps: Array<[string, number]> = [];
    const stuck: CandleSink = {
      name: 'stuck',
      closedOnly: true,
      maxPending: 10,
      deliver: () => new Promise<void>(() => undefined),
      onGap: (stream, from) => {
        gaps.push([stream.name, from]);
      },
    };
    const archived: Candle[] = [];
    const archive: CandleSink = {
      name: 'archive',
      closedOnly: true,
      deliver(batch) {
        archived.push(...batch);
      },
    };
    const stack = await startStack({}, { CONNECTOR_SYMBOLS: SYMBOLS.join(','), CONNECTOR_INTERVALS: '1s', CONNECTOR_SHUTDOWN_GRACE_MS: 500 }, { sinks: [stuck, archive] });
    stop = stack.stop;
    const client = new RecordingClient(`${stack.relayUrl}/stream?streams=${STREAMS.join('/')}`);
    await client.opened;
    await until(() => STREAMS.every((s) => client.closedCandles(s).length >= 4), 'four closed candles per stream on the relay');
    await until(() => gaps.length === STREAMS.length, 'the stuck sink to shed on every stream');

    for (const s of STREAMS) {
      expect(audit(client, s, 1000), explain(client, s, stack.events)).toMatchObject({ missing: 0, duplicated: 0, outOfOrder: 0 });
      const times = openTimes(archived, s);
      for (let i = 1; i < times.length; i++) expect(times[i]! - times[i - 1]!, `${s} #${i}`).toBe(1000);
      for (const t of client.closedCandles(s).slice(0, -1)) expect(times, `archive lacks ${s} ${t}`).toContain(t);
    }
    expect(stack.connector.pipeline.stats().blockingEvents).toBe(0);
    expect(stack.connector.pool.snapshot().paused).toBe(false);
    const st = stack.connector.pipeline.sinkStats().find((x) => x.name === 'stuck');
    expect(st).toMatchObject({ state: 'ok', shedding: true, catchUp: true, capacity: 10, delivered: 0 });
    // Bounded: its queue plus the one batch it was handed (the first closed candles, one per stream at most).
    expect(st?.pending).toBeLessThanOrEqual(10 + STREAMS.length);
    expect(st?.shed).toBeGreaterThanOrEqual(STREAMS.length);
    expect(new Set(gaps.map(([s]) => s)).size).toBe(STREAMS.length); // told once per stream

    const { drained } = await stack.connector.shutdown('test');
    expect(drained).toBe(false); // the stuck sink never took its candles within the grace budget
    const stopped = stack.events.filter((e): e is StatusEventOf<'sink.state'> => e.type === 'sink.state' && e.to === 'stopped');
    expect(stopped.map((e) => e.sink)).toEqual(['stuck', 'archive']);
    expect(stopped[0]?.pending).toBeGreaterThan(0);
    expect(stopped[1]?.pending).toBe(0);
    // The episode never ended (the sink never recovered): stopping reports it as one gap.
    const gapEvents = stack.events.filter((e) => e.type === 'sink.gap');
    expect(gapEvents).toEqual([expect.objectContaining({ sink: 'stuck', streams: STREAMS.length, catchUp: true })]);
    expect((gapEvents[0] as StatusEventOf<'sink.gap'>).candles).toBeGreaterThanOrEqual(st?.shed ?? 0);
  });
});
