/**
 * The attacks of the abuse suite (issue 12), each staying inside the per-client limits an attacker
 * can read in the contract (≤ 64 KiB frames, < 5 control messages/s), as an attacker would.
 * Every attack runs until `ctx.signal` aborts (or, for a counted attack, until its count is done),
 * then stops sending; the runner reads the daemon's view and only then closes the connections.
 */
import type { Duplex } from 'node:stream';
import { WebSocket } from 'ws';
import { aborted, attackerAddress, sleep, type Crowd } from './abuse-lib.ts';

export interface AttackContext {
  readonly relayPort: number;
  /** Every stream the daemon serves. */
  readonly streams: readonly string[];
  readonly signal: AbortSignal;
  /** The relay's inbound frame limit (CONNECTOR_RELAY_MAX_FRAME_BYTES). */
  readonly maxFrameBytes: number;
}

export type AttackFigures = Record<string, number | string>;

export interface Attack {
  readonly name: string;
  readonly title: string;
  run(ctx: AttackContext, crowd: Crowd): Promise<AttackFigures>;
}

const base = (ctx: AttackContext): string => `ws://127.0.0.1:${ctx.relayPort}`;

// ---------------------------------------------------------------------------------------------
// Frames

/**
 * A SUBSCRIBE naming one unserved stream as long as the frame limit allows, made of `"` and `\`: each
 * costs 2 bytes in, and an error reply that quotes the name escaped twice sends 4 bytes back.
 */
export function unservedSubscribe(maxBytes: number): string {
  const head = '{"method":"SUBSCRIBE","params":["';
  const tail = '"],"id":1}';
  const unit = '\\"\\\\'; // JSON text for the two characters " and \
  const n = Math.floor((maxBytes - head.length - tail.length) / unit.length);
  return `${head}${unit.repeat(n)}${tail}`;
}

/** Valid JSON, up to the frame limit, that is as costly to parse as it can be made (three shapes). */
export function costlyFrames(maxBytes: number): readonly string[] {
  const budget = maxBytes - 64;
  const hugeArray = `{"method":"SUBSCRIBE","params":[${'0,'.repeat(Math.floor(budget / 2))}0],"id":2}`;
  const keys: string[] = [];
  let size = 0;
  for (let i = 0; size < budget - 16; i++) {
    const k = `"k${i}":0`;
    keys.push(k);
    size += k.length + 1;
  }
  const manyKeys = `{"method":"LIST_SUBSCRIPTIONS","id":3,${keys.join(',')}}`;
  const depth = Math.floor(budget / 2);
  const deepNesting = `{"method":"SUBSCRIBE","params":${'['.repeat(depth)}${']'.repeat(depth)},"id":4}`;
  return [hugeArray, manyKeys, deepNesting];
}

/** `count` masked, empty control frames (client → server frames must be masked): 6 bytes each. */
function controlFrames(opcode: 0x9 | 0xa, count: number): Buffer {
  const one = Buffer.from([0x80 | opcode, 0x80, 0x12, 0x34, 0x56, 0x78]);
  return Buffer.concat(Array.from({ length: count }, () => one));
}

// ---------------------------------------------------------------------------------------------
// Building blocks (parameterised, so the mix can run them side by side)

/** a. Bare /ws, no subscriptions, never reading, `perSecond` SUBSCRIBEs for a 64 KB unserved name. */
async function unservedSubscribers(ctx: AttackContext, crowd: Crowd, clients: number, perSecond: number, addressOffset: number): Promise<AttackFigures> {
  const frame = unservedSubscribe(ctx.maxFrameBytes);
  let sent = 0;
  await Promise.all(
    Array.from({ length: clients }, (_, i) =>
      crowd.open(`${base(ctx)}/ws`, {
        localAddress: attackerAddress(addressOffset + i),
        pause: true,
        reconnect: true,
        onOpen: (ws) => {
          crowd.every(ws, 1000 / perSecond, () => {
            ws.send(frame);
            sent++;
          });
        },
      }),
    ),
  );
  await aborted(ctx.signal);
  return { framesSent: sent, frameBytes: Buffer.byteLength(frame) };
}

/**
 * b. Subscribed to every stream the daemon serves (up to the per-client cap of 1024), never reading.
 * One SUBSCRIBE, not the URL: a thousand names would pass Node's 16 KB request-header limit.
 */
async function stuckSubscribers(ctx: AttackContext, crowd: Crowd, clients: number, addressOffset: number): Promise<AttackFigures> {
  const names = ctx.streams.slice(0, 1024);
  const subscribe = JSON.stringify({ method: 'SUBSCRIBE', params: names, id: 1 });
  await Promise.all(
    Array.from({ length: clients }, (_, i) =>
      crowd.open(`${base(ctx)}/stream`, {
        localAddress: attackerAddress(addressOffset + i),
        pause: true,
        reconnect: true,
        onOpen: (ws) => {
          ws.send(subscribe);
        },
      }),
    ),
  );
  await aborted(ctx.signal);
  return { streamsEach: names.length };
}

/** c. Reading clients sending costly 64 KiB control frames at `perSecond`, timing each reply. */
async function costlyControllers(ctx: AttackContext, crowd: Crowd, clients: number, perSecond: number, addressOffset: number): Promise<AttackFigures> {
  const frames = costlyFrames(ctx.maxFrameBytes);
  const rtts: number[] = [];
  let sent = 0;
  await Promise.all(
    Array.from({ length: clients }, (_, i) =>
      crowd.open(`${base(ctx)}/ws`, {
        localAddress: attackerAddress(addressOffset + i),
        reconnect: true,
        onOpen: (ws) => {
          // The relay answers every frame, in order: FIFO of send times.
          const pending: number[] = [];
          ws.on('message', () => {
            const at = pending.shift();
            if (at !== undefined) rtts.push(performance.now() - at);
          });
          let k = i;
          crowd.every(ws, 1000 / perSecond, () => {
            pending.push(performance.now());
            ws.send(frames[k++ % frames.length]!);
            sent++;
          });
        },
      }),
    ),
  );
  await aborted(ctx.signal);
  rtts.sort((a, b) => a - b);
  const q = (p: number): number => (rtts.length === 0 ? 0 : Math.round(rtts[Math.min(rtts.length - 1, Math.floor(p * rtts.length))]!));
  return { framesSent: sent, replies: rtts.length, rttP50Ms: q(0.5), rttP99Ms: q(0.99), rttMaxMs: q(1) };
}

/**
 * d. Never-reading clients writing control frames as fast as their socket drains (raw, pre-built
 * frames on the socket under the ws client, so the suite's own CPU stays small): pongs (unsolicited)
 * and pings (each asks the relay for a pong the client never reads).
 */
async function controlFlooders(ctx: AttackContext, crowd: Crowd, pongers: number, pingers: number, addressOffset: number): Promise<AttackFigures> {
  const pongs = controlFrames(0xa, 10_000);
  const pings = controlFrames(0x9, 10_000);
  let framesWritten = 0;
  const flood = (socket: Duplex, frames: Buffer): void => {
    const step = (): void => {
      if (!crowd.running || socket.destroyed || !socket.writable) return;
      if (socket.writableLength < 1 << 20) {
        socket.write(frames);
        framesWritten += frames.length / 6;
      }
      setImmediate(step);
    };
    step();
  };
  const open = (i: number, frames: Buffer): Promise<unknown> =>
    crowd.open(`${base(ctx)}/ws`, {
      localAddress: attackerAddress(addressOffset + i),
      pause: true,
      reconnect: true,
      onOpen: (_ws, socket) => {
        flood(socket, frames);
      },
    });
  await Promise.all([...Array.from({ length: pongers }, (_, i) => open(i, pongs)), ...Array.from({ length: pingers }, (_, i) => open(pongers + i, pings))]);
  await aborted(ctx.signal);
  return { controlFramesWritten: framesWritten };
}

/** One upgrade expected to be refused: its status and how many body bytes came back. */
function refusedUpgrade(url: string): Promise<{ status: number; bodyBytes: number }> {
  return new Promise((resolve) => {
    const ws = new WebSocket(url, { perMessageDeflate: false, handshakeTimeout: 10_000 });
    ws.on('unexpected-response', (req, res) => {
      let bodyBytes = 0;
      res.on('data', (c: Buffer) => (bodyBytes += c.length));
      res.on('end', () => {
        req.destroy();
        resolve({ status: res.statusCode ?? 0, bodyBytes });
      });
      res.on('error', () => {
        resolve({ status: res.statusCode ?? 0, bodyBytes });
      });
    });
    ws.on('open', () => {
      ws.terminate();
      resolve({ status: 101, bodyBytes: 0 });
    });
    ws.on('error', () => {
      resolve({ status: 0, bodyBytes: 0 });
    });
  });
}

/** f. `total` upgrades with a 15 KB bad query parameter, `concurrency` at a time. */
async function badUpgrades(ctx: AttackContext, total: number, concurrency: number): Promise<AttackFigures> {
  const url = `${base(ctx)}/ws?timeUnit=${'x'.repeat(15 * 1024)}`;
  const statuses: Record<string, number> = {};
  let done = 0;
  let bodyBytes = 0;
  let next = 0;
  const started = performance.now();
  const worker = async (): Promise<void> => {
    while (next < total && !ctx.signal.aborted) {
      next++;
      const r = await refusedUpgrade(url);
      statuses[String(r.status)] = (statuses[String(r.status)] ?? 0) + 1;
      bodyBytes += r.bodyBytes;
      done++;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, () => worker()));
  const seconds = (performance.now() - started) / 1000;
  return {
    upgrades: done,
    statuses: Object.entries(statuses)
      .map(([s, n]) => `${s}×${n}`)
      .join(' '),
    bodyBytesEach: done === 0 ? 0 : Math.round(bodyBytes / done),
    seconds: Math.round(seconds * 10) / 10,
  };
}

// ---------------------------------------------------------------------------------------------
// The suite

export const ATTACKS: readonly Attack[] = [
  {
    name: 'baseline',
    title: 'no attack (reference figures)',
    async run(ctx) {
      await aborted(ctx.signal);
      return {};
    },
  },
  {
    name: 'unserved-subscribe',
    title: 'a. 20 bare /ws clients, not reading, 4 SUBSCRIBE/s each for an unserved 64 KB name',
    run: (ctx, crowd) => unservedSubscribers(ctx, crowd, 20, 4, 0),
  },
  {
    name: 'stuck-subscribers',
    title: 'b. 120 clients subscribed to every stream, never reading',
    run: (ctx, crowd) => stuckSubscribers(ctx, crowd, 120, 0),
  },
  {
    name: 'costly-control',
    title: 'c. 40 clients sending costly 64 KiB control frames at 4/s (huge arrays, many keys, deep nesting)',
    run: (ctx, crowd) => costlyControllers(ctx, crowd, 40, 4, 0),
  },
  {
    name: 'control-flood',
    title: 'd. 4 never-reading clients flooding unsolicited pongs (2) and pings (2)',
    run: (ctx, crowd) => controlFlooders(ctx, crowd, 2, 2, 0),
  },
  {
    name: 'one-address',
    title: 'e. one source address opening as many connections as it can',
    async run(ctx, crowd) {
      // Up to 64 handshakes in flight and ~200 attempts/s, for the whole window: the slots it holds and
      // the refusals it gets; the probe from another address shows whether anyone else still gets in.
      let attempts = 0;
      let inFlight = 0;
      while (!ctx.signal.aborted) {
        if (inFlight < 64 && crowd.openCount < 5000) {
          attempts++;
          inFlight++;
          void crowd.open(`${base(ctx)}/ws`).then(() => inFlight--);
        }
        await sleep(5);
      }
      return { attempts, maxHeld: crowd.stats.maxOpen };
    },
  },
  {
    name: 'bad-upgrades',
    title: 'f. 2000 rejected upgrades with a 15 KB bad query parameter (log amplification)',
    run: (ctx) => badUpgrades(ctx, 2000, 50),
  },
  {
    name: 'mix',
    title: 'g. a (10) + b (40) + c (10) + d (1+1) + f (1000, 5 at a time) at once',
    async run(ctx, crowd) {
      const parts = await Promise.all([
        unservedSubscribers(ctx, crowd, 10, 4, 0),
        stuckSubscribers(ctx, crowd, 40, 100),
        costlyControllers(ctx, crowd, 10, 4, 200),
        controlFlooders(ctx, crowd, 1, 1, 300),
        badUpgrades(ctx, 1000, 5),
      ]);
      const [a, , c, d, f] = parts;
      return {
        subscribeFrames: a.framesSent ?? 0,
        costlyRttP99Ms: c.rttP99Ms ?? 0,
        controlFramesWritten: d.controlFramesWritten ?? 0,
        badUpgrades: f.upgrades ?? 0,
      };
    },
  },
];
