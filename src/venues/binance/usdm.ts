/**
 * Binance USD-M perpetual futures (venue `binance-usdm`, exchanges.md §6). Since 2026-04-23 klines are
 * served on the `/market` route only (`wss://fstream.binance.com/market/stream?streams=`): the legacy
 * root paths accept subscriptions and then send nothing, which the pool sees as stale streams and a
 * silent socket, never as health. 10 inbound messages/s and 1024 streams per socket, server pings
 * every 3 minutes; `GET /fapi/v1/klines` (at most 1500 rows, weight 1/2/5/10 by limit, 2400 weight per
 * minute per IP, usage in `X-MBX-USED-WEIGHT-1M`). Its events are spot's kline events, so the parser,
 * the URL and SUBSCRIBE rules and the REST rows are shared (market.ts).
 */
import { CANONICAL_INTERVALS, type CanonicalInterval } from '../../core/intervals.ts';
import { binanceMarket } from './market.ts';

/** USD-M has every canonical interval but `1s`, spelled as we spell them. */
const INTERVALS = Object.fromEntries(CANONICAL_INTERVALS.filter((i) => i !== '1s').map((i) => [i, i])) as Readonly<Partial<Record<CanonicalInterval, string>>>;

/** Kline-Candlestick-Data: weight 1 below 100 rows, 2 below 500, 5 up to 1000, 10 above. */
function weightOf(limit: number): number {
  if (limit < 100) return 1;
  if (limit < 500) return 2;
  if (limit <= 1000) return 5;
  return 10;
}

/** The largest page of the cheapest weight that still covers `wanted` rows (a gap of a few candles costs 1). */
function limitFor(wanted: number): number {
  if (wanted < 100) return 99;
  if (wanted < 500) return 499;
  if (wanted <= 1000) return 1000;
  return 1500;
}

export const binanceUsdm = binanceMarket({
  id: 'binance-usdm',
  title: 'Binance USD-M',
  env: {
    vars: {
      symbols: 'CONNECTOR_BINANCE_USDM_SYMBOLS',
      intervals: 'CONNECTOR_BINANCE_USDM_INTERVALS',
      wsUrl: 'CONNECTOR_BINANCE_USDM_WS_URL',
      restUrl: 'CONNECTOR_BINANCE_USDM_REST_URL',
    },
    defaults: { intervals: ['1m'], wsUrl: 'wss://fstream.binance.com/market', restUrl: 'https://fapi.binance.com' },
    // Perpetuals (btcusdt, 1000pepeusdt) and dated delivery contracts (btcusdt_260626).
    symbolPattern: /^[a-z0-9]{2,30}(_\d{6})?$/,
    symbolCase: 'lower',
    symbolForm: '2-30 letters or digits, a delivery contract with _YYMMDD, e.g. btcusdt or btcusdt_260626',
    intervals: INTERVALS,
  },
  relayNames: 'prefixed',
  maxStreamsPerConnection: 1024,
  // USD-M counts 10 incoming messages/s per socket; 8 leaves room for what we cannot time.
  controlBudgetPerSecond: 8,
  subscribeSpacingMs: 150,
  klinesPath: '/fapi/v1/klines',
  limitFor,
  weightOf,
  weightLimitPerMinute: 2400,
});
