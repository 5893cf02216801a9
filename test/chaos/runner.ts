/**
 * The seeded chaos runner: the real daemon (startConnector: upstream pools → Pipeline → RelayServer)
 * against venue simulators, while a PRNG-driven schedule of faults hits them. Two relay clients record
 * everything (one `/stream?streams=` combined, one raw `/ws` + SUBSCRIBE); afterwards their closed
 * candles are compared with each simulator's ground truth (the registry's `truth`).
 *
 * Venues (`venues`, CLI `--venues`): any venues of the simulator registry (src/venues/simulators.ts),
 * alone or side by side in ONE daemon, each against its own simulator; the default is the daemon's
 * default venue (Binance spot) alone, unchanged: 1s candles, real time. Everything venue-specific comes
 * from the registry and the venue's adapter: the simulator, the ground truth, the symbols (disjoint per
 * venue), the stream keys a stall names, the variables the daemon is configured by (`env.vars`), the
 * limits the audit asserts, and the REST statuses the `restErrors` faults draw from (the venue's gate
 * answers, plus 500). Each fault of the schedule targets one venue's simulator; both relay clients
 * subscribe to every stream of every venue on their one connection; the audit runs per venue and
 * stream against that venue's truth. The venues get disjoint symbols: a raw `/ws` event names no
 * stream (nor venue), only `s` and `i`, so a raw client can only tell the venues apart by symbol. (The
 * combined client would cope with shared symbols; test/e2e/venues.test.ts covers the same symbol on
 * both Binance venues.)
 *
 * The promise under test (contract §3–§4): every closed candle of every configured stream reaches each
 * relay client exactly once, in increasing open time, with no gaps and the right values; candles that
 * the venue never had (holes) are absent, never invented; an open update never follows its candle's
 * closed one. And, whatever the storm, the daemon stays inside each venue's limits as its simulator
 * counts them (`auditLimits`: e.g. Binance spot ≤ 5 inbound msgs/s per socket, REST weight under
 * 6000 / min; USD-M ≤ 10 msgs/s, under 2400 / min; connection attempts far under 300 / 5 min; on every
 * venue no REST request inside an announced back-off).
 *
 * Replay: the whole fault list is drawn from the seed BEFORE the run starts, so `--seed N` replays the
 * same faults in the same order at the same offsets. Real time and the OS scheduler still vary, so a
 * replay is the same attack, not a bit-identical run.
 *
 * Clock. When every venue has 1s klines: real time, 1 s candles (~40 closed candles per second to
 * audit). 1m candles on real time would make a run of minutes audit a handful, so whenever a venue
 * without 1s runs (USD-M, most venues), ALL simulators and the daemon share ONE virtual wall clock at
 * FAST_SPEED (60×: a 1m candle closes every real second, the same audit density as 1s) and every venue
 * runs 1m. What keeps
 * that sound is that everything that measures a duration stays on the real monotonic clock on both
 * sides: the simulator's rate windows (msgs/s, REST weight per minute, connection attempts), stalls,
 * Retry-After windows, pings and pong deadlines; the daemon's staleness, liveness, backoff, attempt
 * budget and REST gate. Only what names a moment follows the fast clock, and it is the same function
 * on both sides: candle boundaries, `E`, REST rows, the daemon's "has it closed yet" and gap targets.
 * So every fault duration here is in real ms (a 1.6–4 s stall loses 1–4 one-minute candles), and the
 * limits are counted in real windows (the simulator's connection-attempt window included: the engine
 * counts it on the monotonic clock). Hole positions are wall-stamped, drawn in candles of the venue's
 * interval. One thing does not scale and is left alone: the daemon's
 * own REST weight accounting is per wall-clock minute (Binance's weight minute is wall-aligned), so at
 * 60× its local budget refills every real second; the simulator's real-minute count is what is asserted.
 */
import { pino } from 'pino';
import { mulberry32 } from '../../src/simulator/random.ts';
import { startConnector, type Connector } from '../../src/app.ts';
import { EnvSchema } from '../../src/config/schema.ts';
import { openTimeAt } from '../../src/core/intervals.ts';
import type { Clock } from '../../src/core/clock.ts';
import type { AuditLimits, InjectedStatus, RelayKline, SimulatorVenue, VenueSimulator } from '../../src/simulator/dialect.ts';
import type { AnyVenueAdapter } from '../../src/upstream/venue.ts';
import { VENUES, venueById } from '../../src/venues/index.ts';
import { SIMULATORS, simulatorFor } from '../../src/venues/simulators.ts';
import { RecordingClient, sleep, type KlineMsg } from '../e2e/harness.ts';

// ------------------------------------------------------------------------------------ faults

export type Fault =
  | { readonly kind: 'dropAll' }
  | { readonly kind: 'closeAll'; readonly code: 1000 | 1001 | 1011 }
  | { readonly kind: 'stallStreams'; readonly streams: readonly number[]; readonly ms: number }
  | { readonly kind: 'stallSockets'; readonly ms: number }
  | { readonly kind: 'refuseConnections'; readonly count: number }
  | { readonly kind: 'restErrors'; readonly status: InjectedStatus; readonly count: number; readonly retryAfterSec: number }
  | { readonly kind: 'garbage'; readonly count: number }
  | { readonly kind: 'serverShutdown' }
  | { readonly kind: 'closeMidSubscribe'; readonly count: number }
  /** `length` candles that never existed, starting `startsIn` candles after the one forming when applied. */
  | { readonly kind: 'hole'; readonly stream: number; readonly startsIn: number; readonly length: number };

export type FaultKind = Fault['kind'];

export interface ScheduledFault {
  /** Offset from the start of the schedule, ms. */
  readonly at: number;
  /** Index of the venue whose simulator it hits (always 0 with one venue). */
  readonly venue: number;
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

/** What the `restErrors` faults draw from when a venue's gate statuses are not given (Binance's: 429, 418). */
const DEFAULT_REST_STATUSES: readonly InjectedStatus[] = [429, 418, 500];

function drawFault(rnd: () => number, streams: number, restStatuses: readonly InjectedStatus[]): Fault {
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
      const status = pick(rnd, restStatuses);
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
 * [0.2, 1.8] × meanGapMs, each against one of `venues` venues (uniformly; `streams` per venue). A pure
 * function of its arguments. With one venue no venue is drawn, so a one-venue schedule is exactly the
 * one this function drew before venues existed (same seed, same spot attack). `restStatuses[v]`: what
 * venue v's `restErrors` faults draw from (its gate statuses and 500); default 429, 418, 500, so a
 * Binance schedule is the one drawn before other venues existed.
 */
export function makeSchedule(
  seed: number,
  faults: number,
  streams: number,
  meanGapMs: number,
  venues = 1,
  restStatuses: readonly (readonly InjectedStatus[])[] = [],
): ScheduledFault[] {
  const rnd = mulberry32(seed);
  const out: ScheduledFault[] = [];
  let at = 0;
  for (let i = 0; i < faults; i++) {
    at += Math.round(meanGapMs * (0.2 + 1.6 * rnd()));
    const venue = venues > 1 ? int(rnd, 0, venues - 1) : 0;
    out.push({ at, venue, fault: drawFault(rnd, streams, restStatuses[venue] ?? DEFAULT_REST_STATUSES) });
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

// ------------------------------------------------------------------------------------ venues

/** A venue the runner can attack: one with an adapter (src/venues/index.ts) and a simulator (src/venues/simulators.ts). */
export type ChaosVenueId = string;
export const CHAOS_VENUE_IDS: readonly ChaosVenueId[] = SIMULATORS.map((s) => s.id).filter((id) => venueById(id) !== undefined);

export function isChaosVenueId(x: string): x is ChaosVenueId {
  return CHAOS_VENUE_IDS.includes(x);
}

/** The daemon's default venue (the first of the registry): a run of it alone prints the line it always did. */
const DEFAULT_VENUE = VENUES[0]?.id ?? '';

/** The virtual wall clock's speed whenever a venue without 1s klines runs (see the header: 1m candles, one per real second). */
export const FAST_SPEED = 60;

/** The restErrors statuses of a venue: its gate answers, then 500. */
function restStatusesOf(venue: SimulatorVenue): readonly InjectedStatus[] {
  return [...venue.gateStatuses, 500];
}

/** The simulator module and adapter of a chaos venue; unknown ids are the caller's error. */
function venueParts(id: ChaosVenueId): { readonly sim: SimulatorVenue; readonly adapter: AnyVenueAdapter } {
  const sim = simulatorFor(id);
  const adapter = venueById(id);
  if (sim === undefined || adapter === undefined) throw new RangeError(`chaos: no simulator for venue ${id} (known: ${CHAOS_VENUE_IDS.join(', ')})`);
  return { sim, adapter };
}

// ------------------------------------------------------------------------------------ report

export interface ClientAudit {
  readonly client: string;
  readonly venue: ChaosVenueId;
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

/** What one venue's simulator counted: the venue's limits are asserted on these. */
export interface SimFigures {
  readonly maxInboundPerSecond: number;
  readonly connectionsOpened: number;
  readonly connectionsRefused: number;
  /** Accepted upgrades in any real connection window of the venue (Binance: 300 per 5 min). */
  readonly maxConnectsPerWindow: number;
  /** The most REST budget used within one of the venue's rate windows (Binance: weight per minute). */
  readonly maxRestBudget: number;
  readonly restRequests: number;
  /** Non-2xx REST answers by status (429, 418, 403, 500, …). */
  readonly restStatuses: Readonly<Record<number, number>>;
  /** REST requests that arrived inside a back-off this simulator had announced: violations. */
  readonly restInsideRetryAfter: number;
  readonly closedByRateLimit: number;
}

export interface VenueReport {
  readonly venue: ChaosVenueId;
  readonly interval: string;
  readonly streams: number;
  readonly faults: number;
  readonly candles: number;
  readonly lost: number;
  readonly duplicated: number;
  readonly outOfOrder: number;
  readonly wrong: number;
  readonly invented: number;
  readonly openAfterClosed: number;
  readonly openRegressed: number;
  readonly holesInjected: number;
  readonly sim: SimFigures;
  readonly limits: AuditLimits;
}

export interface ChaosReport {
  readonly seed: number;
  readonly faults: number;
  /** Streams over every venue. */
  readonly streams: number;
  /** The virtual wall clock's speed (1: real time). */
  readonly speed: number;
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
  /** One per client and venue. */
  readonly clients: readonly ClientAudit[];
  /** Injected hole candles (stream × open time) that the audit expects ABSENT, over every venue. */
  readonly holesInjected: number;
  readonly faultCounts: Readonly<Record<string, number>>;
  /** Per venue, in the order given: its audit figures and what its simulator counted. */
  readonly venues: readonly VenueReport[];
  /** Summed over every venue's pool (the pipeline's gap figures are one for all). */
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
  /** The applied schedule, `+offset_ms [venue] kind(args)` per fault: enough to replay with the seed. */
  readonly schedule: readonly string[];
}

/** Everything that should be zero or under a limit and is not; empty means the run passed. */
export function violations(r: ChaosReport): string[] {
  const v: string[] = [];
  if (!r.settled) v.push('did not settle: some client never caught up to the cut-off');
  if (r.lost > 0) v.push(`lost=${r.lost}`);
  if (r.duplicated > 0) v.push(`duplicated=${r.duplicated}`);
  if (r.outOfOrder > 0) v.push(`out_of_order=${r.outOfOrder}`);
  if (r.wrong > 0) v.push(`wrong=${r.wrong}`);
  if (r.invented > 0) v.push(`invented=${r.invented}`);
  if (r.openAfterClosed > 0) v.push(`open_after_closed=${r.openAfterClosed}`);
  if (r.openRegressed > 0) v.push(`open_regressed=${r.openRegressed}`);
  for (const c of r.clients) if (c.silentStreams > 0) v.push(`${c.client}/${c.venue}: ${c.silentStreams} streams delivered nothing`);
  if (r.daemon.holes !== r.holesInjected) v.push(`holes counted by the daemon ${r.daemon.holes} != injected ${r.holesInjected}`);
  for (const { venue, sim, limits } of r.venues) {
    if (sim.maxInboundPerSecond > limits.maxInboundPerSecond) v.push(`${venue}: max_inbound_per_s=${sim.maxInboundPerSecond} > ${limits.maxInboundPerSecond}`);
    if (sim.closedByRateLimit > 0) v.push(`${venue}: closed_by_rate_limit=${sim.closedByRateLimit}`);
    if (sim.maxConnectsPerWindow > limits.maxConnectsPerWindow) v.push(`${venue}: max_connects_window=${sim.maxConnectsPerWindow} > ${limits.maxConnectsPerWindow}`);
    if (sim.maxRestBudget >= limits.maxRestBudget) v.push(`${venue}: max_rest_budget=${sim.maxRestBudget} >= ${limits.maxRestBudget}`);
    if (sim.restInsideRetryAfter > 0) v.push(`${venue}: rest_inside_retry_after=${sim.restInsideRetryAfter}`);
  }
  return v;
}

function simFields(sim: SimFigures): string[] {
  return [
    `max_inbound_per_s=${sim.maxInboundPerSecond}`,
    `connects=${sim.connectionsOpened}`,
    `refused=${sim.connectionsRefused}`,
    `max_connects_window=${sim.maxConnectsPerWindow}`,
    `max_rest_budget=${sim.maxRestBudget}`,
    `rest_errors=${Object.entries(sim.restStatuses).map(([status, n]) => `${status}:${n}`).join(',') || '-'}`,
    `rest_inside_retry_after=${sim.restInsideRetryAfter}`,
  ];
}

/**
 * One line for a one-venue run (spot's line as it always was, plus rest_inside_retry_after); with
 * several venues the first line has the totals and one line per venue follows with its own figures.
 */
export function summaryLine(r: ChaosReport): string {
  const one = r.venues.length === 1 ? r.venues[0] : undefined;
  const head = [
    `chaos seed=${r.seed}`,
    ...(one === undefined || one.venue !== DEFAULT_VENUE ? [`venues=${r.venues.map((x) => x.venue).join(',')}`, `speed=${r.speed}x`] : []),
    `faults=${r.faults}`,
    `streams=${r.streams}`,
    `candles=${r.candles}`,
    `lost=${r.lost}`,
    `duplicated=${r.duplicated}`,
    `out_of_order=${r.outOfOrder}`,
    `wrong=${r.wrong}`,
    `invented=${r.invented}`,
    `open_after_closed=${r.openAfterClosed}`,
    ...(one === undefined ? [] : simFields(one.sim)),
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
  if (one !== undefined) return head;
  const lines = r.venues.map((x) =>
    [
      `  ${x.venue}:`,
      `interval=${x.interval}`,
      `faults=${x.faults}`,
      `streams=${x.streams}`,
      `candles=${x.candles}`,
      `lost=${x.lost}`,
      `duplicated=${x.duplicated}`,
      `out_of_order=${x.outOfOrder}`,
      `wrong=${x.wrong}`,
      `invented=${x.invented}`,
      `open_after_closed=${x.openAfterClosed}`,
      `holes_injected=${x.holesInjected}`,
      ...simFields(x.sim),
      `limits=${x.limits.maxInboundPerSecond}/s,${x.limits.maxConnectsPerWindow}/window,${x.limits.maxRestBudget}/budget`,
    ].join(' '),
  );
  return [head, ...lines].join('\n');
}

/** What to print when a run fails: the seed, what broke, and the exact fault list to replay. */
export function failureText(r: ChaosReport, problems: readonly string[]): string {
  const venues = r.venues.map((v) => v.venue).join(',');
  const streams = r.venues[0]?.streams ?? r.streams;
  const lines = [
    `chaos run FAILED: seed=${r.seed} faults=${r.faults} venues=${venues} streams=${r.streams} (replay: npm run chaos -- --venues ${venues} --seed ${r.seed} --faults ${r.faults} --streams ${streams})`,
    `problems: ${problems.join('; ')}`,
    ...r.clients.flatMap((c) => c.examples.map((e) => `  ${c.client}/${c.venue}: ${e}`)),
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
  /** The venues, side by side in one daemon (default: the daemon's default venue alone). */
  readonly venues?: readonly ChaosVenueId[];
  /** Symbols per venue (default 40). */
  readonly streams?: number;
  /** Mean spacing of faults over all venues (default 450 ms). */
  readonly meanGapMs?: number;
  /** Upper bound on the wait for every client to reach the cut-off after the schedule (default 60 s). */
  readonly settleTimeoutMs?: number;
  readonly log?: ((line: string) => void) | undefined;
}

/** Daemon settings that make recovery fast; each venue's limits stay enforced by its simulator. */
const CHAOS_STALE_MS = 1500;
const CHAOS_ATTEMPT_BUDGET = 150;
/** Few sockets per venue: every socket killer costs one connection attempt per socket, and the budget is per run. */
const SOCKETS = 2;

/** Per client and stream, what has been received so far (scanned incrementally while waiting). */
class Progress {
  readonly #client: RecordingClient;
  readonly #name: (stream: string) => string;
  #scanned = 0;
  readonly maxClosed = new Map<string, number>();
  constructor(client: RecordingClient, name: (stream: string) => string) {
    this.#client = client;
    this.#name = name;
  }
  update(): void {
    const msgs = this.#client.messages;
    for (; this.#scanned < msgs.length; this.#scanned++) {
      const m = msgs[this.#scanned];
      if (m?.x !== true) continue;
      const stream = this.#name(m.stream);
      const prev = this.maxClosed.get(stream);
      if (prev === undefined || m.t > prev) this.maxClosed.set(stream, m.t);
    }
  }
}

class HoleBook {
  readonly #step: number;
  /** stream → open times that never existed. */
  readonly #absent = new Map<string, Set<number>>();
  constructor(step: number) {
    this.#step = step;
  }
  add(stream: string, from: number, toExclusive: number): void {
    let set = this.#absent.get(stream);
    if (set === undefined) {
      set = new Set();
      this.#absent.set(stream, set);
    }
    for (let t = from; t < toExclusive; t += this.#step) set.add(t);
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
    let t = cutoff - this.#step;
    while (this.has(stream, t)) t -= this.#step;
    return t;
  }
}

/** One venue of the run: its simulator, its streams under both names, its holes. */
interface Lane {
  readonly id: ChaosVenueId;
  readonly venue: SimulatorVenue;
  readonly adapter: AnyVenueAdapter;
  readonly interval: string;
  readonly step: number;
  readonly symbols: readonly string[];
  /** The simulator's stream keys (`btcusdt@kline_1m`; what `stallStreams` takes), index = the schedule's stream index. */
  readonly native: readonly string[];
  /** The relay's names (`btcusdt@kline_1s`, `binance-usdm:btcusdt@kline_1m`), same order. */
  readonly relay: readonly string[];
  /** What a raw client derives from an event (`<s lowercased>@kline_<i>`), same order. */
  readonly rawNames: readonly string[];
  readonly sim: VenueSimulator;
  readonly holes: HoleBook;
  readonly holeRanges: { symbol: string; from: number; to: number }[];
  faults: number;
  cutoff: number;
}

const STEP_MS: Readonly<Record<string, number>> = { '1s': 1000, '1m': 60_000 };

/** The `k` fields compared with the venue's truth (`null` where the venue does not publish one). */
const TRUTH_FIELDS: readonly (keyof RelayKline)[] = ['s', 'i', 'T', 'o', 'h', 'l', 'c', 'v', 'q', 'n', 'V', 'Q'];

function auditClient(name: string, client: RecordingClient, rename: (stream: string) => string, lane: Lane, cutoff: number): ClientAudit {
  const { relay: streams, holes, step, interval } = lane;
  const byStream = new Map<string, KlineMsg[]>();
  for (const s of streams) byStream.set(s, []);
  for (const m of client.messages) byStream.get(rename(m.stream))?.push(m);
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
  for (const [i, stream] of streams.entries()) {
    const msgs = byStream.get(stream) ?? [];
    const first = msgs.find((m) => m.x);
    if (first === undefined) {
      silentStreams++;
      note(`${stream}: no closed candle at all`);
      continue;
    }
    const symbol = lane.symbols[i] ?? '';
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
        note(`${stream}: candle ${m.t} inside a hole of the venue`);
      }
      const truth = lane.venue.truth(symbol, interval, m.t);
      if (TRUTH_FIELDS.some((f) => m.k[f] !== truth[f])) {
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
      note(`${stream}: ${(end - runStart) / step} candles missing from ${runStart} (${new Date(runStart).toISOString()})`);
      runStart = undefined;
    };
    for (let t = first.t; t < cutoff; t += step) {
      if (holes.has(stream, t) || seen.has(t)) {
        flush(t);
        continue;
      }
      missing++;
      runStart ??= t;
    }
    flush(cutoff);
  }
  return { client: name, venue: lane.id, candles, missing, duplicated, outOfOrder, wrong, invented, openAfterClosed, openRegressed, silentStreams, examples };
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

/** The daemon's configuration for these venues: its own settings, one simulator per venue. */
function chaosConfig(lanes: readonly Lane[], streamsPerVenue: number): Record<string, unknown> {
  const env: Record<string, unknown> = {
    CONNECTOR_VENUES: lanes.map((l) => l.id).join(','),
    CONNECTOR_RELAY_HOST: '127.0.0.1',
    CONNECTOR_RELAY_PORT: 0,
    CONNECTOR_HEALTH_CHECK_HOST: '127.0.0.1',
    CONNECTOR_WSS_HEALTH_CHECK_PORT: 0,
    CONNECTOR_LOG_LEVEL: 'silent',
    CONNECTOR_MAX_STREAMS_PER_CONNECTION: Math.ceil(streamsPerVenue / SOCKETS),
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
  };
  for (const l of lanes) {
    const vars = l.adapter.env.vars;
    env[vars.symbols] = l.symbols.join(',');
    env[vars.intervals] = l.interval;
    // A venue without a kline WebSocket keeps its default WS URL (the daemon never dials it for klines).
    if (l.sim.wsUrl !== '') env[vars.wsUrl] = l.sim.wsUrl;
    env[vars.restUrl] = l.sim.restUrl;
  }
  return env;
}

export async function runChaos(options: ChaosOptions): Promise<ChaosReport> {
  const started = Date.now();
  const log = options.log ?? ((): void => undefined);
  const venueIds = options.venues ?? [DEFAULT_VENUE];
  if (venueIds.length === 0 || new Set(venueIds).size !== venueIds.length) throw new RangeError(`chaos: venues must be distinct and at least one, got [${venueIds.join(',')}]`);
  const parts = venueIds.map(venueParts);
  const n = options.streams ?? 40;
  for (const { sim } of parts) {
    if (n > sim.chaosSymbols.length) throw new RangeError(`chaos: ${sim.id} has ${sim.chaosSymbols.length} chaos symbols, ${n} streams asked for`);
  }
  // Venues that all have 1s keep real time and 1s candles; with any venue without 1s, every venue runs
  // 1m on the fast clock.
  const speed = parts.every(({ adapter }) => '1s' in adapter.env.intervals) ? 1 : FAST_SPEED;
  const interval = speed === 1 ? '1s' : '1m';
  const step = STEP_MS[interval] ?? 1000;
  const origin = Date.now();
  const now = speed === 1 ? Date.now : (): number => origin + (Date.now() - origin) * speed;
  const clock: Clock = { now, monotonic: () => performance.now() };
  const schedule = makeSchedule(
    options.seed,
    options.faults,
    n,
    options.meanGapMs ?? 450,
    venueIds.length,
    parts.map(({ sim }) => restStatusesOf(sim)),
  );

  const lanes: Lane[] = [];
  let connector: Connector | undefined;
  const stopAll = async (): Promise<void> => {
    await connector?.shutdown('test');
    for (const l of lanes) await l.sim.close();
  };
  try {
    for (const { sim: venue, adapter } of parts) {
      // Open updates every 250 ms (4/s per stream): plenty of traffic without starving 2 cores. Server
      // pings every 2 s instead of the venue's (Binance spot 20 s, USD-M 3 min), so the daemon's pongs
      // really count against each venue's inbound limit.
      const sim = await venue.start({ host: '127.0.0.1', port: 0, openUpdateMs: 250, pingIntervalMs: 2000, now });
      // Disjoint symbols per venue (see the header: raw events name no venue).
      const symbols = venue.chaosSymbols.slice(0, n);
      const specs = adapter.streams(symbols, [interval === '1s' ? '1s' : '1m']);
      const native = symbols.map((s) => venue.streamKey(s, interval));
      const relay = specs.map((s) => s.name);
      const rawNames = specs.map((s) => `${s.symbol.toLowerCase()}@kline_${interval}`);
      lanes.push({ id: venue.id, venue, adapter, interval, step, symbols, native, relay, rawNames, sim, holes: new HoleBook(step), holeRanges: [], faults: 0, cutoff: 0 });
    }
    const config = EnvSchema.parse(chaosConfig(lanes, n));
    connector = await startConnector(config, {
      log: pino({ level: 'silent' }),
      collectDefaultMetrics: false,
      gapRetryDelaysMs: [100, 200, 400, 800],
      ...(speed === 1 ? {} : { clock }),
    });
  } catch (err) {
    await stopAll();
    throw err;
  }
  const daemon = connector;
  for (const l of lanes) {
    const registered = new Set(daemon.registry.all().map((s) => s.name));
    const absent = l.relay.filter((s) => !registered.has(s));
    if (absent.length > 0) throw new Error(`chaos: the daemon did not register ${absent.slice(0, 3).join(', ')}`);
  }
  const allStreams = lanes.flatMap((l) => l.relay);
  // A raw event names only `s` and `i`: the client derives `btcusdt@kline_1m`; the symbol tells the venue.
  const rawToRelay = new Map<string, string>();
  for (const l of lanes) for (const [i, s] of l.rawNames.entries()) rawToRelay.set(s, l.relay[i] ?? s);
  const asIs = (s: string): string => s;
  const fromRaw = (s: string): string => rawToRelay.get(s) ?? s;
  const relayUrl = `ws://127.0.0.1:${daemon.relayAddress.port}`;
  const combined = new RecordingClient(`${relayUrl}/stream?streams=${allStreams.join('/')}`);
  const raw = new RecordingClient(`${relayUrl}/ws`);
  const clients: readonly (readonly [string, RecordingClient, (s: string) => string])[] = [
    ['combined', combined, asIs],
    ['raw', raw, fromRaw],
  ];
  const progress = clients.map(([, c, rename]) => new Progress(c, rename));
  const applied: string[] = [];
  const faultCounts: Record<string, number> = {};
  const events: string[] = [];
  const runStarted = Date.now();
  /** The same moment on the venues' clock (virtual at speed > 1), for the cut-off diagnostics. */
  const runStartedWall = now();
  const recording = daemon.status.subscribe((e) => {
    if (e.type.startsWith('relay.') || e.type === 'stream.live') return;
    events.push(`+${Date.now() - runStarted} ${JSON.stringify(e)}`);
    if (events.length > 4000) events.splice(0, events.length - 3000);
  });
  // A compact picture of each pool every 2 s, so a stuck daemon shows when and how it got stuck.
  const snapTimer = setInterval(() => {
    for (const [i, v] of daemon.venues.entries()) {
      const snap = v.pool.snapshot();
      events.push(
        `+${Date.now() - runStarted} pool ${v.adapter.id} live=${snap.streamsLive} breaker=${snap.breaker} paused=${snap.paused} ` +
          snap.connections.map((c) => `${c.id}:${c.state}/${c.streams}`).join(' ') +
          ` sim=${lanes[i]?.sim.sockets().length ?? '-'} gaps.pending=${daemon.pipeline.gapStats.pending}`,
      );
    }
  }, 2000);
  snapTimer.unref();
  // The daemon may rightly hold every new upstream socket (its 5-minute attempt budget, or a 1008 / 429
  // penalty) or every REST request (a ban): the settle wait then runs from the end of that hold, since
  // nothing can arrive before it.
  let wsHolds = 0;
  let longestWsHoldMs = 0;
  let holdUntil = 0;
  const holdWatch = daemon.status.on('ratelimit', (e) => {
    // A REST ban holds every backfill just as rightly (Bybit's 403: ten minutes): nothing can be
    // recovered before it ends, so the settle wait runs from its end too.
    holdUntil = Math.max(holdUntil, Date.now() + e.retryAfterMs);
    if (e.scope !== 'ws') return;
    wsHolds++;
    longestWsHoldMs = Math.max(longestWsHoldMs, e.retryAfterMs);
  });
  const diagnostics: string[] = [];
  const multi = lanes.length > 1;
  let settled: boolean;
  let settleMs: number;
  try {
    await Promise.all(clients.map(([, c]) => c.opened));
    raw.ws.send(JSON.stringify({ method: 'SUBSCRIBE', params: allStreams, id: 1 }));
    const allHaveOne = (): boolean => {
      for (const p of progress) p.update();
      return progress.every((p) => allStreams.every((s) => p.maxClosed.has(s)));
    };
    if (!(await waitFor(allHaveOne, 20_000))) throw new Error('chaos: the clients did not receive a first closed candle on every stream within 20 s');
    log(
      `chaos seed=${options.seed}: ${allStreams.length} streams live (${lanes.map((l) => `${l.id} ${l.relay.length}×${l.interval}`).join(', ')}${speed === 1 ? '' : `, clock ${speed}x`}), ` +
        `${schedule.length} faults over ~${Math.round((schedule.at(-1)?.at ?? 0) / 1000)} s`,
    );

    const t0 = Date.now();
    for (const [i, { at, venue, fault }] of schedule.entries()) {
      const wait = t0 + at - Date.now();
      if (wait > 0) await sleep(wait);
      const lane = lanes[venue];
      if (lane === undefined) throw new RangeError(`chaos: fault for venue #${venue}`);
      applyFault(lane, fault);
      lane.faults++;
      faultCounts[fault.kind] = (faultCounts[fault.kind] ?? 0) + 1;
      applied.push(`+${at} ${multi ? `${lane.id} ` : ''}${describeFault(fault, lane.relay)}`);
      if ((i + 1) % 100 === 0) log(`chaos: ${i + 1}/${schedule.length} faults applied`);
    }

    // Quiet: end every fault (reset also forgets the holes, which must stay, so they are put back at once,
    // before any REST request can see the difference: the same synchronous turn).
    for (const l of lanes) {
      l.sim.faults.reset();
      for (const h of l.holeRanges) l.sim.faults.hole(h.symbol, l.interval, h.from, h.to);
    }
    const settleStart = Date.now();
    // The cut-off lies past every injected hole, so each hole is audited as absent and counted by the daemon.
    for (const l of lanes) l.cutoff = Math.max(openTimeAt(l.interval, now()) + 2 * l.step, ...l.holeRanges.map((h) => h.to + l.step));
    const reached = (): boolean => {
      for (const p of progress) p.update();
      return progress.every((p) => lanes.every((l) => l.relay.every((s) => (p.maxClosed.get(s) ?? -Infinity) >= l.holes.lastExpected(s, l.cutoff))));
    };
    const settleTimeout = options.settleTimeoutMs ?? 60_000;
    settled = await waitFor(reached, () => Math.max(settleStart, holdUntil) + settleTimeout);
    settleMs = Date.now() - settleStart;
    diagnostics.push(...daemonState());
    for (const l of lanes) diagnostics.push(`${l.id} cutoff ${l.cutoff} (${new Date(l.cutoff).toISOString()}), now ${now()}, run started ${runStartedWall} (venue clock, ${speed}x)`);
    for (const [i, p] of progress.entries()) {
      for (const l of lanes) {
        const behind = l.relay.filter((s) => (p.maxClosed.get(s) ?? -Infinity) < l.holes.lastExpected(s, l.cutoff));
        if (behind.length > 0) {
          diagnostics.push(`${clients[i]?.[0] ?? i} behind on ${behind.length} ${l.id} streams: ${behind.slice(0, 8).map((s) => `${s}@${p.maxClosed.get(s) ?? 'none'}`).join(' ')}`);
        }
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
    await stopAll();
  }

  const audits = lanes.flatMap((l) => clients.map(([name, c, rename]) => auditClient(name, c, rename, l, l.cutoff)));
  const sum = (list: readonly ClientAudit[], f: (a: ClientAudit) => number): number => list.reduce((s, a) => s + f(a), 0);
  const gaps = daemon.pipeline.gapStats;
  const pools = daemon.venues.map((v) => v.pool.stats());
  const poolSum = (f: (s: (typeof pools)[number]) => number): number => pools.reduce((s, p) => s + f(p), 0);
  const venues: VenueReport[] = lanes.map((l) => {
    const mine = audits.filter((a) => a.venue === l.id);
    const c = l.sim.counters;
    return {
      venue: l.id,
      interval: l.interval,
      streams: l.relay.length,
      faults: l.faults,
      candles: sum(mine, (a) => a.candles),
      lost: sum(mine, (a) => a.missing),
      duplicated: sum(mine, (a) => a.duplicated),
      outOfOrder: sum(mine, (a) => a.outOfOrder),
      wrong: sum(mine, (a) => a.wrong),
      invented: sum(mine, (a) => a.invented),
      openAfterClosed: sum(mine, (a) => a.openAfterClosed),
      openRegressed: sum(mine, (a) => a.openRegressed),
      holesInjected: l.holes.size,
      sim: {
        maxInboundPerSecond: c.maxInboundPerSecondSeen,
        connectionsOpened: c.connectionsOpened,
        connectionsRefused: c.connectionsRefused,
        // Counted by the simulator in real (monotonic) windows, so the fast clock does not stretch it.
        maxConnectsPerWindow: c.maxConnectionAttemptsPerWindowSeen,
        maxRestBudget: c.restBudgetUsedMax,
        restRequests: c.restRequests,
        restStatuses: { ...c.restStatuses },
        restInsideRetryAfter: c.restInsideRetryAfter,
        closedByRateLimit: c.closedByRateLimit,
      },
      limits: l.venue.auditLimits,
    };
  });
  return {
    seed: options.seed,
    faults: schedule.length,
    streams: allStreams.length,
    speed,
    elapsedMs: Date.now() - started,
    settled,
    settleMs,
    candles: sum(audits, (a) => a.candles),
    lost: sum(audits, (a) => a.missing),
    duplicated: sum(audits, (a) => a.duplicated),
    outOfOrder: sum(audits, (a) => a.outOfOrder),
    wrong: sum(audits, (a) => a.wrong),
    invented: sum(audits, (a) => a.invented),
    openAfterClosed: sum(audits, (a) => a.openAfterClosed),
    openRegressed: sum(audits, (a) => a.openRegressed),
    clients: audits,
    holesInjected: lanes.reduce((s, l) => s + l.holes.size, 0),
    faultCounts,
    venues,
    daemon: {
      recovered: gaps.candlesRecovered,
      holes: gaps.holes,
      backfills: gaps.backfills,
      backfillsFailed: gaps.backfillsFailed,
      duplicatesFiltered: daemon.pipeline.stats().duplicates,
      reconnections: poolSum((p) => p.reconnections),
      rotations: poolSum((p) => p.rotations),
      connectionAttempts: poolSum((p) => p.connectionAttempts),
      staleEvents: poolSum((p) => p.staleEvents),
      parseErrors: poolSum((p) => p.parseErrors),
      wsHolds,
      longestWsHoldMs,
    },
    diagnostics: [...diagnostics, ...events.slice(-500)],
    schedule: applied,
  };

  function daemonState(): string[] {
    const g = daemon.pipeline.gapStats;
    const p = daemon.pipeline.stats();
    const out: string[] = [];
    for (const [i, v] of daemon.venues.entries()) {
      const snap = v.pool.snapshot();
      out.push(
        `pool ${v.adapter.id}: breaker=${snap.breaker} paused=${snap.paused} live=${snap.streamsLive}/${snap.streamsConfigured} stale=[${snap.staleStreams.join(',')}]`,
        ...snap.connections.map((c) => `  conn ${c.id} ${c.state} ${c.quality} streams=${c.streams} live=${c.liveStreams} age=${c.ageMs}ms last=${c.lastMessageAt ?? '-'}`),
        `rest ${v.adapter.id}: ${JSON.stringify(v.rest.stats())}`,
        `sim ${v.adapter.id} sockets: ${lanes[i]?.sim.sockets().map((x) => `#${x.id}:${x.streams.length}`).join(' ') ?? '-'}`,
      );
    }
    out.push(`pipeline: closedDepth=${p.closedDepth} blocked=${p.blocked} gaps pending=${g.pending} held=${g.held} backfills=${g.backfills} failed=${g.backfillsFailed}`);
    return out;
  }

  function applyFault(lane: Lane, f: Fault): void {
    const faults = lane.sim.faults;
    switch (f.kind) {
      case 'dropAll':
        faults.dropAll();
        return;
      case 'closeAll':
        faults.closeAll(f.code, f.code === 1011 ? 'Internal error' : f.code === 1001 ? 'Going away' : 'Normal closure');
        return;
      case 'stallStreams':
        faults.stallStreams(
          f.streams.map((i) => lane.native[i] ?? ''),
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
        const symbol = lane.symbols[f.stream] ?? '';
        const stream = lane.relay[f.stream] ?? '';
        // Strictly after the candle forming now (on the venue's clock), so no part of it has been published yet.
        const from = openTimeAt(lane.interval, now()) + f.startsIn * lane.step;
        const to = from + f.length * lane.step;
        faults.hole(lane.venue.seriesSymbol(symbol), lane.interval, from, to);
        lane.holes.add(stream, from, to);
        lane.holeRanges.push({ symbol, from, to });
        return;
      }
    }
  }
}
