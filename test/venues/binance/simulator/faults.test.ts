import { describe, expect, it } from 'vitest';
import { openTimeAt } from '../../../../src/core/intervals.ts';
import { TestClient, fastClock, klineEvents, sleep, useSimulator, waitUntil } from './helpers.ts';

const { start, connect } = useSimulator();



describe('simulator faults', () => {
  it('dropAll terminates every socket without a close frame', async () => {
    const s = await start();
    const a = await connect(`${s.wsUrl}/ws/btcusdt@kline_1s`);
    const b = await connect(`${s.wsUrl}/stream`);
    s.faults.dropAll();
    expect((await a.waitClosed()).code).toBe(1006);
    expect((await b.waitClosed()).code).toBe(1006);
    await waitUntil(() => s.sockets().length === 0, 2000, 'sessions gone');
  });

  it('closeAll sends proper close frames with the given code and reason', async () => {
    const s = await start();
    const a = await connect(`${s.wsUrl}/ws`);
    s.faults.closeAll(1008, 'Too many requests');
    expect(await a.waitClosed()).toEqual({ code: 1008, reason: 'Too many requests' });
    const b = await connect(`${s.wsUrl}/ws`);
    s.faults.closeAll();
    expect((await b.waitClosed()).code).toBe(1000);
  });

  it('stallSockets silences data and replies for the duration, then continues', async () => {
    const s = await start({ maxInboundPerSecond: 100 });
    const c = await connect(`${s.wsUrl}/ws/btcusdt@kline_1s`);
    await waitUntil(() => c.messages.length > 0, 3000, 'first event');
    s.faults.stallSockets(700);
    await sleep(30); // let an in-flight frame land
    const during = c.messages.length;
    c.send({ method: 'LIST_SUBSCRIPTIONS', id: 1 });
    await sleep(400);
    expect(c.messages.length).toBe(during);
    const reply = await c.request({ method: 'LIST_SUBSCRIPTIONS', id: 2 }, 3000);
    expect(reply).toEqual({ result: ['btcusdt@kline_1s'], id: 2 });
    expect(c.messages.slice(during).some((m) => m === '{"result":["btcusdt@kline_1s"],"id":1}')).toBe(true);
    await waitUntil(() => klineEvents(c).length > during, 3000, 'events again');
    expect(c.close).toBeUndefined();
  });

  it('stallStreams silences only the named streams', async () => {
    const s = await start();
    const c = await connect(`${s.wsUrl}/stream?streams=btcusdt@kline_1s/ethusdt@kline_1s`);
    await waitUntil(() => klineEvents(c).length > 0, 3000, 'first event');
    s.faults.stallStreams(['btcusdt@kline_1s'], 600);
    await sleep(30);
    const from = c.messages.length;
    await sleep(400);
    const streams = klineEvents(c).slice(from).map((e) => e.stream);
    expect(streams.length).toBeGreaterThan(0);
    expect(new Set(streams)).toEqual(new Set(['ethusdt@kline_1s']));
    const after = c.messages.length;
    await waitUntil(() => klineEvents(c).slice(after).some((e) => e.stream === 'btcusdt@kline_1s'), 3000, 'btcusdt again');
  });

  it('refuseConnections answers the next upgrades with the given status', async () => {
    const s = await start();
    s.faults.refuseConnections(2, 503);
    expect(await TestClient.refusal(`${s.wsUrl}/ws`)).toBe(503);
    expect(await TestClient.refusal(`${s.wsUrl}/ws`)).toBe(503);
    await connect(`${s.wsUrl}/ws`);
    expect(s.counters.connectionsRefused).toBe(2);
    expect(s.counters.connectionsOpened).toBe(1);
  });

  it('closeAfter closes every new connection with 1000 after the delay, until turned off', async () => {
    const s = await start();
    const old = await connect(`${s.wsUrl}/ws`);
    s.faults.closeAfter(200);
    const young = await connect(`${s.wsUrl}/ws`);
    expect((await young.waitClosed(3000)).code).toBe(1000);
    expect(old.close).toBeUndefined();
    s.faults.closeAfter(undefined);
    const spared = await connect(`${s.wsUrl}/ws`);
    await sleep(400);
    expect(spared.close).toBeUndefined();
  });

  it('garbage sends malformed and unknown frames and the simulator keeps serving', async () => {
    const s = await start();
    const c = await connect(`${s.wsUrl}/ws`);
    const before = s.counters.framesSent;
    s.faults.garbage(8);
    await waitUntil(() => c.messages.length >= 8, 3000, 'garbage');
    const bad = c.messages.filter((m) => {
      try {
        JSON.parse(m);
        return false;
      } catch {
        return true;
      }
    });
    expect(bad.length).toBeGreaterThanOrEqual(3); // invalid JSON and truncated frames
    expect(c.messages.some((m) => m.includes('"e":"mysteryEvent"'))).toBe(true);
    expect(s.counters.framesSent - before).toBe(8);
    expect(await c.request({ method: 'LIST_SUBSCRIPTIONS', id: 1 })).toEqual({ result: [], id: 1 });
  });

  it('serverShutdown sends the raw event and the !serverShutdown envelope', async () => {
    const s = await start();
    const raw = await connect(`${s.wsUrl}/ws`);
    const combined = await connect(`${s.wsUrl}/stream`);
    s.faults.serverShutdown();
    await waitUntil(() => raw.messages.length > 0 && combined.messages.length > 0, 3000, 'notices');
    expect(raw.messages[0]).toMatch(/^\{"e":"serverShutdown","E":\d+\}$/);
    expect(combined.messages[0]).toMatch(/^\{"stream":"!serverShutdown","data":\{"e":"serverShutdown","E":\d+\}\}$/);
  });

  it('hole removes candles from the WS stream (closed and open) and from REST', async () => {
    const now = fastClock(10); // 1s candles close every 100 ms
    const s = await start({ now, openUpdateMs: 20 });
    const start0 = openTimeAt('1s', now()) + 3000;
    s.faults.hole('BTCUSDT', '1s', start0, start0 + 3000);
    const c = await connect(`${s.wsUrl}/ws/btcusdt@kline_1s`);
    await waitUntil(() => klineEvents(c).some((e) => e.data.k.x && e.data.k.t >= start0 + 4000), 5000, 'candles after the hole');
    const times = klineEvents(c).map((e) => e.data.k.t);
    expect(times.some((t) => t >= start0 && t < start0 + 3000)).toBe(false);
    const closed = klineEvents(c).filter((e) => e.data.k.x).map((e) => e.data.k.t);
    expect(closed).toContain(start0 - 1000);
    expect(closed).toContain(start0 + 3000);
    const res = await fetch(`${s.restUrl}/api/v3/klines?symbol=BTCUSDT&interval=1s&startTime=${start0 - 1000}&limit=3`);
    expect(((await res.json()) as [number][]).map((r) => r[0])).toEqual([start0 - 1000, start0 + 3000, start0 + 4000]);
  });

  it('closeMidSubscribe closes the socket with 1011 instead of replying', async () => {
    const s = await start();
    s.faults.closeMidSubscribe(1);
    const a = await connect(`${s.wsUrl}/ws`);
    a.send({ method: 'SUBSCRIBE', params: ['btcusdt@kline_1m'], id: 1 });
    expect((await a.waitClosed()).code).toBe(1011);
    expect(a.messages).toEqual([]);
    const b = await connect(`${s.wsUrl}/ws`);
    expect(await b.request({ method: 'SUBSCRIBE', params: ['btcusdt@kline_1m'], id: 1 })).toEqual({ result: null, id: 1 });
  });

  it('reset clears pending faults', async () => {
    const s = await start();
    s.faults.refuseConnections(5);
    s.faults.closeMidSubscribe(5);
    s.faults.restErrors(5, 500);
    s.faults.reset();
    const c = await connect(`${s.wsUrl}/ws`);
    expect(await c.request({ method: 'SUBSCRIBE', params: ['btcusdt@kline_1m'], id: 1 })).toEqual({ result: null, id: 1 });
    expect((await fetch(`${s.restUrl}/api/v3/klines?symbol=BTCUSDT&interval=1m&limit=1`)).status).toBe(200);
  });

  it('close() terminates sockets, is idempotent, and refuses later connections', async () => {
    const s = await start();
    const c = await connect(`${s.wsUrl}/ws/btcusdt@kline_1s`);
    const url = s.wsUrl;
    await Promise.all([s.close(), s.close()]);
    await s.close();
    expect((await c.waitClosed()).code).toBe(1006);
    expect(s.sockets()).toEqual([]);
    await expect(TestClient.open(`${url}/ws`)).rejects.toThrow();
  });
});
