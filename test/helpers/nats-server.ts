/**
 * A real `nats-server -js` for the tests that need a broker (never a mock): started on a free loopback
 * port with its own store directory, awaited until it accepts connections, stopped by its pid. A
 * restart keeps the port and the store, as a broker pod restarting on its volume would.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect as tcpConnect } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { freePort } from '../e2e/spawn.ts';

/** Undefined when the binary is on PATH; otherwise why the broker tests are skipped. */
export const NATS_SERVER_MISSING: string | undefined =
  spawnSync('nats-server', ['--version'], { stdio: 'ignore' }).status === 0 ? undefined : 'nats-server is not on PATH (Debian package nats-server; .ci/run installs it)';

export class NatsServer {
  readonly port: number;
  readonly storeDir: string;
  readonly output: string[] = [];
  #proc: ChildProcess | undefined;

  private constructor(port: number, storeDir: string) {
    this.port = port;
    this.storeDir = storeDir;
  }

  static async start(): Promise<NatsServer> {
    const server = new NatsServer(await freePort(), mkdtempSync(path.join(tmpdir(), 'nats-js-')));
    await server.restart();
    return server;
  }

  get url(): string {
    return `nats://127.0.0.1:${this.port}`;
  }

  get pid(): number | undefined {
    return this.#proc?.pid;
  }

  /** Starts the server (again) on the same port and store, and resolves once it accepts connections. */
  async restart(): Promise<void> {
    if (this.#proc !== undefined) throw new Error('nats-server is already running');
    const proc = spawn('nats-server', ['-js', '-sd', this.storeDir, '-a', '127.0.0.1', '-p', String(this.port)], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.#proc = proc;
    const keep = (d: Buffer): void => {
      this.output.push(d.toString('utf8'));
    };
    proc.stdout.on('data', keep);
    proc.stderr.on('data', keep);
    const deadline = Date.now() + 10_000;
    for (;;) {
      if (proc.exitCode !== null) throw new Error(`nats-server exited with ${String(proc.exitCode)}: ${this.output.join('')}`);
      // JetStream is ready once the log says so; the port accepting alone may precede it.
      if ((await accepts(this.port)) && this.output.join('').includes('Server is ready')) return;
      if (Date.now() > deadline) throw new Error(`nats-server did not accept on :${this.port} within 10 s: ${this.output.join('')}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** Stops the server by its pid (SIGTERM, then SIGKILL after 5 s) and resolves once it has exited. */
  async stop(): Promise<void> {
    const proc = this.#proc;
    if (proc === undefined) return;
    this.#proc = undefined;
    if (proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => {
      proc.once('exit', () => {
        resolve();
      });
    });
    if (proc.pid !== undefined) process.kill(proc.pid, 'SIGTERM');
    const timer = setTimeout(() => {
      if (proc.pid !== undefined && proc.exitCode === null) process.kill(proc.pid, 'SIGKILL');
    }, 5000);
    await exited;
    clearTimeout(timer);
  }

  /** Stops it and removes its store. */
  async dispose(): Promise<void> {
    await this.stop();
    rmSync(this.storeDir, { recursive: true, force: true });
  }
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = tcpConnect({ host: '127.0.0.1', port });
    sock.once('connect', () => {
      sock.destroy();
      resolve(true);
    });
    sock.once('error', () => {
      resolve(false);
    });
  });
}
