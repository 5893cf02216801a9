/**
 * Seed-era configuration (issue 11 point 5, contract §2): the original v0.2 connector's `.env.example`
 * starts the spawned daemon, through the real .env → preset → environment path.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { ChildProcess } from 'node:child_process';
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { BinanceSimulator } from '../../src/venues/binance/simulator/server.ts';
import { RecordingClient, until } from './harness.ts';
import { freePort, ROOT, spawnDaemon } from './spawn.ts';

const FIXTURE = path.join(ROOT, 'test/fixtures/v0.2.env');

let child: ChildProcess | undefined;
let sim: BinanceSimulator | undefined;
let dir: string | undefined;

afterEach(async () => {
  if (child?.exitCode === null && child.pid !== undefined) process.kill(child.pid, 'SIGKILL');
  child = undefined;
  await sim?.close();
  sim = undefined;
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  dir = undefined;
});

/** A directory holding the v0.2 `.env.example` as its `.env`, the way an operator upgrading would have it. */
function seedDir(): string {
  dir = mkdtempSync(path.join(tmpdir(), 'seed-env-'));
  copyFileSync(FIXTURE, path.join(dir, '.env'));
  return dir;
}

async function getReady(port: number): Promise<{ status: number; body: { queues?: { open?: { capacity?: number } } } }> {
  const res = await fetch(`http://127.0.0.1:${port}/ready`);
  return { status: res.status, body: (await res.json()) as { queues?: { open?: { capacity?: number } } } };
}

describe('seed-era (v0.2) configuration', () => {
  it('starts the daemon from the v0.2 .env.example and gets /ready 200, with no unknown-variable warning', async () => {
    sim = await BinanceSimulator.start({ openUpdateMs: 100 });
    const [relayPort, httpPort] = [await freePort(), await freePort()];
    const d = spawnDaemon({
      // Only where to connect and listen differs from the seed's file (the environment wins over .env).
      CONNECTOR_BINANCE_WS_URL: sim.wsUrl,
      CONNECTOR_BINANCE_REST_URL: sim.restUrl,
      CONNECTOR_RELAY_HOST: '127.0.0.1',
      CONNECTOR_RELAY_PORT: String(relayPort),
      CONNECTOR_HEALTH_CHECK_HOST: '127.0.0.1',
      CONNECTOR_WSS_HEALTH_CHECK_PORT: String(httpPort),
    }, seedDir());
    child = d.proc;
    await until(() => d.output.join('').includes('"phase":"started"') || d.proc.exitCode !== null, 'daemon start', 20_000);
    expect(d.proc.exitCode, d.output.join('')).toBeNull();

    let ready = { status: 0, body: {} as Awaited<ReturnType<typeof getReady>>['body'] };
    const deadline = Date.now() + 15_000;
    while (ready.status !== 200 && Date.now() < deadline) {
      ready = await getReady(httpPort).catch(() => ready);
      if (ready.status !== 200) await new Promise((r) => setTimeout(r, 100));
    }
    expect(ready.status, d.output.join('')).toBe(200);
    // CONNECTOR_OPEN_QUEUE_MAXSIZE=0: one slot per configured stream (2 here), so no open update is ever evicted.
    expect(ready.body.queues?.open?.capacity).toBe(2);

    process.kill(d.proc.pid!, 'SIGTERM');
    expect(await d.exited).toBe(0);
    const output = d.output.join('');
    expect(output).not.toMatch(/unknown variable/);
    // The one warning the seed earns is that its relay is open (it had no token); nothing else.
    const warnings = output.split('\n').filter((l) => l.includes('"event":"config.warning"'));
    expect(warnings.filter((l) => !l.includes('the relay accepts every client'))).toEqual([]);
    expect(output).not.toMatch(/config error/);
  }, 60_000);

  it('runs without the ops server when CONNECTOR_WSS_HEALTH_CHECK_ENABLED=false: the relay serves, nothing listens on the ops port', async () => {
    sim = await BinanceSimulator.start({ openUpdateMs: 100 });
    const [relayPort, httpPort] = [await freePort(), await freePort()];
    const d = spawnDaemon({
      CONNECTOR_BINANCE_WS_URL: sim.wsUrl,
      CONNECTOR_BINANCE_REST_URL: sim.restUrl,
      CONNECTOR_RELAY_HOST: '127.0.0.1',
      CONNECTOR_RELAY_PORT: String(relayPort),
      CONNECTOR_HEALTH_CHECK_HOST: '127.0.0.1',
      CONNECTOR_WSS_HEALTH_CHECK_PORT: String(httpPort),
      CONNECTOR_WSS_HEALTH_CHECK_ENABLED: 'false',
    }, seedDir());
    child = d.proc;
    await until(() => d.output.join('').includes('"phase":"started"') || d.proc.exitCode !== null, 'daemon start', 20_000);
    expect(d.proc.exitCode, d.output.join('')).toBeNull();

    const client = new RecordingClient(`ws://127.0.0.1:${relayPort}/stream?streams=btcusdt@kline_1m`);
    await client.opened;
    await until(() => client.messages.length > 0, 'a kline event through the relay', 15_000);
    client.ws.close();

    const health = await fetch(`http://127.0.0.1:${httpPort}/health`).then(
      (r) => `http ${r.status}`,
      (err: unknown) => `error ${((err as { cause?: NodeJS.ErrnoException }).cause?.code ?? String(err))}`,
    );
    expect(health).toBe('error ECONNREFUSED');

    process.kill(d.proc.pid!, 'SIGTERM');
    expect(await d.exited).toBe(0);
    const output = d.output.join('');
    expect(output).not.toMatch(/unknown variable/);
  }, 60_000);
});
