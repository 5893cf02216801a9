/**
 * The dual-pipeline queue (contract §4).
 *
 *   closed candles ──► ClosedFifo  (bounded; overflow policy: BLOCK the producer, never drop)
 *   open candles   ──► OpenLatest  (one slot per stream, latest wins; drained newest-first (LIFO);
 *                                   overflow policy: evict the stalest stream's slot, counted)
 *
 * The FIFO reports "full" at its bound; the pipeline then pauses upstream reading (TCP backpressure)
 * until it drains below the low-water mark. Items already read from a socket when the pause lands
 * are still accepted (a handful, bounded by what ws had buffered) rather than dropped.
 */
import type { Candle } from '../core/candle.ts';
import { RingDeque } from './ring.ts';

export class ClosedFifo {
  readonly capacity: number;
  readonly lowWater: number;
  #q: RingDeque<Candle>;

  constructor(capacity: number, lowWaterRatio = 0.5) {
    this.capacity = capacity;
    this.lowWater = Math.floor(capacity * lowWaterRatio);
    this.#q = new RingDeque<Candle>(Math.min(capacity, 1024));
  }

  get depth(): number {
    return this.#q.length;
  }

  get full(): boolean {
    return this.#q.length >= this.capacity;
  }

  /** Append. Never drops; returns true when the queue is now at or past its bound (the producer must pause). */
  push(candle: Candle): boolean {
    this.#q.push(candle);
    return this.#q.length >= this.capacity;
  }

  shift(): Candle | undefined {
    return this.#q.shift();
  }
}

export class OpenLatest {
  readonly capacity: number;
  /** Latest pending update per stream id. */
  #slots: (Candle | undefined)[] = [];
  /** Stream ids with a pending slot, oldest first. */
  #order = new RingDeque<number>();
  /** Pending slots (the order deque may also hold ids whose slot was discarded). */
  #live = 0;
  /** Updates replaced before delivery or evicted at the bound. */
  skipped = 0;

  constructor(capacity: number) {
    this.capacity = capacity;
  }

  get depth(): number {
    return this.#live;
  }

  put(candle: Candle): void {
    const id = candle.stream.id;
    if (this.#slots[id] !== undefined) {
      this.#slots[id] = candle; // latest wins; keeps its place in the order
      this.skipped++;
      return;
    }
    if (this.#live >= this.capacity) {
      // Evict the stream whose pending update has waited longest; a newer one for it will come.
      for (;;) {
        const victim = this.#order.shift();
        if (victim === undefined) break;
        if (this.#slots[victim] !== undefined) {
          this.#slots[victim] = undefined;
          this.#live--;
          this.skipped++;
          break;
        }
      }
    }
    this.#slots[id] = candle;
    this.#order.push(id);
    this.#live++;
  }

  /** Take the most recently queued stream's update (LIFO). */
  pop(): Candle | undefined {
    for (;;) {
      const id = this.#order.pop();
      if (id === undefined) return undefined;
      const c = this.#slots[id];
      if (c !== undefined) {
        this.#slots[id] = undefined;
        this.#live--;
        return c;
      }
    }
  }
}
