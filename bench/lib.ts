/** Shared pieces of the soak and the benchmark: the forked daemon, IPC request/response, statistics. */
import { fork, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { DaemonArgs, DaemonSample } from './daemon.ts';

export const here = (name: string): string => fileURLToPath(new URL(name, import.meta.url));

/**
 * A forked helper process speaking a tiny IPC protocol: it sends `{type:'ready', …}` once, then answers
 * each request with exactly one message. One request in flight at a time (replies carry no id).
 */
export class Forked<Ready extends { type: string } = { type: 'ready' }> {
  readonly child: ChildProcess;
  ready!: Ready;
  #waiting: ((m: { type: string }) => void) | undefined;
  readonly #exited: Promise<number | null>;

  private constructor(child: ChildProcess) {
    this.child = child;
    this.#exited = new Promise((resolve) => child.once('exit', (code) => {
      resolve(code);
    }));
    child.on('message', (m: unknown) => {
      const w = this.#waiting;
      this.#waiting = undefined;
      w?.(m as { type: string });
    });
  }

  static async start<R extends { type: string }>(file: string, args: unknown, execArgv: readonly string[] = []): Promise<Forked<R>> {
    const child = fork(here(file), args === undefined ? [] : [JSON.stringify(args)], {
      execArgv: [...execArgv],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    const f = new Forked<R>(child);
    try {
      f.ready = (await f.#next(30_000, `${file} ready`)) as R;
    } catch (err) {
      child.kill('SIGKILL');
      throw err;
    }
    return f;
  }

  #next(timeoutMs: number, what: string): Promise<{ type: string }> {
    return new Promise((resolve, reject) => {
      const onExit = (code: number | null): void => {
        clearTimeout(timer);
        this.#waiting = undefined;
        reject(new Error(`child exited (${code}) while waiting for ${what}`));
      };
      const timer = setTimeout(() => {
        this.#waiting = undefined;
        this.child.off('exit', onExit);
        reject(new Error(`timed out waiting for ${what}`));
      }, timeoutMs);
      this.child.once('exit', onExit);
      this.#waiting = (m) => {
        clearTimeout(timer);
        this.child.off('exit', onExit);
        resolve(m);
      };
    });
  }

  async request<T>(msg: { type: string } & Record<string, unknown>, timeoutMs = 30_000): Promise<T> {
    const p = this.#next(timeoutMs, msg.type);
    this.child.send(msg);
    const reply = await p;
    if (reply.type !== msg.type) throw new Error(`expected a ${msg.type} reply, got ${reply.type}`);
    return reply as T;
  }

  /** Ask it to stop; SIGKILL (by its pid) if it has not exited within timeoutMs. */
  async stop(timeoutMs = 15_000): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    if (this.child.connected) this.child.send({ type: 'stop' });
    const timer = setTimeout(() => this.child.kill('SIGKILL'), timeoutMs);
    await this.#exited;
    clearTimeout(timer);
  }
}

/**
 * The node flags the shipped launcher (bin/kline-connector, run by `npm start` and the image) passes,
 * read from it so a bench daemon run from the sources cannot drift from what ships.
 */
export function shippedNodeFlags(): string[] {
  const m = /^exec node ((?:--\S+ )*)"/m.exec(readFileSync(here('../bin/kline-connector'), 'utf8'));
  if (m === null) throw new Error('bin/kline-connector: no `exec node --flag… "…/dist/daemon/main.js"` line');
  return m[1]!.trim().split(/\s+/);
}

/** A forked bench/daemon.ts (node --expose-gc, plus the flags the launcher ships: shippedNodeFlags). */
export class DaemonProcess {
  readonly #f: Forked<{ type: 'ready'; relayPort: number; httpPort: number }>;
  readonly relayPort: number;
  readonly httpPort: number;

  private constructor(f: Forked<{ type: 'ready'; relayPort: number; httpPort: number }>) {
    this.#f = f;
    this.relayPort = f.ready.relayPort;
    this.httpPort = f.ready.httpPort;
  }

  get child(): ChildProcess {
    return this.#f.child;
  }

  static async start(args: DaemonArgs, execArgv: readonly string[] = []): Promise<DaemonProcess> {
    return new DaemonProcess(await Forked.start('./daemon.ts', args, ['--expose-gc', ...shippedNodeFlags(), ...execArgv]));
  }

  sample(gc = false): Promise<DaemonSample> {
    return this.#f.request<DaemonSample>({ type: 'sample', gc });
  }

  async reset(): Promise<void> {
    await this.#f.request({ type: 'reset' });
  }

  stop(timeoutMs = 15_000): Promise<void> {
    return this.#f.stop(timeoutMs);
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
