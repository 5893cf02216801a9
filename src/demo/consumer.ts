/**
 * A sample relay consumer, written the way a user would: a plain `ws` client on the relay's
 * Binance-compatible `/stream?streams=` endpoint, printing each closed candle.
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

/** Connects, prints closed candles, reconnects after 1 s if the relay goes away. Returns a stop function. */
export function runConsumer(options: ConsumerOptions): () => void {
  const print = options.print ?? ((line: string) => process.stdout.write(`${line}\n`));
  let stopped = false;
  let ws: WebSocket | undefined;
  let retry: NodeJS.Timeout | undefined;

  const connect = (): void => {
    const url = `${options.url}/stream?streams=${options.streams.join('/')}`;
    ws = new WebSocket(url, options.token === undefined ? {} : { headers: { authorization: `Bearer ${options.token}` } });
    ws.on('open', () => {
      print(`consumer: connected to ${url}`);
    });
    ws.on('message', (data: Buffer) => {
      const msg = JSON.parse(data.toString('utf8')) as KlineEnvelope;
      const k = msg.data.k;
      if (msg.data.e !== 'kline' || !k.x) return;
      // Streams of other venues than Binance spot are named `<venue>:<symbol>@kline_<interval>`.
      const colon = msg.stream.indexOf(':');
      const venue = colon < 0 ? '' : `${msg.stream.slice(0, colon)} `;
      print(
        `closed ${venue}${msg.data.s.padEnd(9)} ${k.i.padEnd(3)} ${new Date(k.t).toISOString()}  o=${k.o} h=${k.h} l=${k.l} c=${k.c} v=${k.v} n=${String(k.n)}`,
      );
    });
    ws.on('close', (code, reason) => {
      if (stopped) return;
      print(`consumer: relay closed (${code} ${reason.toString()}); retrying in 1 s`);
      retry = setTimeout(connect, 1000);
    });
    ws.on('error', (err) => {
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
