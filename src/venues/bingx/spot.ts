/**
 * BingX spot (venue `bingx-spot`, contract §2a, exchanges.md §3): `wss://open-api-ws.bingx.com/market`,
 * `GET https://open-api.bingx.com/openApi/spot/v2/quote/klines`, symbols `BTC-USDT`.
 *
 * Intervals: the sources disagree on spot's socket names (exchanges.md §3 "Spot: sources disagree"):
 * BingX's own spot doc (BingX-spot-api-doc@1d9d095 "Kline Streams") and ccxt list `1min 5min 15min
 * 30min 60min 1day`; BingX.Net adds `3min 2hour 4hour … 1week 1month`; BingX's agent skill writes
 * `1min 3min 5min 15min 30min 1h 2h … 1d 3d 1w 1M`. Only the intervals every source has under the
 * same name are offered: 1m 5m 15m 30m (1h is `60min` in three and `1h` in one, 1d `1day` or `1d`).
 * Any other is a configuration error naming CONNECTOR_BINGX_SPOT_INTERVALS. REST spells them as
 * the swap market does (`1m`; BingX.Net's KlineInterval map, ccxt's REST timeframes).
 */
import type { HeartbeatKind } from '../../upstream/venue.ts';
import { bingxMarket } from './market.ts';

/** `{"ping":"<id>","time":"…"}` → the same object with `pong` for `ping` (id and time kept). */
const SPOT_PING_PREFIX = '{"ping"';

export const SPOT_HEARTBEAT: HeartbeatKind = {
  kind: 'server-json',
  pingPrefix: SPOT_PING_PREFIX,
  answer: (frame) => `{"pong"${frame.toString('latin1', SPOT_PING_PREFIX.length)}`,
  maxFrameBytes: 256,
};

export const bingxSpot = bingxMarket({
  id: 'bingx-spot',
  title: 'BingX spot',
  market: 'spot',
  env: {
    vars: {
      symbols: 'CONNECTOR_BINGX_SPOT_SYMBOLS',
      intervals: 'CONNECTOR_BINGX_SPOT_INTERVALS',
      wsUrl: 'CONNECTOR_BINGX_SPOT_WS_URL',
      restUrl: 'CONNECTOR_BINGX_SPOT_REST_URL',
    },
    defaults: { intervals: ['1m'], wsUrl: 'wss://open-api-ws.bingx.com/market', restUrl: 'https://open-api.bingx.com' },
    // "There must be a dash "-" in the trading pair symbol", uppercase (spot doc "symbol Description").
    symbolPattern: /^[A-Z0-9]{1,20}-[A-Z]{2,10}$/,
    symbolCase: 'upper',
    symbolForm: 'BASE-QUOTE in letters or digits with a dash, e.g. BTC-USDT',
    intervals: { '1m': '1min', '5m': '5min', '15m': '15min', '30m': '30min' },
  },
  heartbeat: SPOT_HEARTBEAT,
  klinesPath: '/openApi/spot/v2/quote/klines',
  restIntervals: { '1m': '1m', '5m': '5m', '15m': '15m', '30m': '30m' },
});
