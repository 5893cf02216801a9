/**
 * Binance market-stream frames → canonical candles, for every Binance venue whose kline event has
 * spot's layout (spot, USD-M futures: the same `k` object, exchanges.md §6). This is the hot path:
 * every upstream frame passes through `KlineFrameParser.parse` once.
 *
 * Two tiers:
 * 1. A strict single-pass scanner over the frame's BYTES (no toString) for the exact layout and key
 *    order Binance sends (`{"stream":"…","data":{"e":"kline","E":…,"s":"…","k":{"t":…,…,"B":"…"}}}`
 *    and the raw event without the envelope). It validates every key and value as it walks (digits
 *    where numbers are, `-?\d+(\.\d+)?` in decimal strings, printable ASCII elsewhere), decodes only
 *    what ordering and dedup need (t, T, E, x, n, f, L, the stream) and returns a WireCandle whose
 *    decimal strings are decoded on first access and whose `raw` is the `data` object's bytes as
 *    received. No JSON.parse, no intermediate objects: one Candle allocation per frame.
 * 2. Anything the scanner does not recognise (reordered keys, whitespace, escapes, non-ASCII, control
 *    frames, garbage) is UTF-8-validated, then goes to JSON.parse + zod, which is authoritative. What
 *    fails is a parse error: counted, reported as a rate-limited `parse.error` status event, and
 *    skipped. Never thrown.
 *
 * Outcomes other than a candle are a handful of preallocated sentinels (no result wrappers).
 */
import * as z from 'zod';
import type { Candle, StreamRef } from '../../core/candle.ts';
import type { Clock } from '../../core/clock.ts';
import type { StatusStream } from '../../core/status.ts';
import type { StreamRegistry } from '../../core/streams.ts';
import { CONTROL_ERROR, CONTROL_REPLY, PARSE_ERROR, SERVER_SHUTDOWN, UNKNOWN_STREAM, type FrameOutcome, type FrameParser, type FrameSignal } from '../../upstream/venue.ts';
import { jsonObjectOf, ParseErrorReporter } from '../../upstream/parse-errors.ts';

export { CONTROL_ERROR, CONTROL_REPLY, PARSE_ERROR, SERVER_SHUTDOWN, UNKNOWN_STREAM, isCandle } from '../../upstream/venue.ts';
export type { FrameOutcome, FrameSignal, FrameSignalKind } from '../../upstream/venue.ts';

/** `btcusdt@kline_1m`: Binance stream names are lowercase (uppercase names subscribe silently to nothing). */
export function klineStreamName(symbol: string, interval: string): string {
  return `${symbol.toLowerCase()}@kline_${interval}`;
}

// ---------------------------------------------------------------------------------------------
// Fallback schemas (the authority on what a valid frame is; the scanner is a fast subset of it)

/** Binance decimal strings: digits, optional fraction. Kept as strings end to end. */
const decimal = z.string().regex(/^-?\d+(\.\d+)?$/, { message: 'expected a decimal string' });
const plainString = z.string();

export const KlineSchema = z.object({
  t: z.int(),
  T: z.int(),
  s: plainString,
  i: plainString,
  f: z.int(),
  L: z.int(),
  o: decimal,
  c: decimal,
  h: decimal,
  l: decimal,
  v: decimal,
  n: z.int().nonnegative(),
  x: z.boolean(),
  q: decimal,
  V: decimal,
  Q: decimal,
  B: plainString,
});

export const KlineEventSchema = z.object({
  e: z.literal('kline'),
  E: z.int(),
  s: plainString,
  k: KlineSchema,
});
export type KlineEvent = z.infer<typeof KlineEventSchema>;

const ControlId = z.union([z.int(), z.string(), z.null()]);
const ControlReplySchema = z.object({ result: z.unknown(), id: ControlId });
const ControlErrorSchema = z.object({ error: z.object({ code: z.int(), msg: z.string() }), id: ControlId });

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

// ---------------------------------------------------------------------------------------------
// Candles read straight off the wire

/** The kline fields nobody on the hot path reads, decoded together on first access. */
interface WireLazy {
  readonly f: number;
  readonly L: number;
  readonly n: number;
  readonly o: string;
  readonly c: string;
  readonly h: string;
  readonly l: string;
  readonly v: string;
  readonly q: string;
  readonly V: string;
  readonly Q: string;
  readonly B: string;
}

/** `","c":"` and its siblings: from one string value's closing quote to the next value's first byte. */
const NEXT_STRING = 7;

/**
 * A candle the scanner read from the frame's bytes. Only what ordering and dedup need (stream, t, T,
 * E, x) is decoded eagerly; the rest (f, L, n and the nine decimal/plain strings, which the scanner
 * already validated) is decoded on first access and cached. Most open updates are superseded before
 * delivery and the relay forwards `raw`, so usually nothing decodes them at all. Fewer fields also
 * means less to allocate per frame (each time field above 2^31 is its own heap number).
 *
 * Memory: an open update's `raw` is a view (`subarray`, no copy) of the Buffer ws handed us, which is
 * itself a view of a socket read chunk; the chunk stays alive until the candle is delivered or
 * superseded (the pipeline drains every event-loop turn and keeps one open update per stream).
 * Closed candles can wait longer (gap holding areas, a full FIFO while a sink applies backpressure),
 * so the parser copies their few hundred bytes into a slab of closed events instead.
 *
 * The lazy fields are getters on the prototype: read them by name (as the Candle interface does);
 * `{ ...candle }` sees only the eager ones. `JSON.stringify(candle)` goes through `toJSON()`, which
 * decodes and lists every field, so a sink that serializes candles generically loses nothing.
 */
export class WireCandle implements Candle {
  readonly stream: StreamRef;
  readonly openTime: number;
  readonly closeTime: number;
  readonly eventTime: number;
  readonly closed: boolean;
  readonly receivedAt: number;
  /** Holds the event (`data` object) at [#start, #end). */
  readonly #buf: Buffer;
  readonly #start: number;
  readonly #end: number;
  /** Offset in #buf of the first byte of the `f` value: the layout from there on is fixed (see #decode). */
  readonly #k: number;
  #raw: Buffer | undefined = undefined;
  #lazy: WireLazy | undefined = undefined;

  constructor(
    stream: StreamRef,
    openTime: number,
    closeTime: number,
    eventTime: number,
    closed: boolean,
    receivedAt: number,
    buf: Buffer,
    start: number,
    end: number,
    k: number,
  ) {
    this.stream = stream;
    this.openTime = openTime;
    this.closeTime = closeTime;
    this.eventTime = eventTime;
    this.closed = closed;
    this.receivedAt = receivedAt;
    this.#buf = buf;
    this.#start = start;
    this.#end = end;
    this.#k = k;
  }

  get source(): 'ws' {
    return 'ws';
  }

  /** The `data` object's bytes exactly as received (a view, created on first access). */
  get raw(): Buffer {
    return (this.#raw ??= this.#start === 0 && this.#end === this.#buf.length ? this.#buf : this.#buf.subarray(this.#start, this.#end));
  }

  get trades(): number {
    return (this.#lazy ??= this.#decode()).n;
  }
  get firstTradeId(): number {
    return (this.#lazy ??= this.#decode()).f;
  }
  get lastTradeId(): number {
    return (this.#lazy ??= this.#decode()).L;
  }
  get open(): string {
    return (this.#lazy ??= this.#decode()).o;
  }
  get high(): string {
    return (this.#lazy ??= this.#decode()).h;
  }
  get low(): string {
    return (this.#lazy ??= this.#decode()).l;
  }
  get close(): string {
    return (this.#lazy ??= this.#decode()).c;
  }
  get volume(): string {
    return (this.#lazy ??= this.#decode()).v;
  }
  get quoteVolume(): string {
    return (this.#lazy ??= this.#decode()).q;
  }
  get takerBuyBaseVolume(): string {
    return (this.#lazy ??= this.#decode()).V;
  }
  get takerBuyQuoteVolume(): string {
    return (this.#lazy ??= this.#decode()).Q;
  }
  get ignore(): string {
    return (this.#lazy ??= this.#decode()).B;
  }

  /** Every Candle field (raw as its text), for JSON.stringify and structured logging. */
  toJSON(): Omit<Candle, 'raw' | 'stream'> & { stream: string; venue: string; raw: string } {
    return {
      venue: this.stream.venue,
      stream: this.stream.name,
      openTime: this.openTime,
      closeTime: this.closeTime,
      eventTime: this.eventTime,
      closed: this.closed,
      open: this.open,
      high: this.high,
      low: this.low,
      close: this.close,
      volume: this.volume,
      quoteVolume: this.quoteVolume,
      takerBuyBaseVolume: this.takerBuyBaseVolume,
      takerBuyQuoteVolume: this.takerBuyQuoteVolume,
      trades: this.trades,
      firstTradeId: this.firstTradeId,
      lastTradeId: this.lastTradeId,
      ignore: this.ignore,
      source: this.source,
      raw: this.raw.toString('utf8'),
      receivedAt: this.receivedAt,
    };
  }

  /**
   * The scanner validated `f,"L":…,"o":"…",…,"B":"…"` byte by byte: integers end at the first
   * non-digit, each string at the next quote, and the punctuation between them has a fixed length.
   */
  #decode(): WireLazy {
    const b = this.#buf;
    let p = this.#k;
    const f = intAt(b, p);
    const L = intAt(b, (p = intEnd(b, p) + 5)); // ,"L":
    let e = quoteAt(b, (p = intEnd(b, p) + 6)); // ,"o":"
    const o = b.toString('latin1', p, e);
    e = quoteAt(b, (p = e + NEXT_STRING));
    const c = b.toString('latin1', p, e);
    e = quoteAt(b, (p = e + NEXT_STRING));
    const h = b.toString('latin1', p, e);
    e = quoteAt(b, (p = e + NEXT_STRING));
    const l = b.toString('latin1', p, e);
    e = quoteAt(b, (p = e + NEXT_STRING));
    const v = b.toString('latin1', p, e);
    const n = intAt(b, (p = e + 6)); // ","n":
    p = intEnd(b, p) + 5; // ,"x":
    p += b[p] === 116 /* t */ ? 4 : 5;
    e = quoteAt(b, (p += 6)); // ,"q":"
    const q = b.toString('latin1', p, e);
    e = quoteAt(b, (p = e + NEXT_STRING));
    const V = b.toString('latin1', p, e);
    e = quoteAt(b, (p = e + NEXT_STRING));
    const Q = b.toString('latin1', p, e);
    e = quoteAt(b, (p = e + NEXT_STRING));
    const B = b.toString('latin1', p, e);
    return { f, L, n, o, c, h, l, v, q, V, Q, B };
  }
}

/** The next `"` from p (the scanner guaranteed there is one). */
function quoteAt(b: Uint8Array, p: number): number {
  while (b[p] !== 34 && p < b.length) p++;
  return p;
}

/** The value of the (validated, at most 15-digit) integer starting at p. */
function intAt(b: Uint8Array, p: number): number {
  const neg = b[p] === 45;
  if (neg) p++;
  let v = 0;
  let d: number;
  while ((d = (b[p] ?? 0) - 48) >>> 0 < 10) {
    v = v * 10 + d;
    p++;
  }
  return neg ? -v : v;
}

/** End of the (validated) integer starting at p: the first byte that is not a digit or the sign. */
function intEnd(b: Uint8Array, p: number): number {
  if (b[p] === 45) p++;
  while (((b[p] ?? 0) - 48) >>> 0 < 10) p++;
  return p;
}

// ---------------------------------------------------------------------------------------------
// Stream names by their bytes

const FNV_OFFSET = 0x811c9dc5 | 0;
const FNV_PRIME = 16777619;

/**
 * Registered stream names keyed by their wire bytes (FNV-1a, open addressing), so the hot path finds
 * a frame's StreamRef without decoding the name into a string. Only registered names are inserted:
 * garbage names cannot grow it.
 */
class NameTable {
  #keys: (Uint8Array | undefined)[] = new Array<Uint8Array | undefined>(64).fill(undefined);
  #refs: (StreamRef | undefined)[] = new Array<StreamRef | undefined>(64).fill(undefined);
  #hashes = new Int32Array(64);
  #size = 0;

  get(b: Uint8Array, start: number, end: number, hash: number): StreamRef | undefined {
    const keys = this.#keys;
    const mask = keys.length - 1;
    const len = end - start;
    for (let i = hash & mask; ; i = (i + 1) & mask) {
      const k = keys[i];
      if (k === undefined) return undefined;
      if (this.#hashes[i] === hash && k.length === len && sameBytes(b, start, k)) return this.#refs[i];
    }
  }

  set(key: Uint8Array, hash: number, ref: StreamRef): void {
    if ((this.#size + 1) * 2 > this.#keys.length) this.#grow();
    this.#put(key, hash, ref);
    this.#size++;
  }

  #put(key: Uint8Array, hash: number, ref: StreamRef): void {
    const mask = this.#keys.length - 1;
    let i = hash & mask;
    while (this.#keys[i] !== undefined) i = (i + 1) & mask;
    this.#keys[i] = key;
    this.#refs[i] = ref;
    this.#hashes[i] = hash;
  }

  #grow(): void {
    const keys = this.#keys;
    const refs = this.#refs;
    const hashes = this.#hashes;
    const size = keys.length * 2;
    this.#keys = new Array<Uint8Array | undefined>(size).fill(undefined);
    this.#refs = new Array<StreamRef | undefined>(size).fill(undefined);
    this.#hashes = new Int32Array(size);
    for (let i = 0; i < keys.length; i++) {
      const k = keys[i];
      const r = refs[i];
      if (k !== undefined && r !== undefined) this.#put(k, hashes[i] ?? 0, r);
    }
  }
}

function sameBytes(b: Uint8Array, start: number, key: Uint8Array): boolean {
  for (let i = 0; i < key.length; i++) if (b[start + i] !== key[i]) return false;
  return true;
}

// ---------------------------------------------------------------------------------------------
// The parser

/** Slab for copies of closed events: ~50 events; a held closed candle keeps at most this much alive. */
const SLAB_BYTES = 16 * 1024;

function ascii(s: string): Uint8Array {
  return Buffer.from(s, 'latin1');
}

/** Literal key sequences of Binance's kline event, in wire order. */
const L_STREAM = ascii('{"stream":"');
const L_DATA = ascii('","data":');
const L_EVENT = ascii('{"e":"kline","E":');
const L_SHUTDOWN = ascii('{"e":"serverShutdown"');
const L_SYMBOL = ascii(',"s":"');
const L_K_T = ascii(',"k":{"t":');
const L_T = ascii(',"T":');
const L_KS = ascii(',"s":"');
const L_I = ascii(',"i":"');
const L_F = ascii(',"f":');
const L_L = ascii(',"L":');
const L_O = ascii(',"o":"');
const L_N = ascii(',"n":');
const L_X = ascii(',"x":');
const L_Q = ascii(',"q":"');
const L_B = ascii(',"B":"');
const L_TRUE = ascii('true');
const L_FALSE = ascii('false');

/** Position after `lit` at p, or -1. */
function lit(b: Uint8Array, p: number, l: Uint8Array): number {
  const n = l.length;
  if (p < 0 || p + n > b.length) return -1;
  for (let i = 0; i < n; i++) if (b[p + i] !== l[i]) return -1;
  return p + n;
}

/** `,"<key>":"` at p (the separator between two string values), position after it, or -1. */
function sep(b: Uint8Array, p: number, key: number): number {
  if (p < 0 || p + 6 > b.length) return -1;
  return b[p] === 44 && b[p + 1] === 34 && b[p + 2] === key && b[p + 3] === 34 && b[p + 4] === 58 && b[p + 5] === 34 ? p + 6 : -1;
}

/** A decimal string body `-?\d+(\.\d+)?` at p and its closing quote: position after the quote, or -1. */
function dec(b: Uint8Array, p: number): number {
  if (p < 0) return -1;
  const n = b.length;
  if (p < n && b[p] === 45) p++;
  const intStart = p;
  let c = 0;
  // `(c - 48) >>> 0 < 10`: one unsigned comparison for '0'..'9'.
  while (p < n && ((c = b[p] ?? 0) - 48) >>> 0 < 10) p++;
  if (p === intStart || p >= n) return -1;
  if (c === 46) {
    const fracStart = ++p;
    while (p < n && ((c = b[p] ?? 0) - 48) >>> 0 < 10) p++;
    if (p === fracStart || p >= n) return -1;
  }
  return c === 34 ? p + 1 : -1;
}

/**
 * A string body of printable ASCII without `"` or `\` at p: position of its closing quote, or -1.
 * Anything else (escapes, control or non-ASCII bytes) is left to the fallback, which validates UTF-8.
 */
function plainEnd(b: Uint8Array, p: number): number {
  if (p < 0) return -1;
  const n = b.length;
  for (; p < n; p++) {
    const c = b[p] ?? 0;
    if (c === 34) return p;
    if (c < 32 || c > 126 || c === 92) return -1;
  }
  return -1;
}

/** `expected` (ASCII) followed by the closing quote at p: position after the quote, or -1. */
function same(b: Uint8Array, p: number, expected: string): number {
  if (p < 0) return -1;
  const n = expected.length;
  if (p + n >= b.length) return -1;
  for (let i = 0; i < n; i++) {
    const c = b[p + i] ?? 0;
    if (c !== expected.charCodeAt(i) || c > 126) return -1;
  }
  return b[p + n] === 34 ? p + n + 1 : -1;
}

export interface KlineFrameParserOptions {
  /** The venue whose streams this parser looks up (`binance`, `binance-usdm`). */
  readonly venue: string;
  readonly registry: StreamRegistry;
  readonly status: StatusStream;
  readonly clock: Clock;
  /** At most one `parse.error` event per this many ms (the rest are counted into the next one). Default 1000. */
  readonly reportIntervalMs?: number;
}

export class KlineFrameParser implements FrameParser {
  readonly #venue: string;
  readonly #registry: StreamRegistry;
  /** Only registered names are cached: garbage stream names cannot grow either. */
  readonly #byName = new Map<string, StreamRef>();
  readonly #byBytes = new NameTable();

  /** Closed events are copied here (see #fast); a fresh slab when full, the old one lives while a candle uses it. */
  #slab = Buffer.allocUnsafeSlow(SLAB_BYTES);
  #slabUsed = 0;
  /** The value of the last integer #int read (avoids returning (value, position) pairs). */
  #v = 0;


  readonly #errors: ParseErrorReporter;

  /** Bad frames (counted and reported by ParseErrorReporter); metrics read it. */
  get parseErrors(): number {
    return this.#errors.count;
  }
  unknownStreams = 0;
  shutdownNotices = 0;
  /** Frames that took the JSON.parse fallback (valid or not). */
  slowPath = 0;
  lastControlId: number | string | null = null;
  lastControlError: { readonly code: number; readonly msg: string } | undefined = undefined;

  constructor(options: KlineFrameParserOptions) {
    this.#venue = options.venue;
    this.#registry = options.registry;
    this.#errors = new ParseErrorReporter(options.venue, options.status, options.clock, options.reportIntervalMs ?? 1000);
  }

  /**
   * One frame's bytes → a Candle or a sentinel. Never throws. `receivedAt` is stamped on the candle.
   * The bytes need not be valid UTF-8: the fast path admits only printable ASCII, and everything
   * else is UTF-8-validated before it is decoded (so the socket may skip ws's own validation).
   * A candle may keep a view of `frame`: do not reuse its memory.
   */
  parse(frame: Buffer, receivedAt: number): FrameOutcome {
    const fast = this.#fast(frame, receivedAt);
    if (fast !== undefined) return fast;
    return this.#slow(frame, receivedAt);
  }

  #ref(name: string): StreamRef | undefined {
    const cached = this.#byName.get(name);
    if (cached !== undefined) return cached;
    const ref = this.#registry.get(this.#venue, name);
    if (ref !== undefined) this.#byName.set(name, ref);
    return ref;
  }

  /** A name the byte table does not know yet (printable ASCII, so latin1 is its exact decoding). */
  #learn(b: Buffer, start: number, end: number, hash: number): StreamRef | undefined {
    const ref = this.#ref(b.toString('latin1', start, end));
    if (ref !== undefined) this.#byBytes.set(Uint8Array.prototype.slice.call(b, start, end), hash, ref);
    return ref;
  }

  // -- tier 1 ---------------------------------------------------------------------------------

  /** undefined = "not the exact Binance layout": let the fallback decide. */
  #fast(b: Buffer, receivedAt: number): FrameOutcome | undefined {
    const n = b.length;
    let ref: StreamRef | undefined;
    let dataStart = 0;
    let combined = false;
    let p = lit(b, 0, L_STREAM);
    if (p > 0) {
      // The name, hashed as it is scanned; escapes and non-ASCII bytes go to the fallback.
      const nameStart = p;
      let h = FNV_OFFSET;
      for (;;) {
        if (p >= n) return undefined;
        const c = b[p] ?? 0;
        if (c === 34) break;
        if (c < 32 || c > 126 || c === 92) return undefined;
        h = Math.imul(h ^ c, FNV_PRIME);
        p++;
      }
      const nameEnd = p;
      dataStart = lit(b, p, L_DATA);
      if (dataStart < 0) return undefined;
      ref = this.#byBytes.get(b, nameStart, nameEnd, h) ?? this.#learn(b, nameStart, nameEnd, h);
      if (ref === undefined) {
        // Unknown names are rare (Binance only sends what we subscribed): the fallback validates the
        // frame, so a truncated frame is an error rather than an unknown stream.
        if (lit(b, dataStart, L_SHUTDOWN) > 0 && b.toString('latin1', nameStart, nameEnd) === '!serverShutdown') return this.#shutdown();
        return undefined;
      }
      combined = true;
    } else if (lit(b, 0, L_SHUTDOWN) > 0) {
      return this.#shutdown();
    }
    p = this.#int(b, lit(b, dataStart, L_EVENT));
    if (p < 0) return undefined;
    const eventTime = this.#v;
    p = lit(b, p, L_SYMBOL);

    // Symbol: compared in place against the stream's own when the envelope named it.
    let symbol: string;
    if (ref !== undefined) {
      symbol = ref.symbol;
      p = same(b, p, symbol);
    } else {
      const e = plainEnd(b, p);
      if (e < 0) return undefined;
      symbol = b.toString('latin1', p, e);
      p = e + 1;
    }
    p = this.#int(b, lit(b, p, L_K_T));
    if (p < 0) return undefined;
    const openTime = this.#v;
    p = this.#int(b, lit(b, p, L_T));
    if (p < 0) return undefined;
    const closeTime = this.#v;
    if (closeTime < openTime) return undefined;
    p = lit(b, same(b, lit(b, p, L_KS), symbol), L_I);
    if (p < 0) return undefined;
    if (ref !== undefined) {
      p = same(b, p, ref.nativeInterval);
    } else {
      const e = plainEnd(b, p);
      if (e < 0) return undefined;
      ref = this.#ref(klineStreamName(symbol, b.toString('latin1', p, e)));
      if (ref === undefined || ref.symbol !== symbol) {
        this.unknownStreams++;
        return UNKNOWN_STREAM;
      }
      p = e + 1;
    }
    const k = lit(b, p, L_F);
    p = this.#int(b, k);
    p = this.#int(b, lit(b, p, L_L));
    // o, c, h, l, v: five decimal strings in a row.
    p = dec(b, lit(b, p, L_O));
    p = dec(b, sep(b, p, 99 /* c */));
    p = dec(b, sep(b, p, 104 /* h */));
    p = dec(b, sep(b, p, 108 /* l */));
    p = dec(b, sep(b, p, 118 /* v */));
    p = this.#int(b, lit(b, p, L_N));
    if (p < 0 || this.#v < 0) return undefined;
    p = lit(b, p, L_X);
    let closed: boolean;
    let x = lit(b, p, L_TRUE);
    if (x > 0) closed = true;
    else if ((x = lit(b, p, L_FALSE)) > 0) closed = false;
    else return undefined;
    const q = lit(b, x, L_Q);
    // q, V, Q: three more, then B (any plain string).
    p = dec(b, q);
    p = dec(b, sep(b, p, 86 /* V */));
    p = dec(b, sep(b, p, 81 /* Q */));
    p = lit(b, p, L_B);
    const bEnd = plainEnd(b, p);
    if (bEnd < 0 || b[bEnd + 1] !== 125 || b[bEnd + 2] !== 125) return undefined;
    const dataEnd = bEnd + 3;
    if (combined) {
      if (b[dataEnd] !== 125 /* } */ || dataEnd + 1 !== n) return undefined;
    } else if (dataEnd !== n) return undefined;
    if (closed) {
      // Closed candles may be held (gap recovery, a full FIFO): copy the event into the parser's slab
      // rather than pin the socket's read chunk (the slab holds nothing but closed events).
      const len = dataEnd - dataStart;
      let slab = this.#slab;
      let at = this.#slabUsed;
      if (at + len > slab.length) {
        slab = this.#slab = Buffer.allocUnsafeSlow(Math.max(SLAB_BYTES, len));
        at = 0;
      }
      b.copy(slab, at, dataStart, dataEnd);
      this.#slabUsed = at + len;
      return new WireCandle(ref, openTime, closeTime, eventTime, true, receivedAt, slab, at, at + len, k + at - dataStart);
    }
    return new WireCandle(ref, openTime, closeTime, eventTime, false, receivedAt, b, dataStart, dataEnd, k);
  }

  #shutdown(): FrameSignal {
    this.shutdownNotices++;
    return SERVER_SHUTDOWN;
  }

  /**
   * A JSON integer of at most 15 digits (always exact in a double) at p: position after it (value in
   * #v), or -1. Longer ones, exponents and fractions go to the fallback, which checks them properly.
   */
  #int(b: Uint8Array, p: number): number {
    if (p < 0) return -1;
    const n = b.length;
    let neg = false;
    if (p < n && b[p] === 45 /* - */) {
      neg = true;
      p++;
    }
    const start = p;
    let v = 0;
    let d: number;
    while (p < n && (d = (b[p] ?? 0) - 48) >>> 0 < 10) {
      v = v * 10 + d;
      p++;
    }
    const digits = p - start;
    if (digits === 0 || digits > 15) return -1;
    // JSON forbids leading zeros; "-0" is legal JSON but never a Binance value: let the fallback judge.
    if (b[start] === 48 && (digits > 1 || neg)) return -1;
    this.#v = neg ? -v : v;
    return p;
  }

  // -- tier 2 ---------------------------------------------------------------------------------

  #slow(frame: Buffer, receivedAt: number): FrameOutcome {
    this.slowPath++;
    // UTF-8 validated before anything is decoded (the socket skips ws's validation): invalid text is an error, never a candle.
    const decoded = jsonObjectOf(frame);
    if ('error' in decoded) return this.#error(decoded.error, decoded.text);
    const { value, text } = decoded;

    if ('stream' in value || 'data' in value) {
      const stream = value['stream'];
      const data = value['data'];
      if (typeof stream !== 'string' || !isRecord(data)) return this.#error('envelope without a string stream and an object data', text);
      if (stream === '!serverShutdown') {
        return data['e'] === 'serverShutdown' ? this.#shutdown() : this.#error('!serverShutdown without a serverShutdown event', text);
      }
      const ref = this.#ref(stream);
      if (ref === undefined) {
        this.unknownStreams++;
        return UNKNOWN_STREAM;
      }
      return this.#event(data, ref, text, receivedAt);
    }
    if ('e' in value) {
      if (value['e'] === 'serverShutdown') return this.#shutdown();
      return this.#event(value, undefined, text, receivedAt);
    }
    if ('error' in value) {
      const reply = ControlErrorSchema.safeParse(value);
      if (!reply.success) return this.#error('malformed control error reply', text);
      this.lastControlId = reply.data.id;
      this.lastControlError = reply.data.error;
      return CONTROL_ERROR;
    }
    if ('result' in value) {
      const reply = ControlReplySchema.safeParse(value);
      if (!reply.success) return this.#error('malformed control reply', text);
      this.lastControlId = reply.data.id;
      return CONTROL_REPLY;
    }
    return this.#error('unrecognised frame', text);
  }

  #event(data: Record<string, unknown>, named: StreamRef | undefined, text: string, receivedAt: number): FrameOutcome {
    const parsed = KlineEventSchema.safeParse(data);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      const where = issue === undefined ? '' : ` at ${issue.path.join('.') || '(root)'}: ${issue.message}`;
      return this.#error(`invalid kline event${where}`, text);
    }
    const ev = parsed.data;
    const k = ev.k;
    let ref = named;
    if (ref === undefined) {
      ref = this.#ref(klineStreamName(ev.s, k.i));
      if (ref === undefined || ref.symbol !== ev.s) {
        this.unknownStreams++;
        return UNKNOWN_STREAM;
      }
    }
    if (ev.s !== ref.symbol || k.s !== ref.symbol || k.i !== ref.nativeInterval) {
      return this.#error(`kline event for ${k.s} ${k.i} on stream ${ref.name}`, text);
    }
    if (k.T < k.t) return this.#error('kline close time before open time', text);
    return {
      stream: ref,
      openTime: k.t,
      closeTime: k.T,
      eventTime: ev.E,
      closed: k.x,
      open: k.o,
      high: k.h,
      low: k.l,
      close: k.c,
      volume: k.v,
      quoteVolume: k.q,
      takerBuyBaseVolume: k.V,
      takerBuyQuoteVolume: k.Q,
      trades: k.n,
      firstTradeId: k.f,
      lastTradeId: k.L,
      ignore: k.B,
      source: 'ws',
      // Re-serialized from the parsed object: strings are unchanged (decimals stay byte-exact),
      // whitespace is gone; unknown extra fields are kept, since sinks forward this to Binance clients.
      raw: Buffer.from(JSON.stringify(data)),
      receivedAt,
    };
  }

  #error(reason: string, text: string): FrameSignal {
    this.#errors.report(reason, text);
    return PARSE_ERROR;
  }
}
