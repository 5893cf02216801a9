/**
 * The one registry of venues (contract §2a). Adding a venue is a folder src/venues/<venue>/ whose
 * adapter implements VenueAdapter (src/upstream/venue.ts), plus one line here: the configuration,
 * the upstream pools, REST recovery, the relay, metrics and /ready take it from this list. Nothing
 * outside a venue's folder names that venue.
 */
import type { VenueAdapter } from '../upstream/venue.ts';
import { binanceSpot } from './binance/spot.ts';
import { binanceUsdm } from './binance/usdm.ts';
import { bybitLinear, bybitSpot } from './bybit/market.ts';
import { okx } from './okx/okx.ts';
import { bingxSpot } from './bingx/spot.ts';
import { bingxSwap } from './bingx/swap.ts';

/** Every venue the daemon can ingest, in the order the documentation lists them. The first is the default of CONNECTOR_VENUES. */
export const VENUES: readonly VenueAdapter[] = [binanceSpot, binanceUsdm, bybitSpot, bybitLinear, okx, bingxSpot, bingxSwap];

export function venueById(id: string): VenueAdapter | undefined {
  return VENUES.find((v) => v.id === id);
}

/** The adapter of a configured venue; the configuration only lets known ids through, so an unknown one is a programming error. */
export function requireVenue(id: string): VenueAdapter {
  const v = venueById(id);
  if (v === undefined) throw new Error(`unknown venue ${id}`);
  return v;
}
