/**
 * Resume (`since`, contract §5) at the relay: replay from the history, then live with no gap and no
 * duplicate at the seam; refusals; a client that does not read its replay is cut; REST below the history.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { Candle, StreamRef } from '../../src/core/candle.ts';
import { openTimeAt } from '../../src/core/intervals.ts';
import type { ReplayFetch } from '../../src/relay/server.ts';
import { BTC, ETH, MANY, ManualClock, TestClient, cleanup, restCandle, startRelay, stuckClient, upgradeStatus, waitFor, wsCandle } from './helpers.ts';

afterEach(cleanup);

const MIN = 60_000;

/** Open times of `n` closed 1m candles ending just before the clock's current minute. */
function openTimes(clock: ManualClock, n: number): number[] {
  const current = openTimeAt('1m', clock.now());
  return Array.from({ length: n }, (_, i) => current - (n - i) * MIN);
}

interface Kline {
  stream: string | undefined;
  t: number;
  x: boolean;
}

function kline(text: string): Kline {
  const v = JSON.parse(text) as { stream?: string; data?: { k: { t: number; x: boolean } }; k?: { t: number; x: boolean } };
  const k = v.data?.k ?? v.k;
  if (k === undefined) throw new Error(`not a kline: ${text}`);
  return { stream: v.stream, t: k.t, x: k.x };
}

async function collect(c: TestClient, n: number, timeoutMs = 10_000): Promise<Kline[]> {
  const out: Kline[] = [];
  while (out.length < n) out.push(kline(await c.next(timeoutMs)));
  return out;
}

function expectContiguous(ts: readonly number[], from: number, count: number): void {
  expect(ts).toEqual(Array.from({ length: count }, (_, i) => from + i * MIN));
}

describe('relay resume (since)', () => {
  it('replays every closed candle from since out of the history, then continues live with no gap and no duplicate at the seam', async () => {
    const clock = new ManualClock();
    const h = await startRelay({}, { clock });
    // 1000 closed candles before the client connects (several replay chunks), open updates among them.
    const ts = openTimes(clock, 1000);
    for (const t of ts) h.relay.deliver([wsCandle(BTC, { openTime: t, closed: false }), wsCandle(BTC, { openTime: t })]);
    const since = (ts[200] ?? 0) + 1; // the client's last candle was ts[200]: it needs ts[201] on
    const c = await TestClient.open(`${h.url}/ws/btcusdt@kline_1m?since=${since}`);
    // Live traffic while the replay is written: closed candles after ts[999], and an open update each time.
    let t = (ts[999] ?? 0) + MIN;
    for (let i = 0; i < 50; i++, t += MIN) {
      h.relay.deliver([wsCandle(BTC, { openTime: t }), wsCandle(BTC, { openTime: t + MIN, closed: false })]);
      await new Promise((r) => setImmediate(r));
    }
    const got = await collect(c, 799 + 50);
    expect(got.every((k) => k.x)).toBe(true);
    expectContiguous(
      got.map((k) => k.t),
      ts[201] ?? 0,
      849,
    );
    // Then live as usual, open updates included (once the replay has seen it is caught up).
    await waitFor(() => h.relay.stats().replays === 0, 3000, 'the replay to end');
    h.relay.deliver([wsCandle(BTC, { openTime: t, closed: false })]);
    expect(kline(await c.next())).toEqual({ stream: undefined, t, x: false });
    expect(h.relay.stats().replays).toBe(0);
    expect(h.relay.stats().replayedCandles).toBeGreaterThanOrEqual(799);
  });

  it('replays after a SUBSCRIBE with since on a combined connection: the reply first, then envelopes in order, each stream on its own', async () => {
    const clock = new ManualClock();
    const h = await startRelay({}, { clock });
    const ts = openTimes(clock, 30);
    for (const t of ts) h.relay.deliver([wsCandle(BTC, { openTime: t }), wsCandle(ETH, { openTime: t })]);
    const c = await TestClient.open(`${h.url}/stream`);
    const since = ts[10] ?? 0;
    expect(await c.request({ method: 'SUBSCRIBE', params: ['btcusdt@kline_1m', 'ethusdt@kline_1m'], since, id: 1 })).toEqual({ result: null, id: 1 });
    const got = await collect(c, 40);
    for (const name of ['btcusdt@kline_1m', 'ethusdt@kline_1m']) {
      expectContiguous(
        got.filter((k) => k.stream === name).map((k) => k.t),
        since,
        20,
      );
    }
  });

  it('treats a since in the future as live only, and a client without since sees no replay', async () => {
    const clock = new ManualClock();
    const h = await startRelay({}, { clock });
    const ts = openTimes(clock, 5);
    for (const t of ts) h.relay.deliver([wsCandle(BTC, { openTime: t })]);
    const future = await TestClient.open(`${h.url}/ws/btcusdt@kline_1m?since=${clock.now() + 3_600_000}`);
    const plain = await TestClient.open(`${h.url}/ws/btcusdt@kline_1m`);
    const next = openTimeAt('1m', clock.now());
    h.relay.deliver([wsCandle(BTC, { openTime: next, closed: false })]);
    expect(kline(await future.next()).t).toBe(next);
    expect(kline(await plain.next()).t).toBe(next);
  });

  it('refuses a malformed since or one past CONNECTOR_RELAY_REPLAY_MAX_CANDLES: HTTP 400 at upgrade, code 2 naming the limit on SUBSCRIBE', async () => {
    const clock = new ManualClock();
    const h = await startRelay({ replayMaxCandles: 100 }, { clock });
    expect(await upgradeStatus(`${h.url}/ws/btcusdt@kline_1m?since=yesterday`)).toBe(400);
    expect(await upgradeStatus(`${h.url}/ws/btcusdt@kline_1m?since=-5`)).toBe(400);
    const tooOld = openTimeAt('1m', clock.now()) - 101 * MIN;
    expect(await upgradeStatus(`${h.url}/stream?streams=btcusdt@kline_1m&since=${tooOld}`)).toBe(400);
    const rejected = h.events.flatMap((e) => (e.type === 'relay.client.rejected' ? [e.reason] : []));
    expect(rejected.at(-1)).toContain('at most 100 candles');
    // 100 back exactly is fine.
    await TestClient.open(`${h.url}/ws/btcusdt@kline_1m?since=${tooOld + MIN}`);

    const c = await TestClient.open(`${h.url}/ws`);
    const reply = (await c.request({ method: 'SUBSCRIBE', params: ['btcusdt@kline_1m'], since: tooOld, id: 7 })) as { error: { code: number; msg: string }; id: number };
    expect(reply.id).toBe(7);
    expect(reply.error.code).toBe(2);
    expect(reply.error.msg).toContain('at most 100 candles (CONNECTOR_RELAY_REPLAY_MAX_CANDLES)');
    const bad = (await c.request({ method: 'SUBSCRIBE', params: ['btcusdt@kline_1m'], since: 'soon', id: 8 })) as { error: { code: number } };
    expect(bad.error.code).toBe(2);
    // Nothing was subscribed by the refused requests.
    expect(await c.request({ method: 'LIST_SUBSCRIPTIONS', id: 9 })).toEqual({ result: [], id: 9 });
  });

  it('refuses since with 400 when the history is disabled (CONNECTOR_RELAY_HISTORY_CANDLES=0)', async () => {
    const h = await startRelay({ historyCandles: 0 });
    expect(await upgradeStatus(`${h.url}/ws/btcusdt@kline_1m?since=${Date.now()}`)).toBe(400);
    expect(h.relay.stats().historyCandles).toBe(0);
  });

  it('keeps at most CONNECTOR_RELAY_HISTORY_CANDLES closed candles per stream, and counts them', async () => {
    const clock = new ManualClock();
    const h = await startRelay({ historyCandles: 10 }, { clock });
    const ts = openTimes(clock, 25);
    for (const t of ts) h.relay.deliver([wsCandle(BTC, { openTime: t }), wsCandle(BTC, { openTime: t + MIN, closed: false })]);
    const stats = h.relay.stats();
    expect(stats.historyCandles).toBe(10);
    expect(stats.historyBytes).toBeGreaterThan(10 * 200);
    const c = await TestClient.open(`${h.url}/ws/btcusdt@kline_1m?since=${ts[0] ?? 0}`);
    // No REST here: the replay starts at the oldest candle held.
    expectContiguous(
      (await collect(c, 10)).map((k) => k.t),
      ts[15] ?? 0,
      10,
    );
  });

  it('cuts a client that does not read its replay (1008 slow consumer) once the live candles waiting for it pass its byte cap, and releases the replay', async () => {
    const clock = new ManualClock();
    const h = await startRelay({ maxBufferedBytes: 256 * 1024 }, { clock });
    const streams: StreamRef[] = MANY.slice(0, 40);
    const ts = openTimes(clock, 1440);
    for (const t of ts) h.relay.deliver(streams.map((s) => wsCandle(s, { openTime: t })));
    const port = Number(new URL(h.url).port);
    await stuckClient(port, `/stream?streams=${streams.map((s) => s.name).join('/')}&since=${ts[0] ?? 0}`);
    await waitFor(() => h.relay.stats().replays > 0, 3000, 'the replay to start');
    // Live candles keep closing while the client reads nothing.
    let t = openTimeAt('1m', clock.now());
    await waitFor(
      () => {
        h.relay.deliver(streams.map((s) => wsCandle(s, { openTime: t })));
        t += MIN;
        return h.events.some((e) => e.type === 'relay.slow-consumer');
      },
      10_000,
      'the slow-consumer cut',
    );
    await waitFor(() => h.relay.stats().replays === 0, 3000, 'the replay to be released');
    expect(h.events.find((e) => e.type === 'relay.slow-consumer')).toMatchObject({ limit: 'client' });
    expect(h.relay.stats().slowConsumers).toBe(1);
  });

  it('fetches the candles older than the history from REST, then the history, in order, once', async () => {
    const clock = new ManualClock();
    const calls: [number, number][] = [];
    const replay: ReplayFetch = (stream, from, to) => {
      calls.push([from, to]);
      const out: Candle[] = [];
      for (let t = from; t < to; t += MIN) out.push(restCandle(stream, t));
      return Promise.resolve(out);
    };
    const h = await startRelay({ historyCandles: 20 }, { clock, replay });
    const ts = openTimes(clock, 100);
    for (const t of ts.slice(80)) h.relay.deliver([wsCandle(BTC, { openTime: t })]);
    const c = await TestClient.open(`${h.url}/ws/btcusdt@kline_1m?since=${ts[0] ?? 0}`);
    const got = await collect(c, 100);
    expectContiguous(
      got.map((k) => k.t),
      ts[0] ?? 0,
      100,
    );
    expect(calls).toEqual([[ts[0], ts[80]]]);
    expect(h.relay.stats().replayedFromRest).toBe(80);
  });

  it('waits for a REST that lags the range instead of skipping it (the hole rule of gap recovery), then replays every candle once', async () => {
    const clock = new ManualClock();
    let calls = 0;
    // Six answers with nothing yet (REST's newest row is before the range: it lags), then everything.
    // The replay used to give up after five empty answers and skip the whole range.
    const replay: ReplayFetch = (stream, from, to) => {
      calls++;
      if (calls <= 6) return Promise.resolve({ candles: [], frontier: from - MIN });
      const candles: Candle[] = [];
      for (let t = from; t < to; t += MIN) candles.push(restCandle(stream, t));
      return Promise.resolve({ candles, frontier: to });
    };
    // The range closed minutes ago, inside an hour's horizon: REST may still get there.
    const h = await startRelay({ historyCandles: 20 }, { clock, replay, holeHorizonMs: 3_600_000 });
    const ts = openTimes(clock, 30);
    for (const t of ts.slice(20)) h.relay.deliver([wsCandle(BTC, { openTime: t })]);
    const c = await TestClient.open(`${h.url}/ws/btcusdt@kline_1m?since=${ts[0] ?? 0}`);
    const got = await collect(c, 30, 15_000);
    expectContiguous(
      got.map((k) => k.t),
      ts[0] ?? 0,
      30,
    );
    expect(calls).toBe(7);
  }, 20_000);

  it('skips only what REST has moved past (a real hole) and replays the rest in order', async () => {
    const clock = new ManualClock();
    const replay: ReplayFetch = (stream, from, to) => {
      const candles: Candle[] = [];
      // REST never had the 3rd and 4th candle of the range, and has later ones: a hole.
      for (let t = from, i = 0; t < to; t += MIN, i++) if (i !== 2 && i !== 3) candles.push(restCandle(stream, t));
      return Promise.resolve({ candles, frontier: to });
    };
    const h = await startRelay({ historyCandles: 20 }, { clock, replay, holeHorizonMs: 3_600_000 });
    const ts = openTimes(clock, 30);
    for (const t of ts.slice(20)) h.relay.deliver([wsCandle(BTC, { openTime: t })]);
    const c = await TestClient.open(`${h.url}/ws/btcusdt@kline_1m?since=${ts[0] ?? 0}`);
    const got = (await collect(c, 28)).map((k) => k.t);
    expect(got).toEqual(ts.filter((_, i) => i !== 2 && i !== 3));
  });
});
