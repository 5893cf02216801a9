/**
 * The registry of venue simulators (src/simulator/dialect.ts `SimulatorVenue`): one line per venue
 * id of src/venues/index.ts that has a simulator. The chaos suite and the demo take venues from
 * here, so adding a venue's simulator is its folder src/venues/<venue>/simulator/ plus one line below.
 */
import type { SimulatorVenue } from '../simulator/dialect.ts';
import { binanceSpotSimulator, binanceUsdmSimulator } from './binance/simulator/index.ts';
import { bybitLinearSimulator, bybitSpotSimulator } from './bybit/simulator/index.ts';
import { bingxSpotSimulator, bingxSwapSimulator } from './bingx/simulator/index.ts';
import { okxSimulator } from './okx/simulator/index.ts';
import { pionexSimulator } from './pionex/simulator/index.ts';

export const SIMULATORS: readonly SimulatorVenue[] = [
  binanceSpotSimulator,
  binanceUsdmSimulator,
  bybitSpotSimulator,
  bybitLinearSimulator,
  okxSimulator,
  bingxSpotSimulator,
  bingxSwapSimulator,
  pionexSimulator,
];

export function simulatorFor(id: string): SimulatorVenue | undefined {
  return SIMULATORS.find((s) => s.id === id);
}
