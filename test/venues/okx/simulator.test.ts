/**
 * The OKX simulator (src/venues/okx/simulator/) speaks OKX as the docs describe it, against real
 * `ws` and HTTP clients on port 0: the business socket's subscribe acks and pushes (read back by the
 * daemon's own parser into the simulator's truth), `ping` → `pong`, error 64001 on `/ws/v5/public`,
 * the 64008 notice, 3 connection attempts per second, `/candles` limited to the latest 1,440 bars and
 * `/history-candles` beyond, newest first with exclusive cursors, and code 50011 over the 2-second
 * budget (both as HTTP 429 and as HTTP 200).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { StatusStream } from '../../../src/core/status.ts';
import { StreamRegistry } from '../../../src/core/streams.ts';
import type { VenueSimulator } from '../../../src/simulator/dialect.ts';
import { isCandle, registerVenueStreams } from '../../../src/upstream/venue.ts';
import { okx } from '../../../src/venues/okx/okx.ts';
import { OkxFrameParser } from '../../../src/venues/okx/protocol.ts';
import { toContracts } from '../../../src/venues/okx/simulator/dialect.ts';
import { okxTruth, startOkxSimulator } from '../../../src/venues/okx/simulator/index.ts';

const MIN = 60_000;
/** A fixed wall clock on a minute boundary + 30 s (the bar at NOW - 30 s is forming). */
const NOW = 1_700_000_040_000 + 30_000;

let sim: VenueSimulator | undefined;
const sockets: WebSocket[] = [];
afterEach(async () => {
  for (const s of sockets.splice(0)) s.terminate();
  await sim?.close();
  sim = undefined;
});

async function open(url: string): Promise<{ ws: WebSocket; texts: string[] }> {
  const ws = new WebSocket(url);
  sockets.push(ws);
  const texts: string[] = [];
  ws.on('message', (d: Buffer) => texts.push(d.toString('utf8')));
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => {
      resolve();
    });
    ws.once('error', reject);
  });
  return { ws, texts };
}

async function until(cond: () => boolean, what: string, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

async function get(path: string): Promise<{ status: number; body: { code: string; msg: string; data: string[][] } }> {
  const res = await fetch(`${sim?.restUrl ?? ''}${path}`);
  return { status: res.status, body: (await res.json()) as { code: string; msg: string; data: string[][] } };
}

describe('OKX simulator', () => {
  it('acks a business-socket subscribe per arg, pushes bars the daemon’s parser reads as the truth, and answers ping with pong', async () => {
    sim = await startOkxSimulator({ openUpdateMs: 50 });
    expect(sim.wsUrl.endsWith('/ws/v5/business')).toBe(true);
    const { ws, texts } = await open(sim.wsUrl);
    const registry = new StreamRegistry();
    const refs = registerVenueStreams(registry, okx, ['BTC-USDT', 'BTC-USDT-SWAP'], ['1s']);
    ws.send(okx.ws.subscribeFrame(refs.map((r) => r.topic), 3));
    await until(() => texts.filter((t) => t.includes('"event":"subscribe"')).length === 2, 'two acks');
    expect(JSON.parse(texts[0] ?? '{}')).toMatchObject({ id: '3', event: 'subscribe', arg: { channel: 'candle1s', instId: 'BTC-USDT' } });
    ws.send('ping');
    await until(() => texts.includes('pong'), 'pong');
    const parser = new OkxFrameParser({ venue: 'okx', registry, status: new StatusStream(), clock: { now: Date.now, monotonic: () => performance.now() } });
    await until(() => texts.filter((t) => t.endsWith('"1"]]}')).length >= 2, 'two closed bars', 8000);
    let closed = 0;
    for (const t of texts) {
      if (!t.startsWith('{"arg"')) continue;
      const out = parser.parse(Buffer.from(t), 0);
      if (!isCandle(out)) throw new Error(`not a candle: ${t}`);
      if (!out.closed) continue;
      closed++;
      const truth = okxTruth(out.stream.symbol, '1s', out.openTime);
      expect([out.open, out.high, out.low, out.close, out.volume, out.quoteVolume, out.closeTime]).toEqual([truth.o, truth.h, truth.l, truth.c, truth.v, truth.q, truth.T]);
    }
    expect(closed).toBeGreaterThanOrEqual(2);
    expect(parser.slowPath).toBe(0);
    expect(parser.parseErrors).toBe(0);
  });

  it('answers a candle subscribe on /ws/v5/public with 64001 and sends it nothing; sends the 64008 notice on serverShutdown', async () => {
    sim = await startOkxSimulator({ openUpdateMs: 50 });
    const origin = sim.wsUrl.slice(0, -'/ws/v5/business'.length);
    const pub = await open(`${origin}/ws/v5/public`);
    pub.ws.send('{"op":"subscribe","args":[{"channel":"candle1m","instId":"BTC-USDT"}]}');
    await until(() => pub.texts.length > 0, 'an answer');
    expect(JSON.parse(pub.texts[0] ?? '{}')).toMatchObject({ event: 'error', code: '64001' });
    const biz = await open(sim.wsUrl);
    sim.faults.serverShutdown();
    await until(() => biz.texts.some((t) => t.includes('"64008"')), 'the notice');
    expect(JSON.parse(biz.texts.find((t) => t.includes('64008')) ?? '{}')).toMatchObject({ event: 'notice', code: '64008' });
  });

  it('counts OKX’s per-connection limits: over 64 KB is 60012, the 481st op in an hour is 60014, past 240 channels the socket is closed 4009', async () => {
    sim = await startOkxSimulator();
    const { ws, texts } = await open(sim.wsUrl);
    const arg = (i: number) => `{"channel":"candle1m","instId":"C${i}-USDT"}`;
    const big = `{"id":"big","op":"subscribe","args":[${Array.from({ length: 1600 }, (_, i) => arg(i)).join(',')}]}`;
    expect(Buffer.byteLength(big)).toBeGreaterThan(64 * 1024);
    ws.send(big);
    await until(() => texts.some((t) => t.includes('"id":"big"')), 'the answer to the big request');
    expect(JSON.parse(texts.find((t) => t.includes('"id":"big"')) ?? '{}')).toMatchObject({ event: 'error', code: '60012' });
    // A refused request is no op: 480 accepted ones, then the 481st is refused.
    for (let i = 0; i < 480; i++) ws.send(`{"id":"u${i}","op":"unsubscribe","args":[${arg(i)}]}`);
    ws.send(`{"id":"last","op":"subscribe","args":[${arg(0)}]}`);
    await until(() => texts.some((t) => t.includes('"id":"last"')), 'the answer to the 481st op');
    expect(JSON.parse(texts.find((t) => t.includes('"id":"last"')) ?? '{}')).toMatchObject({ event: 'error', code: '60014' });

    const second = await open(sim.wsUrl);
    const closed = new Promise<number>((resolve) => second.ws.once('close', (code) => { resolve(code); }));
    second.ws.send(`{"op":"subscribe","args":[${Array.from({ length: 241 }, (_, i) => arg(i)).join(',')}]}`);
    expect(await closed).toBe(4009);
  });

  it('refuses a fourth connection attempt within a second with HTTP 429', async () => {
    sim = await startOkxSimulator();
    const statuses = await Promise.all(
      Array.from({ length: 4 }, async () => {
        const ws = new WebSocket(sim?.wsUrl ?? '');
        sockets.push(ws);
        return new Promise<number>((resolve) => {
          ws.once('open', () => {
            resolve(101);
          });
          ws.once('unexpected-response', (_req, res) => {
            resolve(res.statusCode ?? 0);
          });
          ws.once('error', () => undefined);
        });
      }),
    );
    expect(statuses.sort()).toEqual([101, 101, 101, 429]);
    expect(sim.counters.connectionsRefused).toBe(1);
  });

  it('writes a perpetual’s base volume as exact 0.01-base contracts', () => {
    expect(['12.345678', '12', '0.005', '0.00000001', '0', '1234.5'].map(toContracts)).toEqual(['1234.5678', '1200', '0.5', '0.000001', '0', '123450']);
  });

  it('serves /candles newest first within the latest 1,440 bars only (exclusive after/before), /history-candles beyond', async () => {
    sim = await startOkxSimulator({ now: () => NOW });
    const forming = NOW - 30_000;
    const recent = await get(`/api/v5/market/candles?instId=BTC-USDT&bar=1m&after=${forming - 5 * MIN}&before=${forming - 9 * MIN}&limit=300`);
    expect(recent.status).toBe(200);
    expect(recent.body.data.map((r) => Number(r[0]))).toEqual([forming - 6 * MIN, forming - 7 * MIN, forming - 8 * MIN]);
    expect(recent.body.data.every((r) => r.length === 9 && r[8] === '1')).toBe(true);
    const latest = await get('/api/v5/market/candles?instId=BTC-USDT&bar=1m&limit=2');
    expect(latest.body.data.map((r) => [Number(r[0]), r[8]])).toEqual([
      [forming, '0'],
      [forming - MIN, '1'],
    ]);
    const old = `instId=BTC-USDT&bar=1m&after=${forming - 1500 * MIN}&limit=3`;
    expect((await get(`/api/v5/market/candles?${old}`)).body.data).toEqual([]);
    const hist = await get(`/api/v5/market/history-candles?${old}`);
    expect(hist.body.data.map((r) => Number(r[0]))).toEqual([forming - 1501 * MIN, forming - 1502 * MIN, forming - 1503 * MIN]);
    const truth = okxTruth('BTC-USDT', '1m', forming - 1501 * MIN);
    expect(hist.body.data[0]?.slice(1, 8)).toEqual([truth.o, truth.h, truth.l, truth.c, truth.v, truth.q, truth.q]);
    // SWAP: vol counts 0.01-base contracts, volCcy is base.
    const swap = await get(`/api/v5/market/history-candles?instId=BTC-USDT-SWAP&${old.slice('instId=BTC-USDT&'.length)}`);
    const swapTruth = okxTruth('BTC-USDT-SWAP', '1m', forming - 1501 * MIN);
    expect(swap.body.data[0]?.slice(5, 8)).toEqual([toContracts(swapTruth.v), swapTruth.v, swapTruth.q]);
    expect(Number(toContracts(swapTruth.v))).toBeCloseTo(Number(swapTruth.v) * 100, 6);
    expect((await get('/api/v5/market/candles?instId=BTC-USDT&bar=1m&limit=301')).body.code).toBe('51000');
    expect((await get('/api/v5/market/history-candles?instId=BTC-USDT&bar=1m&limit=101')).body.code).toBe('51000');
  });

  it('answers code 50011 past 40 requests per 2 s (history counting two), as HTTP 429 and as HTTP 200 in turn, and counts requests inside the back-off', async () => {
    sim = await startOkxSimulator({ now: () => NOW });
    const answers: Array<{ status: number; code: string }> = [];
    for (let i = 0; i < 23; i++) {
      // Past the first refusal, wait out the engine's 50 ms in-flight grace: these ignore the back-off.
      if (i > 20) await new Promise((r) => setTimeout(r, 80));
      const r = await get('/api/v5/market/history-candles?instId=BTC-USDT&bar=1m&limit=1');
      answers.push({ status: r.status, code: r.body.code });
    }
    expect(answers.slice(0, 20).every((a) => a.status === 200 && a.code === '0')).toBe(true);
    expect(answers.slice(20)).toEqual([
      { status: 200, code: '50011' },
      { status: 429, code: '50011' },
      { status: 200, code: '50011' },
    ]);
    expect(sim.counters.restLimited).toBe(3);
    // The second and third came inside the back-off the first announced.
    expect(sim.counters.restInsideRetryAfter).toBe(2);
  });
});
