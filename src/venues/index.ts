/**
 * The one registry of venues (contract §2a). Adding a venue is a folder src/venues/<venue>/ whose
 * adapter implements VenueAdapter (src/upstream/venue.ts), plus one line here: the configuration,
 * the upstream pools, REST recovery, the relay, metrics and /ready take it from this list. Nothing
 * outside a venue's folder names that venue.
 */
import type { AnyVenueAdapter } from '../upstream/venue.ts';
import { binanceSpot } from './binance/spot.ts';
import { binanceUsdm } from './binance/usdm.ts';
import { bybitLinear, bybitSpot } from './bybit/market.ts';
import { okx } from './okx/okx.ts';
import { bingxSpot } from './bingx/spot.ts';
import { bingxSwap } from './bingx/swap.ts';
import { pionexSpot } from './pionex/spot.ts';

/**
 * Every venue the daemon can ingest, in the order the documentation lists them. The first is the default of CONNECTOR_VENUES.
 *
 * Not here, on purpose: OrangeX. Its JSON-RPC API (Deribit-style) has no public kline endpoint that
 * anyone has found working: nine candle methods probed live answered `No service found`, and the
 * Deribit-style `chart.trades.<instrument>.<resolution>` channel is untested (exchanges.md §5). A venue
 * is not invented from a guess. Once one is confirmed it is a folder src/venues/orangex/ and one line
 * here: with a kline channel, a VenueAdapter (its JSON-RPC subscribe frames, `/public/ping` as a
 * `client-json` heartbeat); with klines over REST only, a PolledVenueAdapter (`source: 'rest-poll'`,
 * 10 requests/s as `rest.requestsPerSecond`); from trades alone, neither seam suffices yet.
 */
export const VENUES: readonly AnyVenueAdapter[] = [binanceSpot, binanceUsdm, bybitSpot, bybitLinear, okx, bingxSpot, bingxSwap, pionexSpot];

export function venueById(id: string): AnyVenueAdapter | undefined {
  return VENUES.find((v) => v.id === id);
}

/** The adapter of a configured venue; the configuration only lets known ids through, so an unknown one is a programming error. */
export function requireVenue(id: string): AnyVenueAdapter {
  const v = venueById(id);
  if (v === undefined) throw new Error(`unknown venue ${id}`);
  return v;
}
