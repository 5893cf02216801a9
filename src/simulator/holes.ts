/**
 * Candles that "never existed" (a venue outage's holes): skipped by the WS scheduler and absent from
 * REST. Ranges are kept per (lowercase symbol, interval); lookups are linear in the number of holes
 * for that series, which stays tiny (tests add a handful).
 */
export interface HoleRange {
  readonly from: number;
  /** Exclusive. */
  readonly to: number;
}

export class HoleSet {
  #bySeries = new Map<string, HoleRange[]>();

  add(symbol: string, interval: string, fromOpenTime: number, toOpenTimeExclusive: number): void {
    if (!(toOpenTimeExclusive > fromOpenTime)) return;
    const key = `${symbol.toLowerCase()}@${interval}`;
    const list = this.#bySeries.get(key) ?? [];
    list.push({ from: fromOpenTime, to: toOpenTimeExclusive });
    this.#bySeries.set(key, list);
  }

  /** The hole containing this open time, if any. */
  find(symbolLower: string, interval: string, openTime: number): HoleRange | undefined {
    const list = this.#bySeries.get(`${symbolLower}@${interval}`);
    if (list === undefined) return undefined;
    for (const h of list) if (openTime >= h.from && openTime < h.to) return h;
    return undefined;
  }

  clear(): void {
    this.#bySeries.clear();
  }
}
