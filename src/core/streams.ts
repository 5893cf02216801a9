/**
 * Interning of StreamRefs: one object per (venue, upstream topic), dense ids for array-indexed state.
 * Relay names are unique across venues (Binance spot keeps Binance's own, every other venue's carry
 * its id as a prefix), so the relay finds a stream by its name alone.
 */
import type { StreamRef } from './candle.ts';

/** What a stream is registered with beyond (venue, relay name, symbol, canonical interval). */
export interface StreamWire {
  /** The venue's own name for the stream; default: the relay name (Binance spot). */
  readonly topic?: string;
  /** The venue's spelling of the interval; default: the canonical one. */
  readonly nativeInterval?: string;
}

export class StreamRegistry {
  #byTopic = new Map<string, StreamRef>();
  #byName = new Map<string, StreamRef>();
  #list: StreamRef[] = [];

  /**
   * Register (or return the existing) stream. A relay name already taken by another stream is a
   * programming error (two venues would share a relay name): it throws.
   */
  register(venue: string, name: string, symbol: string, interval: string, wire: StreamWire = {}): StreamRef {
    const topic = wire.topic ?? name;
    const key = `${venue}\u0000${topic}`;
    const existing = this.#byTopic.get(key);
    if (existing !== undefined) return existing;
    const taken = this.#byName.get(name);
    if (taken !== undefined) throw new Error(`relay stream name ${name} of ${venue} is already ${taken.venue}'s`);
    const ref: StreamRef = Object.freeze({ id: this.#list.length, venue, name, topic, symbol, interval, nativeInterval: wire.nativeInterval ?? interval });
    this.#byTopic.set(key, ref);
    this.#byName.set(name, ref);
    this.#list.push(ref);
    return ref;
  }

  /** The stream `venue` calls `topic` on its wire (frame parsers). */
  get(venue: string, topic: string): StreamRef | undefined {
    return this.#byTopic.get(`${venue}\u0000${topic}`);
  }

  /** The stream with this relay name, of whichever venue (the relay). */
  byName(name: string): StreamRef | undefined {
    return this.#byName.get(name);
  }

  all(): readonly StreamRef[] {
    return this.#list;
  }

  /** The streams of one venue, in registration order. */
  ofVenue(venue: string): StreamRef[] {
    return this.#list.filter((r) => r.venue === venue);
  }

  get size(): number {
    return this.#list.length;
  }
}
