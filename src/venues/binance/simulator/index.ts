/**
 * Binance's simulator modules for the registry (src/venues/simulators.ts): spot (`binance`) and USD-M
 * (`binance-usdm`), each the engine (src/simulator/engine.ts) with its profile's dialect (dialect.ts).
 */
import type { AuditLimits, RelayKline, SimulatorVenue } from '../../../simulator/dialect.ts';
import { startSimulator } from '../../../simulator/engine.ts';
import { binanceDialect } from './dialect.ts';
import { klineAt } from './klines.ts';
import type { SimulatorProfileId } from './profiles.ts';

/** Spot's chaos symbols (the chaos suite's list since it began: a replayed seed attacks the same streams). */
const SPOT_SYMBOLS = [
  'btcusdt', 'ethusdt', 'bnbusdt', 'solusdt', 'xrpusdt', 'adausdt', 'dogeusdt', 'trxusdt', 'linkusdt', 'dotusdt',
  'maticusdt', 'ltcusdt', 'bchusdt', 'avaxusdt', 'xlmusdt', 'atomusdt', 'uniusdt', 'etcusdt', 'filusdt', 'aptusdt',
  'nearusdt', 'arbusdt', 'opusdt', 'injusdt', 'suiusdt', 'seiusdt', 'tiausdt', 'runeusdt', 'aaveusdt', 'mkrusdt',
  'ldousdt', 'stxusdt', 'grtusdt', 'algousdt', 'egldusdt', 'sandusdt', 'manausdt', 'axsusdt', 'ftmusdt', 'icpusdt',
];

/**
 * USD-M's: disjoint from spot's, because a raw relay event names no venue, only `s` and `i`, so a raw
 * client running both venues can tell them apart by symbol alone.
 */
const USDM_SYMBOLS = [
  'ordiusdt', 'wifusdt', 'jupusdt', 'pythusdt', 'enausdt', 'strkusdt', 'dymusdt', 'altusdt', 'mantausdt', 'pixelusdt',
  'portalusdt', 'aevousdt', 'ethfiusdt', 'bomeusdt', 'tnsrusdt', 'sagausdt', 'omniusdt', 'notusdt', 'iousdt', 'zkusdt',
  'listausdt', 'zrousdt', 'blastusdt', 'bananausdt', 'renderusdt', 'tonusdt', 'kasusdt', 'fetusdt', 'imxusdt', 'ondousdt',
  'jtousdt', 'pendleusdt', 'wldusdt', 'galausdt', 'chzusdt', 'crvusdt', 'snxusdt', 'compusdt', 'dydxusdt', 'gmxusdt',
];

/**
 * What the chaos audit holds each market to: the inbound frames per socket per second the market
 * counts (spot 5, USD-M 10), "far under" its 300 connection attempts per 5 minutes (the chaos daemon's
 * own budget is 150), and under its REQUEST_WEIGHT per minute (spot 6000, USD-M 2400).
 */
const LIMITS: Readonly<Record<SimulatorProfileId, AuditLimits>> = {
  binance: { maxInboundPerSecond: 5, maxConnectsPerWindow: 150, maxRestBudget: 6000 },
  'binance-usdm': { maxInboundPerSecond: 10, maxConnectsPerWindow: 150, maxRestBudget: 2400 },
};

function binanceVenue(id: SimulatorProfileId, chaosSymbols: readonly string[]): SimulatorVenue {
  return {
    id,
    start: (options) => startSimulator(binanceDialect(id), options),
    truth: (symbol, interval, openTime): RelayKline => {
      // Binance's own event is the relay's payload: every field is published.
      const k = klineAt(symbol.toLowerCase(), interval, openTime, id);
      return { s: k.s, i: k.i, T: k.T, o: k.o, h: k.h, l: k.l, c: k.c, v: k.v, q: k.q, n: k.n, V: k.V, Q: k.Q };
    },
    chaosSymbols,
    streamKey: (symbol, interval) => `${symbol.toLowerCase()}@kline_${interval}`,
    seriesSymbol: (symbol) => symbol.toLowerCase(),
    auditLimits: LIMITS[id],
    // 429 (over the weight, with Retry-After) and 418 (the ban for not backing off); 403 is the WAF.
    gateStatuses: [429, 418],
  };
}

export const binanceSpotSimulator: SimulatorVenue = binanceVenue('binance', SPOT_SYMBOLS);
export const binanceUsdmSimulator: SimulatorVenue = binanceVenue('binance-usdm', USDM_SYMBOLS);
