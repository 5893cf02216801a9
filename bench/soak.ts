/**
 * Soak: the real daemon against the simulator for N minutes, watching memory for a leak while relay
 * clients come and go resuming with `since` (connector-contract.md §5), auditing every closed candle.
 *
 *   npm run soak -- --minutes 60 [--symbols 1000] [--intervals 1s,1m] [--clients 20] [--history 60]
 *                   [--reconnect-s 120] [--warmup-s 300] [--seed 1] [--out bench/soak-results.json]
 *
 * Process layout:
 *   parent (this file): BinanceSimulator (in-process, loopback) + the relay clients (ws on `/stream`,
 *                       SUBSCRIBE to every stream in chunks of 1000; each audits its closed candles
 *                       per stream across its reconnects: duplicates, disorder, missing open times)
 *   child  (bench/daemon.ts, node --expose-gc + the launcher's flags): startConnector — pool → pipeline → relay
 *
 * Every client drops its connection every ~`--reconnect-s` (jittered ×0.5–1.5, seeded), stays away
 * 0.5–3 s, and comes back on a new socket with one SUBSCRIBE per distinct `since` = its last closed
 * candle's open time + 1 (streams it has not seen a closed candle of yet: no since). A client the relay
 * closes (slow consumer) comes back the same way after 1 s; that is counted, not hidden.
 *
 * Every ~10 s the parent asks the child for memory after a forced GC (rss, heapUsed, external, the
 * relay history's payload bytes). At the end: least-squares slopes in MB/hour over the samples after
 * the warm-up of heap, RSS, external, and of RSS less the history's payload (the history fills for
 * `--history` candles: the 1m streams' share grows all run long with a history longer than the run),
 * and the clients' audit. Written to `--out` (default bench/soak-results.json, untracked).
 */
import { writeFileSync } from 'node:fs';
import { WebSocket } from 'ws';
import { BinanceSimulator } from '../src/venues/binance/simulator/server.ts';
import { nominalMs } from '../src/core/intervals.ts';
import { DaemonProcess, MB, argValue, benchSymbols, here, round, sleep, slope } from './lib.ts';
import type { DaemonSample } from './daemon.ts';
import { mulberry32 } from '../src/simulator/random.ts';

const argv = process.argv.slice(2);
const minutes = Number(argValue(argv, '--minutes') ?? 25);
const symbolCount = Number(argValue(argv, '--symbols') ?? 1000);
const intervals = (argValue(argv, '--intervals') ?? '1s,1m').split(',');
const clientCount = Number(argValue(argv, '--clients') ?? 20);
const historyCandles = Number(argValue(argv, '--history') ?? 60);
const reconnectMs = Number(argValue(argv, '--reconnect-s') ?? (minutes <= 2 ? 10 : 120)) * 1000;
const seed = Number(argValue(argv, '--seed') ?? 1);
const sampleEveryMs = Number(argValue(argv, '--sample-s') ?? (minutes <= 2 ? 5 : 10)) * 1000;
const durationMs = minutes * 60_000;
const warmupMs = Number(argValue(argv, '--warmup-s') ?? Math.min(300, durationMs / 4 / 1000)) * 1000;
const outFile = argValue(argv, '--out') ?? here('./soak-results.json');

const symbols = benchSymbols(symbolCount);
const streams = symbols.flatMap((s) => intervals.map((i) => `${s}@kline_${i}`));
const SUBSCRIBE_CHUNK = 1000;

// Seeded: the reconnect schedule replays with the same --seed.
const random = mulberry32(seed);

const CLOSED = Buffer.from('"x":true');

/**
 * A relay client that resumes with `since` and audits each stream's closed open times across all of
 * its connections. Only closed candles are parsed (found by their bytes): 20 clients of 2000 streams
 * would otherwise spend a core on JSON.parse of open updates nobody audits.
 */
class AuditClient {
  readonly #base: string;
  #ws: WebSocket | undefined;
  #nextId = 0;
  /** SUBSCRIBE id → its reply, while one is in flight. */
  #pending: { id: number; resolve: (error: string | undefined) => void } | undefined;
  #stopped = false;
  /** Sockets we closed on purpose (scheduled drops): their close is not unexpected. */
  readonly #dropped = new WeakSet<WebSocket>();
  readonly #lastClosed = new Map<string, number>();
  messages = 0;
  closed = 0;
  duplicates = 0;
  outOfOrder = 0;
  missing = 0;
  connects = 0;
  resumes = 0;
  unexpectedCloses = 0;
  refused = 0;
  lastCloseCode: number | undefined;

  constructor(base: string) {
    this.#base = base;
  }

  get open(): boolean {
    return this.#ws?.readyState === WebSocket.OPEN;
  }

  /** Streams with a closed candle seen, and the open time of each one's last. */
  get lastClosed(): ReadonlyMap<string, number> {
    return this.#lastClosed;
  }

  async connect(): Promise<void> {
    if (this.#stopped) return;
    const ws = new WebSocket(`${this.#base}/stream`, { perMessageDeflate: false, maxPayload: 1 << 20 });
    this.#ws = ws;
    ws.on('message', (data: Buffer) => {
      // After a drop, what the old socket still delivers is not recorded: the resume's since was not
      // taken from it, so the replay sends it again, and counting both would be a false duplicate.
      if (this.#dropped.has(ws)) return;
      this.#onMessage(data);
    });
    ws.on('close', (code) => {
      if (this.#ws !== ws) return; // an old socket's close handshake ending after a new one opened
      this.lastCloseCode = code;
      this.#pending?.resolve(`closed ${code}`);
      this.#pending = undefined;
      if (this.#stopped || this.#dropped.has(ws)) return;
      this.unexpectedCloses++;
      setTimeout(() => void this.connect(), 1000);
    });
    ws.on('error', (err) => {
      console.error(`relay client error: ${err.message}`);
    });
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => {
        resolve();
      });
      ws.once('error', reject);
    });
    this.connects++;
    // One SUBSCRIBE per distinct since (usually one per interval), each at most SUBSCRIBE_CHUNK names;
    // streams without a closed candle yet go live from now.
    const groups = new Map<number | undefined, string[]>();
    for (const s of streams) {
      const t = this.#lastClosed.get(s);
      const since = t === undefined ? undefined : t + 1;
      (groups.get(since) ?? groups.set(since, []).get(since)!).push(s);
    }
    if (this.connects > 1) this.resumes++;
    for (const [since, names] of groups) {
      for (let i = 0; i < names.length; i += SUBSCRIBE_CHUNK) {
        const id = ++this.#nextId;
        const reply = new Promise<string | undefined>((resolve) => {
          this.#pending = { id, resolve };
        });
        ws.send(JSON.stringify({ method: 'SUBSCRIBE', params: names.slice(i, i + SUBSCRIBE_CHUNK), id, ...(since === undefined ? {} : { since }) }));
        const error = await reply;
        if (error !== undefined) {
          this.refused++;
          console.error(`SUBSCRIBE refused: ${error}`);
          return;
        }
      }
    }
  }

  /** A scheduled drop: close our side; `connect()` again later resumes with since. */
  drop(): void {
    const ws = this.#ws;
    if (ws === undefined) return;
    this.#dropped.add(ws);
    ws.close(1000);
  }

  stop(): void {
    this.#stopped = true;
    this.#ws?.terminate();
  }

  #onMessage(data: Buffer): void {
    // Replies to SUBSCRIBE: {"result":null,"id":N} or {"error":{…},"id":N}; data frames are {"stream":…}.
    if (data[2] !== 0x73 /* s */) {
      const reply = JSON.parse(data.toString('utf8')) as { id?: number; error?: { msg?: string } };
      if (this.#pending !== undefined && reply.id === this.#pending.id) {
        this.#pending.resolve(reply.error === undefined ? undefined : (reply.error.msg ?? 'error'));
        this.#pending = undefined;
      }
      return;
    }
    this.messages++;
    if (data.indexOf(CLOSED) === -1) return;
    const msg = JSON.parse(data.toString('utf8')) as { stream?: string; data?: { k?: { t: number; x: boolean; i: string } } };
    const k = msg.data?.k;
    if (k === undefined || msg.stream === undefined || !k.x) return;
    this.closed++;
    const prev = this.#lastClosed.get(msg.stream);
    if (prev !== undefined && k.t <= prev) {
      if (k.t === prev) this.duplicates++;
      else this.outOfOrder++;
      return;
    }
    this.#lastClosed.set(msg.stream, k.t);
    if (prev !== undefined) this.missing += Math.round((k.t - prev) / nominalMs(k.i)) - 1;
  }
}

interface Point {
  tSec: number;
  rssMB: number;
  heapMB: number;
  externalMB: number;
  arrayBuffersMB: number;
  historyMB: number;
  deliveredClosed: number;
  deliveredOpen: number;
}

async function main(): Promise<void> {
  const sim = await BinanceSimulator.start({ host: '127.0.0.1', port: 0 });
  const maxPerConn = 200;
  const daemon = await DaemonProcess.start({
    env: {
      CONNECTOR_BINANCE_WS_URL: sim.wsUrl,
      CONNECTOR_BINANCE_REST_URL: sim.restUrl,
      CONNECTOR_SYMBOLS: symbols.join(','),
      CONNECTOR_INTERVALS: intervals.join(','),
      CONNECTOR_MAX_STREAMS_PER_CONNECTION: maxPerConn,
      CONNECTOR_MAX_CONNECTIONS: Math.max(10, Math.ceil(streams.length / maxPerConn) + 2),
      CONNECTOR_RELAY_MAX_STREAMS_PER_CLIENT: Math.max(1024, streams.length),
      CONNECTOR_RELAY_HISTORY_CANDLES: historyCandles,
    },
  });
  const base = `ws://127.0.0.1:${daemon.relayPort}`;
  const clients = Array.from({ length: clientCount }, () => new AuditClient(base));
  await Promise.all(clients.map((c) => c.connect()));
  console.log(
    `soak: ${streams.length} streams (${symbolCount} symbols x ${intervals.join(',')}), ${clientCount} relay clients resuming with since every ~${reconnectMs / 1000} s, ` +
      `history ${historyCandles}/stream, ${minutes} min, warm-up ${warmupMs / 1000} s, sample every ${sampleEveryMs / 1000} s, seed ${seed}; daemon pid ${daemon.child.pid}`,
  );

  // The reconnect schedule: each client on its own timer chain, until the run's last 30 s.
  const started = Date.now();
  const quietFrom = started + durationMs - Math.min(30_000, durationMs / 4);
  const timers = new Set<NodeJS.Timeout>();
  const schedule = (c: AuditClient): void => {
    const wait = reconnectMs * (0.5 + random());
    if (Date.now() + wait > quietFrom) return;
    const t = setTimeout(() => {
      timers.delete(t);
      c.drop();
      const away = setTimeout(() => {
        timers.delete(away);
        void c.connect().then(() => {
          schedule(c);
        });
      }, 500 + random() * 2500);
      timers.add(away);
    }, wait);
    timers.add(t);
  };
  for (const c of clients) schedule(c);

  const points: Point[] = [];
  let first: DaemonSample | undefined;
  let last: DaemonSample | undefined;
  const take = async (): Promise<void> => {
    const s = await daemon.sample(true);
    first ??= s;
    last = s;
    const p = {
      tSec: (Date.now() - started) / 1000,
      rssMB: s.rssBytes / MB,
      heapMB: s.heapUsedBytes / MB,
      externalMB: s.externalBytes / MB,
      arrayBuffersMB: s.arrayBuffersBytes / MB,
      historyMB: s.historyBytes / MB,
      deliveredClosed: s.deliveredClosed,
      deliveredOpen: s.deliveredOpen,
    };
    points.push(p);
    const open = clients.filter((c) => c.open).length;
    const resumes = clients.reduce((n, c) => n + c.resumes, 0);
    const bad = clients.reduce((n, c) => n + c.missing + c.duplicates + c.outOfOrder, 0);
    console.log(
      `  t=${p.tSec.toFixed(0).padStart(5)} s  rss=${p.rssMB.toFixed(1)} MB  heap=${p.heapMB.toFixed(1)} MB  external=${p.externalMB.toFixed(1)} MB  history=${p.historyMB.toFixed(1)} MB  ` +
        `closed=${s.deliveredClosed} relaySent=${s.relaySent} clients=${s.relayClients} open=${open} resumes=${resumes} replayed=${s.replayedCandles} missing+dup+disorder=${bad}`,
    );
  };
  await take();
  while (Date.now() - started < durationMs) {
    await sleep(Math.min(sampleEveryMs, durationMs - (Date.now() - started)));
    await take();
  }
  for (const t of timers) clearTimeout(t);

  const steady = points.filter((p) => p.tSec * 1000 >= warmupMs);
  const hours = steady.map((p) => p.tSec / 3600);
  const slopeOf = (pick: (p: Point) => number): number => round(slope(hours, steady.map(pick)), 3);
  const f = first!;
  const l = last!;
  // Streams a client has no recent closed candle of (a stuck resume would show here, not as a gap).
  const newest = new Map<string, number>();
  for (const c of clients) for (const [s, t] of c.lastClosed) newest.set(s, Math.max(newest.get(s) ?? 0, t));
  const behind = clients.reduce((n, c) => n + streams.filter((s) => (newest.get(s) ?? 0) - (c.lastClosed.get(s) ?? -Infinity) > 5 * nominalMs(s.slice(s.indexOf('_') + 1))).length, 0);
  const result = {
    kind: 'soak',
    startedAt: new Date(started).toISOString(),
    minutes,
    warmupSeconds: warmupMs / 1000,
    layout: 'parent: simulator + relay clients (audit, scheduled resumes with since); child: daemon (bench/daemon.ts, node --expose-gc + bin/kline-connector flags), samples after forced GC',
    streams: streams.length,
    symbols: symbolCount,
    intervals,
    relayClients: clientCount,
    historyPerStream: historyCandles,
    reconnectEverySeconds: reconnectMs / 1000,
    seed,
    samples: points.length,
    samplesAfterWarmup: steady.length,
    start: { rssMB: round(f.rssBytes / MB), heapUsedMB: round(f.heapUsedBytes / MB), externalMB: round(f.externalBytes / MB) },
    end: { rssMB: round(l.rssBytes / MB), heapUsedMB: round(l.heapUsedBytes / MB), externalMB: round(l.externalBytes / MB), historyMB: round(l.historyBytes / MB), historyCandles: l.historyCandles },
    peakRssMB: round(Math.max(...points.map((p) => p.rssMB))),
    heapSlopeMBPerHour: slopeOf((p) => p.heapMB),
    rssSlopeMBPerHour: slopeOf((p) => p.rssMB),
    rssLessHistorySlopeMBPerHour: slopeOf((p) => p.rssMB - p.historyMB),
    externalSlopeMBPerHour: slopeOf((p) => p.externalMB),
    historySlopeMBPerHour: slopeOf((p) => p.historyMB),
    delivered: { closed: l.deliveredClosed, open: l.deliveredOpen, relayMessagesSent: l.relaySent },
    replays: { candles: l.replayedCandles, fromRest: l.replayedFromRest, inProgressAtEnd: l.replays },
    upstream: { klineEventsSent: sim.counters.klineEventsSent, closedKlinesSent: sim.counters.closedKlinesSent, connectionsOpened: sim.counters.connectionsOpened },
    pipeline: { duplicatesFiltered: l.duplicates, openSkipped: l.openSkipped, blockingEvents: l.blockingEvents, backfills: l.backfills, candlesRecovered: l.candlesRecovered, slowConsumersCut: l.slowConsumers },
    clients: {
      messages: clients.reduce((n, c) => n + c.messages, 0),
      closed: clients.reduce((n, c) => n + c.closed, 0),
      resumes: clients.reduce((n, c) => n + c.resumes, 0),
      unexpectedCloses: clients.reduce((n, c) => n + c.unexpectedCloses, 0),
      subscribeRefused: clients.reduce((n, c) => n + c.refused, 0),
      duplicates: clients.reduce((n, c) => n + c.duplicates, 0),
      outOfOrder: clients.reduce((n, c) => n + c.outOfOrder, 0),
      missing: clients.reduce((n, c) => n + c.missing, 0),
      streamsBehindAtEnd: behind,
      stillOpen: clients.filter((c) => c.open).length,
    },
    series: points.map((p) => ({ tSec: round(p.tSec, 1), rssMB: round(p.rssMB), heapMB: round(p.heapMB), externalMB: round(p.externalMB), historyMB: round(p.historyMB) })),
  };

  for (const c of clients) c.stop();
  await daemon.stop();
  await sim.close();

  writeFileSync(outFile, `${JSON.stringify(result, null, 2)}\n`);
  const { series: _series, ...summary } = result;
  console.log(JSON.stringify(summary, null, 2));
  console.log(`wrote ${outFile}`);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
