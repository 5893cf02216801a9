/**
 * Pieces of the abuse suite (bench/abuse.ts): the daemon as a spawned `node src/main.ts` with /proc
 * sampling, the well-behaved client, the newcomer probe, and crowds of attacking `ws` clients.
 *
 * Source addresses: everything connects to 127.0.0.1, from loopback source addresses (Linux routes all
 * of 127.0.0.0/8 to lo). The well-behaved client uses 127.0.0.2 and the probe 127.0.0.3, so a per-IP
 * limit aimed at an attacker never hits them by accident; attackers use 127.1.x.y (one address each)
 * unless an attack is about a single source address.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { request } from 'node:http';
import type { Duplex } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { WebSocket } from 'ws';

export const ROOT = fileURLToPath(new URL('../', import.meta.url));
export const GOOD_ADDRESS = '127.0.0.2';
export const PROBE_ADDRESS = '127.0.0.3';
export const MB = 1024 * 1024;

const now = (): number => performance.now();
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A function, not `signal.aborted` inline: TypeScript would narrow that to false inside a loop. */
export function isAborted(signal: AbortSignal): boolean {
  return signal.aborted;
}

/** Resolves when the signal aborts (at once if it already has). */
export function aborted(signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    signal.addEventListener(
      'abort',
      () => {
        resolve();
      },
      { once: true },
    );
  });
}

/** The i-th attacker's own loopback source address: 127.1.0.1, 127.1.0.2, … */
export function attackerAddress(i: number): string {
  return `127.1.${Math.floor(i / 250)}.${(i % 250) + 1}`;
}

// ---------------------------------------------------------------------------------------------
// Spawned processes

/** Every process the suite started, so a crash or Ctrl-C still kills each of them by its pid. */
export class Children {
  readonly #live = new Set<ChildProcess>();

  add(child: ChildProcess): void {
    this.#live.add(child);
    child.once('exit', () => this.#live.delete(child));
  }

  /** Synchronous, for 'exit' handlers: SIGKILL to each pid still running. */
  killAll(): void {
    for (const c of this.#live) {
      if (c.pid !== undefined && c.exitCode === null && c.signalCode === null) {
        try {
          process.kill(c.pid, 'SIGKILL');
        } catch {
          // already gone between the check and the kill: nothing left to do
        }
      }
    }
    this.#live.clear();
  }
}

export interface DaemonExit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

const TAIL_BYTES = 4096;

/**
 * `node <flags> src/main.ts` with a given environment. Its stdout (pino JSON lines) and stderr are read
 * continuously (a full pipe would block the daemon's synchronous log writes) and only counted and tailed.
 */
export class SpawnedDaemon {
  readonly child: ChildProcess;
  readonly pid: number;
  readonly exited: Promise<DaemonExit>;
  relayPort = 0;
  httpPort = 0;
  stdoutBytes = 0;
  stderrBytes = 0;
  exit: DaemonExit | undefined;
  #stdoutTail = '';
  #stderrTail = '';

  private constructor(child: ChildProcess) {
    if (child.pid === undefined) throw new Error('daemon did not spawn');
    this.child = child;
    this.pid = child.pid;
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        this.exit = { code, signal };
        resolve(this.exit);
      });
    });
    child.stdout?.on('data', (chunk: Buffer) => {
      this.stdoutBytes += chunk.length;
      this.#stdoutTail = (this.#stdoutTail + chunk.toString('utf8')).slice(-TAIL_BYTES);
    });
    child.stderr?.on('data', (chunk: Buffer) => {
      this.stderrBytes += chunk.length;
      this.#stderrTail = (this.#stderrTail + chunk.toString('utf8')).slice(-TAIL_BYTES);
    });
  }

  static async start(nodeFlags: readonly string[], env: Record<string, string>, children: Children): Promise<SpawnedDaemon> {
    const child = spawn(process.execPath, [...nodeFlags, 'src/main.ts'], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    children.add(child);
    const d = new SpawnedDaemon(child);
    // The lifecycle line `{"event":"lifecycle","phase":"started","detail":"relay :P, http :Q"}` names the ports.
    const started = new Promise<void>((resolve, reject) => {
      let buffered = '';
      const onData = (chunk: Buffer): void => {
        buffered += chunk.toString('utf8');
        const m = /"phase":"started","detail":"relay :(\d+), http :(\d+)"/.exec(buffered);
        if (m !== null) {
          d.relayPort = Number(m[1]);
          d.httpPort = Number(m[2]);
          child.stdout.off('data', onData);
          resolve();
        } else if (buffered.length > 1 << 20) buffered = buffered.slice(-4096);
      };
      child.stdout.on('data', onData);
      void d.exited.then((e) => {
        reject(new Error(`daemon exited before it started (code ${e.code}, signal ${e.signal}): ${d.stderrTail.trim().split('\n').slice(-3).join(' | ')}`));
      });
    });
    const timeout = sleep(30_000).then(() => {
      throw new Error('daemon did not start within 30 s');
    });
    try {
      await Promise.race([started, timeout]);
    } catch (err) {
      d.kill();
      throw err;
    }
    return d;
  }

  get alive(): boolean {
    return this.exit === undefined;
  }

  get stdoutTail(): string {
    return this.#stdoutTail;
  }

  get stderrTail(): string {
    return this.#stderrTail;
  }

  kill(): void {
    if (this.alive) this.child.kill('SIGKILL');
  }

  /** SIGTERM (graceful: drain, close relay clients), SIGKILL after `graceMs`. */
  async stop(graceMs = 20_000): Promise<DaemonExit> {
    if (this.exit !== undefined) return this.exit;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => {
      this.kill();
    }, graceMs);
    const e = await this.exited;
    clearTimeout(timer);
    return e;
  }
}

// ---------------------------------------------------------------------------------------------
// /proc sampling

const CLK_TCK = ((): number => {
  const r = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' });
  const n = Number(r.stdout.trim());
  return Number.isInteger(n) && n > 0 ? n : 100;
})();

interface ProcSample {
  readonly t: number;
  readonly rssBytes: number;
  /** utime + stime, in seconds. */
  readonly cpuSeconds: number;
}

function readProc(pid: number): { rssBytes: number; hwmBytes: number; cpuSeconds: number } | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const rss = /^VmRSS:\s+(\d+) kB/m.exec(status);
    const hwm = /^VmHWM:\s+(\d+) kB/m.exec(status);
    // Fields after "(comm) ": state ppid pgrp session tty_nr tpgid flags minflt cminflt majflt cmajflt utime stime
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[11]) + Number(fields[12]);
    if (rss === null || !Number.isFinite(ticks)) return undefined;
    return { rssBytes: Number(rss[1]) * 1024, hwmBytes: Number(hwm?.[1] ?? rss[1]) * 1024, cpuSeconds: ticks / CLK_TCK };
  } catch {
    // The process is gone (or a zombie without status): the sampler stops on its own.
    return undefined;
  }
}

/** VmRSS and CPU ticks of one pid every `intervalMs`, from /proc (the daemon's own figures, not the suite's). */
export class ProcSampler {
  readonly #pid: number;
  readonly #samples: ProcSample[] = [];
  readonly #timer: NodeJS.Timeout;
  hwmBytes = 0;

  constructor(pid: number, intervalMs = 250) {
    this.#pid = pid;
    this.#sample();
    this.#timer = setInterval(() => {
      this.#sample();
    }, intervalMs);
  }

  #sample(): void {
    const p = readProc(this.#pid);
    if (p === undefined) {
      clearInterval(this.#timer);
      return;
    }
    this.hwmBytes = Math.max(this.hwmBytes, p.hwmBytes);
    this.#samples.push({ t: now(), rssBytes: p.rssBytes, cpuSeconds: p.cpuSeconds });
  }

  stop(): void {
    clearInterval(this.#timer);
  }

  /** Peak and start RSS, mean CPU % and the highest CPU % over any ~1 s between `from` and `to`. */
  window(from: number, to: number): { rssStartBytes: number; peakRssBytes: number; cpuAvgPct: number; cpuMaxPct: number } {
    const s = this.#samples.filter((x) => x.t >= from - 300 && x.t <= to + 300);
    if (s.length === 0) return { rssStartBytes: 0, peakRssBytes: 0, cpuAvgPct: 0, cpuMaxPct: 0 };
    const first = s[0]!;
    const last = s[s.length - 1]!;
    let peak = 0;
    for (const x of s) peak = Math.max(peak, x.rssBytes);
    const pct = (a: ProcSample, b: ProcSample): number => (b.t > a.t ? ((b.cpuSeconds - a.cpuSeconds) / ((b.t - a.t) / 1000)) * 100 : 0);
    let max = 0;
    let j = 0;
    for (let i = 1; i < s.length; i++) {
      while (j < i && s[i]!.t - s[j + 1]!.t >= 1000) j++;
      if (s[i]!.t - s[j]!.t >= 900) max = Math.max(max, pct(s[j]!, s[i]!));
    }
    const avg = pct(first, last);
    // A window shorter than a second has no 1-s interval: its maximum is its mean.
    return { rssStartBytes: first.rssBytes, peakRssBytes: peak, cpuAvgPct: avg, cpuMaxPct: Math.max(max, avg) };
  }
}

// ---------------------------------------------------------------------------------------------
// HTTP

export function httpGet(port: number, path: string, timeoutMs = 3000): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, agent: false, timeout: timeoutMs }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => {
        resolve({ status: res.statusCode ?? 0, body });
      });
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${path}: no answer within ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end();
  });
}

/** Sum of every sample of one metric in Prometheus text (all label sets). */
export function metricValue(text: string, name: string): number | undefined {
  let sum: number | undefined;
  for (const m of text.matchAll(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'gm'))) sum = (sum ?? 0) + Number(m[1]);
  return sum;
}

// ---------------------------------------------------------------------------------------------
// The well-behaved client

interface StreamTrack {
  lastArrival: number;
  lastOpenTime: number;
  count: number;
}

export interface GoodClientStats {
  /** The longest wait between two closed candles of one stream (or until the window's end). */
  longestGapMs: number;
  closedSeen: number;
  /** Closed candles whose open time was skipped (a later one arrived first). */
  missed: number;
  duplicates: number;
  cuts: Array<{ code: number; reason: string }>;
  controlRttMaxMs: number;
  controlTimeouts: number;
}

/**
 * Subscribed to a few 1s streams on /stream, reads everything, sends LIST_SUBSCRIPTIONS every 2 s and
 * times the answer. Reconnects when cut, and counts the cut.
 */
export class GoodClient {
  readonly #url: string;
  readonly #streams: readonly string[];
  readonly #tracks = new Map<string, StreamTrack>();
  #ws: WebSocket | undefined;
  #stopped = false;
  #windowStart: number | undefined;
  #windowEnd: number | undefined;
  #gaps = 0;
  #closedSeen = 0;
  #missed = 0;
  #duplicates = 0;
  #cuts: Array<{ code: number; reason: string }> = [];
  #rttMax = 0;
  #rttTimeouts = 0;
  #pendingRtt: { id: number; at: number } | undefined;
  #nextId = 1;
  readonly #pinger: NodeJS.Timeout;
  connected = false;

  constructor(relayPort: number, streams: readonly string[]) {
    this.#url = `ws://127.0.0.1:${relayPort}/stream?streams=${streams.join('/')}`;
    this.#streams = streams;
    this.#connect();
    this.#pinger = setInterval(() => {
      this.#control();
    }, 2000);
  }

  #connect(): void {
    if (this.#stopped) return;
    const ws = new WebSocket(this.#url, { localAddress: GOOD_ADDRESS, perMessageDeflate: false });
    this.#ws = ws;
    ws.on('open', () => {
      this.connected = true;
    });
    ws.on('message', (data: Buffer) => {
      this.#onMessage(data);
    });
    ws.on('error', () => {
      // followed by 'close', which reconnects
    });
    ws.on('close', (code: number, reason: Buffer) => {
      const wasOpen = this.connected;
      this.connected = false;
      this.#pendingRtt = undefined;
      if (this.#stopped) return;
      if (wasOpen) this.#cuts.push({ code, reason: reason.toString('utf8') });
      setTimeout(() => {
        this.#connect();
      }, 500).unref();
    });
  }

  #control(): void {
    const ws = this.#ws;
    if (ws === undefined || !this.connected) return;
    if (this.#pendingRtt !== undefined) {
      // No answer within 2 s: counted, and the wait goes on counting toward the max.
      this.#rttTimeouts++;
      this.#rttMax = Math.max(this.#rttMax, now() - this.#pendingRtt.at);
      return;
    }
    const id = this.#nextId++;
    this.#pendingRtt = { id, at: now() };
    ws.send(JSON.stringify({ method: 'LIST_SUBSCRIPTIONS', id }));
  }

  #onMessage(data: Buffer): void {
    const t = now();
    let msg: { id?: unknown; stream?: unknown; data?: { k?: { t?: unknown; x?: unknown } } };
    try {
      msg = JSON.parse(data.toString('utf8')) as typeof msg;
    } catch {
      // the relay only sends JSON; a bad frame would be a relay bug, visible as a gap
      return;
    }
    if (msg.id !== undefined) {
      if (this.#pendingRtt !== undefined && msg.id === this.#pendingRtt.id) {
        if (this.#inWindow(t)) this.#rttMax = Math.max(this.#rttMax, t - this.#pendingRtt.at);
        this.#pendingRtt = undefined;
      }
      return;
    }
    const k = msg.data?.k;
    if (typeof msg.stream !== 'string' || k?.x !== true || typeof k.t !== 'number') return;
    let track = this.#tracks.get(msg.stream);
    if (track === undefined) {
      track = { lastArrival: t, lastOpenTime: k.t, count: 1 };
      this.#tracks.set(msg.stream, track);
      return;
    }
    if (this.#inWindow(t)) {
      this.#closedSeen++;
      this.#gaps = Math.max(this.#gaps, t - track.lastArrival);
      if (k.t <= track.lastOpenTime) this.#duplicates++;
      else if (k.t > track.lastOpenTime + 1000) this.#missed += Math.round((k.t - track.lastOpenTime) / 1000) - 1;
    }
    track.lastArrival = t;
    track.lastOpenTime = Math.max(track.lastOpenTime, k.t);
    track.count++;
  }

  #inWindow(t: number): boolean {
    return this.#windowStart !== undefined && t >= this.#windowStart && (this.#windowEnd === undefined || t <= this.#windowEnd);
  }

  /** Until every stream has delivered `n` closed candles (the relay path is warm), or `timeoutMs`. */
  async warm(n: number, timeoutMs: number): Promise<boolean> {
    const deadline = now() + timeoutMs;
    while (now() < deadline) {
      if (this.#streams.every((s) => (this.#tracks.get(s)?.count ?? 0) >= n)) return true;
      await sleep(200);
    }
    return false;
  }

  startWindow(): void {
    this.#windowStart = now();
    this.#windowEnd = undefined;
  }

  endWindow(): GoodClientStats {
    const end = now();
    this.#windowEnd = end;
    let longest = this.#gaps;
    for (const s of this.#streams) {
      const tr = this.#tracks.get(s);
      longest = Math.max(longest, end - (tr?.lastArrival ?? this.#windowStart ?? end));
    }
    return {
      longestGapMs: longest,
      closedSeen: this.#closedSeen,
      missed: this.#missed,
      duplicates: this.#duplicates,
      cuts: [...this.#cuts],
      controlRttMaxMs: this.#rttMax,
      controlTimeouts: this.#rttTimeouts,
    };
  }

  close(): void {
    this.#stopped = true;
    clearInterval(this.#pinger);
    this.#ws?.terminate();
  }
}

// ---------------------------------------------------------------------------------------------
// The newcomer probe

/** Can a client from an uninvolved address still get in? `ok`, `http <status>`, `timeout` or `error`. */
export function probeConnect(relayPort: number, timeoutMs = 5000): Promise<string> {
  return new Promise((resolve) => {
    const ws = new WebSocket(`ws://127.0.0.1:${relayPort}/ws/s000usdt@kline_1s`, { localAddress: PROBE_ADDRESS, perMessageDeflate: false, handshakeTimeout: timeoutMs });
    const done = (outcome: string): void => {
      clearTimeout(timer);
      ws.removeAllListeners();
      ws.on('error', () => {
        // terminated below; nothing to report any more
      });
      ws.terminate();
      resolve(outcome);
    };
    const timer = setTimeout(() => {
      done('timeout');
    }, timeoutMs + 500);
    ws.once('open', () => {
      done('ok');
    });
    ws.once('unexpected-response', (req, res) => {
      req.destroy();
      done(`http ${res.statusCode ?? 0}`);
    });
    ws.once('error', (err: Error) => {
      done(/timeout/i.test(err.message) ? 'timeout' : 'error');
    });
  });
}

// ---------------------------------------------------------------------------------------------
// Attackers

export interface CrowdStats {
  /** Upgrades that succeeded (each reconnect counts). */
  opened: number;
  /** Upgrades refused, by HTTP status. */
  rejected: Record<string, number>;
  /** Open connections that ended while the attack ran or in the drain after it (see Crowd.drain). */
  cut: number;
  /** The same, by close code (1006: reset without a close frame). */
  closedSeen: Record<string, number>;
  errors: number;
  /** Most connections open at once. */
  maxOpen: number;
}

export interface AttackerOptions {
  readonly localAddress?: string;
  /** Never read: ws.pause() stops reading the socket, so the relay's bytes for it pile up. */
  readonly pause?: boolean;
  /** Open again 250 ms after a cut or refusal, as a persistent attacker would. */
  readonly reconnect?: boolean;
  /** Called on every successful open with the socket underneath the ws client. */
  readonly onOpen?: (ws: WebSocket, socket: Duplex, crowd: Crowd) => void;
}

/** A set of attacking ws clients with their own timers; stop() ends all of them. */
export class Crowd {
  readonly stats: CrowdStats = { opened: 0, rejected: {}, cut: 0, closedSeen: {}, errors: 0, maxOpen: 0 };
  readonly #open = new Set<WebSocket>();
  readonly #all = new Set<WebSocket>();
  readonly #timers = new Map<WebSocket, NodeJS.Timeout[]>();
  #running = true;
  #counting = true;
  readonly #paused = new Set<WebSocket>();

  get running(): boolean {
    return this.#running;
  }

  get openCount(): number {
    return this.#open.size;
  }

  /** Open one attacker; resolves when its first upgrade has succeeded or failed (never rejects). */
  open(url: string, options: AttackerOptions = {}): Promise<'open' | 'refused' | 'error'> {
    return new Promise((resolve) => {
      if (!this.#running) {
        resolve('error');
        return;
      }
      const ws = new WebSocket(url, {
        perMessageDeflate: false,
        handshakeTimeout: 10_000,
        ...(options.localAddress === undefined ? {} : { localAddress: options.localAddress }),
      });
      this.#all.add(ws);
      let socket: Duplex | undefined;
      let settled = false;
      const settle = (v: 'open' | 'refused' | 'error'): void => {
        if (!settled) {
          settled = true;
          resolve(v);
        }
      };
      ws.on('upgrade', (res) => {
        socket = res.socket;
      });
      ws.on('open', () => {
        this.stats.opened++;
        this.#open.add(ws);
        this.stats.maxOpen = Math.max(this.stats.maxOpen, this.#open.size);
        if (options.pause === true) {
          ws.pause();
          this.#paused.add(ws);
        }
        if (socket !== undefined) options.onOpen?.(ws, socket, this);
        settle('open');
      });
      ws.on('unexpected-response', (req, res) => {
        const key = String(res.statusCode ?? 0);
        this.stats.rejected[key] = (this.stats.rejected[key] ?? 0) + 1;
        req.destroy();
        settle('refused');
      });
      ws.on('error', () => {
        this.stats.errors++;
        settle('error');
      });
      ws.on('close', (code: number) => {
        const wasOpen = this.#open.delete(ws);
        this.#all.delete(ws);
        this.#paused.delete(ws);
        for (const t of this.#timers.get(ws) ?? []) clearInterval(t);
        this.#timers.delete(ws);
        settle('error');
        if (wasOpen && this.#counting) {
          this.stats.cut++;
          this.stats.closedSeen[String(code)] = (this.stats.closedSeen[String(code)] ?? 0) + 1;
        }
        if (this.#running && options.reconnect === true) {
          setTimeout(() => {
            void this.open(url, options);
          }, 250).unref();
        }
      });
    });
  }

  /** `fn` every `ms` while this attacker is open and the crowd runs. */
  every(ws: WebSocket, ms: number, fn: () => void): void {
    const t = setInterval(() => {
      if (this.#running && ws.readyState === WebSocket.OPEN) fn();
    }, ms);
    const list = this.#timers.get(ws) ?? [];
    list.push(t);
    this.#timers.set(ws, list);
  }

  /** Stop sending (timers, reconnects) but keep the connections, so the daemon's view can be read. */
  quiet(): void {
    this.#running = false;
    for (const list of this.#timers.values()) for (const t of list) clearInterval(t);
    this.#timers.clear();
  }

  /**
   * Let the never-reading attackers read again for `ms`: a connection the daemon has already cut
   * delivers its backlog and then the close frame (or the reset), so the cut is counted here.
   */
  async drain(ms: number): Promise<void> {
    for (const ws of this.#paused) ws.resume();
    this.#paused.clear();
    await sleep(ms);
  }

  /** Close every connection (terminate: the suite does not wait for close handshakes). */
  stop(): void {
    this.quiet();
    this.#counting = false;
    for (const ws of this.#all) ws.terminate();
    this.#all.clear();
    this.#open.clear();
  }
}
