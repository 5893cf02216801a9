/**
 * A sample relay consumer, written the way a user would: a plain `ws` client on the relay's
 * Binance-compatible `/stream?streams=` endpoint, printing each closed candle. It remembers each
 * stream's last closed candle and reconnects with `since` = its open time + 1 (resume, contract §5),
 * so a dropped connection, a slow-consumer cut or a daemon restart leaves no gap and no duplicate.
 *
 *   node src/demo/consumer.ts [ws://127.0.0.1:8765] [btcusdt@kline_1m,ethusdt@kline_1m]
 */
import { WebSocket } from 'ws';

interface KlineEnvelope {
  stream: string;
  data: { e: string; E: number; s: string; k: { t: number; i: string; o: string; h: string; l: string; c: string; v: string; n: number | null; x: boolean } };
}

export interface ConsumerOptions {
  readonly url: string;
  readonly streams: readonly string[];
  readonly token?: string;
  readonly print?: (line: string) => void;
}

/**
 * Connects, prints closed candles, reconnects after 1 s if the relay goes away, resuming each stream
 * after its last closed candle. Returns a stop function.
 */
export function runConsumer(options: ConsumerOptions): () => void {
  const print = options.print ?? ((line: string) => process.stdout.write(`${line}\n`));
  let stopped = false;
  let ws: WebSocket | undefined;
  let retry: NodeJS.Timeout | undefined;
  /** Open time of the last closed candle printed, per stream: where a reconnect resumes. */
  const last = new Map<string, number>();

  const connect = (): void => {
    // Streams seen before resume after their last closed candle (one SUBSCRIBE per distinct since,
    // usually one); the others are in the URL, live from now.
    const fresh = options.streams.filter((s) => !last.has(s));
    const resumes = new Map<number, string[]>();
    for (const [stream, t] of last) resumes.set(t + 1, [...(resumes.get(t + 1) ?? []), stream]);
    const url = `${options.url}/stream?streams=${fresh.join('/')}`;
    /** SUBSCRIBE id → its streams, until answered. */
    const pending = new Map<number, string[]>();
    let id = 0;
    const socket = new WebSocket(url, options.token === undefined ? {} : { headers: { authorization: `Bearer ${options.token}` } });
    ws = socket;
    socket.on('open', () => {
      print(`consumer: connected to ${url}${resumes.size > 0 ? ', resuming' : ''}`);
      for (const [since, params] of resumes) {
        pending.set(++id, params);
        socket.send(JSON.stringify({ method: 'SUBSCRIBE', params, since, id }));
      }
    });
    socket.on('message', (data: Buffer) => {
      const msg = JSON.parse(data.toString('utf8')) as KlineEnvelope | { result?: unknown; error?: { msg: string }; id: number };
      if (!('data' in msg)) {
        const params = pending.get(msg.id);
        pending.delete(msg.id);
        if (msg.error !== undefined && params !== undefined) {
          // Too far back (CONNECTOR_RELAY_REPLAY_MAX_CANDLES): say so, and go on live.
          print(`consumer: resume refused (${msg.error.msg}); continuing live with a gap on ${params.join(', ')}`);
          socket.send(JSON.stringify({ method: 'SUBSCRIBE', params, id: ++id }));
        }
        return;
      }
      const k = msg.data.k;
      if (msg.data.e !== 'kline' || !k.x) return;
      last.set(msg.stream, k.t);
      // Streams of other venues than Binance spot are named `<venue>:<symbol>@kline_<interval>`.
      const colon = msg.stream.indexOf(':');
      const venue = colon < 0 ? '' : `${msg.stream.slice(0, colon)} `;
      print(
        `closed ${venue}${msg.data.s.padEnd(9)} ${k.i.padEnd(3)} ${new Date(k.t).toISOString()}  o=${k.o} h=${k.h} l=${k.l} c=${k.c} v=${k.v} n=${String(k.n)}`,
      );
    });
    socket.on('close', (code, reason) => {
      if (stopped) return;
      print(`consumer: relay closed (${code} ${reason.toString()}); retrying in 1 s`);
      retry = setTimeout(connect, 1000);
    });
    socket.on('error', (err) => {
      print(`consumer: ${err.message}`);
    });
  };
  connect();
  return () => {
    stopped = true;
    if (retry !== undefined) clearTimeout(retry);
    ws?.close(1000);
  };
}

if (import.meta.url === `file://${process.argv[1] ?? ''}`) {
  const url = process.argv[2] ?? 'ws://127.0.0.1:8765';
  const streams = (process.argv[3] ?? 'btcusdt@kline_1m,ethusdt@kline_1m').split(',');
  const stop = runConsumer({ url, streams });
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}
