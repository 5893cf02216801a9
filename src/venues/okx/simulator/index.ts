/**
 * OKX's simulator for the registry (src/venues/simulators.ts): the engine (src/simulator/engine.ts)
 * speaking the OKX dialect (dialect.ts), what the relay must deliver for each closed bar, and the
 * limits a chaos audit holds the daemon to.
 */
import { closeTimeOf } from '../../../core/intervals.ts';
import type { RelayKline, SimulatorOptions, SimulatorVenue, VenueSimulator } from '../../../simulator/dialect.ts';
import { startSimulator } from '../../../simulator/engine.ts';
import { candleAt } from '../../../simulator/series.ts';
import { okxDialect, okxStreamKey } from './dialect.ts';

/** One simulator's dialect (for its series style) is enough to compute the truth: the style is data. */
const STYLE = okxDialect().series;

/** 20 spot pairs and their perpetuals, named so no other venue's chaos symbols collide. */
const CHAOS_SYMBOLS: readonly string[] = Array.from({ length: 20 }, (_, i) => `OKX${i}-USDT`).flatMap((s) => [s, `${s}-SWAP`]);

/** The engine with OKX's dialect, and which klines endpoint each request asked (`/api/v5/market/candles`, `…/history-candles`). */
export interface OkxSimulator extends VenueSimulator {
  readonly klinesByPath: Readonly<Record<string, number>>;
}

export async function startOkxSimulator(options: SimulatorOptions = {}): Promise<OkxSimulator> {
  const klinesByPath: Record<string, number> = {};
  const engine = await startSimulator(okxDialect(klinesByPath), options);
  return Object.assign(engine, { klinesByPath });
}

/**
 * The closed bar as the relay must send it: OKX's base volume (spot `vol`, SWAP `volCcy`) and quote
 * volume (`volCcyQuote`) are the series' own; trade count and taker volumes are not published (null).
 */
export function okxTruth(symbol: string, interval: string, openTime: number): RelayKline {
  const c = candleAt(STYLE, symbol.toLowerCase(), interval, openTime);
  return { s: symbol.toUpperCase(), i: interval, T: closeTimeOf(interval, openTime), o: c.open, h: c.high, l: c.low, c: c.close, v: c.volume, q: c.quoteVolume, n: null, V: null, Q: null };
}

export const okxSimulator: SimulatorVenue = {
  id: 'okx',
  start: startOkxSimulator,
  truth: okxTruth,
  chaosSymbols: CHAOS_SYMBOLS,
  streamKey: okxStreamKey,
  seriesSymbol: (symbol) => symbol.toUpperCase(),
  // OKX documents no inbound rate; the daemon's own budget is 3 messages/s per socket (okx.ts).
  auditLimits: { maxInboundPerSecond: 3, maxConnectsPerWindow: 3, maxRestBudget: 40 },
  gateStatuses: [429],
};
