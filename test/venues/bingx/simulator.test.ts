/**
 * The BingX simulators (src/venues/bingx/simulator: spot and swap dialects of the shared engine) as a
 * plain client sees them, with a real `ws` client and real HTTP on port 0: gzip binary frames, the
 * server's pings and what happens when they go unanswered, subscribe replies, pushes without a closed
 * flag whose last update of a candle is never its final row, REST rows in each market's shape, and the
 * 500-per-10-s budget answered with 429 and Retry-After. The wall clock runs at 60x (1m candles).
 */
import { gunzipSync } from 'node:zlib';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import type { VenueSimulator } from '../../../src/simulator/dialect.ts';
import { bingxSpotSimulator, bingxSwapSimulator } from '../../../src/venues/bingx/simulator/index.ts';
import { waitFor } from '../../upstream/helpers.ts';

const MIN = 60_000;
let sims: VenueSimulator[] = [];
let sockets: WebSocket[] = [];

afterEach(async () => {
  for (const s of sockets) s.terminate();
  await Promise.all(sims.map((s) => s.close()));
  sims = [];
  sockets = [];
});

const t0 = Date.now();
const now = (): number => t0 + (Date.now() - t0) * 60;

async function client(url: string, answer: (text: string) => string | undefined) {
  const ws = new WebSocket(url);
  sockets.push(ws);
  const texts: string[] = [];
  const binary: boolean[] = [];
  ws.on('message', (data: Buffer, isBinary) => {
    binary.push(isBinary);
    const text = gunzipSync(data).toString('utf8');
    texts.push(text);
    const a = answer(text);
    if (a !== undefined) ws.send(a);
  });
  await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
  return { ws, texts, binary };
}

describe('BingX simulators', () => {
  it('spot: gzip binary frames, JSON pings answered by id, a sub reply, pushes of the forming candle and no closed frame; the last push is never REST’s final row', async () => {
    const sim = await bingxSpotSimulator.start({ now, openUpdateMs: 100, pingIntervalMs: 200 });
    sims.push(sim);
    const c = await client(sim.wsUrl, (t) => (t.startsWith('{"ping"') ? t.replace('{"ping"', '{"pong"') : undefined));
    expect(sim.wsUrl.endsWith('/market')).toBe(true);
    c.ws.send(JSON.stringify({ id: 'a1', reqType: 'sub', dataType: 'BTC-USDT@kline_1min' }));
    c.ws.send(JSON.stringify({ id: 'a2', reqType: 'sub', dataType: 'BTC-USDT@kline_1h' }));
    const pushes = (): { t: number; v: string; n: number }[] =>
      c.texts
        .filter((t) => t.includes('"dataType":"BTC-USDT@kline_1min"'))
        .map((t) => (JSON.parse(t) as { data: { K: { t: number; v: string; n: number } } }).data.K);
    await waitFor('three candles pushed', () => new Set(pushes().map((k) => k.t)).size >= 3, 15_000);
    expect(c.binary.every((b) => b)).toBe(true);
    const replies = c.texts.filter((t) => t.startsWith('{"id"')).map((t) => JSON.parse(t) as { id: string; code: number });
    expect(replies.map((r) => [r.id, r.code])).toEqual([
      ['a1', 0],
      ['a2', 100400],
    ]);
    const first = JSON.parse(c.texts.find((t) => t.includes('@kline_1min')) ?? '{}') as Record<string, unknown>;
    expect(first).toMatchObject({ code: 0, dataType: 'BTC-USDT@kline_1min', success: true, data: { e: 'kline', s: 'BTC-USDT', K: { s: 'BTC-USDT', i: '1min' } } });
    expect(c.texts.some((t) => t.includes('"x"'))).toBe(false);
    expect(sim.counters.pongsReceived).toBeGreaterThan(0);
    expect(sim.counters.closedByHeartbeat).toBe(0);

    // The last push of a finished candle against REST's row of it: fewer trades, so less volume.
    const finished = [...new Set(pushes().map((k) => k.t))].sort((a, b) => a - b)[1] ?? 0;
    const last = pushes().filter((k) => k.t === finished).at(-1);
    const truth = bingxSpotSimulator.truth('BTC-USDT', '1m', finished);
    expect(Number(last?.v)).toBeLessThan(Number(truth.v));
    const res = await fetch(`${sim.restUrl}/openApi/spot/v2/quote/klines?symbol=BTC-USDT&interval=1m&startTime=${finished}&endTime=${finished + MIN}&limit=2`);
    const body = (await res.json()) as { code: number; data: unknown[][] };
    expect(body.code).toBe(0);
    expect(body.data[0]).toEqual([finished, truth.o, truth.h, truth.l, truth.c, truth.v, finished + MIN - 1, truth.q]);
    expect(body.data.map((r) => r[0])).toEqual([finished, finished + MIN]); // oldest first, the forming one last
  }, 30_000);

  it('swap: text Ping answered Pong keeps the socket; three unanswered pings close it', async () => {
    const sim = await bingxSwapSimulator.start({ now, openUpdateMs: 100, pingIntervalMs: 100 });
    sims.push(sim);
    const answering = await client(sim.wsUrl, (t) => (t === 'Ping' ? 'Pong' : undefined));
    answering.ws.send(JSON.stringify({ id: '1', reqType: 'sub', dataType: 'ETH-USDT@kline_1m' }));
    await waitFor('a push', () => answering.texts.some((t) => t.includes('"dataType":"ETH-USDT@kline_1m"')));
    const push = JSON.parse(answering.texts.find((t) => t.includes('"dataType":"ETH-USDT@kline_1m"')) ?? '{}') as { s: string; data: { T: number; v: string }[] };
    expect(push.s).toBe('ETH-USDT');
    expect(push.data[0]?.T).toBe(Math.floor(now() / MIN) * MIN); // T is the open time
    const silent = await client(sim.wsUrl, () => undefined);
    const closed = new Promise<number>((resolve) => silent.ws.once('close', resolve));
    expect(await closed).toBe(1000);
    expect(silent.texts.filter((t) => t === 'Ping').length).toBeGreaterThanOrEqual(3);
    expect(sim.counters.closedByHeartbeat).toBe(1);
    expect(answering.ws.readyState).toBe(WebSocket.OPEN);
  }, 30_000);

  it('swap REST: rows as objects, newest first; a bad parameter is code 100400; past 500 requests per 10 s, 429 with Retry-After and code 100410', async () => {
    const sim = await bingxSwapSimulator.start({ now, restCapacity: 5 });
    sims.push(sim);
    const end = Math.floor(now() / MIN) * MIN - MIN;
    const get = (query: string): Promise<Response> => fetch(`${sim.restUrl}/openApi/swap/v3/quote/klines?${query}`);
    const res = await get(`symbol=BTC-USDT&interval=1m&startTime=${end - 2 * MIN}&endTime=${end}&limit=10`);
    const body = (await res.json()) as { code: number; data: { time: number; open: string }[] };
    expect(body.data.map((r) => r.time)).toEqual([end, end - MIN, end - 2 * MIN]);
    expect(body.data[0]?.open).toBe(bingxSwapSimulator.truth('BTC-USDT', '1m', end).o);
    expect(res.headers.get('x-ratelimit-requests-remain')).toBe('4');
    expect(await (await get('symbol=BTCUSDT&interval=1m')).json()).toMatchObject({ code: 100400 });
    expect(await (await get('symbol=BTC-USDT&interval=1min')).json()).toMatchObject({ code: 100400 });
    for (let i = 0; i < 2; i++) await get('symbol=BTC-USDT&interval=1m');
    const limited = await get('symbol=BTC-USDT&interval=1m');
    expect(limited.status).toBe(429);
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(await limited.json()).toMatchObject({ code: 100410 });
    await new Promise((r) => setTimeout(r, 100)); // past the in-flight grace
    await get('symbol=BTC-USDT&interval=1m');
    expect(sim.counters.restLimited).toBeGreaterThanOrEqual(1);
    expect(sim.counters.restInsideRetryAfter).toBe(1);
  });
});
