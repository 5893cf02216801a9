/**
 * The relay's memory of recent closed candles, for resume (`since`, connector-contract.md §5).
 *
 * One bounded ring per stream of the last `capacity` closed candles as they were delivered: open
 * time plus the kline payload bytes (klinePayload: the event without framing, so a replay frames it
 * for either mode, raw or envelope). Bytes, not Candle objects: a Candle is ~15 strings and numbers on
 * the V8 heap; its payload is one off-heap allocation. The pipeline delivers each stream's closed
 * candles in order, once (pipeline/gaps.ts), so each ring is sorted by open time and a lookup by open
 * time is a binary search.
 *
 * Each entry has a per-stream sequence number (appended count), so a replay can tell the candles that
 * arrived live after it started (they wait in the ring, not in a per-client copy) from older ones.
 * The payload is copied on append: a WS candle's `raw` is a view into a larger socket read, which the
 * ring would otherwise keep alive whole.
 */

interface Ring {
  readonly openTimes: Float64Array;
  readonly payloads: (Buffer | undefined)[];
  /** Index of the oldest entry. */
  head: number;
  size: number;
  /** Entries ever appended: the next entry's sequence number. */
  seq: number;
  bytes: number;
}

export interface HistoryEntry {
  readonly openTime: number;
  readonly payload: Buffer;
  /** Per-stream sequence number (0 for the first candle ever appended to the stream). */
  readonly seq: number;
}

export class History {
  readonly capacity: number;
  /** stream id → ring (ids are dense). */
  readonly #rings: (Ring | undefined)[] = [];
  #candles = 0;
  #bytes = 0;

  constructor(capacity: number) {
    this.capacity = capacity;
  }

  get enabled(): boolean {
    return this.capacity > 0;
  }

  /** Candles held across all streams. */
  get candles(): number {
    return this.#candles;
  }

  /** Payload bytes held across all streams. */
  get bytes(): number {
    return this.#bytes;
  }

  append(streamId: number, openTime: number, payload: Buffer): void {
    if (this.capacity === 0) return;
    let ring = this.#rings[streamId];
    if (ring === undefined) {
      ring = { openTimes: new Float64Array(this.capacity), payloads: new Array<Buffer | undefined>(this.capacity).fill(undefined), head: 0, size: 0, seq: 0, bytes: 0 };
      this.#rings[streamId] = ring;
    }
    const copy = Buffer.allocUnsafeSlow(payload.length);
    payload.copy(copy);
    let slot: number;
    if (ring.size === this.capacity) {
      slot = ring.head;
      const old = ring.payloads[slot];
      if (old !== undefined) {
        ring.bytes -= old.length;
        this.#bytes -= old.length;
      }
      ring.head = (ring.head + 1) % this.capacity;
    } else {
      slot = (ring.head + ring.size) % this.capacity;
      ring.size++;
      this.#candles++;
    }
    ring.openTimes[slot] = openTime;
    ring.payloads[slot] = copy;
    ring.bytes += copy.length;
    this.#bytes += copy.length;
    ring.seq++;
  }

  /** The next sequence number of a stream: entries with seq ≥ this arrive after now. */
  seq(streamId: number): number {
    return this.#rings[streamId]?.seq ?? 0;
  }

  /** Open time of the oldest candle held for the stream; undefined when none. */
  oldest(streamId: number): number | undefined {
    const ring = this.#rings[streamId];
    if (ring === undefined || ring.size === 0) return undefined;
    return ring.openTimes[ring.head];
  }

  /** Open time of the newest candle held for the stream; undefined when none. */
  newest(streamId: number): number | undefined {
    const ring = this.#rings[streamId];
    if (ring === undefined || ring.size === 0) return undefined;
    return ring.openTimes[(ring.head + ring.size - 1) % this.capacity];
  }

  /**
   * Up to `max` entries with open time ≥ `from`, oldest first, whose payloads total at most `maxBytes`
   * (at least one entry when there is one).
   */
  read(streamId: number, from: number, max: number, maxBytes: number): HistoryEntry[] {
    const ring = this.#rings[streamId];
    const out: HistoryEntry[] = [];
    if (ring === undefined || ring.size === 0) return out;
    const cap = this.capacity;
    // Binary search for the first logical index whose open time is ≥ from.
    let lo = 0;
    let hi = ring.size;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((ring.openTimes[(ring.head + mid) % cap] ?? 0) < from) lo = mid + 1;
      else hi = mid;
    }
    let bytes = 0;
    const firstSeq = ring.seq - ring.size;
    for (let i = lo; i < ring.size && out.length < max; i++) {
      const slot = (ring.head + i) % cap;
      const payload = ring.payloads[slot];
      if (payload === undefined) break;
      if (out.length > 0 && bytes + payload.length > maxBytes) break;
      bytes += payload.length;
      out.push({ openTime: ring.openTimes[slot] ?? 0, payload, seq: firstSeq + i });
    }
    return out;
  }
}
