/**
 * BingX USDT-M perpetual swap (venue `bingx-swap`, contract §2a, exchanges.md §3):
 * `wss://open-api-swap.bingx.com/swap-market`, `GET https://open-api.bingx.com/openApi/swap/v3/quote/klines`,
 * symbols `BTC-USDT`. Intervals as BingX's swap doc lists them for the socket and REST alike
 * (BingX-swap-api-v2-doc@4a961e5 "Subscribe K-Line Data" and "K-Line Data": 1m … 12h, 1d, 3d, 1w, 1M,
 * 8h included; BingX.Net and BingX's skill agree; ccxt's table only leaves out 8h), spelled as we spell them.
 */
import type { CanonicalInterval } from '../../core/intervals.ts';
import type { HeartbeatKind } from '../../upstream/venue.ts';
import { bingxMarket } from './market.ts';

const SWAP_INTERVALS = ['1m', '3m', '5m', '15m', '30m', '1h', '2h', '4h', '6h', '8h', '12h', '1d', '3d', '1w', '1M'] as const satisfies readonly CanonicalInterval[];
const INTERVALS = Object.fromEntries(SWAP_INTERVALS.map((i) => [i, i])) as Readonly<Partial<Record<CanonicalInterval, string>>>;

/** The text `Ping`, answered `Pong` (ccxt pong(); BingX.Net BingXFuturesPingSubscription). */
export const SWAP_HEARTBEAT: HeartbeatKind = { kind: 'server-json', pingPrefix: 'Ping', answer: () => 'Pong', maxFrameBytes: 4 };

export const bingxSwap = bingxMarket({
  id: 'bingx-swap',
  title: 'BingX swap',
  market: 'swap',
  env: {
    vars: {
      symbols: 'CONNECTOR_BINGX_SWAP_SYMBOLS',
      intervals: 'CONNECTOR_BINGX_SWAP_INTERVALS',
      wsUrl: 'CONNECTOR_BINGX_SWAP_WS_URL',
      restUrl: 'CONNECTOR_BINGX_SWAP_REST_URL',
    },
    defaults: { intervals: ['1m'], wsUrl: 'wss://open-api-swap.bingx.com/swap-market', restUrl: 'https://open-api.bingx.com' },
    symbolPattern: /^[A-Z0-9]{1,20}-[A-Z]{2,10}$/,
    symbolCase: 'upper',
    symbolForm: 'BASE-QUOTE in letters or digits with a dash, e.g. BTC-USDT',
    intervals: INTERVALS,
  },
  heartbeat: SWAP_HEARTBEAT,
  klinesPath: '/openApi/swap/v3/quote/klines',
  restIntervals: INTERVALS,
});
