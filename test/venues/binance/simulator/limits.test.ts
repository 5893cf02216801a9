import { describe, expect, it } from 'vitest';
import { TestClient, sleep, useSimulator, waitUntil } from './helpers.ts';

const { start, connect } = useSimulator();


describe('simulator limits', () => {
  it('closes a socket that sends more than 5 control messages in a second with 1008', async () => {
    const s = await start();
    const c = await connect(`${s.wsUrl}/ws`);
    for (let i = 1; i <= 6; i++) c.send({ method: 'LIST_SUBSCRIPTIONS', id: i });
    expect(await c.waitClosed()).toEqual({ code: 1008, reason: 'Too many requests' });
    expect(c.messages).toHaveLength(5); // the sixth was never answered
    expect(s.counters.closedByRateLimit).toBe(1);
    expect(s.counters.maxInboundPerSecondSeen).toBe(6);
  });

  it('counts pings and pongs against the same budget', async () => {
    const s = await start();
    const c = await connect(`${s.wsUrl}/ws`);
    for (let i = 0; i < 3; i++) c.ws.ping();
    for (let i = 0; i < 3; i++) c.ws.pong();
    expect((await c.waitClosed()).code).toBe(1008);
    expect(s.counters.controlMessages).toBe(6);
    expect(s.counters.pongsReceived).toBe(3);
  });

  it('keeps a socket that stays at 5 messages per second', async () => {
    const s = await start();
    const c = await connect(`${s.wsUrl}/ws`);
    for (let round = 0; round < 2; round++) {
      for (let i = 0; i < 5; i++) c.send({ method: 'LIST_SUBSCRIPTIONS', id: round * 10 + i });
      await waitUntil(() => c.messages.length === (round + 1) * 5, 3000, 'replies');
      await sleep(1050);
    }
    expect(c.close).toBeUndefined();
    expect(s.sockets()[0]).toMatchObject({ inboundTotal: 10, maxInboundPerSecond: 5 });
  });

  it('terminates a socket that does not echo pings, and keeps one that does', async () => {
    // pings every 250 ms: the polite client's pongs (4/s) stay under the 5 messages/s budget
    const s = await start({ pingIntervalMs: 250, pongTimeoutMs: 600 });
    const deaf = await connect(`${s.wsUrl}/ws`, false);
    const polite = await connect(`${s.wsUrl}/ws`, true);
    // unsolicited pongs do not count as an answer
    const timer = setInterval(() => {
      if (deaf.ws.readyState === deaf.ws.OPEN) deaf.ws.pong('unsolicited');
    }, 400);
    try {
      expect((await deaf.waitClosed(3000)).code).toBe(1006); // terminated: no close frame
    } finally {
      clearInterval(timer);
    }
    expect(deaf.pings.length).toBeGreaterThan(0);
    expect(deaf.pings[0]!.length).toBeGreaterThan(0); // pings carry a payload
    await sleep(600);
    expect(polite.close).toBeUndefined();
    expect(s.sockets()).toHaveLength(1);
    expect(s.sockets()[0]!.pongs).toBeGreaterThan(0);
    expect(s.counters.pingsSent).toBeGreaterThan(2);
  });

  it('answers client pings with the same payload', async () => {
    const s = await start();
    const c = await connect(`${s.wsUrl}/ws`);
    const got = new Promise<string>((resolve) => c.ws.once('pong', (d: Buffer) => { resolve(d.toString()); }));
    c.ws.ping('hello');
    expect(await got).toBe('hello');
  });

  it('refuses upgrades beyond maxConnectionsPer5Min with HTTP 429', async () => {
    const s = await start({ maxConnectionsPer5Min: 2 });
    await connect(`${s.wsUrl}/ws`);
    await connect(`${s.wsUrl}/ws`);
    expect(await TestClient.refusal(`${s.wsUrl}/ws`)).toBe(429);
    expect(s.counters.connectionsOpened).toBe(2);
    expect(s.counters.connectionsRefused).toBe(1);
    expect(s.counters.connectionTimestamps).toHaveLength(2);
  });

  it('survives hostile input: binary frames, huge frames, garbage HTTP', async () => {
    const s = await start({ maxInboundPerSecond: 100 });
    const c = await connect(`${s.wsUrl}/ws`);
    c.ws.send(Buffer.from([0xff, 0xfe, 0x00]));
    c.ws.send('x'.repeat(2 << 20)); // past maxPayload: ws closes this socket (1009)
    expect((await c.waitClosed()).code).toBe(1009);
    const res = await fetch(`${s.restUrl}/api/v3/klines?symbol=%ZZ&interval=1m`);
    expect(res.status).toBe(400);
    const ok = await connect(`${s.wsUrl}/ws`);
    expect(await ok.request({ method: 'LIST_SUBSCRIPTIONS', id: 1 })).toEqual({ result: [], id: 1 });
  });
});
