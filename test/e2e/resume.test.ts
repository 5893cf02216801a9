/**
 * Resume end to end (contract §5, issue 14): simulator → daemon → relay clients that come back with
 * `since`, audited against the simulator's ground truth (klineAt) across both connections.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import type { Socket } from 'node:net';
import { pino } from 'pino';
import { startConnector, type Connector } from '../../src/app.ts';
import { BinanceSimulator } from '../../src/venues/binance/simulator/server.ts';
import { audit, RecordingClient, sleep, startStack, testConfig, until, type KlineMsg } from './harness.ts';

let stops: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const stop of stops.reverse()) await stop();
  stops = [];
});

/**
 * The last closed candle's open time per stream, over what a client received; `before` (the first
 * since it asked for, minus one) for a stream it got nothing of yet.
 */
function lastClosed(messages: readonly KlineMsg[], streams: readonly string[], before?: number): Map<string, number> {
  const out = new Map<string, number>();
  for (const s of streams) {
    const ts = messages.filter((m) => m.stream === s && m.x).map((m) => m.t);
    const last = ts.at(-1) ?? before;
    if (last === undefined) throw new Error(`no closed candle on ${s}`);
    out.set(s, last);
  }
  return out;
}

/** A combined connection that resumes each stream from its own last candle (one SUBSCRIBE with since per stream). */
async function resume(relayUrl: string, last: ReadonlyMap<string, number>): Promise<RecordingClient> {
  const c = new RecordingClient(`${relayUrl}/stream`);
  await c.opened;
  let id = 1;
  for (const [stream, t] of last) c.ws.send(JSON.stringify({ method: 'SUBSCRIBE', params: [stream], since: t + 1, id: id++ }));
  return c;
}

function expectClean(messages: readonly KlineMsg[], streams: readonly string[], minCount: number): void {
  for (const s of streams) {
    const a = audit({ messages }, s, 1000);
    expect(a, s).toMatchObject({ missing: 0, duplicated: 0, outOfOrder: 0, wrong: 0 });
    expect(a.count, s).toBeGreaterThanOrEqual(minCount);
  }
}

function upgradeStatus(url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    ws.on('unexpected-response', (req, res) => {
      resolve(res.statusCode ?? 0);
      req.destroy();
    });
    ws.on('open', () => {
      ws.close();
      reject(new Error('upgrade unexpectedly succeeded'));
    });
    ws.on('error', reject);
  });
}

const SYMBOLS = ['btcusdt', 'ethusdt', 'bnbusdt'];
const STREAMS = SYMBOLS.map((s) => `${s}@kline_1s`);

describe('resume end to end (since)', () => {
  it('gives a consumer that was away for 10 s every closed candle it missed, once, in order, then live', async () => {
    const stack = await startStack({}, { CONNECTOR_SYMBOLS: SYMBOLS.join(','), CONNECTOR_INTERVALS: '1s' });
    stops.push(stack.stop);
    const first = new RecordingClient(`${stack.relayUrl}/ws/${STREAMS[0] ?? ''}`);
    await until(() => first.closedCandles(STREAMS[0] ?? '').length >= 3, 'three closed candles');
    first.ws.close();
    await first.closedP;
    const last = lastClosed(first.messages, STREAMS.slice(0, 1)).get(STREAMS[0] ?? '') ?? 0;
    await sleep(10_000);
    const second = new RecordingClient(`${stack.relayUrl}/ws/${STREAMS[0] ?? ''}?since=${last + 1}`);
    await until(() => second.closedCandles(STREAMS[0] ?? '').length >= 13, 'the missed candles and live ones', 15_000);
    expect(second.closedCandles(STREAMS[0] ?? '')[0]).toBe(last + 1000);
    expectClean([...first.messages, ...second.messages], STREAMS.slice(0, 1), 16);
  }, 40_000);

  it('answers since in the future with live only, and refuses a malformed since and one past the limit with 400', async () => {
    const stack = await startStack({}, { CONNECTOR_SYMBOLS: 'btcusdt', CONNECTOR_INTERVALS: '1s', CONNECTOR_RELAY_REPLAY_MAX_CANDLES: 60 });
    stops.push(stack.stop);
    const url = `${stack.relayUrl}/ws/btcusdt@kline_1s`;
    expect(await upgradeStatus(`${url}?since=tomorrow`)).toBe(400);
    expect(await upgradeStatus(`${url}?since=${Date.now() - 120_000}`)).toBe(400);
    const future = new RecordingClient(`${url}?since=${Date.now() + 3_600_000}`);
    await until(() => future.closedCandles('btcusdt@kline_1s').length >= 3, 'live candles');
    expect(future.closedCandles('btcusdt@kline_1s')[0]).toBeGreaterThan(Date.now() - 5000);
    expectClean(future.messages, ['btcusdt@kline_1s'], 3);
  }, 30_000);

  it('brings back a consumer cut as a slow consumer while it ignored a 100-stream replay, with nothing lost', async () => {
    const symbols = Array.from({ length: 100 }, (_, i) => `s${i}usdt`);
    const streams = symbols.map((s) => `${s}@kline_1s`);
    const stack = await startStack(
      {},
      {
        CONNECTOR_SYMBOLS: symbols.join(','),
        CONNECTOR_INTERVALS: '1s',
        CONNECTOR_RELAY_MAX_BUFFERED_BYTES: 64 * 1024,
        CONNECTOR_RELAY_MAX_MESSAGES_PER_SECOND: 1000,
        CONNECTOR_RELAY_CLOSE_TIMEOUT_MS: 1000,
      },
    );
    stops.push(stack.stop);
    await until(() => stack.connector.relay.stats().historyCandles >= 100, 'live candles on every stream');
    // 300 candles back on each of 100 streams: far past what the 64 KiB cap lets an unread replay hold,
    // and short enough that the comeback's replay (mostly from REST) stays quick on a busy 2-core CI.
    const since = Math.floor(Date.now() / 1000) * 1000 - 300_000;
    const slow = new RecordingClient(`${stack.relayUrl}/stream?streams=${streams.join('/')}&since=${since}`);
    await slow.opened;
    const socket = (slow.ws as unknown as { _socket: Socket })._socket;
    socket.pause(); // reads nothing of its replay
    await until(() => stack.connector.relay.stats().slowConsumers >= 1, 'the slow-consumer cut', 30_000);
    socket.resume(); // takes what reached it, then the close
    await slow.closedP;
    expect(stack.connector.relay.stats().replays).toBe(0);

    const back = await resume(stack.relayUrl, lastClosed(slow.messages, streams, since - 1));
    await until(() => streams.every((s) => (back.closedCandles(s).at(-1) ?? 0) >= Date.now() - 3000), 'caught up to live', 60_000);
    expectClean([...slow.messages, ...back.messages], streams, 300);
    for (const s of streams) expect([...slow.closedCandles(s), ...back.closedCandles(s)][0], s).toBe(since);
  }, 120_000);

  it('replays 1000 candles on each of 100 streams from REST to one consumer while live traffic flows, all audited', async () => {
    const symbols = Array.from({ length: 100 }, (_, i) => `r${i}usdt`);
    const streams = symbols.map((s) => `${s}@kline_1s`);
    const stack = await startStack({}, { CONNECTOR_SYMBOLS: symbols.join(','), CONNECTOR_INTERVALS: '1s' });
    stops.push(stack.stop);
    const live = new RecordingClient(`${stack.relayUrl}/stream?streams=${streams.join('/')}`);
    await until(() => stack.connector.relay.stats().historyCandles >= 100, 'live candles on every stream');
    const since = Math.floor(Date.now() / 1000) * 1000 - 1000_000;
    const started = performance.now();
    const c = new RecordingClient(`${stack.relayUrl}/stream?streams=${streams.join('/')}&since=${since}`);
    await until(() => stack.connector.relay.stats().replays === 0 && c.messages.length >= 100_000, 'the replay', 60_000);
    const seconds = (performance.now() - started) / 1000;
    const fromRest = stack.connector.relay.stats().replayedFromRest;
    console.log(`replay: ${c.messages.length} candles to one client in ${seconds.toFixed(1)} s (${Math.round(c.messages.length / seconds)}/s), ${fromRest} from REST`);
    await sleep(2000); // live continues after the seam
    for (const s of streams) expect(c.closedCandles(s)[0], s).toBe(since);
    expectClean(c.messages, streams, 1000);
    expectClean(live.messages, streams, 1);
  }, 120_000);

  it('after the daemon is stopped and started again 20 s later, consumers resuming with since get the candles from REST', async () => {
    const sim = await BinanceSimulator.start({ openUpdateMs: 100 });
    stops.push(() => sim.close());
    const config = testConfig(sim, { CONNECTOR_SYMBOLS: SYMBOLS.join(','), CONNECTOR_INTERVALS: '1s' });
    const start = (): Promise<Connector> => startConnector(config, { log: pino({ level: 'silent' }), collectDefaultMetrics: false, gapRetryDelaysMs: [50, 100, 200, 500] });
    const one = await start();
    const first = new RecordingClient(`ws://127.0.0.1:${one.relayAddress.port}/stream?streams=${STREAMS.join('/')}`);
    await until(() => STREAMS.every((s) => first.closedCandles(s).length >= 3), 'three closed candles per stream');
    await one.shutdown('SIGTERM');
    await first.closedP;
    expect(first.closeCode).toBe(1001);
    await sleep(20_000);
    const two = await start();
    stops.push(async () => {
      await two.shutdown('test');
    });
    const back = await resume(`ws://127.0.0.1:${two.relayAddress.port}`, lastClosed(first.messages, STREAMS));
    await until(() => STREAMS.every((s) => (back.closedCandles(s).at(-1) ?? 0) >= Date.now() - 3000), 'caught up to live', 20_000);
    expect(two.relay.stats().replayedFromRest).toBeGreaterThanOrEqual(STREAMS.length * 19);
    expectClean([...first.messages, ...back.messages], STREAMS, 23);
  }, 60_000);
});
