/**
 * BingX's simulator modules for the registry (src/venues/simulators.ts): spot (`bingx-spot`) and swap
 * (`bingx-swap`), each the engine (src/simulator/engine.ts) with its market's dialect (dialect.ts).
 */
import type { AuditLimits, RelayKline, SimulatorVenue } from '../../../simulator/dialect.ts';
import { startSimulator } from '../../../simulator/engine.ts';
import { candleAt } from '../../../simulator/series.ts';
import { BINGX_MARKETS, bingxDialect, type BingxMarketId } from './dialect.ts';

/** Chaos symbols: `BTC-USDT`-shaped like every BingX symbol, and named so no other venue's list can hold them. */
const chaosSymbols = (tag: string): string[] => Array.from({ length: 40 }, (_, i) => `BX${tag}${String(i + 1).padStart(2, '0')}-USDT`);

/**
 * What the chaos audit holds each market to: our 5 messages a second per socket (BingX documents
 * none), "far under" the 300 upgrades per 5 minutes the simulator allows, and under BingX's 500 REST
 * requests per 10 s (the daemon keeps to 400).
 */
const LIMITS: AuditLimits = { maxInboundPerSecond: 5, maxConnectsPerWindow: 150, maxRestBudget: 500 };

function bingxVenue(id: BingxMarketId, tag: string): SimulatorVenue {
  const market = BINGX_MARKETS[id];
  return {
    id,
    start: (options) => startSimulator(bingxDialect(id), options),
    // The relay's closed candle is REST's final row: spot rows carry the quote volume, neither market's
    // rows a trade count or taker volumes (those stay null).
    truth: (symbol, interval, openTime): RelayKline => {
      const c = candleAt(market.series, symbol, interval, openTime);
      return { s: symbol, i: interval, T: c.closeTime, o: c.open, h: c.high, l: c.low, c: c.close, v: c.volume, q: id === 'bingx-spot' ? c.quoteVolume : null, n: null, V: null, Q: null };
    },
    chaosSymbols: chaosSymbols(tag),
    streamKey: (symbol, interval) => `${symbol.toUpperCase()}@kline_${market.wsIntervals[interval] ?? interval}`,
    seriesSymbol: (symbol) => symbol.toUpperCase(),
    auditLimits: LIMITS,
    gateStatuses: [429, 418],
  };
}

export const bingxSpotSimulator: SimulatorVenue = bingxVenue('bingx-spot', 'S');
export const bingxSwapSimulator: SimulatorVenue = bingxVenue('bingx-swap', 'W');
