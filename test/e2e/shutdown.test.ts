import { afterEach, describe, expect, it } from 'vitest';
import type { ChildProcess } from 'node:child_process';
import { WebSocket } from 'ws';
import { BinanceSimulator } from '../../src/venues/binance/simulator/server.ts';
import { audit, RecordingClient, until } from './harness.ts';
import { freePort, spawnDaemon } from './spawn.ts';

const SYMBOLS = Array.from({ length: 40 }, (_, i) => `s${i}usdt`);
let child: ChildProcess | undefined;
let sim: BinanceSimulator | undefined;

afterEach(async () => {
  if (child?.exitCode === null && child.pid !== undefined) process.kill(child.pid, 'SIGKILL');
  child = undefined;
  await sim?.close();
  sim = undefined;
});

describe('graceful shutdown of the spawned daemon', () => {
  it('on SIGTERM: /ready turns 503, new clients are refused, queued closed candles reach clients, clients get serverShutdown and 1001, exit 0', async () => {
    sim = await BinanceSimulator.start({ openUpdateMs: 100 });
    const [relayPort, httpPort] = [await freePort(), await freePort()];
    const streams = SYMBOLS.map((s) => `${s}@kline_1s`);
    const d = spawnDaemon({
      CONNECTOR_BINANCE_WS_URL: sim.wsUrl,
      CONNECTOR_BINANCE_REST_URL: sim.restUrl,
      CONNECTOR_SYMBOLS: SYMBOLS.join(','),
      CONNECTOR_INTERVALS: '1s',
      CONNECTOR_RELAY_HOST: '127.0.0.1',
      CONNECTOR_RELAY_PORT: String(relayPort),
      CONNECTOR_HEALTH_CHECK_HOST: '127.0.0.1',
      CONNECTOR_WSS_HEALTH_CHECK_PORT: String(httpPort),
      CONNECTOR_SHUTDOWN_GRACE_MS: '5000',
      CONNECTOR_LOG_LEVEL: 'info',
    });
    child = d.proc;
    const ready = async () => (await fetch(`http://127.0.0.1:${httpPort}/ready`)).status;
    await until(() => d.output.join('').includes('"phase":"started"'), 'daemon start', 20_000);
    let status = 0;
    const deadline = Date.now() + 15_000;
    while (status !== 200 && Date.now() < deadline) {
      status = await ready().catch(() => 0);
      if (status !== 200) await new Promise((r) => setTimeout(r, 100));
    }
    expect(status).toBe(200);

    const raw = new RecordingClient(`ws://127.0.0.1:${relayPort}/ws/${streams[0]!}`);
    const combined = new RecordingClient(`ws://127.0.0.1:${relayPort}/stream?streams=${streams.join('/')}`);
    await Promise.all([raw.opened, combined.opened]);
    await until(() => streams.every((s) => combined.closedCandles(s).length >= 2), 'closed candles on every stream', 15_000);

    const sentBefore = Date.now();
    process.kill(d.proc.pid!, 'SIGTERM');
    // /ready flips at once (or the listener is already closing).
    await until(() => d.output.join('').includes('"phase":"draining"'), 'draining', 5000);
    const afterSignal = await ready().catch(() => 503);
    expect(afterSignal).toBe(503);
    // No new relay clients: the upgrade is answered 503, or the listener is already gone.
    const late = await new Promise<string>((resolve) => {
      const ws = new WebSocket(`ws://127.0.0.1:${relayPort}/ws/${streams[0]!}`);
      ws.once('open', () => { resolve('open'); });
      ws.once('unexpected-response', (_req, res) => { resolve(`http ${res.statusCode ?? 0}`); });
      ws.once('error', (err) => { resolve(`error ${(err as NodeJS.ErrnoException).code ?? err.message}`); });
    });
    expect(late).toMatch(/^(http 503|error ECONNREFUSED|error ECONNRESET)$/);

    const code = await d.exited;
    expect(code).toBe(0);
    expect(await combined.closedP).toBe(1001);
    expect(await raw.closedP).toBe(1001);
    expect(combined.other).toContainEqual(expect.objectContaining({ stream: '!serverShutdown' }));
    expect(raw.ws.readyState).toBe(raw.ws.CLOSED);

    // Every closed candle of every stream that closed well before the signal reached the client, once, in order.
    for (const s of streams) {
      const a = audit(combined, s, 1000);
      expect(a, s).toMatchObject({ missing: 0, duplicated: 0, outOfOrder: 0, wrong: 0 });
      const last = Math.max(...combined.closedCandles(s));
      expect(last, s).toBeGreaterThanOrEqual(Math.floor(sentBefore / 1000) * 1000 - 2000);
    }
    const log = d.output.join('');
    expect(log).toMatch(/"phase":"stopped"/);
  }, 60_000);

  it('exits non-zero at once on a second signal', async () => {
    sim = await BinanceSimulator.start({ openUpdateMs: 100 });
    const [relayPort, httpPort] = [await freePort(), await freePort()];
    const d = spawnDaemon({
      CONNECTOR_BINANCE_WS_URL: sim.wsUrl,
      CONNECTOR_BINANCE_REST_URL: sim.restUrl,
      CONNECTOR_RELAY_HOST: '127.0.0.1',
      CONNECTOR_RELAY_PORT: String(relayPort),
      CONNECTOR_HEALTH_CHECK_HOST: '127.0.0.1',
      CONNECTOR_WSS_HEALTH_CHECK_PORT: String(httpPort),
      CONNECTOR_SHUTDOWN_GRACE_MS: '30000',
    });
    child = d.proc;
    await until(() => d.output.join('').includes('"phase":"started"'), 'daemon start', 20_000);
    // A relay client that never completes its close handshake keeps the first shutdown busy.
    const stuck = new RecordingClient(`ws://127.0.0.1:${relayPort}/ws`);
    await stuck.opened;
    (stuck.ws as unknown as { _socket: { pause(): void } })._socket.pause();
    process.kill(d.proc.pid!, 'SIGTERM');
    await until(() => d.output.join('').includes('"phase":"draining"'), 'draining', 5000);
    process.kill(d.proc.pid!, 'SIGTERM');
    const code = await d.exited;
    expect(code).not.toBe(0);
    expect(d.output.join('')).toMatch(/second signal/);
  }, 40_000);
});
