/**
 * The Bybit simulators for the registry (src/venues/simulators.ts): `bybit-spot` and `bybit-linear`,
 * each the shared engine (src/simulator/engine.ts) speaking its dialect (dialect.ts), with the truth the
 * relay must deliver, the chaos symbols and the limits the chaos audit holds the daemon to.
 */
import { closeTimeOf } from '../../../core/intervals.ts';
import type { RelayKline, SimulatorOptions, SimulatorVenue, VenueSimulator } from '../../../simulator/dialect.ts';
import { startSimulator } from '../../../simulator/engine.ts';
import { candleAt } from '../../../simulator/series.ts';
import { klineTopic } from '../protocol.ts';
import { BYBIT_INTERVALS } from '../market.ts';
import { BYBIT_SERIES, bybitDecimal, bybitDialect, type BybitCategoryId } from './dialect.ts';

/** A running Bybit simulator of one category. */
export function startBybitSimulator(category: BybitCategoryId, options: SimulatorOptions = {}): Promise<VenueSimulator> {
  return startSimulator(bybitDialect(category), options);
}

/** The closed candle the relay must send for a Bybit candle: Bybit's strings, `null` for what Bybit does not publish. */
export function bybitTruth(category: BybitCategoryId, symbol: string, interval: string, openTime: number): RelayKline {
  const c = candleAt(BYBIT_SERIES[category], symbol, interval, openTime);
  return {
    s: symbol.toUpperCase(),
    i: interval,
    T: closeTimeOf(interval, openTime),
    o: bybitDecimal(c.open),
    h: bybitDecimal(c.high),
    l: bybitDecimal(c.low),
    c: bybitDecimal(c.close),
    v: bybitDecimal(c.volume),
    // Kline: `turnover` is the quote volume; no trade count, no taker volumes.
    q: bybitDecimal(c.quoteVolume),
    n: null,
    V: null,
    Q: null,
  };
}

function simulatorVenue(category: BybitCategoryId, prefix: string): SimulatorVenue {
  return {
    id: `bybit-${category}`,
    start: (options) => startBybitSimulator(category, options),
    truth: (symbol, interval, openTime) => bybitTruth(category, symbol, interval, openTime),
    // Symbols no other venue's chaos run uses (they all start with BYB), in Bybit's form.
    chaosSymbols: Array.from({ length: 48 }, (_, i) => `${prefix}${i}USDT`),
    streamKey: (symbol, interval) => klineTopic(BYBIT_INTERVALS[interval as keyof typeof BYBIT_INTERVALS] ?? interval, symbol.toUpperCase()),
    seriesSymbol: (symbol) => symbol.toUpperCase(),
    auditLimits: {
      // Bybit states no inbound rate for public sockets; the adapter sends at most 4/s (market.ts).
      maxInboundPerSecond: 5,
      // Half of the 500 connections per 5 min per domain (shared by spot and linear).
      maxConnectsPerWindow: 250,
      // 600 requests per 5 s per IP. The daemon keeps spot and linear together under 500 through the one
      // RestGate of their one origin (market.ts REST_WINDOW); each simulator here is an origin of its own,
      // so each sees up to that 500: the audit holds each to Bybit's own 600.
      maxRestBudget: 600,
    },
    // rate-limit.mdx: 403 "access too frequent" (a ten-minute ban); 429 is system protection.
    gateStatuses: [403, 429],
  };
}

export const bybitSpotSimulator = simulatorVenue('spot', 'BYBS');
export const bybitLinearSimulator = simulatorVenue('linear', 'BYBL');
