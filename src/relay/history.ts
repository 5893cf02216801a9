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
 * Payloads are copied end to end into per-stream slabs of SLAB_BYTES, and a slab is freed once the
 * ring has moved past its last entry: no Buffer object per candle (measured: a Buffer per candle cost
 * 826 B of RSS per 329-byte candle; slabs cost about the payload, ARCHITECTURE.md "Resume"), and no
 * view into the socket read a WS candle's `raw` came from, which would keep that read alive whole.
 */

/**
 * Memory one history entry costs, measured (`node --expose-gc bench/history.ts --streams 1000
 * --candles 1440`: 478 B of RSS per 329-byte Binance kline event). For the start-up estimate only.
 */
export const HISTORY_BYTES_PER_CANDLE = 480;

/** Bytes per slab: a stream's payloads are copied end to end into slabs of this size (see History). */
const SLAB_BYTES = 32 * 1024;

interface Ring {
  readonly openTimes: Float64Array;
  /** Per slot: the absolute number of the slab holding its payload, its offset and length there. */
  readonly slabOf: Float64Array;
  readonly offsets: Uint32Array;
  readonly lengths: Uint32Array;
  /** Live slabs, oldest first; slabs[0] is number `firstSlab`. */
  readonly slabs: Buffer[];
  firstSlab: number;
  /** Write position in the newest slab. */
  writeAt: number;
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
    const cap = this.capacity;
    if (cap === 0) return;
    let ring = this.#rings[streamId];
    if (ring === undefined) {
      ring = {
        openTimes: new Float64Array(cap),
        slabOf: new Float64Array(cap),
        offsets: new Uint32Array(cap),
        lengths: new Uint32Array(cap),
        slabs: [],
        firstSlab: 0,
        writeAt: SLAB_BYTES,
        head: 0,
        size: 0,
        seq: 0,
        bytes: 0,
      };
      this.#rings[streamId] = ring;
    }
    let slot: number;
    if (ring.size === cap) {
      slot = ring.head;
      const old = ring.lengths[slot] ?? 0;
      ring.bytes -= old;
      this.#bytes -= old;
      ring.head = (ring.head + 1) % cap;
    } else {
      slot = (ring.head + ring.size) % cap;
      ring.size++;
      this.#candles++;
    }
    const len = payload.length;
    let slab = ring.slabs[ring.slabs.length - 1];
    if (slab === undefined || ring.writeAt + len > slab.length) {
      slab = Buffer.allocUnsafeSlow(Math.max(SLAB_BYTES, len));
      ring.slabs.push(slab);
      ring.writeAt = 0;
    }
    payload.copy(slab, ring.writeAt);
    ring.openTimes[slot] = openTime;
    ring.slabOf[slot] = ring.firstSlab + ring.slabs.length - 1;
    ring.offsets[slot] = ring.writeAt;
    ring.lengths[slot] = len;
    ring.writeAt += len;
    ring.bytes += len;
    this.#bytes += len;
    ring.seq++;
    // Free the slabs wholly before the oldest entry (never the one being written).
    const oldestSlab = ring.slabOf[ring.head] ?? ring.firstSlab;
    while (ring.firstSlab < oldestSlab && ring.slabs.length > 1) {
      ring.slabs.shift();
      ring.firstSlab++;
    }
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
      const slab = ring.slabs[(ring.slabOf[slot] ?? 0) - ring.firstSlab];
      if (slab === undefined) break;
      const len = ring.lengths[slot] ?? 0;
      if (out.length > 0 && bytes + len > maxBytes) break;
      bytes += len;
      const at = ring.offsets[slot] ?? 0;
      // A view: valid while the entry is in the ring (the replay writes it before the next delivery can evict it).
      out.push({ openTime: ring.openTimes[slot] ?? 0, payload: slab.subarray(at, at + len), seq: firstSeq + i });
    }
    return out;
  }
}
