import type { Candle, StreamRef } from '../../src/core/candle.ts';
import { closeTimeOf } from '../../src/core/intervals.ts';
import { StreamRegistry } from '../../src/core/streams.ts';

export function streams(names: readonly [symbol: string, interval: string][]): { registry: StreamRegistry; refs: StreamRef[] } {
  const registry = new StreamRegistry();
  const refs = names.map(([s, i]) => registry.register('binance', `${s}@kline_${i}`, s.toUpperCase(), i));
  return { registry, refs };
}

export function candle(stream: StreamRef, openTime: number, closed: boolean, eventTime = openTime + 1, source: 'ws' | 'rest' = 'ws'): Candle {
  const p = (openTime % 1_000_000).toString();
  return {
    stream,
    openTime,
    closeTime: closeTimeOf(stream.interval, openTime),
    eventTime,
    closed,
    open: `${p}.00000000`,
    high: `${p}.50000000`,
    low: `${p}.00000000`,
    close: `${p}.25000000`,
    volume: '1.00000000',
    quoteVolume: '2.00000000',
    takerBuyBaseVolume: '0.50000000',
    takerBuyQuoteVolume: '1.00000000',
    trades: 3,
    firstTradeId: 1,
    lastTradeId: 3,
    ignore: '0',
    source,
    raw: undefined,
    receivedAt: performance.now(),
  };
}
