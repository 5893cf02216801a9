/**
 * Binance spot (venue `binance`, contract §2a, §3): `wss://stream.binance.com:9443/stream?streams=`,
 * at most 1024 streams and 5 inbound messages per second per socket (pings and pongs included),
 * `GET /api/v3/klines` (weight 2, at most 1000 rows). Its relay names are Binance's own
 * (`btcusdt@kline_1m`), and its variables keep their pre-venue names (`CONNECTOR_SYMBOLS`, …).
 */
import { CANONICAL_INTERVALS, type CanonicalInterval } from '../../core/intervals.ts';
import { binanceMarket } from './market.ts';

/** Binance spot has every canonical interval, spelled as we spell them. */
const INTERVALS = Object.fromEntries(CANONICAL_INTERVALS.map((i) => [i, i])) as Readonly<Record<CanonicalInterval, string>>;

export const binanceSpot = binanceMarket({
  id: 'binance',
  title: 'Binance spot',
  env: {
    vars: { symbols: 'CONNECTOR_SYMBOLS', intervals: 'CONNECTOR_INTERVALS', wsUrl: 'CONNECTOR_BINANCE_WS_URL', restUrl: 'CONNECTOR_BINANCE_REST_URL' },
    defaults: { symbols: ['btcusdt', 'ethusdt'], intervals: ['1m'], wsUrl: 'wss://stream.binance.com:9443', restUrl: 'https://api.binance.com' },
    symbolPattern: /^[a-z0-9]{2,30}$/,
    symbolCase: 'lower',
    symbolForm: '2-30 letters or digits, e.g. btcusdt',
    intervals: INTERVALS,
  },
  relayNames: 'binance',
  maxStreamsPerConnection: 1024,
  // Binance spot counts 5/s; 4 leaves a slot for what we cannot time (ws's automatic pongs).
  controlBudgetPerSecond: 4,
  // ≤ 3 SUBSCRIBEs a second, leaving room for pongs and a ping.
  subscribeSpacingMs: 350,
  klinesPath: '/api/v3/klines',
  // Always a full page: the weight is 2 whatever the limit (rest-api.md), so fewer requests is cheaper.
  limitFor: () => 1000,
  weightOf: () => 2,
  weightLimitPerMinute: 6000,
});
