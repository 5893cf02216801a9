/** Interning of StreamRefs: one object per (exchange, stream name), dense ids for array-indexed state. */
import type { StreamRef } from './candle.ts';

export class StreamRegistry {
  #byKey = new Map<string, StreamRef>();
  #list: StreamRef[] = [];

  /** Register (or return the existing) stream. */
  register(exchange: string, name: string, symbol: string, interval: string): StreamRef {
    const key = `${exchange}\u0000${name}`;
    const existing = this.#byKey.get(key);
    if (existing !== undefined) return existing;
    const ref: StreamRef = Object.freeze({ id: this.#list.length, exchange, name, symbol, interval });
    this.#byKey.set(key, ref);
    this.#list.push(ref);
    return ref;
  }

  get(exchange: string, name: string): StreamRef | undefined {
    return this.#byKey.get(`${exchange}\u0000${name}`);
  }

  all(): readonly StreamRef[] {
    return this.#list;
  }

  get size(): number {
    return this.#list.length;
  }
}
