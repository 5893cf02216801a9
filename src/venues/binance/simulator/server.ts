/**
 * `BinanceSimulator`: the venue simulator engine (src/simulator/engine.ts) speaking Binance's dialect
 * (dialect.ts) for one profile (profiles.ts): Binance spot (binance-protocol.md §1–§5, §7) or Binance
 * USD-M futures (exchanges.md §6: the `/market` route, the silent legacy root paths, `/fapi/v1/klines`).
 * Both can run in one process, each on its own port.
 *
 * A thin wrapper, kept so tests, benches and the demo keep their imports and Binance's own names:
 * the option and counter names Binance's limits are written in (`maxConnectionsPer5Min`,
 * `restWeightPerMinute`, `rest429`, `rest418`, …), a socket's `combined` flag, and the REST `paths`.
 * Everything it does is the engine's.
 */
import { startSimulator } from '../../../simulator/engine.ts';
import type { SimulatorEngine } from '../../../simulator/engine.ts';
import type { SimulatorCounters, SimulatorFaults, SocketInfo, VenueSimulator } from '../../../simulator/dialect.ts';
import { COMBINED, binanceDialect } from './dialect.ts';
import { simulatorProfile } from './profiles.ts';
import type { SimulatorProfileId } from './profiles.ts';

export type { SimulatorProfileId } from './profiles.ts';
export type { SimulatorFaults } from '../../../simulator/dialect.ts';

/** Every limit defaults to the profile's (profiles.ts, with the fact each comes from). */
export interface SimulatorOptions {
  host?: string;
  port?: number;
  /** Which market this simulator is: 'binance' (spot, the default) or 'binance-usdm'. */
  profile?: SimulatorProfileId;
  /** Open-update cadence per stream; default spot 1000 ms for 1s streams and 2000 ms otherwise, USD-M 250 ms. */
  openUpdateMs?: number;
  pingIntervalMs?: number;
  pongTimeoutMs?: number;
  maxStreamsPerConnection?: number;
  maxInboundPerSecond?: number;
  maxConnectionsPer5Min?: number;
  /** A connection is closed (1000) this long after it opened; default 24 h, as both markets do. */
  maxConnectionAgeMs?: number;
  restWeightPerMinute?: number;
  /**
   * Off unless set: after this many REST requests arrived inside an announced Retry-After window, the
   * IP is banned: every request gets 418 with Retry-After until `restBanSeconds` (default 120) have
   * passed. Both markets: "Repeatedly violating rate limits and/or failing to back off after receiving
   * 429s will result in an automated IP ban (HTTP status 418)", bans "from 2 minutes to 3 days".
   */
  restBanAfterViolations?: number;
  restBanSeconds?: number;
  now?: () => number;
}

/** The engine's counters under the names Binance's limits are written in as well. */
export interface BinanceCounters extends SimulatorCounters {
  /** 429 answers (over the weight budget, or injected). */
  readonly rest429: number;
  /** 418 answers (bans, or injected). */
  readonly rest418: number;
  /** Max REQUEST_WEIGHT used within any minute. */
  readonly restWeightUsedMax1m: number;
  /** Max accepted upgrades within any 5-minute window. */
  readonly maxConnectionAttemptsPer5MinSeen: number;
}

export interface BinanceSocketInfo extends SocketInfo {
  /** Whether it receives `{"stream","data"}` envelopes (`/stream…`, or SET_PROPERTY combined true). */
  readonly combined: boolean;
}

/**
 * The same counters object with Binance's names as live aliases (getters), so a reader of either name
 * sees the engine's current value.
 */
function binanceCounters(c: SimulatorCounters): BinanceCounters {
  return Object.defineProperties(c, {
    rest429: { get: () => c.restStatuses[429] ?? 0, enumerable: true },
    rest418: { get: () => c.restStatuses[418] ?? 0, enumerable: true },
    restWeightUsedMax1m: { get: () => c.restBudgetUsedMax, enumerable: true },
    maxConnectionAttemptsPer5MinSeen: { get: () => c.maxConnectionAttemptsPerWindowSeen, enumerable: true },
  }) as BinanceCounters;
}

export class BinanceSimulator implements VenueSimulator {
  readonly venue: string;
  readonly profile: SimulatorProfileId;
  /**
   * The WebSocket endpoint as the venue's docs name it; a client appends `/stream?streams=…` or
   * `/ws/…`. Spot: the origin (`wss://stream.binance.com:9443`). USD-M: its `/market` route
   * (`wss://fstream.binance.com/market`).
   */
  readonly wsUrl: string;
  /** The origin without a route: on USD-M, where the silent legacy paths (`/ws`, `/stream`) live. */
  readonly wsRootUrl: string;
  readonly restUrl: string;
  /** REST paths of this profile (spot `/api/v3/…`, USD-M `/fapi/v1/…`). */
  readonly paths: { readonly klines: string; readonly ping: string; readonly time: string };
  readonly port: number;
  readonly faults: SimulatorFaults;
  readonly counters: BinanceCounters;
  readonly #engine: SimulatorEngine;

  private constructor(engine: SimulatorEngine, profile: SimulatorProfileId) {
    this.#engine = engine;
    const rest = simulatorProfile(profile).rest;
    this.venue = engine.venue;
    this.profile = profile;
    this.wsUrl = engine.wsUrl;
    this.wsRootUrl = engine.wsOrigin;
    this.restUrl = engine.restUrl;
    this.paths = { klines: rest.klinesPaths[0] ?? '/', ping: rest.pingPath, time: rest.timePath };
    this.port = engine.port;
    this.faults = engine.faults;
    this.counters = binanceCounters(engine.counters);
  }

  static async start(options: SimulatorOptions = {}): Promise<BinanceSimulator> {
    const { profile = 'binance', maxConnectionsPer5Min, restWeightPerMinute, ...rest } = options;
    const engine = await startSimulator(binanceDialect(profile), {
      ...rest,
      ...(maxConnectionsPer5Min === undefined ? {} : { maxConnectionsPerWindow: maxConnectionsPer5Min }),
      ...(restWeightPerMinute === undefined ? {} : { restCapacity: restWeightPerMinute }),
    });
    return new BinanceSimulator(engine, profile);
  }

  sockets(): BinanceSocketInfo[] {
    return this.#engine.sockets().map((s) => ({ ...s, combined: s.form === COMBINED }));
  }

  /** Terminates sockets, stops the timer and closes the server. Idempotent. */
  close(): Promise<void> {
    return this.#engine.close();
  }
}
