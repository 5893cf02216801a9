/**
 * Shards (contract §10): which replica owns which streams. All intervals of one (venue, symbol) go to
 * the same shard, so a replica's sockets, REST budget and relay serve whole symbols, and the same
 * configuration on `count` replicas covers every stream exactly once.
 *
 * The hash, stable across releases, platforms and Node versions (documented in ARCHITECTURE.md §10):
 *
 *   key   = FNV-1a 64-bit of the UTF-8 bytes of `<venue>:<SYMBOL>` (venue id as in CONNECTOR_VENUES,
 *           native symbol upper-cased, e.g. `binance:BTCUSDT`, `okx:BTC-USDT-SWAP`)
 *   shard = jump consistent hash (Lamping & Veach, "A Fast, Minimal Memory, Consistent Hash
 *           Algorithm", 2014) of `key` into `count` buckets
 *
 * Jump hashing rather than `key % count`: going from n to n+1 shards moves only ~1/(n+1) of the
 * symbols (each to the new shard), where a modulo would move almost all of them, so a resharding
 * re-subscribes few streams and each shard's JetStream subjects mostly keep their writer.
 *
 * Runs at startup only (BigInt arithmetic, microseconds per symbol), never on the hot path.
 */

const FNV64_OFFSET = 0xcbf29ce484222325n;
const FNV64_PRIME = 0x100000001b3n;
const MASK64 = (1n << 64n) - 1n;

export function fnv1a64(text: string): bigint {
  let h = FNV64_OFFSET;
  for (const byte of Buffer.from(text, 'utf8')) {
    h ^= BigInt(byte);
    h = (h * FNV64_PRIME) & MASK64;
  }
  return h;
}

/** Jump consistent hash: `key` into [0, buckets). */
export function jumpHash(key: bigint, buckets: number): number {
  if (!Number.isInteger(buckets) || buckets < 1) throw new RangeError(`jumpHash: buckets must be a positive integer, got ${String(buckets)}`);
  let k = key & MASK64;
  let b = -1;
  let j = 0;
  while (j < buckets) {
    b = j;
    k = (k * 2862933555777941757n + 1n) & MASK64;
    // As the paper's reference code computes it, in doubles: (b + 1) * (2^31 / ((k >> 33) + 1)).
    j = Math.floor((b + 1) * (2 ** 31 / (Number(k >> 33n) + 1)));
  }
  return b;
}

/** The shard (0-based) that owns `symbol` of `venue` among `count` shards. */
export function shardOf(venue: string, symbol: string, count: number): number {
  return count === 1 ? 0 : jumpHash(fnv1a64(`${venue}:${symbol.toUpperCase()}`), count);
}

export interface ShardConfig {
  /** This replica's shard, 0-based. */
  readonly index: number;
  readonly count: number;
  /** Where the index came from: `CONNECTOR_SHARD`, or the pod name's ordinal (ordinal mod count). */
  readonly from: string;
}

/** `i/n` as CONNECTOR_SHARD writes it; a string says what is wrong. */
export function parseShard(text: string): { readonly index: number; readonly count: number } | string {
  const m = /^\s*(\d{1,4})\s*\/\s*(\d{1,4})\s*$/.exec(text);
  if (m === null) return 'expected <index>/<count>, e.g. 0/3 (index 0-based)';
  const index = Number(m[1]);
  const count = Number(m[2]);
  if (count < 1 || count > 1024) return `expected a shard count from 1 to 1024, got ${count}`;
  if (index >= count) return `expected an index below the count (0 to ${count - 1}), got ${index}`;
  return { index, count };
}

/**
 * The ordinal of a StatefulSet pod name (`connector-4` → 4). With `count` shards and 2 × count
 * replicas, ordinals i and i + count are shard i's HA pair.
 */
export function podOrdinal(podName: string): number | undefined {
  const m = /-(\d{1,6})$/.exec(podName.trim());
  return m === null ? undefined : Number(m[1]);
}

/** `shard 1/3`: how logs, errors and /ready name a shard. */
export function shardLabel(index: number, count: number): string {
  return `shard ${index}/${count}`;
}
