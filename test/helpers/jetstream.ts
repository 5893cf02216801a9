/** Reading a JetStream stream back as a downstream consumer would, and auditing it per subject (the sink and pair tests). */
import { connect } from '@nats-io/transport-node';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';

export interface Stored {
  readonly subject: string;
  readonly msgId: string | undefined;
  readonly t: number;
  readonly x: boolean;
  readonly s: string;
  readonly k: Record<string, unknown>;
}

/** Every message of `stream`, in stream order, through an ordered consumer (what a downstream reader does). */
export async function readAll(url: string, stream = 'CANDLES'): Promise<Stored[]> {
  const nc = await connect({ servers: url });
  try {
    const jsm = await jetstreamManager(nc);
    const total = (await jsm.streams.info(stream)).state.messages;
    const consumer = await jetstream(nc).consumers.get(stream);
    const out: Stored[] = [];
    while (out.length < total) {
      const batch = await consumer.fetch({ max_messages: Math.min(1000, total - out.length), expires: 2000 });
      for await (const m of batch) {
        const event = m.json<{ s: string; k: { t: number; x: boolean } & Record<string, unknown> }>();
        out.push({ subject: m.subject, msgId: m.headers?.get('Nats-Msg-Id'), t: event.k.t, x: event.k.x, s: event.s, k: event.k });
      }
    }
    return out;
  } finally {
    await nc.close();
  }
}

/** Per subject: the open times stored, and whether they are exactly once, ascending and without a gap. */
export function auditStream(stored: readonly Stored[], stepMs: number): Map<string, { times: number[]; duplicated: number; outOfOrder: number; missing: number }> {
  const out = new Map<string, { times: number[]; duplicated: number; outOfOrder: number; missing: number }>();
  for (const m of stored) {
    let a = out.get(m.subject);
    if (a === undefined) out.set(m.subject, (a = { times: [], duplicated: 0, outOfOrder: 0, missing: 0 }));
    const prev = a.times[a.times.length - 1];
    if (prev !== undefined) {
      if (m.t === prev) a.duplicated++;
      else if (m.t < prev) a.outOfOrder++;
      else a.missing += (m.t - prev) / stepMs - 1;
    }
    a.times.push(m.t);
  }
  return out;
}

