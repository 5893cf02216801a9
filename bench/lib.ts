/** Shared pieces of the soak and the benchmark: the forked daemon, IPC request/response, statistics. */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { DaemonArgs, DaemonMessage, DaemonSample } from './daemon.ts';

export const here = (name: string): string => fileURLToPath(new URL(name, import.meta.url));

/** A forked bench/daemon.ts: one request in flight at a time (the replies carry no id). */
export class DaemonProcess {
  readonly child: ChildProcess;
  relayPort = 0;
  httpPort = 0;
  #waiting: ((m: DaemonMessage) => void) | undefined;
  #exited: Promise<number | null>;

  private constructor(child: ChildProcess) {
    this.child = child;
    this.#exited = new Promise((resolve) => child.once('exit', (code) => { resolve(code); }));
    child.on('message', (m: unknown) => {
      const w = this.#waiting;
      this.#waiting = undefined;
      w?.(m as DaemonMessage);
    });
  }

  static async start(args: DaemonArgs, execArgv: readonly string[] = []): Promise<DaemonProcess> {
    const child = fork(here('./daemon.ts'), [JSON.stringify(args)], {
      execArgv: ['--expose-gc', ...execArgv],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    const d = new DaemonProcess(child);
    const ready = await d.#next(30_000, 'daemon ready');
    if (ready.type !== 'ready') throw new Error(`daemon: unexpected ${ready.type}`);
    d.relayPort = ready.relayPort;
    d.httpPort = ready.httpPort;
    return d;
  }

  #next(timeoutMs: number, what: string): Promise<DaemonMessage> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiting = undefined;
        reject(new Error(`timed out waiting for ${what}`));
      }, timeoutMs);
      const onExit = (code: number | null): void => {
        clearTimeout(timer);
        reject(new Error(`daemon exited (${code}) while waiting for ${what}`));
      };
      this.child.once('exit', onExit);
      this.#waiting = (m) => {
        clearTimeout(timer);
        this.child.off('exit', onExit);
        resolve(m);
      };
    });
  }

  async sample(gc = false): Promise<DaemonSample> {
    const p = this.#next(30_000, 'sample');
    this.child.send({ type: 'sample', gc });
    const m = await p;
    if (m.type !== 'sample') throw new Error(`daemon: unexpected ${m.type}`);
    return m;
  }

  async reset(): Promise<void> {
    const p = this.#next(30_000, 'reset');
    this.child.send({ type: 'reset' });
    await p;
  }

  async stop(timeoutMs = 15_000): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.child.send({ type: 'stop' });
    const timer = setTimeout(() => this.child.kill('SIGKILL'), timeoutMs);
    await this.#exited;
    clearTimeout(timer);
  }
}

/** Least-squares slope of y over x. */
export function slope(xs: readonly number[], ys: readonly number[]): number {
  const n = xs.length;
  if (n < 2) return 0;
  let sx = 0;
  let sy = 0;
  for (let i = 0; i < n; i++) {
    sx += xs[i]!;
    sy += ys[i]!;
  }
  const mx = sx / n;
  const my = sy / n;
  let num = 0;
  let den = 0;
  for (let i = 0; i < n; i++) {
    const dx = xs[i]! - mx;
    num += dx * (ys[i]! - my);
    den += dx * dx;
  }
  return den === 0 ? 0 : num / den;
}

export function median(values: readonly number[]): number {
  if (values.length === 0) return NaN;
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

export const MB = 1024 * 1024;
export const round = (v: number, digits = 2): number => Math.round(v * 10 ** digits) / 10 ** digits;
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** `count` synthetic lower-case symbols (the simulator and the flood serve any name). */
export function benchSymbols(count: number): string[] {
  const out: string[] = [];
  for (let i = 0; i < count; i++) out.push(`s${i.toString(36).padStart(3, '0')}usdt`);
  return out;
}

export function argValue(argv: readonly string[], name: string): string | undefined {
  const i = argv.indexOf(name);
  if (i !== -1) return argv[i + 1];
  const eq = argv.find((a) => a.startsWith(`${name}=`));
  return eq?.slice(name.length + 1);
}
