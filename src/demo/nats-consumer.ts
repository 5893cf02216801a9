/**
 * A sample downstream reader of the JetStream candle stream (contract §9), written the way a user
 * would: an ORDERED consumer (ephemeral, server-side filter, in stream order, recreated by the client
 * after any interruption without a gap or a repeat) from a point in time, following new candles as
 * they are stored. README "Reading the candle stream from NATS" shows its core.
 *
 *   node src/demo/nats-consumer.ts [nats://127.0.0.1:4222] ['candles.binance.*.1m'] [2026-12-01T00:00:00Z]
 */
import { connect } from '@nats-io/transport-node';
import { DeliverPolicy, jetstream, jetstreamManager, JetStreamApiError } from '@nats-io/jetstream';

/** JetStream's API error for "stream not found". */
const STREAM_NOT_FOUND = 10059;

/** The relay's kline event, as stored in the stream. */
export interface StoredKline {
  readonly s: string;
  readonly k: { readonly t: number; readonly i: string; readonly o: string; readonly h: string; readonly l: string; readonly c: string; readonly v: string; readonly x: boolean };
}

export interface NatsReaderOptions {
  readonly url: string;
  /** JetStream stream (CONNECTOR_NATS_STREAM). */
  readonly stream?: string;
  /**
   * The subject to read, wildcards allowed: `candles.binance.BTCUSDT.1m`, `candles.*.*.1h`, `candles.>`.
   * One filter: several (`filter_subjects` as an array) need nats-server 2.10.
   */
  readonly subject: string;
  /** From this time on (the time each candle was stored, so start a little before the first open time wanted). */
  readonly since: Date;
  readonly onCandle: (subject: string, event: StoredKline) => void;
}

/** Reads from `since` and follows the stream until the returned stop function is called. */
export async function readCandles(options: NatsReaderOptions): Promise<() => Promise<void>> {
  // The daemon creates the stream with its first publish: a reader started before that waits for it.
  const probe = await connect({ servers: options.url });
  try {
    const jsm = await jetstreamManager(probe);
    for (;;) {
      const found = await jsm.streams.info(options.stream ?? 'CANDLES').then(
        () => true,
        (err: unknown) => {
          if (err instanceof JetStreamApiError && err.code === STREAM_NOT_FOUND) return false;
          throw err;
        },
      );
      if (found) break;
      await new Promise((r) => setTimeout(r, 500));
    }
  } finally {
    await probe.close();
  }
  // --- README: begin
  const nc = await connect({ servers: options.url });
  const js = jetstream(nc);
  const consumer = await js.consumers.get(options.stream ?? 'CANDLES', {
    filter_subjects: options.subject,
    deliver_policy: DeliverPolicy.StartTime,
    opt_start_time: options.since.toISOString(),
  });
  const messages = await consumer.consume();
  void (async () => {
    for await (const m of messages) options.onCandle(m.subject, m.json<StoredKline>());
  })();
  // --- README: end
  return async () => {
    await messages.close();
    await nc.close();
  };
}

if (import.meta.main) {
  const [url = 'nats://127.0.0.1:4222', subject = 'candles.>', since = new Date(Date.now() - 3_600_000).toISOString()] = process.argv.slice(2);
  const stop = await readCandles({
    url,
    subject,
    since: new Date(since),
    onCandle: (subject, e) => {
      process.stdout.write(`${subject} ${new Date(e.k.t).toISOString()} o=${e.k.o} h=${e.k.h} l=${e.k.l} c=${e.k.c} v=${e.k.v}\n`);
    },
  });
  process.on('SIGINT', () => void stop().then(() => process.exit(0)));
}
