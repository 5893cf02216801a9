/**
 * Pionex's simulator module for the registry (src/venues/simulators.ts): the engine
 * (src/simulator/engine.ts) with the Pionex dialect (dialect.ts): REST only, 10 requests/s per IP,
 * 429 and a 60 s ban growing 10 s per request inside it; `garbage` serves malformed REST bodies.
 */
import type { AuditLimits, RelayKline, SimulatorFaults, SimulatorOptions, SimulatorVenue, VenueSimulator } from '../../../simulator/dialect.ts';
import { startSimulator } from '../../../simulator/engine.ts';
import { candleAt } from '../../../simulator/series.ts';
import { PIONEX_SERIES, RATE_CAPACITY, pionexDialect, type RestGarbage } from './dialect.ts';

/** Native Pionex symbols (BASE_QUOTE): their `s` on the relay differs from every other venue's. */
const CHAOS_SYMBOLS = [
  'BTC_USDT', 'ETH_USDT', 'BNB_USDT', 'SOL_USDT', 'XRP_USDT', 'ADA_USDT', 'DOGE_USDT', 'TRX_USDT', 'LINK_USDT', 'DOT_USDT',
  'LTC_USDT', 'BCH_USDT', 'AVAX_USDT', 'XLM_USDT', 'ATOM_USDT', 'UNI_USDT', 'ETC_USDT', 'FIL_USDT', 'APT_USDT', 'NEAR_USDT',
  'ARB_USDT', 'OP_USDT', 'INJ_USDT', 'SUI_USDT', 'SEI_USDT', 'TIA_USDT', 'RUNE_USDT', 'AAVE_USDT', 'MKR_USDT', 'LDO_USDT',
  'STX_USDT', 'GRT_USDT', 'ALGO_USDT', 'EGLD_USDT', 'SAND_USDT', 'MANA_USDT', 'AXS_USDT', 'ICP_USDT', 'HBAR_USDT', 'VET_USDT',
];

/** No sockets to count; REST strictly under its 10 requests per rolling second. */
const LIMITS: AuditLimits = { maxInboundPerSecond: 0, maxConnectsPerWindow: 0, maxRestBudget: RATE_CAPACITY };

/**
 * The engine with the Pionex dialect, its `garbage` fault turned to REST: the venue has no socket, so
 * the next `count` klines answers are malformed bodies instead (HTTP 200, GARBAGE_BODIES in turn).
 */
async function start(options: SimulatorOptions = {}): Promise<VenueSimulator> {
  const garbage: RestGarbage = { left: 0, served: 0 };
  const engine = await startSimulator(pionexDialect(options.now, garbage), options);
  const faults: SimulatorFaults = {
    ...engine.faults,
    garbage: (count) => {
      garbage.left += Math.max(0, count);
    },
    reset: () => {
      garbage.left = 0;
      engine.faults.reset();
    },
  };
  return {
    venue: engine.venue,
    wsUrl: engine.wsUrl,
    restUrl: engine.restUrl,
    port: engine.port,
    faults,
    counters: engine.counters,
    sockets: () => engine.sockets(),
    close: () => engine.close(),
  };
}

export const pionexSimulator: SimulatorVenue = {
  id: 'pionex',
  start,
  truth: (symbol, interval, openTime): RelayKline => {
    const c = candleAt(PIONEX_SERIES, symbol.toLowerCase(), interval, openTime);
    // Pionex publishes OHLC and base volume only: the relay writes null for the rest.
    return { s: symbol.toUpperCase(), i: interval, T: c.closeTime, o: c.open, h: c.high, l: c.low, c: c.close, v: c.volume, q: null, n: null, V: null, Q: null };
  },
  chaosSymbols: CHAOS_SYMBOLS,
  streamKey: (symbol, interval) => `${symbol.toUpperCase()}@${interval}`,
  seriesSymbol: (symbol) => symbol.toLowerCase(),
  auditLimits: LIMITS,
  gateStatuses: [429],
};
