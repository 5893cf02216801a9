/**
 * `npm run demo` as a user runs it (src/demo/main.ts, a real process stopped by its pid): the bundled
 * simulators, the daemon and the sample consumer, with no network; `--venues` takes any registered
 * venues, `--nats` a local nats-server.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { NATS_SERVER_MISSING } from '../helpers/nats-server.ts';
import { ROOT } from './spawn.ts';

let procs: ChildProcess[] = [];
afterEach(() => {
  for (const p of procs) if (p.pid !== undefined && p.exitCode === null && p.signalCode === null) process.kill(p.pid, 'SIGKILL');
  procs = [];
});

/** Runs the demo for `seconds` (its own timer stops it) and resolves with its exit code and output. */
function demo(args: readonly string[]): Promise<{ code: number | null; out: string }> {
  const proc = spawn(process.execPath, [path.join(ROOT, 'src/demo/main.ts'), ...args], {
    cwd: ROOT,
    // Port 0 for both listeners: tests run side by side.
    env: { PATH: process.env.PATH ?? '', CONNECTOR_RELAY_PORT: '0', CONNECTOR_WSS_HEALTH_CHECK_PORT: '0' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  procs.push(proc);
  let out = '';
  proc.stdout.on('data', (d: Buffer) => (out += d.toString('utf8')));
  proc.stderr.on('data', (d: Buffer) => (out += d.toString('utf8')));
  return new Promise((resolve) => proc.once('exit', (code) => { resolve({ code, out }); }));
}

describe('npm run demo', () => {
  it('runs the daemon against the bundled simulator, prints closed candles from the relay, and stops by itself, drained', async () => {
    const { code, out } = await demo(['--seconds', '6']);
    expect(code, out).toBe(0);
    expect(out).toMatch(/^closed BTCUSDT +1s /m);
    expect(out).toContain('demo: stopped (drained)');
  }, 30_000);

  it('refuses a venue it has no simulator for, naming the ones it has', async () => {
    const { code, out } = await demo(['--venues', 'binance,orangex', '--seconds', '2']);
    expect(code).toBe(64);
    expect(out).toMatch(/unknown venue orangex; known: binance, binance-usdm, .*pionex/);
  }, 30_000);

  it.skipIf(NATS_SERVER_MISSING !== undefined)('with --nats, publishes to a local nats-server and prints what a JetStream reader gets back', async () => {
    const { code, out } = await demo(['--nats', '--seconds', '8']);
    expect(code, out).toBe(0);
    expect(out).toMatch(/^nats: candles\.binance\.BTCUSDT\.1s /m);
  }, 30_000);
});
