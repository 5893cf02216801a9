import { afterEach, describe, expect, it } from 'vitest';
import { BTC, TestClient, cleanup, startRelay, stuckClient, upgradeStatus, rawText, waitFor, wsCandle } from './helpers.ts';

afterEach(cleanup);

describe('relay protection limits', () => {
  it('closes a client with 1008 "Too many requests" past its burst (2 s worth at 5 control messages per second)', async () => {
    const h = await startRelay();
    const c = await TestClient.open(`${h.url}/ws`);
    const other = await TestClient.open(`${h.url}/ws/btcusdt@kline_1m`);
    for (let i = 0; i < 11; i++) c.send({ method: 'LIST_SUBSCRIPTIONS', id: i });
    expect(await c.closed).toEqual({ code: 1008, reason: 'Too many requests' });
    expect(c.messages).toHaveLength(10); // the first ten were answered (rate.test.ts: sustained rate)
    const b = wsCandle(BTC);
    h.relay.deliver([b]);
    expect(await other.next()).toBe(rawText(b));
  });

  it('closes a client that sends a frame above 64 KiB with 1009', async () => {
    const h = await startRelay();
    const c = await TestClient.open(`${h.url}/ws`);
    c.send(`{"method":"SUBSCRIBE","params":["${'a'.repeat(64 * 1024)}"],"id":1}`);
    expect((await c.closed).code).toBe(1009);
    await waitFor(() => h.relay.stats().clients === 0, 3000, 'server-side close');
  });

  it('answers HTTP 503 at upgrade past maxClients', async () => {
    const h = await startRelay({ maxClients: 2 });
    const first = await TestClient.open(`${h.url}/ws`);
    await TestClient.open(`${h.url}/ws`);
    expect(await upgradeStatus(`${h.url}/ws`)).toBe(503);
    expect(h.events).toContainEqual(expect.objectContaining({ type: 'relay.client.rejected', status: 503 }));
    // A slot frees when a client leaves.
    first.ws.close();
    await waitFor(() => h.relay.stats().clients === 1, 3000, 'the first client to leave');
    await TestClient.open(`${h.url}/ws`);
    expect(h.relay.stats()).toMatchObject({ clients: 2, rejected: 1 });
  });

  it('requires the token when one is configured: missing or wrong → 401; Bearer header or ?token= accepted', async () => {
    const h = await startRelay({ token: 's3cr3t+x' });
    expect(await upgradeStatus(`${h.url}/ws`)).toBe(401);
    expect(await upgradeStatus(`${h.url}/ws?token=wrong`)).toBe(401);
    expect(await upgradeStatus(`${h.url}/ws`, { headers: { authorization: 'Bearer wrong' } })).toBe(401);
    const viaHeader = await TestClient.open(`${h.url}/ws/btcusdt@kline_1m`, { headers: { authorization: 'Bearer s3cr3t+x' } });
    const viaQuery = await TestClient.open(`${h.url}/stream?streams=btcusdt@kline_1m&token=s3cr3t%2Bx`);
    const b = wsCandle(BTC);
    h.relay.deliver([b]);
    expect(await viaHeader.next()).toBe(rawText(b));
    expect(await viaQuery.next()).toBe(`{"stream":"btcusdt@kline_1m","data":${rawText(b)}}`);
  });

  it('cuts off a client that never reads with 1008 "slow consumer" while another keeps receiving everything', async () => {
    const h = await startRelay({ maxBufferedBytes: 256 * 1024, closeTimeoutMs: 300 });
    const port = Number(new URL(h.url).port);
    await stuckClient(port, '/ws/btcusdt@kline_1m');
    const good = await TestClient.open(`${h.url}/ws/btcusdt@kline_1m`);
    // ~16 KiB events fill the stuck client's kernel buffers quickly; bounded at 4000 events (~64 MiB).
    const pad = `,"pad":"${'x'.repeat(16 * 1024)}"`;
    const sent: string[] = [];
    for (let i = 0; i < 4000 && !h.events.some((e) => e.type === 'relay.slow-consumer'); i++) {
      const c = wsCandle(BTC, { extra: pad });
      sent.push(rawText(c));
      h.relay.deliver([c]);
      // Yield to I/O so the good client drains between deliveries, as a healthy consumer would.
      await new Promise((r) => setImmediate(r));
    }
    const slow = h.events.find((e) => e.type === 'relay.slow-consumer');
    expect(slow).toBeDefined();
    // Not yet gone: its close frame is queued behind the backlog it will never read.
    expect(h.relay.stats().clients).toBe(2);
    // The good client gets the rest too, after the stuck one was cut off.
    const after = wsCandle(BTC);
    sent.push(rawText(after));
    h.relay.deliver([after]);
    await waitFor(() => good.messages.length >= sent.length, 10_000, 'the good client to catch up');
    expect(good.messages).toEqual(sent);
    // The close frame sits behind the unread backlog, so the handshake cannot finish: destroyed after closeTimeoutMs.
    // (The stuck peer itself cannot notice: it never reads, so it never reaches the FIN.)
    await waitFor(() => h.events.some((e) => e.type === 'relay.client.close' && e.code === 1008 && e.reason === 'slow consumer'), 5000, 'the stuck client to be destroyed');
    expect(h.relay.stats()).toMatchObject({ clients: 1, slowConsumers: 1 });
  });

  it('drops a client that stays silent (no pong, no message) past clientTimeoutMs and keeps an answering one', async () => {
    const h = await startRelay({ pingIntervalMs: 100, clientTimeoutMs: 400 });
    const silent = await TestClient.open(`${h.url}/ws`, { autoPong: false });
    const alive = await TestClient.open(`${h.url}/ws/btcusdt@kline_1m`);
    const closed = await silent.closed;
    expect(closed.code).toBe(1006); // terminated, no close handshake
    await waitFor(() => h.events.some((e) => e.type === 'relay.client.close' && e.reason === 'client timeout'), 3000, 'the close event');
    const b = wsCandle(BTC);
    h.relay.deliver([b]);
    expect(await alive.next()).toBe(rawText(b));
    expect(alive.ws.readyState).toBe(alive.ws.OPEN);
  });
});

describe('relay shutdown', () => {
  it('close() sends serverShutdown (raw and !serverShutdown envelope) then closes with 1001', async () => {
    const h = await startRelay();
    const raw = await TestClient.open(`${h.url}/ws/btcusdt@kline_1m`);
    const combined = await TestClient.open(`${h.url}/stream?streams=btcusdt@kline_1m`);
    await h.relay.close();
    const r = JSON.parse(await raw.next()) as { e: string; E: number };
    expect(Object.keys(r)).toEqual(['e', 'E']);
    expect(r.e).toBe('serverShutdown');
    expect(await combined.nextJson()).toMatchObject({ stream: '!serverShutdown', data: { e: 'serverShutdown' } });
    expect((await raw.closed).code).toBe(1001);
    expect((await combined.closed).code).toBe(1001);
    await h.relay.close(); // idempotent
  });

  it('close() terminates a client that never completes the close handshake after closeTimeoutMs, then resolves', async () => {
    const h = await startRelay({ closeTimeoutMs: 200 });
    await stuckClient(Number(new URL(h.url).port), '/ws/btcusdt@kline_1m');
    const good = await TestClient.open(`${h.url}/ws`);
    await h.relay.close();
    expect((await good.closed).code).toBe(1001);
    expect(h.relay.stats().clients).toBe(0);
    expect(h.events.filter((e) => e.type === 'relay.client.close')).toHaveLength(2);
    expect(await upgradeStatus(`${h.url}/ws`).catch((err: unknown) => (err as NodeJS.ErrnoException).code)).toBe('ECONNREFUSED');
  });

  it('stopAccepting() turns new upgrades away with 503 while existing clients keep receiving', async () => {
    const h = await startRelay();
    const c = await TestClient.open(`${h.url}/ws/btcusdt@kline_1m`);
    h.relay.stopAccepting();
    h.relay.stopAccepting();
    expect(await upgradeStatus(`${h.url}/ws`)).toBe(503);
    const b = wsCandle(BTC);
    h.relay.deliver([b]);
    expect(await c.next()).toBe(rawText(b));
  });
});
