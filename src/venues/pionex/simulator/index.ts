/**
 * Pionex's simulator module for the registry (src/venues/simulators.ts): the engine
 * (src/simulator/engine.ts) with the Pionex dialect (dialect.ts): REST only, 10 requests/s per IP,
 * 429 and a 60 s ban growing 10 s per request inside it.
 */
import type { AuditLimits, RelayKline, SimulatorVenue } from '../../../simulator/dialect.ts';
import { startSimulator } from '../../../simulator/engine.ts';
import { candleAt } from '../../../simulator/series.ts';
import { PIONEX_SERIES, RATE_CAPACITY, pionexDialect } from './dialect.ts';

/** Native Pionex symbols (BASE_QUOTE): their `s` on the relay differs from every other venue's. */
const CHAOS_SYMBOLS = [
  'BTC_USDT', 'ETH_USDT', 'BNB_USDT', 'SOL_USDT', 'XRP_USDT', 'ADA_USDT', 'DOGE_USDT', 'TRX_USDT', 'LINK_USDT', 'DOT_USDT',
  'LTC_USDT', 'BCH_USDT', 'AVAX_USDT', 'XLM_USDT', 'ATOM_USDT', 'UNI_USDT', 'ETC_USDT', 'FIL_USDT', 'APT_USDT', 'NEAR_USDT',
  'ARB_USDT', 'OP_USDT', 'INJ_USDT', 'SUI_USDT', 'SEI_USDT', 'TIA_USDT', 'RUNE_USDT', 'AAVE_USDT', 'MKR_USDT', 'LDO_USDT',
  'STX_USDT', 'GRT_USDT', 'ALGO_USDT', 'EGLD_USDT', 'SAND_USDT', 'MANA_USDT', 'AXS_USDT', 'ICP_USDT', 'HBAR_USDT', 'VET_USDT',
];

/** No sockets to count; REST strictly under its 10 requests per rolling second. */
const LIMITS: AuditLimits = { maxInboundPerSecond: 0, maxConnectsPerWindow: 0, maxRestBudget: RATE_CAPACITY };

export const pionexSimulator: SimulatorVenue = {
  id: 'pionex',
  start: (options) => startSimulator(pionexDialect(options?.now), options),
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
