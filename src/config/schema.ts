/**
 * The one configuration schema. Keys are the environment variable names themselves, so every error
 * names the variable the operator has to fix; presets in config/<env>.json use the same keys.
 * The typed, nested `Config` handed to the rest of the daemon is derived from this schema (z.output).
 *
 * Venues (contract §2a): CONNECTOR_VENUES lists them; each venue's variables (symbols, intervals,
 * WebSocket and REST URLs) come from its adapter's env fragment (src/venues/<venue>/), with its
 * defaults, its symbol form and its interval map. This file names no venue.
 */
import * as z from 'zod';
import { CANONICAL_INTERVALS, type CanonicalInterval } from '../core/intervals.ts';
import type { AnyVenueAdapter, PollProtocol, VenueConfig, WsProtocol } from '../upstream/venue.ts';
import { maxPolledStreams, pollLoad } from '../upstream/poll-budget.ts';
import { VENUES } from '../venues/index.ts';
import { parseShard, podOrdinal, shardLabel, shardOf, type ShardConfig } from '../core/shards.ts';

/**
 * An integer from a JSON number or a non-empty decimal string (never `Number('') === 0`). Seed-era
 * files write integers as decimals (`30.0`): an integral decimal is that integer, a fractional one is
 * refused.
 */
function int(min: number, max: number) {
  return z
    .union([z.number(), z.string().trim().regex(/^-?\d+(\.\d+)?$/, { message: 'expected an integer' })])
    .transform((v) => Number(v))
    .pipe(
      z
        .number()
        .int({ message: 'expected an integer' })
        .min(min, { message: `expected an integer >= ${min}` })
        .max(max, { message: `expected an integer <= ${max}` }),
    );
}

/**
 * Decimal seconds (`30`, `30.0`, `1.5`), as the seed wrote them, into whole milliseconds. Give defaults
 * with `.prefault(seconds)` so they go through the same conversion (`.default` would skip it).
 */
function seconds(min: number, max: number) {
  return z
    .union([z.number(), z.string().trim().regex(/^\d+(\.\d+)?$/, { message: 'expected a number of seconds, e.g. 30 or 30.0' })])
    .transform((v) => Number(v))
    .pipe(z.number().min(min, { message: `expected seconds >= ${min}` }).max(max, { message: `expected seconds <= ${max}` }))
    .transform((s) => Math.round(s * 1000));
}

function num(min: number, max: number) {
  return z
    .union([z.number(), z.string().trim().regex(/^-?\d+(\.\d+)?$/, { message: 'expected a number' })])
    .transform((v) => Number(v))
    .pipe(z.number().min(min, { message: `expected a number >= ${min}` }).max(max, { message: `expected a number <= ${max}` }));
}

function bool() {
  return z.union([z.boolean(), z.stringbool()]);
}

const port = () => int(0, 65535);

function url(protocols: readonly string[]) {
  return z
    .string()
    .trim()
    .refine(
      (s) => {
        try {
          return protocols.includes(new URL(s).protocol);
        } catch {
          // not parseable: reported by the refine message below
          return false;
        }
      },
      { message: `expected a URL with scheme ${protocols.map((p) => p.replace(':', '://')).join(' or ')}` },
    )
    .transform((s) => s.replace(/\/+$/, ''));
}

/** A comma list (or an array, from presets and tests), trimmed, empty items dropped. */
function list(normalize: (s: string) => string = (s) => s) {
  return z
    .union([z.string(), z.array(z.string())])
    .transform((v) => (Array.isArray(v) ? v : v.split(',')).map((s) => normalize(s.trim())).filter((s) => s.length > 0));
}

const VENUE_IDS = VENUES.map((v) => v.id);

const venueList = list()
  .pipe(z.array(z.string().refine((id) => VENUE_IDS.includes(id), { message: `expected venues from: ${VENUE_IDS.join(', ')}` })).min(1, { message: 'expected at least one venue' }))
  .transform((ids) => [...new Set(ids)]);

/** A venue's symbols in its own form (contract §2a: native symbols, case-insensitive). */
function venueSymbols(v: AnyVenueAdapter) {
  const env = v.env;
  const normalize = env.symbolCase === 'lower' ? (s: string) => s.toLowerCase() : (s: string) => s.toUpperCase();
  return list(normalize)
    .pipe(z.array(z.string().regex(env.symbolPattern, { message: `symbols are ${env.symbolForm}` })).min(1, { message: 'expected at least one symbol' }))
    .transform((symbols) => [...new Set(symbols)]);
}

/** A venue's intervals: canonical spellings only, and only the ones the venue has. */
function venueIntervals(v: AnyVenueAdapter) {
  const has = CANONICAL_INTERVALS.filter((i) => v.env.intervals[i] !== undefined);
  return list()
    .pipe(
      z
        .array(z.string().refine((i): i is CanonicalInterval => (has as readonly string[]).includes(i), { message: `expected ${v.title} kline intervals: ${has.join(', ')}` }))
        .min(1, { message: 'expected at least one interval' }),
    )
    .transform((intervals) => [...new Set(intervals)]);
}

/** Each venue's own variables, validated key by key (so every bad one is reported at once); all optional here. */
function venueShapeOf(v: AnyVenueAdapter) {
  return {
    symbols: venueSymbols(v).optional(),
    intervals: venueIntervals(v).optional(),
    wsUrl: url(['wss:', 'ws:']).optional(),
    restUrl: url(['https:', 'http:']).optional(),
  };
}

const VENUE_SHAPES = VENUES.map((v) => ({ venue: v, schema: z.object(venueShapeOf(v)) }));

/** The variable names of every venue's own variables (each adapter's `env.vars`). */
export const VENUE_VARIABLES: readonly string[] = VENUES.flatMap((v) => Object.values(v.env.vars));

/** Every variable the daemon reads, with its default (the venues' own ones are in VENUE_VARIABLES). `.env.example` documents the same list. */
export const envShape = {
  CONNECTOR_ENV: z.enum(['development', 'staging', 'production']).default('development'),
  /** Venues to ingest (contract §2a); the first registered venue by default. */
  CONNECTOR_VENUES: venueList.default([VENUE_IDS[0] ?? '']),
  CONNECTOR_REQUIRE_TLS: bool().default(false),

  CONNECTOR_RELAY_HOST: z.string().trim().min(1).default('0.0.0.0'),
  CONNECTOR_RELAY_PORT: port().default(8765),
  CONNECTOR_RELAY_TOKEN: z.string().min(1).optional(),
  // token | none; unset means "token if CONNECTOR_RELAY_TOKEN is set". Production needs a token or an
  // explicit none (contract §2: the relay is never open by accident). Checked in superRefine below.
  CONNECTOR_RELAY_AUTH: z.enum(['token', 'none'], { message: 'expected token or none' }).optional(),
  CONNECTOR_RELAY_MAX_CLIENTS: int(1, 1_000_000).default(1000),
  CONNECTOR_RELAY_MAX_BUFFERED_BYTES: int(1024, 1 << 30).default(4 * 1024 * 1024),
  CONNECTOR_RELAY_MAX_FRAME_BYTES: int(256, 16 * 1024 * 1024).default(64 * 1024),
  CONNECTOR_RELAY_MAX_MESSAGES_PER_SECOND: int(1, 1000).default(5),
  CONNECTOR_RELAY_MAX_STREAMS_PER_CLIENT: int(1, 100_000).default(1024),
  CONNECTOR_RELAY_PING_INTERVAL_MS: int(100, 3_600_000).default(20_000),
  CONNECTOR_RELAY_CLIENT_TIMEOUT_MS: int(100, 3_600_000).default(60_000),
  CONNECTOR_RELAY_CLOSE_TIMEOUT_MS: int(100, 600_000).default(30_000),
  /** Unset: a quarter of V8's heap limit (src/relay/budget.ts says why). */
  CONNECTOR_RELAY_MAX_TOTAL_BUFFERED_BYTES: int(64 * 1024, 2 ** 40).optional(),
  CONNECTOR_RELAY_MAX_CLIENTS_PER_IP: int(1, 1_000_000).default(50),
  // Resume (contract §5): closed candles kept per stream for `since` (0: no history, `since` refused),
  // and how far back a `since` may reach, in candles of the stream's interval.
  CONNECTOR_RELAY_HISTORY_CANDLES: int(0, 100_000).default(1440),
  CONNECTOR_RELAY_REPLAY_MAX_CANDLES: int(1, 1_000_000).default(5000),
  CONNECTOR_RELAY_TLS_CERT_FILE: z.string().trim().min(1).optional(),
  CONNECTOR_RELAY_TLS_KEY_FILE: z.string().trim().min(1).optional(),

  CONNECTOR_HEALTH_CHECK_HOST: z.string().trim().min(1).default('0.0.0.0'),
  CONNECTOR_WSS_HEALTH_CHECK_PORT: port().default(8766),
  /** false: no ops server at all (no /health, /ready, /metrics listener), as in the seed. */
  CONNECTOR_WSS_HEALTH_CHECK_ENABLED: bool().default(true),

  CONNECTOR_CLOSED_QUEUE_MAXSIZE: int(1, 10_000_000).default(1000),
  /** 0 (the seed's "unbounded"): one slot per configured stream and no further bound, so nothing is evicted. */
  CONNECTOR_OPEN_QUEUE_MAXSIZE: int(0, 10_000_000).default(10_000),
  CONNECTOR_DEDUPLICATION_WINDOW_SECONDS: seconds(1, 86_400 * 31).prefault(120),
  CONNECTOR_DEDUPLICATION_MAX_ENTRIES: int(1, 10_000_000).default(10_000),
  CONNECTOR_GAP_HOLD_MAX: int(1, 1_000_000).default(5000),
  /** A missing range is a hole once REST has served a later candle, or once it closed longer ago than this (REST lags at times). */
  CONNECTOR_HOLE_HORIZON_MS: int(1000, 86_400_000).default(300_000),

  CONNECTOR_CIRCUIT_BREAKER_FAILURE_THRESHOLD: int(1, 1000).default(5),
  CONNECTOR_CIRCUIT_BREAKER_RECOVERY_TIMEOUT: seconds(1, 86_400).prefault(30),
  CONNECTOR_CIRCUIT_BREAKER_RECOVERY_MAX: seconds(1, 86_400).prefault(300),
  CONNECTOR_CIRCUIT_BREAKER_HALF_OPEN_CALLS: int(1, 100).default(1),

  CONNECTOR_REST_POOL_CONNECTIONS: int(1, 1000).default(10),
  CONNECTOR_REST_POOL_MAXSIZE: int(1, 1000).default(20),
  CONNECTOR_REST_TIMEOUT_MS: int(100, 600_000).default(10_000),
  CONNECTOR_REST_MAX_WEIGHT_PER_MINUTE: int(10, 6000).default(3000),

  CONNECTOR_MAX_STREAMS_PER_CONNECTION: int(1, 1024).default(200),
  CONNECTOR_MAX_CONNECTIONS: int(1, 1000).default(10),
  CONNECTOR_INITIAL_CONNECTIONS: int(1, 1000).default(1),
  CONNECTOR_CONNECT_TIMEOUT_MS: int(100, 600_000).default(30_000),
  /** How often each socket's quality is graded (the liveness, pong and staleness deadlines have their own). */
  CONNECTOR_HEALTH_CHECK_INTERVAL_MS: int(100, 3_600_000).default(30_000),
  /** A socket without streams (a spare beyond what the streams need) is closed after this. */
  CONNECTOR_IDLE_TIMEOUT_MS: int(1000, 86_400_000).default(300_000),
  CONNECTOR_CONNECTION_MAX_AGE_MS: int(10_000, 86_400_000).default(3_600_000),
  CONNECTOR_MAX_CONNECTION_ATTEMPTS_PER_5MIN: int(1, 300).default(60),
  CONNECTOR_MAX_MESSAGE_BYTES: int(1024, 64 * 1024 * 1024).default(1024 * 1024),

  CONNECTOR_PING_TIMEOUT_MS: int(100, 3_600_000).default(60_000),
  CONNECTOR_PONG_TIMEOUT_MS: int(100, 600_000).default(5_000),
  /** Client pings in a row left unanswered within CONNECTOR_PONG_TIMEOUT_MS before the socket is replaced. */
  CONNECTOR_MAX_MISSED_PINGS: int(1, 100).default(3),
  CONNECTOR_UNHEALTHY_THRESHOLD: num(0, 1).default(0.5),
  CONNECTOR_STALE_STREAM_MS: int(100, 86_400_000).default(60_000),

  CONNECTOR_RECONNECT_BASE_MS: int(1, 3_600_000).default(1000),
  CONNECTOR_RECONNECT_MAX_MS: int(1, 3_600_000).default(60_000),
  CONNECTOR_RECONNECT_JITTER: num(0, 1).default(0.25),
  CONNECTOR_RECONNECT_MAX_RETRIES: int(1, 1_000_000).default(15),
  CONNECTOR_RECONNECT_RESET_AFTER_SUCCESSES: int(1, 1000).default(3),

  CONNECTOR_READY_MIN_LIVE_RATIO: num(0, 1).default(0.7),
  CONNECTOR_HEALTH_DEGRADED_RATIO: num(0, 1).default(0.5),
  CONNECTOR_HEALTH_CRITICAL_RATIO: num(0, 1).default(0.3),
  CONNECTOR_MAX_MEMORY_MB: int(16, 1_000_000).default(100),

  /** Unset: no JetStream sink at all (not constructed; contract §9). */
  CONNECTOR_NATS_URL: url(['nats:', 'tls:']).optional(),
  CONNECTOR_NATS_TOKEN: z.string().min(1).optional(),
  CONNECTOR_NATS_USER: z.string().min(1).optional(),
  CONNECTOR_NATS_PASSWORD: z.string().min(1).optional(),
  CONNECTOR_NATS_STREAM: z.string().trim().regex(/^[A-Za-z0-9_-]+$/, { message: 'expected a stream name of letters, digits, _ and -' }).default('CANDLES'),
  CONNECTOR_NATS_SUBJECT_PREFIX: z
    .string()
    .trim()
    .regex(/^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/, { message: 'expected subject tokens of letters, digits, _ and -, separated by .' })
    .default('candles'),
  CONNECTOR_NATS_MAX_AGE_HOURS: int(1, 24 * 365 * 10).default(168),
  CONNECTOR_NATS_MAX_INFLIGHT: int(1, 65_536).default(256),

  /**
   * Shards (contract §10): `i/n` owns shard i of n; or CONNECTOR_SHARD_COUNT=n with i = the pod
   * ordinal (CONNECTOR_POD_NAME, else HOSTNAME, ending in -<ordinal>) mod n, so a StatefulSet of
   * 2n replicas runs n HA pairs. Unset: one shard, every stream.
   */
  CONNECTOR_SHARD: z.string().trim().min(1).optional(),
  CONNECTOR_SHARD_COUNT: int(1, 1024).optional(),
  /** The pod's name, for the ordinal (the manifests set it from metadata.name; the loader falls back to HOSTNAME). */
  CONNECTOR_POD_NAME: z.string().trim().min(1).optional(),

  CONNECTOR_SHUTDOWN_GRACE_MS: int(0, 600_000).default(10_000),
  CONNECTOR_LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
} as const;

/** Every variable name the daemon knows: the shared ones and every venue's own. */
export const ENV_NAMES: readonly string[] = [...Object.keys(envShape), ...VENUE_VARIABLES];

const SharedSchema = z
  .object(envShape)
  .superRefine((v, ctx) => {
    if (v.CONNECTOR_RECONNECT_MAX_MS < v.CONNECTOR_RECONNECT_BASE_MS) {
      ctx.addIssue({ code: 'custom', path: ['CONNECTOR_RECONNECT_MAX_MS'], message: 'must be >= CONNECTOR_RECONNECT_BASE_MS' });
    }
    if (v.CONNECTOR_REST_POOL_CONNECTIONS > v.CONNECTOR_REST_POOL_MAXSIZE) {
      ctx.addIssue({ code: 'custom', path: ['CONNECTOR_REST_POOL_CONNECTIONS'], message: 'must be <= CONNECTOR_REST_POOL_MAXSIZE' });
    }
    if (v.CONNECTOR_INITIAL_CONNECTIONS > v.CONNECTOR_MAX_CONNECTIONS) {
      ctx.addIssue({ code: 'custom', path: ['CONNECTOR_INITIAL_CONNECTIONS'], message: 'must be <= CONNECTOR_MAX_CONNECTIONS' });
    }
    if ((v.CONNECTOR_RELAY_TLS_CERT_FILE === undefined) !== (v.CONNECTOR_RELAY_TLS_KEY_FILE === undefined)) {
      ctx.addIssue({
        code: 'custom',
        path: [v.CONNECTOR_RELAY_TLS_CERT_FILE === undefined ? 'CONNECTOR_RELAY_TLS_CERT_FILE' : 'CONNECTOR_RELAY_TLS_KEY_FILE'],
        message: 'CONNECTOR_RELAY_TLS_CERT_FILE and CONNECTOR_RELAY_TLS_KEY_FILE go together: set both (wss://) or neither (ws://)',
      });
    }
    checkRelayAuth(v, ctx);
    checkNats(v, ctx);
    if (!(v.CONNECTOR_HEALTH_CRITICAL_RATIO <= v.CONNECTOR_HEALTH_DEGRADED_RATIO && v.CONNECTOR_HEALTH_DEGRADED_RATIO <= v.CONNECTOR_READY_MIN_LIVE_RATIO)) {
      ctx.addIssue({
        code: 'custom',
        path: ['CONNECTOR_HEALTH_DEGRADED_RATIO'],
        message: 'expected CONNECTOR_HEALTH_CRITICAL_RATIO <= CONNECTOR_HEALTH_DEGRADED_RATIO <= CONNECTOR_READY_MIN_LIVE_RATIO',
      });
    }
  });

/** What the checks across venues read (parsed on its own: see EnvSchema). */
const AcrossSchema = z.object({
  CONNECTOR_VENUES: envShape.CONNECTOR_VENUES,
  CONNECTOR_REQUIRE_TLS: envShape.CONNECTOR_REQUIRE_TLS,
  CONNECTOR_MAX_CONNECTIONS: envShape.CONNECTOR_MAX_CONNECTIONS,
  CONNECTOR_MAX_STREAMS_PER_CONNECTION: envShape.CONNECTOR_MAX_STREAMS_PER_CONNECTION,
  CONNECTOR_SHARD: envShape.CONNECTOR_SHARD,
  CONNECTOR_SHARD_COUNT: envShape.CONNECTOR_SHARD_COUNT,
  CONNECTOR_POD_NAME: envShape.CONNECTOR_POD_NAME,
});

/**
 * The whole environment: the shared variables and the listed venues' own, each key validated on its
 * own (every bad variable reported at once), then the checks across them (a listed venue without
 * symbols, TLS, pool capacity per venue).
 */
export const EnvSchema = z.looseObject({}).transform((input, ctx) => {
  const shared = SharedSchema.safeParse(input);
  if (!shared.success) for (const issue of shared.error.issues) ctx.addIssue({ code: 'custom', path: issue.path, message: issue.message });
  const perVenue = new Map<string, z.output<(typeof VENUE_SHAPES)[number]['schema']>>();
  for (const { venue, schema } of VENUE_SHAPES) {
    const vars = venue.env.vars;
    const r = schema.safeParse({ symbols: input[vars.symbols], intervals: input[vars.intervals], wsUrl: input[vars.wsUrl], restUrl: input[vars.restUrl] });
    if (r.success) perVenue.set(venue.id, r.data);
    else for (const issue of r.error.issues) ctx.addIssue({ code: 'custom', path: [varOf(vars, issue.path[0])], message: issue.message });
  }
  if (perVenue.size < VENUE_SHAPES.length) return z.NEVER;
  // The checks across venues need only these; they run even when another shared variable is bad, so
  // every bad variable is reported at once.
  const across = AcrossSchema.safeParse(input);
  const shard = across.success ? shardConfig(across.data, ctx) : undefined;
  const venues = across.success && shard !== undefined ? venueConfigs(across.data, perVenue, shard, ctx) : undefined;
  if (!shared.success || venues === undefined || shard === undefined) return z.NEVER;
  return toConfig(shared.data, venues, shard);
});


type Env = z.output<z.ZodObject<typeof envShape>>;

function varOf(vars: AnyVenueAdapter['env']['vars'], key: PropertyKey | undefined): string {
  return key === 'symbols' || key === 'intervals' || key === 'wsUrl' || key === 'restUrl' ? vars[key] : vars.symbols;
}

/** The listed venues' configuration, defaults applied; undefined (with issues) when one is incomplete. */
function venueConfigs(
  v: z.output<typeof AcrossSchema>,
  perVenue: ReadonlyMap<string, z.output<(typeof VENUE_SHAPES)[number]['schema']>>,
  shard: ShardConfig,
  ctx: z.RefinementCtx,
): VenueConfig[] | undefined {
  const out: VenueConfig[] = [];
  let ok = true;
  let owned = 0;
  let total = 0;
  for (const id of v.CONNECTOR_VENUES) {
    const venue = VENUES.find((x) => x.id === id);
    const given = perVenue.get(id);
    if (venue === undefined || given === undefined) continue; // CONNECTOR_VENUES admits registered ids only
    const { vars, defaults } = venue.env;
    const configured = given.symbols ?? defaults.symbols;
    if (configured === undefined) {
      ok = false;
      ctx.addIssue({ code: 'custom', path: [vars.symbols], message: `required: ${id} is listed in CONNECTOR_VENUES (comma list of symbols, ${venue.env.symbolForm})` });
      continue;
    }
    // This shard's symbols (all of them with one shard); the others' are kept to name their shard.
    const symbols: string[] = [];
    const elsewhere: { symbol: string; shard: number }[] = [];
    for (const symbol of configured) {
      const at = shardOf(id, symbol, shard.count);
      if (at === shard.index) symbols.push(symbol);
      else elsewhere.push({ symbol, shard: at });
    }
    owned += symbols.length;
    total += configured.length;
    const intervals = given.intervals ?? defaults.intervals;
    const wsUrl = given.wsUrl ?? defaults.wsUrl;
    const restUrl = given.restUrl ?? defaults.restUrl;
    const streams = symbols.length * intervals.length;
    const over = venue.source === 'rest-poll' ? pollOverload(venue.poll, symbols.length, intervals) : poolOverload(v, venue.ws, streams);
    if (over !== undefined) {
      ok = false;
      ctx.addIssue({ code: 'custom', path: [vars.symbols], message: over });
    }
    if (v.CONNECTOR_REQUIRE_TLS) {
      if (!wsUrl.startsWith('wss://')) {
        ok = false;
        ctx.addIssue({ code: 'custom', path: [vars.wsUrl], message: 'must be wss:// when CONNECTOR_REQUIRE_TLS=true' });
      }
      if (!restUrl.startsWith('https://')) {
        ok = false;
        ctx.addIssue({ code: 'custom', path: [vars.restUrl], message: 'must be https:// when CONNECTOR_REQUIRE_TLS=true' });
      }
    }
    out.push({ id, symbols, intervals, wsUrl, restUrl, ...(elsewhere.length === 0 ? {} : { elsewhere }) });
  }
  if (ok && owned === 0) {
    ok = false;
    ctx.addIssue({
      code: 'custom',
      path: [shard.from === 'CONNECTOR_SHARD' ? 'CONNECTOR_SHARD' : 'CONNECTOR_SHARD_COUNT'],
      message: `${shardLabel(shard.index, shard.count)} owns none of the ${total} configured symbols: use fewer shards (the hash is in ARCHITECTURE.md §10)`,
    });
  }
  return ok ? out : undefined;
}

/** CONNECTOR_SHARD, or CONNECTOR_SHARD_COUNT with the pod's ordinal; one shard when neither is set. */
function shardConfig(v: z.output<typeof AcrossSchema>, ctx: z.RefinementCtx): ShardConfig | undefined {
  const count = v.CONNECTOR_SHARD_COUNT;
  if (v.CONNECTOR_SHARD !== undefined) {
    const parsed = parseShard(v.CONNECTOR_SHARD);
    if (typeof parsed === 'string') {
      ctx.addIssue({ code: 'custom', path: ['CONNECTOR_SHARD'], message: parsed });
      return undefined;
    }
    if (count !== undefined && count !== parsed.count) {
      ctx.addIssue({ code: 'custom', path: ['CONNECTOR_SHARD_COUNT'], message: `contradicts CONNECTOR_SHARD=${v.CONNECTOR_SHARD} (${parsed.count} shards): set one of them` });
      return undefined;
    }
    return { ...parsed, from: 'CONNECTOR_SHARD' };
  }
  if (count === undefined) return { index: 0, count: 1, from: 'default' };
  const pod = v.CONNECTOR_POD_NAME;
  const ordinal = pod === undefined ? undefined : podOrdinal(pod);
  if (ordinal === undefined) {
    ctx.addIssue({
      code: 'custom',
      path: ['CONNECTOR_SHARD_COUNT'],
      message: `needs the pod's ordinal: CONNECTOR_POD_NAME (or HOSTNAME) ending in -<ordinal>, as a StatefulSet names its pods; got ${pod === undefined ? 'neither' : JSON.stringify(pod)} (or set CONNECTOR_SHARD=<index>/<count>)`,
    });
    return undefined;
  }
  return { index: ordinal % count, count, from: `pod ${pod ?? ''} (ordinal ${ordinal} mod ${count})` };
}

/** More streams than the pool can place: what to tell the operator (undefined: they fit). */
function poolOverload(v: z.output<typeof AcrossSchema>, ws: WsProtocol, streams: number): string | undefined {
  const capacity = v.CONNECTOR_MAX_CONNECTIONS * Math.min(v.CONNECTOR_MAX_STREAMS_PER_CONNECTION, ws.maxStreamsPerConnection);
  return streams > capacity ? `${streams} streams exceed the pool capacity CONNECTOR_MAX_CONNECTIONS x CONNECTOR_MAX_STREAMS_PER_CONNECTION = ${capacity}` : undefined;
}

/** More polls per second than a REST-polled venue allows one IP (poll-budget.ts): what to tell the operator. */
function pollOverload(poll: PollProtocol, symbols: number, intervals: readonly CanonicalInterval[]): string | undefined {
  const load = symbols * pollLoad(intervals);
  if (load <= poll.pollsPerSecond + 1e-9) return undefined;
  const max = intervals.map((i) => `${maxPolledStreams(poll.pollsPerSecond, i)} of ${i}`).join(', ');
  return (
    `${symbols * intervals.length} streams need ${load.toFixed(2)} REST polls/s (one per candle each), more than the ${poll.pollsPerSecond}/s ` +
    `this venue's per-IP limit leaves to polling: one IP carries at most ${max} alone; configure fewer symbols or intervals, or shard them over more IPs`
  );
}

/**
 * Venue variables that are set although their venue is not in CONNECTOR_VENUES, or that a listed venue
 * does not read (the WebSocket URL of a REST-polled venue): they would do nothing (contract §2: a
 * variable that is accepted does what its name says). The loader reports them, with why.
 */
export function inertVenueVariables(config: Config, set: Iterable<string>): { readonly name: string; readonly venue: string; readonly reason: string }[] {
  const listed = new Set(config.venues.map((v) => v.id));
  const owner = new Map<string, { venue: string; reason: string }>();
  for (const v of VENUES) {
    if (!listed.has(v.id)) for (const name of Object.values(v.env.vars)) owner.set(name, { venue: v.id, reason: `${v.id} is not in CONNECTOR_VENUES` });
    else if (v.source === 'rest-poll') owner.set(v.env.vars.wsUrl, { venue: v.id, reason: `${v.id} has no kline WebSocket (its closed candles are polled from ${v.env.vars.restUrl})` });
  }
  const out: { name: string; venue: string; reason: string }[] = [];
  for (const name of set) {
    const o = owner.get(name);
    if (o !== undefined) out.push({ name, ...o });
  }
  return out;
}

/** Relay auth fails closed: a token, or `CONNECTOR_RELAY_AUTH=none` written out; never both. */
function checkRelayAuth(v: Env, ctx: z.RefinementCtx): void {
  const token = v.CONNECTOR_RELAY_TOKEN !== undefined;
  if (v.CONNECTOR_RELAY_AUTH === 'none' && token) {
    ctx.addIssue({ code: 'custom', path: ['CONNECTOR_RELAY_AUTH'], message: 'none contradicts CONNECTOR_RELAY_TOKEN being set: unset one of them' });
  } else if (v.CONNECTOR_RELAY_AUTH === 'token' && !token) {
    ctx.addIssue({ code: 'custom', path: ['CONNECTOR_RELAY_TOKEN'], message: 'required when CONNECTOR_RELAY_AUTH=token' });
  } else if (v.CONNECTOR_ENV === 'production' && v.CONNECTOR_RELAY_AUTH === undefined && !token) {
    ctx.addIssue({
      code: 'custom',
      path: ['CONNECTOR_RELAY_TOKEN'],
      message: 'required with CONNECTOR_ENV=production; to run the relay without auth on purpose, set CONNECTOR_RELAY_AUTH=none',
    });
  }
}

/** NATS credentials: a token or a user with a password, never both; none without a URL to use them on. */
function checkNats(v: Env, ctx: z.RefinementCtx): void {
  const url = v.CONNECTOR_NATS_URL !== undefined;
  for (const name of ['CONNECTOR_NATS_TOKEN', 'CONNECTOR_NATS_USER', 'CONNECTOR_NATS_PASSWORD'] as const) {
    if (!url && v[name] !== undefined) ctx.addIssue({ code: 'custom', path: [name], message: 'has no effect without CONNECTOR_NATS_URL: set it or unset this' });
  }
  if (!url) return;
  if (v.CONNECTOR_NATS_TOKEN !== undefined && v.CONNECTOR_NATS_USER !== undefined) {
    ctx.addIssue({ code: 'custom', path: ['CONNECTOR_NATS_TOKEN'], message: 'CONNECTOR_NATS_TOKEN and CONNECTOR_NATS_USER exclude each other: use one way to authenticate' });
  }
  if ((v.CONNECTOR_NATS_USER === undefined) !== (v.CONNECTOR_NATS_PASSWORD === undefined)) {
    ctx.addIssue({
      code: 'custom',
      path: [v.CONNECTOR_NATS_USER === undefined ? 'CONNECTOR_NATS_USER' : 'CONNECTOR_NATS_PASSWORD'],
      message: 'CONNECTOR_NATS_USER and CONNECTOR_NATS_PASSWORD go together: set both or neither',
    });
  }
}

function toConfig(v: Env, venues: VenueConfig[], shard: ShardConfig) {
  return {
    env: v.CONNECTOR_ENV,
    /**
     * The venues to ingest, in CONNECTOR_VENUES order, each with this shard's symbols (all of them
     * with one shard), its intervals and URLs, and the symbols other shards own.
     */
    venues,
    /** Which shard this replica is (contract §10); `{ index: 0, count: 1 }` when unsharded. */
    shard,
    requireTls: v.CONNECTOR_REQUIRE_TLS,
    logLevel: v.CONNECTOR_LOG_LEVEL,
    pool: {
      maxStreamsPerConnection: v.CONNECTOR_MAX_STREAMS_PER_CONNECTION,
      maxConnections: v.CONNECTOR_MAX_CONNECTIONS,
      initialConnections: v.CONNECTOR_INITIAL_CONNECTIONS,
      connectTimeoutMs: v.CONNECTOR_CONNECT_TIMEOUT_MS,
      healthCheckIntervalMs: v.CONNECTOR_HEALTH_CHECK_INTERVAL_MS,
      idleTimeoutMs: v.CONNECTOR_IDLE_TIMEOUT_MS,
      maxAgeMs: v.CONNECTOR_CONNECTION_MAX_AGE_MS,
      maxConnectionAttemptsPer5Min: v.CONNECTOR_MAX_CONNECTION_ATTEMPTS_PER_5MIN,
      maxMessageBytes: v.CONNECTOR_MAX_MESSAGE_BYTES,
    },
    heartbeat: {
      /** No frame (data or ping) within this → the socket is dead: terminate and replace. */
      pingTimeoutMs: v.CONNECTOR_PING_TIMEOUT_MS,
      pongTimeoutMs: v.CONNECTOR_PONG_TIMEOUT_MS,
      maxMissedPings: v.CONNECTOR_MAX_MISSED_PINGS,
      unhealthyThreshold: v.CONNECTOR_UNHEALTHY_THRESHOLD,
      staleStreamMs: v.CONNECTOR_STALE_STREAM_MS,
    },
    reconnect: {
      baseMs: v.CONNECTOR_RECONNECT_BASE_MS,
      maxMs: v.CONNECTOR_RECONNECT_MAX_MS,
      jitter: v.CONNECTOR_RECONNECT_JITTER,
      maxRetries: v.CONNECTOR_RECONNECT_MAX_RETRIES,
      resetAfterSuccesses: v.CONNECTOR_RECONNECT_RESET_AFTER_SUCCESSES,
    },
    breaker: {
      failureThreshold: v.CONNECTOR_CIRCUIT_BREAKER_FAILURE_THRESHOLD,
      recoveryTimeoutMs: v.CONNECTOR_CIRCUIT_BREAKER_RECOVERY_TIMEOUT,
      recoveryMaxMs: v.CONNECTOR_CIRCUIT_BREAKER_RECOVERY_MAX,
      halfOpenCalls: v.CONNECTOR_CIRCUIT_BREAKER_HALF_OPEN_CALLS,
    },
    rest: {
      concurrency: v.CONNECTOR_REST_POOL_CONNECTIONS,
      poolSize: v.CONNECTOR_REST_POOL_MAXSIZE,
      timeoutMs: v.CONNECTOR_REST_TIMEOUT_MS,
      maxWeightPerMinute: v.CONNECTOR_REST_MAX_WEIGHT_PER_MINUTE,
    },
    pipeline: {
      closedQueueMax: v.CONNECTOR_CLOSED_QUEUE_MAXSIZE,
      /** 0 = one slot per configured stream (startConnector sizes it to the registry). */
      openQueueMax: v.CONNECTOR_OPEN_QUEUE_MAXSIZE,
      dedupWindowMs: v.CONNECTOR_DEDUPLICATION_WINDOW_SECONDS,
      dedupMaxEntries: v.CONNECTOR_DEDUPLICATION_MAX_ENTRIES,
      gapHoldMax: v.CONNECTOR_GAP_HOLD_MAX,
      holeHorizonMs: v.CONNECTOR_HOLE_HORIZON_MS,
    },
    relay: {
      host: v.CONNECTOR_RELAY_HOST,
      port: v.CONNECTOR_RELAY_PORT,
      /** Set exactly when auth is `token` (checkRelayAuth rejects the contradictions), unset for `none`. */
      token: v.CONNECTOR_RELAY_TOKEN,
      maxClients: v.CONNECTOR_RELAY_MAX_CLIENTS,
      maxBufferedBytes: v.CONNECTOR_RELAY_MAX_BUFFERED_BYTES,
      maxFrameBytes: v.CONNECTOR_RELAY_MAX_FRAME_BYTES,
      maxMessagesPerSecond: v.CONNECTOR_RELAY_MAX_MESSAGES_PER_SECOND,
      maxStreamsPerClient: v.CONNECTOR_RELAY_MAX_STREAMS_PER_CLIENT,
      pingIntervalMs: v.CONNECTOR_RELAY_PING_INTERVAL_MS,
      clientTimeoutMs: v.CONNECTOR_RELAY_CLIENT_TIMEOUT_MS,
      closeTimeoutMs: v.CONNECTOR_RELAY_CLOSE_TIMEOUT_MS,
      maxTotalBufferedBytes: v.CONNECTOR_RELAY_MAX_TOTAL_BUFFERED_BYTES,
      maxClientsPerIp: v.CONNECTOR_RELAY_MAX_CLIENTS_PER_IP,
      historyCandles: v.CONNECTOR_RELAY_HISTORY_CANDLES,
      replayMaxCandles: v.CONNECTOR_RELAY_REPLAY_MAX_CANDLES,
      tls:
        v.CONNECTOR_RELAY_TLS_CERT_FILE === undefined || v.CONNECTOR_RELAY_TLS_KEY_FILE === undefined
          ? undefined
          : { certFile: v.CONNECTOR_RELAY_TLS_CERT_FILE, keyFile: v.CONNECTOR_RELAY_TLS_KEY_FILE },
    },
    http: {
      enabled: v.CONNECTOR_WSS_HEALTH_CHECK_ENABLED,
      host: v.CONNECTOR_HEALTH_CHECK_HOST,
      port: v.CONNECTOR_WSS_HEALTH_CHECK_PORT,
    },
    health: {
      readyMinLiveRatio: v.CONNECTOR_READY_MIN_LIVE_RATIO,
      degradedRatio: v.CONNECTOR_HEALTH_DEGRADED_RATIO,
      criticalRatio: v.CONNECTOR_HEALTH_CRITICAL_RATIO,
      maxMemoryBytes: v.CONNECTOR_MAX_MEMORY_MB * 1024 * 1024,
    },
    /** Undefined without CONNECTOR_NATS_URL: then no JetStream sink exists (zero cost, contract §9). */
    nats:
      v.CONNECTOR_NATS_URL === undefined
        ? undefined
        : {
            url: v.CONNECTOR_NATS_URL,
            token: v.CONNECTOR_NATS_TOKEN,
            user: v.CONNECTOR_NATS_USER,
            password: v.CONNECTOR_NATS_PASSWORD,
            stream: v.CONNECTOR_NATS_STREAM,
            subjectPrefix: v.CONNECTOR_NATS_SUBJECT_PREFIX,
            maxAgeHours: v.CONNECTOR_NATS_MAX_AGE_HOURS,
            maxInflight: v.CONNECTOR_NATS_MAX_INFLIGHT,
          },
    shutdownGraceMs: v.CONNECTOR_SHUTDOWN_GRACE_MS,
  };
}

type DeepReadonly<T> = T extends readonly (infer U)[] ? readonly DeepReadonly<U>[] : T extends object ? { readonly [K in keyof T]: DeepReadonly<T[K]> } : T;

/** The typed, frozen configuration every component receives (derived from the schema, never written twice). */
export type Config = DeepReadonly<z.output<typeof EnvSchema>>;
export type ConfigSection<K extends keyof Config> = Config[K];
