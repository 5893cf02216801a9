/**
 * Binance market-stream frames → typed candles. This is the hot path: every upstream frame passes
 * through `KlineFrameParser.parse` once.
 *
 * Two tiers:
 * 1. A strict single-pass scanner for the exact layout and key order Binance sends
 *    (`{"stream":"…","data":{"e":"kline","E":…,"s":"…","k":{"t":…,…,"B":"…"}}}` and the raw event
 *    without the envelope). It validates every key and value type as it walks, slices the decimal
 *    strings byte-exact (never through Number) and slices `raw` = the `data` object as received.
 *    No JSON.parse, no intermediate objects: one Candle allocation per frame.
 * 2. Anything the scanner does not recognise (reordered keys, whitespace, escapes, control frames,
 *    garbage) falls back to JSON.parse + zod, which is authoritative. What fails both is a parse
 *    error: counted, reported as a rate-limited `parse.error` status event, and skipped. Never thrown.
 *
 * Outcomes other than a candle are a handful of preallocated sentinels (no result wrappers).
 */
import * as z from 'zod';
import type { Candle, StreamRef } from '../core/candle.ts';
import type { Clock } from '../core/clock.ts';
import type { StatusStream } from '../core/status.ts';
import type { StreamRegistry } from '../core/streams.ts';

export const BINANCE = 'binance';

/** `btcusdt@kline_1m`: Binance stream names are lowercase (uppercase names subscribe silently to nothing). */
export function klineStreamName(symbol: string, interval: string): string {
  return `${symbol.toLowerCase()}@kline_${interval}`;
}

/** Register every (symbol × interval) kline stream; symbol-major order. Refs carry the UPPERCASE symbol. */
export function registerBinanceStreams(registry: StreamRegistry, symbols: readonly string[], intervals: readonly string[]): StreamRef[] {
  const out: StreamRef[] = [];
  for (const symbol of symbols) {
    for (const interval of intervals) {
      out.push(registry.register(BINANCE, klineStreamName(symbol, interval), symbol.toUpperCase(), interval));
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Outcomes

export type FrameSignalKind = 'parse-error' | 'unknown-stream' | 'server-shutdown' | 'control-reply' | 'control-error';

/** A non-candle outcome. Preallocated singletons: compare with `===` or narrow with `'signal' in outcome`. */
export interface FrameSignal {
  readonly signal: FrameSignalKind;
}

export const PARSE_ERROR: FrameSignal = Object.freeze({ signal: 'parse-error' });
export const UNKNOWN_STREAM: FrameSignal = Object.freeze({ signal: 'unknown-stream' });
export const SERVER_SHUTDOWN: FrameSignal = Object.freeze({ signal: 'server-shutdown' });
/** `{"result":…,"id":…}`: reply to SUBSCRIBE & co. The id is in `parser.lastControlId`. */
export const CONTROL_REPLY: FrameSignal = Object.freeze({ signal: 'control-reply' });
/** `{"error":{"code","msg"},"id":…}`. Details in `parser.lastControlError`. */
export const CONTROL_ERROR: FrameSignal = Object.freeze({ signal: 'control-error' });

export type FrameOutcome = Candle | FrameSignal;

export function isCandle(outcome: FrameOutcome): outcome is Candle {
  return !('signal' in outcome);
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
// The parser

/** Literal key sequences of Binance's kline event, in wire order. */
const L_STREAM = '{"stream":"';
const L_DATA = '","data":';
const L_EVENT = '{"e":"kline","E":';
const L_SHUTDOWN = '{"e":"serverShutdown"';
const L_SYMBOL = ',"s":"';
const L_K_T = ',"k":{"t":';
const L_T = ',"T":';
const L_KS = ',"s":"';
const L_I = ',"i":"';
const L_F = ',"f":';
const L_L = ',"L":';
const L_O = ',"o":"';
const L_C = ',"c":"';
const L_H = ',"h":"';
const L_LOW = ',"l":"';
const L_V = ',"v":"';
const L_N = ',"n":';
const L_X = ',"x":';
const L_Q = ',"q":"';
const L_VB = ',"V":"';
const L_QB = ',"Q":"';
const L_B = ',"B":"';
const L_END = '}}';

export interface KlineFrameParserOptions {
  readonly registry: StreamRegistry;
  readonly status: StatusStream;
  readonly clock: Clock;
  /** At most one `parse.error` event per this many ms (the rest are counted into the next one). Default 1000. */
  readonly reportIntervalMs?: number;
}

export class KlineFrameParser {
  readonly #registry: StreamRegistry;
  readonly #status: StatusStream;
  readonly #clock: Clock;
  readonly #reportIntervalMs: number;
  /** Only registered names are cached: garbage stream names cannot grow it. */
  readonly #byName = new Map<string, StreamRef>();

  // Scanner state for the frame being parsed (avoids returning (value, position) pairs).
  #s = '';
  #p = 0;

  #lastReportAt = Number.NEGATIVE_INFINITY;
  #suppressed = 0;

  /** Counters (monotonic); metrics read them. */
  parseErrors = 0;
  unknownStreams = 0;
  controlReplies = 0;
  shutdownNotices = 0;
  /** Frames that took the JSON.parse fallback (valid or not). */
  slowPath = 0;
  /** Reason of the last parse error (for the caller's per-connection bookkeeping). */
  lastError = '';
  lastControlId: number | string | null = null;
  lastControlError: { readonly code: number; readonly msg: string } | undefined = undefined;

  constructor(options: KlineFrameParserOptions) {
    this.#registry = options.registry;
    this.#status = options.status;
    this.#clock = options.clock;
    this.#reportIntervalMs = options.reportIntervalMs ?? 1000;
  }

  /** One frame (text) → a Candle or a sentinel. Never throws. `receivedAt` is stamped on the candle. */
  parse(text: string, receivedAt: number): FrameOutcome {
    const fast = this.#fast(text, receivedAt);
    if (fast !== undefined) return fast;
    return this.#slow(text, receivedAt);
  }

  #ref(name: string): StreamRef | undefined {
    const cached = this.#byName.get(name);
    if (cached !== undefined) return cached;
    const ref = this.#registry.get(BINANCE, name);
    if (ref !== undefined) this.#byName.set(name, ref);
    return ref;
  }

  // -- tier 1 ---------------------------------------------------------------------------------

  /** undefined = "not the exact Binance layout": let the fallback decide. */
  #fast(s: string, receivedAt: number): FrameOutcome | undefined {
    let ref: StreamRef | undefined;
    let dataStart = 0;
    let combined = false;
    if (s.startsWith(L_STREAM)) {
      const q = s.indexOf('"', L_STREAM.length);
      if (q < 0 || !s.startsWith(L_DATA, q)) return undefined;
      const name = s.slice(L_STREAM.length, q);
      dataStart = q + L_DATA.length;
      ref = this.#ref(name);
      if (ref === undefined) {
        // An escape in the name could spell a registered stream: the fallback decodes it.
        // Unknown names are rare (Binance only sends what we subscribed): the fallback validates the
        // frame, so a truncated frame is an error rather than an unknown stream.
        if (name === '!serverShutdown' && s.startsWith(L_SHUTDOWN, dataStart)) return this.#shutdown();
        return undefined;
      }
      combined = true;
    } else if (s.startsWith(L_SHUTDOWN)) {
      return this.#shutdown();
    }
    this.#s = s;
    this.#p = dataStart;
    if (!this.#lit(L_EVENT)) return undefined;
    const eventTime = this.#int();
    if (eventTime !== eventTime || !this.#lit(L_SYMBOL)) return undefined;

    // Symbol: compared in place against the stream's own when the envelope named it.
    let symbol: string;
    if (ref !== undefined) {
      if (!this.#same(ref.symbol)) return undefined;
      symbol = ref.symbol;
    } else {
      const sym = this.#plain();
      if (sym === undefined) return undefined;
      symbol = sym;
    }
    if (!this.#lit(L_K_T)) return undefined;
    const openTime = this.#int();
    if (openTime !== openTime || !this.#lit(L_T)) return undefined;
    const closeTime = this.#int();
    if (closeTime !== closeTime || closeTime < openTime || !this.#lit(L_KS) || !this.#same(symbol) || !this.#lit(L_I)) return undefined;
    if (ref !== undefined) {
      if (!this.#same(ref.interval)) return undefined;
    } else {
      const interval = this.#plain();
      if (interval === undefined) return undefined;
      ref = this.#ref(klineStreamName(symbol, interval));
      if (ref === undefined || ref.symbol !== symbol) {
        this.unknownStreams++;
        return UNKNOWN_STREAM;
      }
    }
    if (!this.#lit(L_F)) return undefined;
    const firstTradeId = this.#int();
    if (firstTradeId !== firstTradeId || !this.#lit(L_L)) return undefined;
    const lastTradeId = this.#int();
    if (lastTradeId !== lastTradeId || !this.#lit(L_O)) return undefined;
    const open = this.#dec();
    if (open === undefined || !this.#lit(L_C)) return undefined;
    const close = this.#dec();
    if (close === undefined || !this.#lit(L_H)) return undefined;
    const high = this.#dec();
    if (high === undefined || !this.#lit(L_LOW)) return undefined;
    const low = this.#dec();
    if (low === undefined || !this.#lit(L_V)) return undefined;
    const volume = this.#dec();
    if (volume === undefined || !this.#lit(L_N)) return undefined;
    const trades = this.#int();
    if (trades !== trades || trades < 0 || !this.#lit(L_X)) return undefined;
    let closed: boolean;
    if (s.startsWith('true', this.#p)) {
      closed = true;
      this.#p += 4;
    } else if (s.startsWith('false', this.#p)) {
      closed = false;
      this.#p += 5;
    } else return undefined;
    if (!this.#lit(L_Q)) return undefined;
    const quoteVolume = this.#dec();
    if (quoteVolume === undefined || !this.#lit(L_VB)) return undefined;
    const takerBuyBaseVolume = this.#dec();
    if (takerBuyBaseVolume === undefined || !this.#lit(L_QB)) return undefined;
    const takerBuyQuoteVolume = this.#dec();
    if (takerBuyQuoteVolume === undefined || !this.#lit(L_B)) return undefined;
    const ignore = this.#plain();
    if (ignore === undefined || !this.#lit(L_END)) return undefined;
    const dataEnd = this.#p;
    if (combined) {
      if (s.charCodeAt(dataEnd) !== 125 /* } */ || dataEnd + 1 !== s.length) return undefined;
    } else if (dataEnd !== s.length) return undefined;
    this.#s = '';
    return {
      stream: ref,
      openTime,
      closeTime,
      eventTime,
      closed,
      open,
      high,
      low,
      close,
      volume,
      quoteVolume,
      takerBuyBaseVolume,
      takerBuyQuoteVolume,
      trades,
      firstTradeId,
      lastTradeId,
      ignore,
      source: 'ws',
      raw: combined ? s.slice(dataStart, dataEnd) : s,
      receivedAt,
    };
  }

  #shutdown(): FrameSignal {
    this.shutdownNotices++;
    return SERVER_SHUTDOWN;
  }

  #lit(literal: string): boolean {
    if (!this.#s.startsWith(literal, this.#p)) return false;
    this.#p += literal.length;
    return true;
  }

  /** `expected` followed by the closing quote, compared in place (no slice). */
  #same(expected: string): boolean {
    const p = this.#p;
    if (!this.#s.startsWith(expected, p) || this.#s.charCodeAt(p + expected.length) !== 34) return false;
    this.#p = p + expected.length + 1;
    return true;
  }

  /**
   * A JSON integer of at most 15 digits (always exact in a double); NaN when anything else is here.
   * Longer ones, exponents and fractions go to the fallback, which checks them properly.
   */
  #int(): number {
    const s = this.#s;
    let p = this.#p;
    let c = s.charCodeAt(p);
    let neg = false;
    if (c === 45 /* - */) {
      neg = true;
      c = s.charCodeAt(++p);
    }
    const start = p;
    let v = 0;
    while (c >= 48 && c <= 57) {
      v = v * 10 + (c - 48);
      c = s.charCodeAt(++p);
    }
    const digits = p - start;
    if (digits === 0 || digits > 15) return Number.NaN;
    // JSON forbids leading zeros; "-0" is legal JSON but never a Binance value: let the fallback judge.
    if (s.charCodeAt(start) === 48 && (digits > 1 || neg)) return Number.NaN;
    this.#p = p;
    return neg ? -v : v;
  }

  /** A decimal string body `-?\d+(\.\d+)?` and its closing quote; the body sliced byte-exact. */
  #dec(): string | undefined {
    const s = this.#s;
    let p = this.#p;
    const start = p;
    let c = s.charCodeAt(p);
    if (c === 45) c = s.charCodeAt(++p);
    const intStart = p;
    while (c >= 48 && c <= 57) c = s.charCodeAt(++p);
    if (p === intStart) return undefined;
    if (c === 46 /* . */) {
      c = s.charCodeAt(++p);
      const fracStart = p;
      while (c >= 48 && c <= 57) c = s.charCodeAt(++p);
      if (p === fracStart) return undefined;
    }
    if (c !== 34) return undefined;
    this.#p = p + 1;
    return s.slice(start, p);
  }

  /** A string body without escapes or control characters, and its closing quote. */
  #plain(): string | undefined {
    const s = this.#s;
    const start = this.#p;
    const q = s.indexOf('"', start);
    if (q < 0) return undefined;
    for (let i = start; i < q; i++) {
      const c = s.charCodeAt(i);
      if (c < 32 || c === 92 /* \ */) return undefined;
    }
    this.#p = q + 1;
    return s.slice(start, q);
  }

  // -- tier 2 ---------------------------------------------------------------------------------

  #slow(text: string, receivedAt: number): FrameOutcome {
    this.#s = '';
    this.slowPath++;
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      // Not JSON at all: a parse error, reported below like every other invalid frame.
      return this.#error('invalid JSON', text);
    }
    if (!isRecord(value)) return this.#error('frame is not a JSON object', text);

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
      this.controlReplies++;
      this.lastControlId = reply.data.id;
      this.lastControlError = reply.data.error;
      return CONTROL_ERROR;
    }
    if ('result' in value) {
      const reply = ControlReplySchema.safeParse(value);
      if (!reply.success) return this.#error('malformed control reply', text);
      this.controlReplies++;
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
    if (ev.s !== ref.symbol || k.s !== ref.symbol || k.i !== ref.interval) {
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
      raw: JSON.stringify(data),
      receivedAt,
    };
  }

  #error(reason: string, text: string): FrameSignal {
    this.parseErrors++;
    this.lastError = reason;
    const now = this.#clock.monotonic();
    if (now - this.#lastReportAt >= this.#reportIntervalMs) {
      const more = this.#suppressed > 0 ? ` (+${this.#suppressed} more since the last report)` : '';
      this.#lastReportAt = now;
      this.#suppressed = 0;
      this.#status.emit({ type: 'parse.error', exchange: BINANCE, reason: reason + more, sample: text.slice(0, 200) });
    } else {
      this.#suppressed++;
    }
    return PARSE_ERROR;
  }
}
