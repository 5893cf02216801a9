/**
 * Consumers, each forked into its own process by bench/run.ts so process.cpuUsage() is theirs alone:
 *
 *   argv[2] = JSON ConsumerArgs
 *   - floor:   one bare `ws` client on `${url}/stream?streams=…`, JSON.parse per frame (what any
 *              consumer pays at least; the daemon's full path is compared with it)
 *   - binance: the `binance` npm WebsocketClient (tiagosiebler/binance) pointed at `url` by its
 *              `wsUrl` option, beautify off, subscribed to every stream (it SUBSCRIBEs on /stream)
 *   - relay:   `clients` relay clients on one socket each, all SUBSCRIBEd to every stream; they count
 *              frames and bytes without making messages of them (bench/relay-client.ts: the load
 *              generator must stay cheap, it shares the cores with the daemon)
 *
 * IPC: → { type: 'ready' }; ← { type: 'reset' } → { type: 'reset' }; ← { type: 'sample' } → ConsumerSample
 */
import { performance } from 'node:perf_hooks';
import { WebSocket } from 'ws';
import { CountingRelayClient } from './relay-client.ts';

export interface ConsumerArgs {
  mode: 'floor' | 'binance' | 'relay';
  url: string;
  streams: string[];
  clients?: number;
}

export interface ConsumerSample {
  type: 'sample';
  messages: number;
  bytes: number;
  cpuUs: number;
  wallMs: number;
  rssBytes: number;
  heapUsedBytes: number;
  /** Relay clients still open (slow consumers get closed 1008 by the relay). */
  open: number;
}

const args = JSON.parse(process.argv[2] ?? '{}') as ConsumerArgs;
let messages = 0;
let bytes = 0;
let cpuBase = process.cpuUsage();
let wallBase = performance.now();
const sockets: WebSocket[] = [];
/** Relay mode: frame-counting clients (bench/relay-client.ts), cheap enough not to crowd the daemon. */
const relayClients: CountingRelayClient[] = [];
let sink = 0;
let stopLib: (() => void) | undefined;

function onFloorMessage(data: Buffer): void {
  messages++;
  bytes += data.length;
  const v = JSON.parse(data.toString('utf8')) as { data: { k: { t: number } } };
  sink += v.data.k.t & 1;
}

function opened(ws: WebSocket): Promise<void> {
  return new Promise((resolve, reject) => {
    ws.once('open', () => {
      resolve();
    });
    ws.once('error', reject);
  });
}

async function start(): Promise<void> {
  if (args.mode === 'floor') {
    const ws = new WebSocket(`${args.url}/stream?streams=${args.streams.join('/')}`, { perMessageDeflate: false, maxPayload: 1 << 20 });
    ws.on('message', onFloorMessage);
    sockets.push(ws);
    await opened(ws);
  } else if (args.mode === 'relay') {
    const n = args.clients ?? 1;
    // At most 1000 names per SUBSCRIBE: a relay whose per-client cap is left at Binance's 1024 answers a
    // longer list with error 2, and a client refused that way would have measured a daemon sending nothing.
    const chunks: string[][] = [];
    for (let i = 0; i < args.streams.length; i += 1000) chunks.push(args.streams.slice(i, i + 1000));
    relayClients.push(...(await Promise.all(Array.from({ length: n }, () => CountingRelayClient.open(`${args.url}/stream`, chunks)))));
  } else {
    // Imported only here: the library takes ~0.4 s to load, which the other modes need not pay.
    const { WebsocketClient } = await import('binance');
    const client = new WebsocketClient(
      { wsUrl: args.url, beautify: false, disableHeartbeat: true, reconnectTimeout: 60_000 },
      { trace: () => undefined, info: () => undefined, error: () => undefined },
    );
    const state = { subscribed: false };
    client.on('message', () => {
      messages++;
    });
    client.on('response', () => {
      state.subscribed = true;
    });
    stopLib = () => {
      client.closeAll(true);
    };
    void client.subscribe(args.streams, 'main');
    const end = performance.now() + 20_000;
    while (!state.subscribed && messages === 0 && performance.now() < end) await new Promise((r) => setTimeout(r, 20));
  }
}

await start();
process.on('message', (raw: unknown) => {
  const msg = raw as { type: string };
  if (msg.type === 'reset') {
    messages = 0;
    bytes = 0;
    for (const c of relayClients) {
      c.messages = 0;
      c.bytes = 0;
    }
    cpuBase = process.cpuUsage();
    wallBase = performance.now();
    process.send?.({ type: 'reset' });
  } else if (msg.type === 'sample') {
    const cpu = process.cpuUsage(cpuBase);
    const m = process.memoryUsage();
    const sample: ConsumerSample = {
      type: 'sample',
      messages: messages + relayClients.reduce((n, c) => n + c.messages, 0),
      bytes: bytes + relayClients.reduce((n, c) => n + c.bytes, 0),
      cpuUs: cpu.user + cpu.system,
      wallMs: performance.now() - wallBase,
      rssBytes: m.rss,
      heapUsedBytes: m.heapUsed,
      open: sockets.filter((s) => s.readyState === WebSocket.OPEN).length + relayClients.filter((c) => c.open).length + (sink < 0 ? 1 : 0),
    };
    process.send?.(sample);
  } else if (msg.type === 'stop') {
    for (const s of sockets) s.terminate();
    for (const c of relayClients) c.terminate();
    stopLib?.();
    process.exit(0);
  }
});
process.on('disconnect', () => process.exit(0));
process.send?.({ type: 'ready' });
