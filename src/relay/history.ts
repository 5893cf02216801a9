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
 * Payloads are copied end to end into per-stream slabs (growing to SLAB_BYTES), and a slab is freed once the
 * ring has moved past its last entry: no Buffer object per candle (measured: a Buffer per candle cost
 * 826 B of RSS per 329-byte candle; slabs cost about the payload, ARCHITECTURE.md "Resume"), and no
 * view into the socket read a WS candle's `raw` came from, which would keep that read alive whole.
 */

/**
 * Memory one history entry costs, measured (`node --expose-gc bench/history.ts --streams 1000
 * --candles 1440`: 478 B of RSS per 329-byte Binance kline event). For the start-up estimate only.
 */
export const HISTORY_BYTES_PER_CANDLE = 480;

/** Most bytes per slab: a stream's payloads are copied end to end into slabs of at most this size (see History). */
const SLAB_BYTES = 32 * 1024;
/**
 * A stream's first slab; each next one doubles, up to SLAB_BYTES or a quarter of what the full ring
 * would hold, whichever is smaller. And a ring's index starts at RING_START slots, doubling up to the
 * capacity. So memory follows the candles a stream holds: with 2000 streams a fixed 32 KB slab and a
 * 1440-slot index cost 67 KB per stream from its first candle (134 MB), most of it empty for hours on
 * the 1m streams; and a small capacity does not sit in slabs bigger than its whole ring.
 */
const SLAB_START = 1024;
const RING_START = 16;

interface Ring {
  openTimes: Float64Array;
  /** Per slot: the absolute number of the slab holding its payload, its offset and length there. */
  slabOf: Float64Array;
  offsets: Uint32Array;
  lengths: Uint32Array;
  /** Live slabs, oldest first; slabs[0] is number `firstSlab`. */
  readonly slabs: Buffer[];
  firstSlab: number;
  /** Write position in the newest slab. */
  writeAt: number;
  /** Size of the next slab to allocate. */
  nextSlab: number;
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

  /** Bytes allocated for all streams: the rings' index arrays and their payload slabs. */
  get allocatedBytes(): number {
    let n = 0;
    for (const r of this.#rings) {
      if (r === undefined) continue;
      n += r.openTimes.byteLength + r.slabOf.byteLength + r.offsets.byteLength + r.lengths.byteLength;
      for (const slab of r.slabs) n += slab.length;
    }
    return n;
  }

  append(streamId: number, openTime: number, payload: Buffer): void {
    const cap = this.capacity;
    if (cap === 0) return;
    let ring = this.#rings[streamId];
    if (ring === undefined) {
      const slots = Math.min(cap, RING_START);
      ring = {
        openTimes: new Float64Array(slots),
        slabOf: new Float64Array(slots),
        offsets: new Uint32Array(slots),
        lengths: new Uint32Array(slots),
        slabs: [],
        firstSlab: 0,
        writeAt: 0,
        nextSlab: SLAB_START,
        head: 0,
        size: 0,
        seq: 0,
        bytes: 0,
      };
      this.#rings[streamId] = ring;
    } else if (ring.size === ring.openTimes.length && ring.size < cap) {
      grow(ring, Math.min(cap, ring.size * 2));
    }
    const slots = ring.openTimes.length;
    let slot: number;
    if (ring.size === cap) {
      slot = ring.head;
      const old = ring.lengths[slot] ?? 0;
      ring.bytes -= old;
      this.#bytes -= old;
      ring.head = (ring.head + 1) % slots;
    } else {
      slot = (ring.head + ring.size) % slots;
      ring.size++;
      this.#candles++;
    }
    const len = payload.length;
    let slab = ring.slabs[ring.slabs.length - 1];
    if (slab === undefined || ring.writeAt + len > slab.length) {
      slab = Buffer.allocUnsafeSlow(Math.max(ring.nextSlab, len));
      // Up to SLAB_BYTES, and to a quarter of the full ring at this payload size.
      ring.nextSlab = Math.min(SLAB_BYTES, Math.max(SLAB_START, Math.floor((cap * len) / 4)), ring.nextSlab * 2);
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
    return ring.openTimes[(ring.head + ring.size - 1) % ring.openTimes.length];
  }

  /**
   * Up to `max` entries with open time ≥ `from`, oldest first, whose payloads total at most `maxBytes`
   * (at least one entry when there is one).
   */
  read(streamId: number, from: number, max: number, maxBytes: number): HistoryEntry[] {
    const ring = this.#rings[streamId];
    const out: HistoryEntry[] = [];
    if (ring === undefined || ring.size === 0) return out;
    const cap = ring.openTimes.length;
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

/** Re-allocate a ring's index with `slots` slots, entries in logical order from slot 0. */
function grow(ring: Ring, slots: number): void {
  const n = ring.openTimes.length;
  const openTimes = new Float64Array(slots);
  const slabOf = new Float64Array(slots);
  const offsets = new Uint32Array(slots);
  const lengths = new Uint32Array(slots);
  for (let i = 0; i < ring.size; i++) {
    const from = (ring.head + i) % n;
    openTimes[i] = ring.openTimes[from] ?? 0;
    slabOf[i] = ring.slabOf[from] ?? 0;
    offsets[i] = ring.offsets[from] ?? 0;
    lengths[i] = ring.lengths[from] ?? 0;
  }
  ring.openTimes = openTimes;
  ring.slabOf = slabOf;
  ring.offsets = offsets;
  ring.lengths = lengths;
  ring.head = 0;
}
