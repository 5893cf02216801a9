/**
 * The seeded chaos runner: the real daemon (startConnector: BinancePool → Pipeline → RelayServer)
 * against the Binance simulator, while a PRNG-driven schedule of faults hits the simulator. Two relay
 * clients record everything (one `/stream?streams=` combined, one raw `/ws` + SUBSCRIBE); afterwards
 * their closed candles are compared with the simulator's ground truth (`klineAt`).
 *
 * The promise under test (contract §3–§4): every closed candle of every configured stream reaches each
 * relay client exactly once, in increasing open time, with no gaps and the right values; candles that
 * Binance never had (holes) are absent, never invented; an open update never follows its candle's
 * closed one. And, whatever the storm, the daemon stays inside Binance's limits (≤ 5 inbound msgs/s
 * per socket, connection attempts far under 300 / 5 min, REST weight under 6000 / min).
 *
 * Replay: the whole fault list is drawn from the seed BEFORE the run starts, so `--seed N` replays the
 * same faults in the same order at the same offsets. Real time and the OS scheduler still vary, so a
 * replay is the same attack, not a bit-identical run.
 *
 * Clock: real time. Both sides accept a faster virtual wall clock, but the simulator keeps rate windows,
 * stalls and keepalive on the real monotonic clock while candle boundaries would follow the fast one;
 * the daemon's staleness and REST "has it closed yet" checks would then disagree about what "recent"
 * means. 1 s candles on real time already give ~40 closed candles per second to audit.
 */
import { klineAt } from '../../src/venues/binance/simulator/klines.ts';
import { openTimeAt } from '../../src/core/intervals.ts';
import { RecordingClient, sleep, startStack, type KlineMsg } from '../e2e/harness.ts';

// ------------------------------------------------------------------------------------ randomness

/** mulberry32: tiny, fast, good enough to draw a fault schedule; same seed → same sequence everywhere. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// ------------------------------------------------------------------------------------ faults

export type Fault =
  | { readonly kind: 'dropAll' }
  | { readonly kind: 'closeAll'; readonly code: 1000 | 1001 | 1011 }
  | { readonly kind: 'stallStreams'; readonly streams: readonly number[]; readonly ms: number }
  | { readonly kind: 'stallSockets'; readonly ms: number }
  | { readonly kind: 'refuseConnections'; readonly count: number }
  | { readonly kind: 'restErrors'; readonly status: 429 | 418 | 500; readonly count: number; readonly retryAfterSec: number }
  | { readonly kind: 'garbage'; readonly count: number }
  | { readonly kind: 'serverShutdown' }
  | { readonly kind: 'closeMidSubscribe'; readonly count: number }
  /** `length` candles that never existed, starting `startsIn` candles after the one forming when applied. */
  | { readonly kind: 'hole'; readonly stream: number; readonly startsIn: number; readonly length: number };

export type FaultKind = Fault['kind'];

export interface ScheduledFault {
  /** Offset from the start of the schedule, ms. */
  readonly at: number;
  readonly fault: Fault;
}

/** Relative frequency of each kind. Socket killers dominate; holes and stalls force REST recovery. */
const WEIGHTS: readonly (readonly [FaultKind, number])[] = [
  ['dropAll', 10],
  ['closeAll', 10],
  ['stallStreams', 12],
  ['stallSockets', 6],
  ['refuseConnections', 8],
  ['restErrors', 14],
  ['garbage', 10],
  ['serverShutdown', 8],
  ['closeMidSubscribe', 5],
  ['hole', 12],
];
const WEIGHT_TOTAL = WEIGHTS.reduce((s, [, w]) => s + w, 0);

/** Every stall outlasts the daemon's stale window (CHAOS_STALE_MS), so it always forces a replacement. */
const STALL_MIN_MS = 1600;
const STALL_MAX_MS = 4000;

function int(rnd: () => number, min: number, max: number): number {
  return min + Math.floor(rnd() * (max - min + 1));
}

function pick<T>(rnd: () => number, list: readonly T[]): T {
  const v = list[Math.floor(rnd() * list.length)];
  if (v === undefined) throw new RangeError('pick from an empty list');
  return v;
}

function drawFault(rnd: () => number, streams: number): Fault {
  let r = rnd() * WEIGHT_TOTAL;
  let kind: FaultKind = 'dropAll';
  for (const [k, w] of WEIGHTS) {
    if (r < w) {
      kind = k;
      break;
    }
    r -= w;
  }
  switch (kind) {
    case 'dropAll':
    case 'serverShutdown':
      return { kind };
    case 'closeAll':
      return { kind, code: pick(rnd, [1000, 1001, 1011] as const) };
    case 'stallStreams': {
      const n = int(rnd, 1, Math.min(5, streams));
      const chosen = new Set<number>();
      while (chosen.size < n) chosen.add(int(rnd, 0, streams - 1));
      return { kind, streams: [...chosen].sort((a, b) => a - b), ms: int(rnd, STALL_MIN_MS, STALL_MAX_MS) };
    }
    case 'stallSockets':
      return { kind, ms: int(rnd, STALL_MIN_MS, STALL_MAX_MS) };
    case 'refuseConnections':
      return { kind, count: int(rnd, 1, 4) };
    case 'restErrors': {
      const status = pick(rnd, [429, 418, 500] as const);
      return { kind, status, count: int(rnd, 1, 6), retryAfterSec: status === 500 ? 0 : int(rnd, 1, 2) };
    }
    case 'garbage':
      return { kind, count: int(rnd, 1, 8) };
    case 'closeMidSubscribe':
      return { kind, count: int(rnd, 1, 2) };
    case 'hole':
      return { kind, stream: int(rnd, 0, streams - 1), startsIn: int(rnd, 1, 3), length: int(rnd, 1, 3) };
  }
}

/**
 * The whole attack, drawn from the seed up front: `faults` faults at offsets spaced uniformly in
 * [0.2, 1.8] × meanGapMs. A pure function of its arguments.
 */
export function makeSchedule(seed: number, faults: number, streams: number, meanGapMs: number): ScheduledFault[] {
  const rnd = mulberry32(seed);
  const out: ScheduledFault[] = [];
  let at = 0;
  for (let i = 0; i < faults; i++) {
    at += Math.round(meanGapMs * (0.2 + 1.6 * rnd()));
    out.push({ at, fault: drawFault(rnd, streams) });
  }
  return out;
}

export function describeFault(f: Fault, streamNames?: readonly string[]): string {
  const name = (i: number): string => streamNames?.[i] ?? `#${i}`;
  switch (f.kind) {
    case 'dropAll':
    case 'serverShutdown':
      return f.kind;
    case 'closeAll':
      return `closeAll(${f.code})`;
    case 'stallStreams':
      return `stallStreams([${f.streams.map(name).join(',')}],${f.ms})`;
    case 'stallSockets':
      return `stallSockets(${f.ms})`;
    case 'refuseConnections':
      return `refuseConnections(${f.count})`;
    case 'restErrors':
      return `restErrors(${f.count},${f.status},${f.retryAfterSec})`;
    case 'garbage':
      return `garbage(${f.count})`;
    case 'closeMidSubscribe':
      return `closeMidSubscribe(${f.count})`;
    case 'hole':
      return `hole(${name(f.stream)},+${f.startsIn},${f.length})`;
  }
}

// ------------------------------------------------------------------------------------ report

export interface ClientAudit {
  readonly client: string;
  /** Closed candles received in the audited ranges (first delivered → cut-off). */
  readonly candles: number;
  readonly missing: number;
  readonly duplicated: number;
  readonly outOfOrder: number;
  readonly wrong: number;
  /** Closed candles inside an injected hole: invented data. */
  readonly invented: number;
  /** Open updates for a candle this client had already received closed. */
  readonly openAfterClosed: number;
  /** Open updates older than one this client had already received for the stream. */
  readonly openRegressed: number;
  /** Streams that delivered no closed candle at all. */
  readonly silentStreams: number;
  /** First problems, for the failure message. */
  readonly examples: readonly string[];
}

export interface ChaosReport {
  readonly seed: number;
  readonly faults: number;
  readonly streams: number;
  readonly elapsedMs: number;
  /** Every client had every stream up to the cut-off before the settle deadline. */
  readonly settled: boolean;
  readonly settleMs: number;
  readonly candles: number;
  readonly lost: number;
  readonly duplicated: number;
  readonly outOfOrder: number;
  readonly wrong: number;
  readonly invented: number;
  readonly openAfterClosed: number;
  readonly openRegressed: number;
  readonly clients: readonly ClientAudit[];
  /** Injected hole candles (stream × open time) that the audit expects ABSENT. */
  readonly holesInjected: number;
  readonly faultCounts: Readonly<Record<string, number>>;
  readonly sim: {
    readonly maxInboundPerSecond: number;
    readonly connectionsOpened: number;
    readonly connectionsRefused: number;
    /** Accepted upgrades in any 5-minute window (what Binance's 300 / 5 min counts). */
    readonly maxConnects5min: number;
    readonly maxRestWeight1m: number;
    readonly restRequests: number;
    readonly rest429: number;
    readonly rest418: number;
    readonly closedByRateLimit: number;
  };
  readonly daemon: {
    readonly recovered: number;
    readonly holes: number;
    readonly backfills: number;
    readonly backfillsFailed: number;
    readonly duplicatesFiltered: number;
    readonly reconnections: number;
    readonly rotations: number;
    readonly connectionAttempts: number;
    readonly staleEvents: number;
    readonly parseErrors: number;
    /** Times the daemon held new upstream sockets (attempt budget, 1008 / 429 penalty), and the longest hold. */
    readonly wsHolds: number;
    readonly longestWsHoldMs: number;
  };
  /** The daemon's state when the settle wait ended and its last status events (for a failing run). */
  readonly diagnostics: readonly string[];
  /** The applied schedule, `+offset_ms kind(args)` per fault: enough to replay with the seed. */
  readonly schedule: readonly string[];
}

export interface ChaosLimits {
  readonly maxInboundPerSecond: number;
  readonly maxConnects5min: number;
  readonly maxRestWeight1m: number;
}

/** Binance's limits as the simulator enforces them, with the margins the contract asks for. */
export const DEFAULT_LIMITS: ChaosLimits = {
  maxInboundPerSecond: 5,
  // "far under 300 per 5 min": the daemon's own budget in this run (CHAOS_ATTEMPT_BUDGET) is 150.
  maxConnects5min: 150,
  maxRestWeight1m: 6000,
};

/** Everything that should be zero or under a limit and is not; empty means the run passed. */
export function violations(r: ChaosReport, limits: ChaosLimits = DEFAULT_LIMITS): string[] {
  const v: string[] = [];
  if (!r.settled) v.push('did not settle: some client never caught up to the cut-off');
  if (r.lost > 0) v.push(`lost=${r.lost}`);
  if (r.duplicated > 0) v.push(`duplicated=${r.duplicated}`);
  if (r.outOfOrder > 0) v.push(`out_of_order=${r.outOfOrder}`);
  if (r.wrong > 0) v.push(`wrong=${r.wrong}`);
  if (r.invented > 0) v.push(`invented=${r.invented}`);
  if (r.openAfterClosed > 0) v.push(`open_after_closed=${r.openAfterClosed}`);
  if (r.openRegressed > 0) v.push(`open_regressed=${r.openRegressed}`);
  for (const c of r.clients) if (c.silentStreams > 0) v.push(`${c.client}: ${c.silentStreams} streams delivered nothing`);
  if (r.daemon.holes !== r.holesInjected) v.push(`holes counted by the daemon ${r.daemon.holes} != injected ${r.holesInjected}`);
  if (r.sim.maxInboundPerSecond > limits.maxInboundPerSecond) v.push(`max_inbound_per_s=${r.sim.maxInboundPerSecond} > ${limits.maxInboundPerSecond}`);
  if (r.sim.closedByRateLimit > 0) v.push(`closed_by_rate_limit=${r.sim.closedByRateLimit}`);
  if (r.sim.maxConnects5min > limits.maxConnects5min) v.push(`max_connects_5min=${r.sim.maxConnects5min} > ${limits.maxConnects5min}`);
  if (r.sim.maxRestWeight1m >= limits.maxRestWeight1m) v.push(`max_rest_weight_1m=${r.sim.maxRestWeight1m} >= ${limits.maxRestWeight1m}`);
  return v;
}

export function summaryLine(r: ChaosReport): string {
  return [
    `chaos seed=${r.seed}`,
    `faults=${r.faults}`,
    `streams=${r.streams}`,
    `candles=${r.candles}`,
    `lost=${r.lost}`,
    `duplicated=${r.duplicated}`,
    `out_of_order=${r.outOfOrder}`,
    `wrong=${r.wrong}`,
    `invented=${r.invented}`,
    `open_after_closed=${r.openAfterClosed}`,
    `max_inbound_per_s=${r.sim.maxInboundPerSecond}`,
    `connects=${r.sim.connectionsOpened}`,
    `refused=${r.sim.connectionsRefused}`,
    `max_connects_5min=${r.sim.maxConnects5min}`,
    `max_rest_weight_1m=${r.sim.maxRestWeight1m}`,
    `rest429=${r.sim.rest429}`,
    `rest418=${r.sim.rest418}`,
    `recovered=${r.daemon.recovered}`,
    `holes=${r.daemon.holes}/${r.holesInjected}`,
    `backfills=${r.daemon.backfills}`,
    `dups_filtered=${r.daemon.duplicatesFiltered}`,
    `reconnections=${r.daemon.reconnections}`,
    `rotations=${r.daemon.rotations}`,
    `ws_holds=${r.daemon.wsHolds}`,
    `longest_ws_hold=${Math.round(r.daemon.longestWsHoldMs / 1000)}s`,
    `settled=${r.settled}`,
    `settle=${Math.round(r.settleMs / 1000)}s`,
    `elapsed=${Math.round(r.elapsedMs / 1000)}s`,
  ].join(' ');
}

/** What to print when a run fails: the seed, what broke, and the exact fault list to replay. */
export function failureText(r: ChaosReport, problems: readonly string[]): string {
  const lines = [
    `chaos run FAILED: seed=${r.seed} faults=${r.faults} streams=${r.streams} (replay: npm run chaos -- --seed ${r.seed} --faults ${r.faults} --streams ${r.streams})`,
    `problems: ${problems.join('; ')}`,
    ...r.clients.flatMap((c) => c.examples.map((e) => `  ${c.client}: ${e}`)),
    'daemon state at the end of the settle wait, then its last status events:',
    ...r.diagnostics.map((d) => `  ${d}`),
    'schedule:',
    ...r.schedule.map((s) => `  ${s}`),
  ];
  return lines.join('\n');
}

// ------------------------------------------------------------------------------------ the run

export interface ChaosOptions {
  readonly seed: number;
  readonly faults: number;
  /** Symbols on the 1s interval (default 40). */
  readonly streams?: number;
  /** Mean spacing of faults (default 450 ms). */
  readonly meanGapMs?: number;
  /** Upper bound on the wait for every client to reach the cut-off after the schedule (default 60 s). */
  readonly settleTimeoutMs?: number;
  readonly log?: ((line: string) => void) | undefined;
}

const INTERVAL = '1s';
const STEP = 1000;
/** Daemon settings that make recovery fast; Binance's limits stay enforced by the simulator. */
const CHAOS_STALE_MS = 1500;
const CHAOS_ATTEMPT_BUDGET = 150;
/** Few sockets: every socket killer costs one connection attempt per socket, and the budget is per run. */
const SOCKETS = 2;

const BASE_SYMBOLS = [
  'btcusdt', 'ethusdt', 'bnbusdt', 'solusdt', 'xrpusdt', 'adausdt', 'dogeusdt', 'trxusdt', 'linkusdt', 'dotusdt',
  'maticusdt', 'ltcusdt', 'bchusdt', 'avaxusdt', 'xlmusdt', 'atomusdt', 'uniusdt', 'etcusdt', 'filusdt', 'aptusdt',
  'nearusdt', 'arbusdt', 'opusdt', 'injusdt', 'suiusdt', 'seiusdt', 'tiausdt', 'runeusdt', 'aaveusdt', 'mkrusdt',
  'ldousdt', 'stxusdt', 'grtusdt', 'algousdt', 'egldusdt', 'sandusdt', 'manausdt', 'axsusdt', 'ftmusdt', 'icpusdt',
];

export function chaosSymbols(n: number): string[] {
  const out: string[] = [];
  for (let i = 0; i < n; i++) out.push(BASE_SYMBOLS[i] ?? `sim${i}usdt`);
  return out;
}

/** Per client and stream, what has been received so far (scanned incrementally while waiting). */
class Progress {
  readonly #client: RecordingClient;
  #scanned = 0;
  readonly maxClosed = new Map<string, number>();
  constructor(client: RecordingClient) {
    this.#client = client;
  }
  update(): void {
    const msgs = this.#client.messages;
    for (; this.#scanned < msgs.length; this.#scanned++) {
      const m = msgs[this.#scanned];
      if (m?.x !== true) continue;
      const prev = this.maxClosed.get(m.stream);
      if (prev === undefined || m.t > prev) this.maxClosed.set(m.stream, m.t);
    }
  }
}

class HoleBook {
  /** stream → open times that never existed. */
  readonly #absent = new Map<string, Set<number>>();
  add(stream: string, from: number, toExclusive: number): void {
    let set = this.#absent.get(stream);
    if (set === undefined) {
      set = new Set();
      this.#absent.set(stream, set);
    }
    for (let t = from; t < toExclusive; t += STEP) set.add(t);
  }
  has(stream: string, t: number): boolean {
    return this.#absent.get(stream)?.has(t) === true;
  }
  get size(): number {
    let n = 0;
    for (const s of this.#absent.values()) n += s.size;
    return n;
  }
  /** The newest open time before `cutoff` that is not a hole. */
  lastExpected(stream: string, cutoff: number): number {
    let t = cutoff - STEP;
    while (this.has(stream, t)) t -= STEP;
    return t;
  }
}

function auditClient(name: string, client: RecordingClient, streams: readonly string[], cutoff: number, holes: HoleBook): ClientAudit {
  const byStream = new Map<string, KlineMsg[]>();
  for (const s of streams) byStream.set(s, []);
  for (const m of client.messages) byStream.get(m.stream)?.push(m);
  let candles = 0;
  let missing = 0;
  let duplicated = 0;
  let outOfOrder = 0;
  let wrong = 0;
  let invented = 0;
  let openAfterClosed = 0;
  let openRegressed = 0;
  let silentStreams = 0;
  const examples: string[] = [];
  const note = (s: string): void => {
    if (examples.length < 10) examples.push(s);
  };
  for (const stream of streams) {
    const msgs = byStream.get(stream) ?? [];
    const first = msgs.find((m) => m.x);
    if (first === undefined) {
      silentStreams++;
      note(`${stream}: no closed candle at all`);
      continue;
    }
    const [symbol] = stream.split('@kline_') as [string];
    const seen = new Set<number>();
    let maxClosed = -Infinity;
    let lastOpenT = -Infinity;
    let lastOpenE = -Infinity;
    for (const m of msgs) {
      if (!m.x) {
        if (m.t <= maxClosed) {
          openAfterClosed++;
          note(`${stream}: open update for ${m.t} after its closed candle`);
        } else if (m.t < lastOpenT || (m.t === lastOpenT && m.E < lastOpenE)) {
          openRegressed++;
          note(`${stream}: open update ${m.t}/${m.E} older than ${lastOpenT}/${lastOpenE}`);
        }
        if (m.t > lastOpenT || (m.t === lastOpenT && m.E > lastOpenE)) {
          lastOpenT = m.t;
          lastOpenE = m.E;
        }
        continue;
      }
      if (m.t >= cutoff) continue;
      candles++;
      if (holes.has(stream, m.t)) {
        invented++;
        note(`${stream}: candle ${m.t} inside a Binance hole`);
      }
      const truth = klineAt(symbol, INTERVAL, m.t);
      const k = m.k;
      if (
        k.o !== truth.o || k.h !== truth.h || k.l !== truth.l || k.c !== truth.c || k.v !== truth.v || k.n !== truth.n ||
        k.q !== truth.q || k.V !== truth.V || k.Q !== truth.Q || k.T !== truth.T || k.i !== truth.i || k.s !== truth.s
      ) {
        wrong++;
        note(`${stream}: candle ${m.t} has wrong values`);
      }
      if (seen.has(m.t)) {
        duplicated++;
        note(`${stream}: candle ${m.t} delivered twice`);
      } else if (m.t < maxClosed) {
        outOfOrder++;
        note(`${stream}: candle ${m.t} after ${maxClosed}`);
      }
      seen.add(m.t);
      if (m.t > maxClosed) maxClosed = m.t;
    }
    let runStart: number | undefined;
    const flush = (end: number): void => {
      if (runStart === undefined) return;
      note(`${stream}: ${(end - runStart) / STEP} candles missing from ${runStart} (${new Date(runStart).toISOString()})`);
      runStart = undefined;
    };
    for (let t = first.t; t < cutoff; t += STEP) {
      if (holes.has(stream, t) || seen.has(t)) {
        flush(t);
        continue;
      }
      missing++;
      runStart ??= t;
    }
    flush(cutoff);
  }
  return { client: name, candles, missing, duplicated, outOfOrder, wrong, invented, openAfterClosed, openRegressed, silentStreams, examples };
}

function maxInWindow(timestamps: readonly number[], windowMs: number): number {
  const ts = [...timestamps].sort((a, b) => a - b);
  let best = 0;
  let lo = 0;
  for (let hi = 0; hi < ts.length; hi++) {
    while ((ts[lo] ?? 0) <= (ts[hi] ?? 0) - windowMs) lo++;
    best = Math.max(best, hi - lo + 1);
  }
  return best;
}

/** Poll `cond` until it holds or the deadline (ms from now, or a function giving a wall time) passes. */
async function waitFor(cond: () => boolean, deadline: number | (() => number)): Promise<boolean> {
  const fixed = typeof deadline === 'number' ? Date.now() + deadline : undefined;
  while (!cond()) {
    if (Date.now() > (fixed ?? (typeof deadline === 'function' ? deadline() : 0))) return false;
    await sleep(50);
  }
  return true;
}

export async function runChaos(options: ChaosOptions): Promise<ChaosReport> {
  const started = Date.now();
  const log = options.log ?? ((): void => undefined);
  const n = options.streams ?? 40;
  const symbols = chaosSymbols(n);
  const streams = symbols.map((s) => `${s}@kline_${INTERVAL}`);
  const schedule = makeSchedule(options.seed, options.faults, n, options.meanGapMs ?? 450);

  const stack = await startStack(
    // Open updates every 250 ms (4/s per stream): plenty of traffic without starving 2 cores. Server
    // pings every 2 s instead of 20 s, so the daemon's pongs really count against the 5 msgs/s limit.
    { openUpdateMs: 250, pingIntervalMs: 2000 },
    {
      CONNECTOR_SYMBOLS: symbols.join(','),
      CONNECTOR_INTERVALS: INTERVAL,
      CONNECTOR_MAX_STREAMS_PER_CONNECTION: Math.ceil(n / SOCKETS),
      CONNECTOR_MAX_CONNECTIONS: 10,
      CONNECTOR_STALE_STREAM_MS: CHAOS_STALE_MS,
      CONNECTOR_PING_TIMEOUT_MS: 3000,
      CONNECTOR_PONG_TIMEOUT_MS: 1000,
      CONNECTOR_CONNECT_TIMEOUT_MS: 2000,
      CONNECTOR_RECONNECT_BASE_MS: 100,
      CONNECTOR_RECONNECT_MAX_MS: 1000,
      CONNECTOR_RECONNECT_MAX_RETRIES: 1000,
      CONNECTOR_CIRCUIT_BREAKER_FAILURE_THRESHOLD: 5,
      CONNECTOR_CIRCUIT_BREAKER_RECOVERY_TIMEOUT: 1,
      CONNECTOR_CIRCUIT_BREAKER_RECOVERY_MAX: 2,
      CONNECTOR_MAX_CONNECTION_ATTEMPTS_PER_5MIN: CHAOS_ATTEMPT_BUDGET,
      CONNECTOR_REST_TIMEOUT_MS: 3000,
    },
    { gapRetryDelaysMs: [100, 200, 400, 800] },
  );
  const { sim, connector } = stack;
  const combined = new RecordingClient(`${stack.relayUrl}/stream?streams=${streams.join('/')}`);
  const raw = new RecordingClient(`${stack.relayUrl}/ws`);
  const clients: readonly (readonly [string, RecordingClient])[] = [
    ['combined', combined],
    ['raw', raw],
  ];
  const progress = clients.map(([, c]) => new Progress(c));
  const holes = new HoleBook();
  const holeRanges: { symbol: string; from: number; to: number }[] = [];
  const applied: string[] = [];
  const faultCounts: Record<string, number> = {};
  const events: string[] = [];
  const runStarted = Date.now();
  const recording = connector.status.subscribe((e) => {
    if (e.type.startsWith('relay.') || e.type === 'stream.live') return;
    events.push(`+${Date.now() - runStarted} ${JSON.stringify(e)}`);
    if (events.length > 4000) events.splice(0, events.length - 3000);
  });
  // A compact picture of the pool every 2 s, so a stuck daemon shows when and how it got stuck.
  const snapTimer = setInterval(() => {
    const snap = connector.pool.snapshot();
    events.push(
      `+${Date.now() - runStarted} pool live=${snap.streamsLive} breaker=${snap.breaker} paused=${snap.paused} ` +
        snap.connections.map((c) => `${c.id}:${c.state}/${c.streams}`).join(' ') +
        ` sim=${sim.sockets().length} gaps.pending=${connector.pipeline.gapStats.pending}`,
    );
  }, 2000);
  snapTimer.unref();
  // The daemon may rightly hold every new upstream socket (its 5-minute attempt budget, or a 1008 / 429
  // penalty): the settle wait then runs from the end of that hold, since nothing can arrive before it.
  let wsHolds = 0;
  let longestWsHoldMs = 0;
  let holdUntil = 0;
  const holdWatch = connector.status.on('ratelimit', (e) => {
    if (e.scope !== 'ws') return;
    wsHolds++;
    longestWsHoldMs = Math.max(longestWsHoldMs, e.retryAfterMs);
    holdUntil = Math.max(holdUntil, Date.now() + e.retryAfterMs);
  });
  const diagnostics: string[] = [];
  let settled: boolean;
  let settleMs: number;
  let cutoff: number;
  try {
    await Promise.all(clients.map(([, c]) => c.opened));
    raw.ws.send(JSON.stringify({ method: 'SUBSCRIBE', params: streams, id: 1 }));
    const allHaveOne = (): boolean => {
      for (const p of progress) p.update();
      return progress.every((p) => streams.every((s) => p.maxClosed.has(s)));
    };
    if (!(await waitFor(allHaveOne, 20_000))) throw new Error('chaos: the clients did not receive a first closed candle on every stream within 20 s');
    log(`chaos seed=${options.seed}: ${n} streams live, ${schedule.length} faults over ~${Math.round((schedule.at(-1)?.at ?? 0) / 1000)} s`);

    const t0 = Date.now();
    for (const [i, { at, fault }] of schedule.entries()) {
      const wait = t0 + at - Date.now();
      if (wait > 0) await sleep(wait);
      applyFault(fault);
      faultCounts[fault.kind] = (faultCounts[fault.kind] ?? 0) + 1;
      applied.push(`+${at} ${describeFault(fault, streams)}`);
      if ((i + 1) % 100 === 0) log(`chaos: ${i + 1}/${schedule.length} faults applied`);
    }

    // Quiet: end every fault (reset also forgets the holes, which must stay, so they are put back at once,
    // before any REST request can see the difference: the same synchronous turn).
    sim.faults.reset();
    for (const h of holeRanges) sim.faults.hole(h.symbol, INTERVAL, h.from, h.to);
    const settleStart = Date.now();
    // The cut-off lies past every injected hole, so each hole is audited as absent and counted by the daemon.
    cutoff = Math.max(openTimeAt(INTERVAL, Date.now()) + 2 * STEP, ...holeRanges.map((h) => h.to + STEP));
    const reached = (): boolean => {
      for (const p of progress) p.update();
      return progress.every((p) => streams.every((s) => (p.maxClosed.get(s) ?? -Infinity) >= holes.lastExpected(s, cutoff)));
    };
    const settleTimeout = options.settleTimeoutMs ?? 60_000;
    settled = await waitFor(reached, () => Math.max(settleStart, holdUntil) + settleTimeout);
    settleMs = Date.now() - settleStart;
    diagnostics.push(...daemonState(), `cutoff ${cutoff} (${new Date(cutoff).toISOString()}), now ${Date.now()}, run started ${runStarted}`);
    for (const [i, p] of progress.entries()) {
      const behind = streams.filter((s) => (p.maxClosed.get(s) ?? -Infinity) < holes.lastExpected(s, cutoff));
      if (behind.length > 0) {
        diagnostics.push(`${clients[i]?.[0] ?? i} behind on ${behind.length} streams: ${behind.slice(0, 8).map((s) => `${s}@${p.maxClosed.get(s) ?? 'none'}`).join(' ')}`);
      }
    }
    // A little longer, so a late duplicate or straggler would be seen.
    await sleep(1500);
    log(`chaos: ${settled ? 'settled' : 'NOT settled'} after ${settleMs} ms`);
  } finally {
    recording.dispose();
    holdWatch.dispose();
    clearInterval(snapTimer);
    for (const [, c] of clients) c.ws.terminate();
    await stack.stop();
  }

  const audits = clients.map(([name, c]) => auditClient(name, c, streams, cutoff, holes));
  const sum = (f: (a: ClientAudit) => number): number => audits.reduce((s, a) => s + f(a), 0);
  const gaps = connector.pipeline.gapStats;
  const up = connector.pool.stats();
  const c = sim.counters;
  return {
    seed: options.seed,
    faults: schedule.length,
    streams: n,
    elapsedMs: Date.now() - started,
    settled,
    settleMs,
    candles: sum((a) => a.candles),
    lost: sum((a) => a.missing),
    duplicated: sum((a) => a.duplicated),
    outOfOrder: sum((a) => a.outOfOrder),
    wrong: sum((a) => a.wrong),
    invented: sum((a) => a.invented),
    openAfterClosed: sum((a) => a.openAfterClosed),
    openRegressed: sum((a) => a.openRegressed),
    clients: audits,
    holesInjected: holes.size,
    faultCounts,
    sim: {
      maxInboundPerSecond: c.maxInboundPerSecondSeen,
      connectionsOpened: c.connectionsOpened,
      connectionsRefused: c.connectionsRefused,
      maxConnects5min: maxInWindow(c.connectionTimestamps, 5 * 60_000),
      maxRestWeight1m: c.restWeightUsedMax1m,
      restRequests: c.restRequests,
      rest429: c.rest429,
      rest418: c.rest418,
      closedByRateLimit: c.closedByRateLimit,
    },
    daemon: {
      recovered: gaps.candlesRecovered,
      holes: gaps.holes,
      backfills: gaps.backfills,
      backfillsFailed: gaps.backfillsFailed,
      duplicatesFiltered: connector.pipeline.stats().duplicates,
      reconnections: up.reconnections,
      rotations: up.rotations,
      connectionAttempts: up.connectionAttempts,
      staleEvents: up.staleEvents,
      parseErrors: up.parseErrors,
      wsHolds,
      longestWsHoldMs,
    },
    diagnostics: [...diagnostics, ...events.slice(-500)],
    schedule: applied,
  };

  function daemonState(): string[] {
    const snap = connector.pool.snapshot();
    const g = connector.pipeline.gapStats;
    const p = connector.pipeline.stats();
    return [
      `pool: breaker=${snap.breaker} paused=${snap.paused} live=${snap.streamsLive}/${snap.streamsConfigured} stale=[${snap.staleStreams.join(',')}]`,
      ...snap.connections.map((c) => `  conn ${c.id} ${c.state} ${c.quality} streams=${c.streams} live=${c.liveStreams} age=${c.ageMs}ms last=${c.lastMessageAt ?? '-'}`),
      `pipeline: closedDepth=${p.closedDepth} blocked=${p.blocked} gaps pending=${g.pending} held=${g.held} backfills=${g.backfills} failed=${g.backfillsFailed}`,
      `rest: ${JSON.stringify(connector.rest.stats())}`,
      `sim sockets: ${sim.sockets().map((x) => `#${x.id}:${x.streams.length}`).join(' ')}`,
    ];
  }

  function applyFault(f: Fault): void {
    const faults = sim.faults;
    switch (f.kind) {
      case 'dropAll':
        faults.dropAll();
        return;
      case 'closeAll':
        faults.closeAll(f.code, f.code === 1011 ? 'Internal error' : f.code === 1001 ? 'Going away' : 'Normal closure');
        return;
      case 'stallStreams':
        faults.stallStreams(
          f.streams.map((i) => streams[i] ?? ''),
          f.ms,
        );
        return;
      case 'stallSockets':
        faults.stallSockets(f.ms);
        return;
      case 'refuseConnections':
        // 503, not 429: a 429 at upgrade without Retry-After holds every attempt for a minute (correctly).
        faults.refuseConnections(f.count, 503);
        return;
      case 'restErrors':
        faults.restErrors(f.count, f.status, f.retryAfterSec);
        return;
      case 'garbage':
        faults.garbage(f.count);
        return;
      case 'serverShutdown':
        faults.serverShutdown();
        return;
      case 'closeMidSubscribe':
        faults.closeMidSubscribe(f.count);
        return;
      case 'hole': {
        const symbol = symbols[f.stream] ?? '';
        const stream = streams[f.stream] ?? '';
        // Strictly after the candle forming now, so no part of it has been published yet.
        const from = openTimeAt(INTERVAL, Date.now()) + f.startsIn * STEP;
        const to = from + f.length * STEP;
        faults.hole(symbol, INTERVAL, from, to);
        holes.add(stream, from, to);
        holeRanges.push({ symbol, from, to });
        return;
      }
    }
  }
}
