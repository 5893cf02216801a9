/**
 * The shipped form: `npm run build` bundles the daemon into dist/daemon/ (bin/build.ts), and
 * bin/kline-connector runs that bundle (`npm start`, the image's CMD). Built here for real and run
 * through the launcher, so what these tests see is what a user's `npm ci && npm start` runs: the
 * config presets and package.json found from the bundle's own location, exit codes, candles through
 * the relay, a graceful stop.
 */
import { execFile } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { BinanceSimulator } from '../../src/venues/binance/simulator/server.ts';
import { audit, RecordingClient, until } from '../e2e/harness.ts';
import { ROOT, freePort, spawnDaemon, type SpawnedDaemon } from '../e2e/spawn.ts';

const DIST = path.join(ROOT, 'dist/daemon');
let daemon: SpawnedDaemon | undefined;
let sim: BinanceSimulator | undefined;

beforeAll(async () => {
  await new Promise<void>((resolve, reject) => {
    execFile(process.execPath, [path.join(ROOT, 'bin/build.ts')], { cwd: ROOT }, (err, _stdout, stderr) => {
      if (err !== null) reject(new Error(`node bin/build.ts failed: ${err.message}\n${stderr}`));
      else resolve();
    });
  });
}, 60_000);

afterEach(async () => {
  const pid = daemon?.proc.pid;
  if (daemon?.proc.exitCode === null && pid !== undefined) process.kill(pid, 'SIGKILL');
  daemon = undefined;
  await sim?.close();
  sim = undefined;
});

function output(d: SpawnedDaemon): string {
  return d.output.join('');
}

describe('the shipped bundle (npm run build, bin/kline-connector)', () => {
  it('is one entry point with its chunks beside it, and does not load the NATS client unless a JetStream sink is configured', () => {
    const files = readdirSync(DIST);
    expect(files).toContain('main.js');
    expect(files).toContain('main.js.map');
    // The JetStream sink (and with it @nats-io) is a chunk of its own, reached only by a dynamic import.
    const jetstream = files.filter((f) => /^jetstream-.*\.js$/.test(f));
    expect(jetstream).toHaveLength(1);
    const eager = files.filter((f) => f.endsWith('.js') && !jetstream.includes(f)).map((f) => readFileSync(path.join(DIST, f), 'utf8'));
    expect(eager.some((text) => text.includes('@nats-io') || /Nats-Expected-Last-Subject-Sequence/.test(text))).toBe(false);
    // The packages are inside it: nothing imports fastify, ws, pino, zod or prom-client from node_modules at run time.
    for (const text of eager) expect(text).not.toMatch(/\bfrom\s*["'](fastify|ws|pino|zod|prom-client)["']/);
  });

  it('exits 78 naming the variable for a bad value, and finds the config presets from its own location', async () => {
    daemon = spawnDaemon({ CONNECTOR_RELAY_PORT: 'not-a-port' }, ROOT, true);
    expect(await daemon.exited).toBe(78);
    expect(output(daemon)).toMatch(/config error: CONNECTOR_RELAY_PORT/);

    // config/staging.json sets CONNECTOR_REQUIRE_TLS=true: a ws:// venue URL is refused only if the preset was read.
    daemon = spawnDaemon({ CONNECTOR_ENV: 'staging', CONNECTOR_BINANCE_WS_URL: 'ws://127.0.0.1:1' }, ROOT, true);
    expect(await daemon.exited).toBe(78);
    expect(output(daemon)).toMatch(/CONNECTOR_BINANCE_WS_URL.*must be wss:\/\/ when CONNECTOR_REQUIRE_TLS=true/);
  });

  it('serves /health and /metrics with the package version, relays every closed candle once and in order, and stops with exit 0 on SIGTERM', async () => {
    expect(existsSync(path.join(DIST, 'main.js'))).toBe(true);
    sim = await BinanceSimulator.start({ openUpdateMs: 200 });
    const [relayPort, httpPort] = [await freePort(), await freePort()];
    const symbols = ['btcusdt', 'ethusdt', 'bnbusdt'];
    daemon = spawnDaemon(
      {
        CONNECTOR_BINANCE_WS_URL: sim.wsUrl,
        CONNECTOR_BINANCE_REST_URL: sim.restUrl,
        CONNECTOR_SYMBOLS: symbols.join(','),
        CONNECTOR_INTERVALS: '1s',
        CONNECTOR_RELAY_HOST: '127.0.0.1',
        CONNECTOR_RELAY_PORT: String(relayPort),
        CONNECTOR_HEALTH_CHECK_HOST: '127.0.0.1',
        CONNECTOR_WSS_HEALTH_CHECK_PORT: String(httpPort),
        CONNECTOR_LOG_LEVEL: 'info',
      },
      ROOT,
      true,
    );
    const d = daemon;
    await until(() => output(d).includes('"phase":"started"') || d.proc.exitCode !== null, 'daemon start', 20_000);
    expect(d.proc.exitCode, output(d)).toBeNull();
    const health = await fetch(`http://127.0.0.1:${httpPort}/health`);
    expect(health.status).toBe(200);
    const { version } = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string };
    const metrics = await (await fetch(`http://127.0.0.1:${httpPort}/metrics`)).text();
    expect(metrics).toMatch(new RegExp(`^connector_build_info\\{[^}]*version="${version.replace(/\./g, '\\.')}"`, 'm'));

    const streams = symbols.map((s) => `${s}@kline_1s`);
    const client = new RecordingClient(`ws://127.0.0.1:${relayPort}/stream?streams=${streams.join('/')}`);
    await client.opened;
    await until(() => streams.every((s) => client.closedCandles(s).length >= 3), 'three closed candles on every stream', 15_000);
    for (const s of streams) expect(audit(client, s, 1000), s).toMatchObject({ missing: 0, duplicated: 0, outOfOrder: 0, wrong: 0 });

    process.kill(d.proc.pid!, 'SIGTERM');
    expect(await d.exited).toBe(0);
    expect(await client.closedP).toBe(1001);
  }, 60_000);
});
