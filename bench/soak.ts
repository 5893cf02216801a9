/**
 * Soak: the real daemon against the simulator for N minutes, watching memory for a leak.
 *
 *   npm run soak -- --minutes 25 [--symbols 250] [--intervals 1s,1m] [--clients 10] [--warmup-s 120]
 *
 * Process layout:
 *   parent (this file): BinanceSimulator (in-process, loopback) + the relay clients (ws, each
 *                       subscribed to every stream through /stream?streams=…, each auditing its
 *                       closed candles: duplicates, disorder, missing open times)
 *   child  (bench/daemon.ts, node --expose-gc): startConnector(config) — pool → pipeline → relay
 *
 * Every ~10 s the parent asks the child for memory after a forced GC (rss, heapUsed). At the end it
 * prints and writes bench/soak-results.json: start/end RSS and heap, least-squares slopes of RSS and
 * heap in MB/hour over the samples after the warm-up, and delivered candle counts. The warm-up is
 * 120 s, or a quarter of the run when that is shorter (so `--minutes 1` still fits a slope).
 */
import { writeFileSync } from 'node:fs';
import { WebSocket } from 'ws';
import { BinanceSimulator } from '../src/venues/binance/simulator/server.ts';
import { nominalMs } from '../src/core/intervals.ts';
import { DaemonProcess, MB, argValue, benchSymbols, here, round, sleep, slope } from './lib.ts';
import type { DaemonSample } from './daemon.ts';

const argv = process.argv.slice(2);
const minutes = Number(argValue(argv, '--minutes') ?? 25);
const symbolCount = Number(argValue(argv, '--symbols') ?? 250);
const intervals = (argValue(argv, '--intervals') ?? '1s,1m').split(',');
const clientCount = Number(argValue(argv, '--clients') ?? 10);
const sampleEveryMs = Number(argValue(argv, '--sample-s') ?? (minutes <= 2 ? 5 : 10)) * 1000;
const durationMs = minutes * 60_000;
const warmupMs = Number(argValue(argv, '--warmup-s') ?? Math.min(120, (durationMs / 4) / 1000)) * 1000;
const outFile = argValue(argv, '--out') ?? here('./soak-results.json');

const symbols = benchSymbols(symbolCount);
const streams = symbols.flatMap((s) => intervals.map((i) => `${s}@kline_${i}`));

/** A relay client that counts what it gets and audits each stream's closed open times. */
class AuditClient {
  readonly ws: WebSocket;
  messages = 0;
  closed = 0;
  duplicates = 0;
  outOfOrder = 0;
  missing = 0;
  closeCode: number | undefined;
  readonly #lastClosed = new Map<string, number>();

  constructor(url: string) {
    this.ws = new WebSocket(url, { maxPayload: 1 << 20 });
    this.ws.on('message', (data: Buffer) => {
      this.messages++;
      const msg = JSON.parse(data.toString('utf8')) as { stream?: string; data?: { k?: { t: number; x: boolean; i: string } } };
      const k = msg.data?.k;
      if (k === undefined || msg.stream === undefined || !k.x) return;
      this.closed++;
      const prev = this.#lastClosed.get(msg.stream);
      this.#lastClosed.set(msg.stream, k.t);
      if (prev === undefined) return;
      if (k.t === prev) this.duplicates++;
      else if (k.t < prev) this.outOfOrder++;
      else this.missing += Math.round((k.t - prev) / nominalMs(k.i)) - 1;
    });
    this.ws.on('close', (code) => {
      this.closeCode = code;
    });
    this.ws.on('error', (err) => {
      console.error(`relay client error: ${err.message}`);
    });
  }

  opened(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.ws.once('open', () => { resolve(); });
      this.ws.once('error', reject);
    });
  }
}

interface Point {
  tSec: number;
  rssMB: number;
  heapMB: number;
  externalMB: number;
  arrayBuffersMB: number;
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
    },
  });
  const relayUrl = `ws://127.0.0.1:${daemon.relayPort}/stream?streams=${streams.join('/')}`;
  const clients = Array.from({ length: clientCount }, () => new AuditClient(relayUrl));
  await Promise.all(clients.map((c) => c.opened()));
  console.log(
    `soak: ${streams.length} streams (${symbolCount} symbols x ${intervals.join(',')}), ${clientCount} relay clients, ` +
      `${minutes} min, warm-up ${warmupMs / 1000} s, sample every ${sampleEveryMs / 1000} s; daemon pid ${daemon.child.pid}`,
  );

  const points: Point[] = [];
  const started = Date.now();
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
      deliveredClosed: s.deliveredClosed,
      deliveredOpen: s.deliveredOpen,
    };
    points.push(p);
    console.log(
      `  t=${p.tSec.toFixed(0).padStart(5)} s  rss=${p.rssMB.toFixed(1)} MB  heap=${p.heapMB.toFixed(1)} MB  external=${p.externalMB.toFixed(1)} MB  buffers=${p.arrayBuffersMB.toFixed(1)} MB  ` +
        `closed=${s.deliveredClosed} open=${s.deliveredOpen} relaySent=${s.relaySent} clients=${s.relayClients}`,
    );
  };
  await take();
  while (Date.now() - started < durationMs) {
    await sleep(Math.min(sampleEveryMs, durationMs - (Date.now() - started)));
    await take();
  }

  const steady = points.filter((p) => p.tSec * 1000 >= warmupMs);
  const hours = (p: Point): number => p.tSec / 3600;
  const rssSlope = slope(steady.map(hours), steady.map((p) => p.rssMB));
  const heapSlope = slope(steady.map(hours), steady.map((p) => p.heapMB));
  const f = first!;
  const l = last!;
  const result = {
    kind: 'soak',
    startedAt: new Date(started).toISOString(),
    minutes,
    warmupSeconds: warmupMs / 1000,
    layout: 'parent: simulator + relay clients; child: daemon (node --expose-gc), samples after forced GC',
    streams: streams.length,
    symbols: symbolCount,
    intervals,
    relayClients: clientCount,
    samples: points.length,
    samplesAfterWarmup: steady.length,
    start: { rssMB: round(f.rssBytes / MB), heapUsedMB: round(f.heapUsedBytes / MB) },
    end: { rssMB: round(l.rssBytes / MB), heapUsedMB: round(l.heapUsedBytes / MB) },
    peakRssMB: round(Math.max(...points.map((p) => p.rssMB))),
    rssSlopeMBPerHour: round(rssSlope, 3),
    heapSlopeMBPerHour: round(heapSlope, 3),
    delivered: { closed: l.deliveredClosed, open: l.deliveredOpen, relayMessagesSent: l.relaySent },
    upstream: { klineEventsSent: sim.counters.klineEventsSent, closedKlinesSent: sim.counters.closedKlinesSent, connectionsOpened: sim.counters.connectionsOpened },
    pipeline: { duplicatesFiltered: l.duplicates, openSkipped: l.openSkipped, blockingEvents: l.blockingEvents, backfills: l.backfills, candlesRecovered: l.candlesRecovered },
    clients: {
      messages: clients.reduce((n, c) => n + c.messages, 0),
      closed: clients.reduce((n, c) => n + c.closed, 0),
      duplicates: clients.reduce((n, c) => n + c.duplicates, 0),
      outOfOrder: clients.reduce((n, c) => n + c.outOfOrder, 0),
      missing: clients.reduce((n, c) => n + c.missing, 0),
      stillOpen: clients.filter((c) => c.ws.readyState === WebSocket.OPEN).length,
    },
    externalSlopeMBPerHour: round(slope(steady.map(hours), steady.map((p) => p.externalMB)), 3),
    series: points.map((p) => ({ tSec: round(p.tSec, 1), rssMB: round(p.rssMB), heapMB: round(p.heapMB), externalMB: round(p.externalMB) })),
  };

  for (const c of clients) c.ws.close();
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
