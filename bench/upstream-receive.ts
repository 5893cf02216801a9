/**
 * `node bench/upstream-receive.ts [frames=2000000]`: what receiving one upstream frame costs in the
 * WebSocket client alone, `ws` against the hand-written client (src/upstream/wsclient.ts), each in its own
 * process with the launcher's node flags (shippedNodeFlags: the same young generation as production),
 * from a raw server in a third process writing realistic combined kline frames (~360 B, the
 * simulator's) as fast as the socket drains. Per client: CPU µs per frame and scavenges per million
 * frames (from the `gc` performance entries); each scavenge is about one semi-space of garbage, so
 * young-generation bytes per frame ≈ scavenges × semi-space / frames. Not a test: figures vary by machine;
 * compare the two clients within one run (ARCHITECTURE.md, Performance).
 */
import { fork } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { PerformanceObserver, constants } from 'node:perf_hooks';
import v8 from 'node:v8';
import { WebSocket } from 'ws';
import { UpstreamWebSocket, type UpstreamSocket, type UpstreamSocketOptions } from '../src/upstream/wsclient.ts';
import { klineEventJson, openKlineAt } from '../src/venues/binance/simulator/klines.ts';
import { klineStreamName } from '../src/venues/binance/protocol.ts';
import { shippedNodeFlags } from './lib.ts';

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
const BATCH = 1000;
const role = process.argv[2];

interface Result {
  client: string;
  frames: number;
  cpuUsPerFrame: number;
  scavengesPerMillion: number;
  semiSpaceMB: number;
  youngBytesPerFrame: number;
}

/** BATCH unmasked text frames of realistic open kline updates, one buffer (written as one piece). */
function frameBatch(): Buffer {
  const out: Buffer[] = [];
  const t0 = Date.UTC(2026, 10, 3, 12, 0);
  for (let i = 0; i < BATCH; i++) {
    const sym = `sym${i % 500}usdt`;
    const k = openKlineAt(sym, '1m', t0, (i % 97) / 97);
    const payload = Buffer.from(`{"stream":"${klineStreamName(sym, '1m')}","data":${klineEventJson(k, t0 + 1500)}}`);
    const head = payload.length < 126 ? Buffer.from([0x81, payload.length]) : Buffer.from([0x81, 126, payload.length >> 8, payload.length & 0xff]);
    out.push(head, payload);
  }
  return Buffer.concat(out);
}

function serve(count: number): void {
  const batch = frameBatch();
  const server = createServer();
  server.on('upgrade', (req, socket) => {
    const accept = createHash('sha1')
      .update(String(req.headers['sec-websocket-key']) + GUID)
      .digest('base64');
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`);
    let sent = 0;
    const pump = (): void => {
      while (sent < count) {
        sent += BATCH;
        if (!socket.write(batch)) {
          socket.once('drain', pump);
          return;
        }
      }
    };
    pump();
    socket.on('error', () => {
      // The client terminates once it has counted everything.
    });
  });
  server.listen(0, '127.0.0.1', () => {
    process.send?.({ port: (server.address() as AddressInfo).port });
  });
}

async function receive(client: string, port: number, count: number): Promise<Result> {
  const url = `ws://127.0.0.1:${port}/stream`;
  // The options connection.ts passes.
  const options: UpstreamSocketOptions = { maxPayload: 1 << 20, handshakeTimeout: 10_000, perMessageDeflate: false, skipUTF8Validation: true, autoPong: true, followRedirects: false };
  const ws: UpstreamSocket = client === 'ws' ? new WebSocket(url, options) : new UpstreamWebSocket(url, options);
  let scavenges = 0;
  const obs = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      // A gc entry's detail (NodeGCPerformanceDetail) is not on the PerformanceEntry type.
      const detail = (e as unknown as { detail?: { kind?: number } }).detail;
      if (detail?.kind === constants.NODE_PERFORMANCE_GC_MINOR) scavenges++;
    }
  });
  obs.observe({ entryTypes: ['gc'] });
  let n = 0;
  const all = new Promise<void>((resolve) => {
    ws.on('message', () => {
      if (++n === count) resolve();
    });
  });
  await new Promise<void>((resolve) => ws.on('open', resolve));
  const cpu0 = process.cpuUsage();
  await all;
  const cpu = process.cpuUsage(cpu0);
  ws.terminate();
  // Let the last gc entries arrive.
  await new Promise((r) => setTimeout(r, 50));
  obs.disconnect();
  const semi = (v8.getHeapSpaceStatistics().find((s) => s.space_name === 'new_space')?.space_size ?? 0) / 2;
  return {
    client,
    frames: n,
    cpuUsPerFrame: Math.round(((cpu.user + cpu.system) / n) * 1000) / 1000,
    scavengesPerMillion: Math.round((scavenges / n) * 1e6),
    semiSpaceMB: semi / 2 ** 20,
    youngBytesPerFrame: Math.round((scavenges * semi) / n),
  };
}

function child<T>(args: string[], execArgv: string[]): { proc: ReturnType<typeof fork>; first: Promise<T> } {
  const proc = fork(new URL(import.meta.url).pathname, args, { execArgv });
  return { proc, first: once(proc, 'message').then(([m]) => m as T) };
}

if (role === 'server') {
  serve(Number(process.argv[3]));
} else if (role === 'client') {
  const [name, port, count] = process.argv.slice(3);
  const r = await receive(String(name), Number(port), Number(count));
  process.send?.(r);
  process.disconnect();
} else {
  const frames = Number(role ?? 2_000_000);
  for (const client of ['ws', 'wsclient']) {
    const server = child<{ port: number }>(['server', String(frames)], []);
    const { port } = await server.first;
    const c = child<Result>(['client', client, String(port), String(frames)], shippedNodeFlags());
    const r = await c.first;
    server.proc.kill();
    console.log(
      `${r.client.padEnd(9)} ${r.cpuUsPerFrame.toFixed(3)} µs CPU/frame, ${r.scavengesPerMillion} scavenges per million frames ` +
        `(semi-space ${r.semiSpaceMB} MB: ≈ ${r.youngBytesPerFrame} B of young garbage per frame)`,
    );
  }
}
