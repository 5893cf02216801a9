/**
 * The simulator engine's mechanisms that Binance's dialect does not exercise (Binance's are covered
 * by test/venues/binance/simulator/): the other heartbeat models, gzip frames, a venue without a closed
 * flag, per-request limits, a venue without a WebSocket, newest-first REST and a rate model that bans.
 * Each against a real engine on port 0 with the toy dialect (toy.ts) and real `ws` / fetch clients.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { openTimeAt } from '../../src/core/intervals.ts';
import type { SimulatorEngine } from '../../src/simulator/engine.ts';
import { candleAt } from '../../src/simulator/series.ts';
import { TOY_INTERVALS, ToyClient, get, sleep, startToy, toyDialect, until } from './toy.ts';
import type { ToyOptions } from './toy.ts';
import type { SimulatorOptions } from '../../src/simulator/dialect.ts';

const sims: SimulatorEngine[] = [];
const clients: ToyClient[] = [];

afterEach(async () => {
  for (const c of clients.splice(0)) c.ws.terminate();
  for (const s of sims.splice(0)) await s.close();
});

async function toy(o: ToyOptions = {}, options: SimulatorOptions = {}): Promise<SimulatorEngine> {
  const s = await startToy(o, options);
  sims.push(s);
  return s;
}

async function client(s: SimulatorEngine, gzip = false): Promise<ToyClient> {
  const c = new ToyClient(s.wsUrl, gzip);
  clients.push(c);
  await c.opened;
  return c;
}

const T0 = Date.UTC(2026, 0, 5, 12, 0, 0);

describe('engine heartbeats', () => {
  it('client-ping: answers client pings and drops only the socket that stayed silent past the deadline', async () => {
    const s = await toy({ heartbeat: { kind: 'client-ping', silenceMs: 1000 } });
    const pinging = await client(s);
    const silent = await client(s);
    const timer = setInterval(() => {
      pinging.send({ op: 'ping' });
    }, 100);
    try {
      await until(() => silent.close !== undefined, 'the silent socket to be dropped');
      expect(pinging.close).toBeUndefined();
      expect(pinging.texts).toContain('{"op":"pong"}');
      expect(s.counters.closedByHeartbeat).toBe(1);
      expect(s.counters.pingsReceived).toBeGreaterThan(0);
      expect(s.sockets()).toHaveLength(1);
    } finally {
      clearInterval(timer);
    }
  });

  it('server-ping: pings every interval, keeps the client that answers, closes the one that missed maxMissed pings in a row', async () => {
    const s = await toy({
      heartbeat: {
        kind: 'server-ping',
        intervalMs: 100,
        maxMissed: 3,
        anyPongKeepsAlive: false,
        frame: (id) => `{"ping":"${id}"}`,
        close: { code: 4001, reason: 'missed pings' },
      },
    });
    const answering = await client(s);
    const deaf = await client(s);
    answering.ws.on('message', (data: Buffer) => {
      const m = JSON.parse(data.toString('utf8')) as { ping?: string };
      if (m.ping !== undefined) answering.send({ pong: m.ping });
    });
    await until(() => deaf.close !== undefined, 'the deaf client to be closed');
    expect(deaf.close).toEqual({ code: 4001, reason: 'missed pings' });
    // It got exactly maxMissed pings, each unanswered, before the close.
    expect(deaf.texts.filter((t) => t.startsWith('{"ping":'))).toHaveLength(3);
    expect(answering.close).toBeUndefined();
    expect(s.counters.closedByHeartbeat).toBe(1);
    expect(s.counters.pongsReceived).toBeGreaterThanOrEqual(2);
  });

  it('server-ping: an answer that echoes the wrong ping does not keep the socket alive', async () => {
    const s = await toy({
      heartbeat: { kind: 'server-ping', intervalMs: 80, maxMissed: 2, anyPongKeepsAlive: false, frame: (id) => `{"ping":"${id}"}`, close: { code: 4001, reason: 'missed' } },
    });
    const wrong = await client(s);
    wrong.ws.on('message', () => {
      wrong.send({ pong: 'not-the-id' });
    });
    await until(() => wrong.close !== undefined, 'the socket to be closed');
    expect(wrong.close?.code).toBe(4001);
    expect(s.counters.pongsReceived).toBeGreaterThan(0);
  });
});

describe('engine frames', () => {
  it('gzip: every server frame (replies and events) is a gzip-compressed binary frame', async () => {
    const s = await toy({ encoding: 'gzip' });
    const c = await client(s, true);
    c.send({ op: 'sub', args: ['BTCUSDT.1s'] });
    await until(() => c.texts.length >= 3, 'a reply and two events');
    expect(c.binary.every((b) => b)).toBe(true);
    expect(c.texts[0]).toBe('{"op":"sub","ok":true}');
    expect(c.json().slice(1).every((m) => m.topic === 'BTCUSDT.1s')).toBe(true);
  });

  it('closed flag: sends the final candle at the boundary, equal to the series', async () => {
    let wall = T0 + 59_000;
    const s = await toy({ closed: 'flag', updateMs: 60_000 }, { now: () => wall });
    const c = await client(s);
    c.send({ op: 'sub', args: ['ETHUSDT.1m'] });
    await until(() => c.texts.length >= 2, 'the reply and the first open update');
    wall = T0 + 60_500;
    await until(() => c.json().some((m) => m.x === true), 'the closed candle');
    const closed = c.json().filter((m) => m.x === true);
    const truth = candleAt(toyDialect().series, 'ETHUSDT', '1m', T0);
    expect(closed).toEqual([{ topic: 'ETHUSDT.1m', t: T0, o: truth.open, c: truth.close, x: true }]);
    expect(s.counters.closedKlinesSent).toBe(1);
  });

  it('no closed flag: sends no final frame at the boundary, and the next candle’s first update at once', async () => {
    let wall = T0 + 59_000;
    // Open updates every minute: only the boundary can explain a second update within the test.
    const s = await toy({ closed: 'none', updateMs: 60_000 }, { now: () => wall });
    const c = await client(s);
    c.send({ op: 'sub', args: ['ETHUSDT.1m'] });
    await until(() => c.texts.length >= 2, 'the reply and the first open update');
    expect(c.json()[1]).toMatchObject({ t: T0, x: false });
    wall = T0 + 60_500;
    await until(() => c.json().some((m) => m.t === T0 + 60_000), 'the next candle’s first update');
    await sleep(200);
    expect(c.json().filter((m) => m.x === true)).toEqual([]);
    expect(c.json().slice(1).map((m) => m.t)).toEqual([T0, T0 + 60_000]);
    expect(s.counters.closedKlinesSent).toBe(0);
  });

  it('serverShutdown sends the dialect’s rotation notice, and nothing on a venue that has none', async () => {
    const withNotice = await toy({ rotation: true });
    const without = await toy();
    const a = await client(withNotice);
    const b = await client(without);
    withNotice.faults.serverShutdown();
    without.faults.serverShutdown();
    await until(() => a.texts.length === 1, 'the notice');
    expect(a.json()[0]).toMatchObject({ notice: 'rotate' });
    b.send({ op: 'ping' });
    await until(() => b.texts.length === 1, 'the pong');
    expect(b.texts).toEqual(['{"op":"pong"}']);
  });

  it('garbage sends the dialect’s malformed frames in turn', async () => {
    const s = await toy();
    const c = await client(s);
    s.faults.garbage(3);
    await until(() => c.texts.length === 3, 'three frames');
    expect(c.texts).toEqual(['not json', '{"topic":', 'not json']);
  });
});

describe('engine request limits', () => {
  it('refuses subscribes over args per request, bytes per request, ops per window and the stream cap with the dialect’s frames, and keeps the socket', async () => {
    const s = await toy({ limits: { argsPerRequest: 2, bytesPerRequest: 120, opsPerWindow: { max: 3, windowMs: 60_000 }, maxStreamsPerConnection: 3 } });
    const c = await client(s);
    const replies = (): string[] => c.texts.filter((t) => t.startsWith('{"op"')); // events interleave
    const expectNext = async (n: number, reply: string): Promise<void> => {
      await until(() => replies().length >= n, `reply ${n}`);
      expect(replies()[n - 1]).toBe(reply);
    };
    c.send({ op: 'sub', args: ['BTCUSDT.1m', 'ETHUSDT.1m', 'SOLUSDT.1m'] });
    await expectNext(1, '{"op":"sub","ok":false,"why":"too-many-args"}');
    c.send({ op: 'sub', args: ['BTCUSDT.1m'], pad: 'x'.repeat(120) });
    await expectNext(2, '{"op":"sub","ok":false,"why":"too-large"}');
    c.send({ op: 'sub', args: ['BTCUSDT.5m', 'ETHUSDT.5m'] }); // op 1
    await expectNext(3, '{"op":"sub","ok":true}');
    c.send({ op: 'sub', args: ['SOLUSDT.5m', 'XRPUSDT.5m'] }); // op 2: 4 streams > 3
    await expectNext(4, '{"op":"sub","ok":false,"why":"too-many-streams"}');
    c.send({ op: 'unsub', args: ['ETHUSDT.5m'] }); // op 3
    await expectNext(5, '{"op":"unsub","ok":true}');
    c.send({ op: 'sub', args: ['SOLUSDT.5m'] }); // op 4: over 3 per window
    await expectNext(6, '{"op":"sub","ok":false,"why":"too-many-ops"}');
    expect(s.sockets()[0]?.streams).toEqual(['BTCUSDT.5m']);
    expect(c.close).toBeUndefined();
  });

  it('an inbound flood gets the dialect’s reaction: here a reply and no close, the excess frames dropped', async () => {
    const s = await toy({ limits: { maxInboundPerSecond: 3, inboundFlood: { replies: ['{"error":"slow down"}'] } } });
    const c = await client(s);
    for (let i = 0; i < 6; i++) c.send({ op: 'ping' });
    await until(() => c.texts.includes('{"error":"slow down"}'), 'the flood reply');
    await sleep(100);
    expect(c.texts.filter((t) => t === '{"op":"pong"}')).toHaveLength(3);
    expect(c.close).toBeUndefined();
    expect(s.counters.closedByRateLimit).toBe(0);
    expect(s.counters.maxInboundPerSecondSeen).toBeGreaterThan(3);
  });

  it('refuses an upgrade past the concurrent-connection cap with 429 and the dialect’s body, and accepts again once one closes', async () => {
    const s = await toy({ limits: { maxConcurrentConnections: 2 } });
    const a = await client(s);
    await client(s);
    const refused = await new Promise<{ status: number; body: string }>((resolve) => {
      const ws = new WebSocket(s.wsUrl);
      ws.on('error', () => {
        // the refusal is read from 'unexpected-response'
      });
      ws.once('unexpected-response', (_req, res) => {
        let body = '';
        res.on('data', (d: Buffer) => (body += d.toString('utf8')));
        res.on('end', () => {
          resolve({ status: res.statusCode ?? 0, body });
        });
      });
    });
    expect(refused.status).toBe(429);
    expect(JSON.parse(refused.body)).toMatchObject({ reason: 'too-many-connections' });
    expect(s.counters.connectionsRefused).toBe(1);
    a.ws.close();
    await until(() => s.sockets().length === 1, 'the first socket to be gone');
    await client(s);
    expect(s.sockets()).toHaveLength(2);
  });

  it('a control reply may close the socket with the dialect’s code', async () => {
    const s = await toy();
    const c = await client(s);
    c.send({ op: 'bye' });
    await until(() => c.close !== undefined, 'the close');
    expect(c.texts).toEqual(['{"op":"bye"}']);
    expect(c.close).toEqual({ code: 4000, reason: 'bye' });
  });
});

describe('engine REST', () => {
  it('a venue without a WebSocket refuses every upgrade with 404 and still serves REST', async () => {
    const s = await toy({ restOnly: true });
    expect(s.wsUrl).toBe('');
    const status = await new Promise<number>((resolve) => {
      const ws = new WebSocket(`${s.wsOrigin}/ws`);
      ws.on('error', () => {
        // the refusal is read from 'unexpected-response'
      });
      ws.once('unexpected-response', (_req, res) => {
        resolve(res.statusCode ?? 0);
        ws.terminate();
      });
    });
    expect(status).toBe(404);
    const r = await get(`${s.restUrl}/klines?symbol=BTCUSDT&interval=1m&limit=2`);
    expect(r.status).toBe(200);
    expect((JSON.parse(r.body) as { rows: unknown[] }).rows).toHaveLength(2);
  });

  it('answers a newest-first range query within [from, to], holes skipped, the forming row only when asked', async () => {
    const wall = T0 + 30_000; // the 12:00 minute is forming
    const s = await toy({}, { now: () => wall });
    const style = toyDialect().series;
    s.faults.hole('btcusdt', '1m', T0 - 3 * 60_000, T0 - 2 * 60_000);
    const rows = async (q: string): Promise<[number, string, string, boolean][]> =>
      (JSON.parse((await get(`${s.restUrl}/klines?symbol=BTCUSDT&interval=1m&${q}`)).body) as { rows: [number, string, string, boolean][] }).rows;
    const latest = await rows('limit=3');
    expect(latest.map((r) => r[0])).toEqual([T0, T0 - 60_000, T0 - 2 * 60_000]);
    expect(latest[0]?.[3]).toBe(false); // forming
    const closed = await rows('limit=3&forming=no');
    expect(closed.map((r) => r[0])).toEqual([T0 - 60_000, T0 - 2 * 60_000, T0 - 4 * 60_000]); // the hole skipped, not counted
    const range = await rows(`limit=10&start=${T0 - 5 * 60_000}&end=${T0 - 2 * 60_000}`);
    expect(range.map((r) => r[0])).toEqual([T0 - 2 * 60_000, T0 - 4 * 60_000, T0 - 5 * 60_000]);
    const truth = candleAt(style, 'BTCUSDT', '1m', T0 - 4 * 60_000);
    expect(range[1]).toEqual([truth.openTime, truth.open, truth.close, true]);
    expect(openTimeAt('1m', wall)).toBe(T0);
    expect(TOY_INTERVALS.has('1m')).toBe(true);
  });

  it('a rate model with a ban: over the budget gets `limited`, then every path `banned` until the ban ends, each request inside extending it and counting as ignoring the back-off', async () => {
    const s = await toy({ rate: { capacity: 2, windowMs: 300, banMs: 1500, banExtendMs: 1000 } });
    const at = (path: string): Promise<number> => get(`${s.restUrl}${path}`).then((r) => r.status);
    expect(await at('/time')).toBe(200);
    expect(await at('/klines?symbol=BTCUSDT&interval=1m')).toBe(200);
    const started = performance.now();
    const limited = await get(`${s.restUrl}/klines?symbol=BTCUSDT&interval=1m`);
    expect(limited.status).toBe(429);
    await sleep(100); // past the in-flight grace: this one ignores the back-off
    expect(await at('/time')).toBe(403); // banned on every path; the ban now ends 1000 ms later
    expect(s.counters.restInsideRetryAfter).toBe(1);
    // Past the first ban's end, inside the extended one.
    await sleep(Math.max(0, started + 1700 - performance.now()));
    expect(await at('/time')).toBe(403);
    // Past every extension (1500 + 2 × 1000 from the 429) and the last answer's whole Retry-After: admitted again.
    await sleep(Math.max(0, started + 4300 - performance.now()));
    expect(await at('/time')).toBe(200);
    expect(s.counters.restLimited).toBe(1);
    expect(s.counters.restBanned).toBe(2);
    expect(s.counters.restStatuses).toEqual({ 429: 1, 403: 2 });
    expect(s.counters.restInsideRetryAfter).toBe(2);
  });

  it('restErrors answers the next klines requests with the dialect’s injected answer and starts its back-off', async () => {
    const s = await toy();
    s.faults.restErrors(1, 429, 2);
    const r = await get(`${s.restUrl}/klines?symbol=BTCUSDT&interval=1m`);
    expect(r.status).toBe(429);
    expect(r.headers.get('retry-after')).toBe('2');
    await sleep(100);
    expect((await get(`${s.restUrl}/time`)).status).toBe(200); // answered, and counted as a violation
    expect(s.counters.restInsideRetryAfter).toBe(1);
  });
});
