/**
 * The deterministic candle series every venue simulator serves (venue-neutral: a dialect picks the
 * fields its venue publishes and formats them, dialect.ts `SeriesCandle`).
 *
 * Every value is a pure function of (style, symbol, interval, open time): no state, no randomness, so
 * a test can compute the candle a simulator will send (over WS or REST) and compare byte-for-byte. A
 * style's salt gives a market its own series (two venues' candles of the same symbol differ), and its
 * decimals say how the strings print.
 *
 * Design choices that make the series self-consistent across intervals and over time:
 * - The price is a function of wall time, `priceTicksAt(symbol, t)`, so a candle's close equals the next
 *   candle's open, and a 1m candle opens and closes at the same prices as the 1s candles at its edges.
 * - Inside a candle, the path is piecewise linear between `SAMPLES + 1` points. High/low of a partial
 *   candle are the running max/min of that path, so they only widen as the candle progresses.
 * - Trade ids come from a cumulative trade counter `tradeIdAt(symbol, t)`, so first/last trade ids never
 *   overlap between consecutive candles and agree across intervals.
 * - Prices are integer ticks and volumes integer 1e-8 units (BigInt where products may pass 2^53);
 *   strings are formatted from integers, never from floats.
 */
import { nextOpenTime } from '../core/intervals.ts';
import type { SeriesCandle, SeriesStyle } from './dialect.ts';

/** Series symbols: any native form (`btcusdt`, `BTC-USDT`, `BTC_USDT`, `btcusdt_260626`). */
const SYMBOL_RE = /^[A-Za-z0-9_.-]{1,20}$/;
const SAMPLES = 12;
const TWO_PI = 2 * Math.PI;
const UNITS = 100_000_000n; // 1e8: volumes are kept in units of 1e-8

/**
 * Rough real-world price levels for familiar pairs (looked up with separators removed, so `BTC-USDT`
 * and `BTC_USDT` trade near `btcusdt`); anything else gets a hash-derived level.
 */
const KNOWN_PRICES: Readonly<Record<string, number>> = {
  btcusdt: 43_000,
  ethusdt: 2_300,
  bnbusdt: 310,
  solusdt: 95,
  xrpusdt: 0.62,
  adausdt: 0.48,
  dogeusdt: 0.082,
  ethbtc: 0.053,
};

/** One symbol's parameters within one salt's series (decimals of the strings come from the style). */
interface Traits {
  readonly upper: string;
  readonly seed: number;
  /** Price in integer ticks of 10^-decimals. */
  readonly baseTicks: number;
  readonly decimals: number;
  /** Multiplier from ticks to 1e-8 units (10^(8-decimals)). */
  readonly tickUnits: bigint;
  /** Trades per millisecond, 0.005–0.05. */
  readonly tradeRate: number;
  readonly tradeJitter: number;
  readonly phase1: number;
  readonly phase2: number;
  readonly phase3: number;
  readonly phase4: number;
}

/** FNV-1a over UTF-16 code units. */
function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** murmur3 finalizer: a cheap, well-mixing 32-bit permutation. */
function fmix(x: number): number {
  let h = x >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** Hash of (seed, salt, t) for any non-negative integer t < 2^53. */
function hashAt(seed: number, salt: number, t: number): number {
  const lo = t >>> 0;
  const hi = Math.floor(t / 4_294_967_296) >>> 0;
  return fmix(fmix(fmix(seed ^ salt) ^ lo) ^ hi);
}

/** Uniform in [0, 1). */
function unit(h: number): number {
  return h / 4_294_967_296;
}

// A tiny cache: traits are cheap but built on every call otherwise. Bounded so that arbitrary
// symbols (REST clients can ask for any well-formed one) cannot grow it without limit. Pure data
// derived from its key, so sharing it between simulators in one process changes nothing they send.
const traitsCache = new Map<string, Traits>();
const TRAITS_CACHE_MAX = 4096;

function traitsOf(salt: number, symbol: string): Traits {
  const key = `${salt}:${symbol}`;
  const cached = traitsCache.get(key);
  if (cached !== undefined) return cached;
  if (!SYMBOL_RE.test(symbol)) throw new RangeError(`invalid simulator symbol ${JSON.stringify(symbol)}`);
  const lower = symbol.toLowerCase();
  // Salt 0 keeps the series every existing expectation was computed from.
  const seed = salt === 0 ? fnv1a(lower) : fmix(fnv1a(lower) ^ salt);
  const price = KNOWN_PRICES[lower.replace(/[-_.]/g, '')] ?? 10 ** (-2 + 5 * unit(fmix(seed ^ 0x9e3779b9)));
  const decimals = price >= 100 ? 2 : price >= 1 ? 4 : 6;
  const rate = 0.005 + 0.045 * unit(fmix(seed ^ 0x7f4a7c15));
  const traits: Traits = {
    upper: lower.toUpperCase(),
    seed,
    baseTicks: Math.max(100, Math.round(price * 10 ** decimals)),
    decimals,
    tickUnits: 10n ** BigInt(8 - decimals),
    tradeRate: rate,
    tradeJitter: Math.max(1, Math.floor(rate * 400)),
    phase1: TWO_PI * unit(fmix(seed ^ 0x1)),
    phase2: TWO_PI * unit(fmix(seed ^ 0x2)),
    phase3: TWO_PI * unit(fmix(seed ^ 0x3)),
    phase4: TWO_PI * unit(fmix(seed ^ 0x4)),
  };
  if (traitsCache.size >= TRAITS_CACHE_MAX) traitsCache.clear();
  traitsCache.set(key, traits);
  return traits;
}

const P1 = 5 * 86_400_000 + 3_600_000; // ~5 days: the slow trend
const P2 = 6 * 3_600_000 + 420_000; // ~6 hours
const P3 = 600_000 + 7_000; // ~10 minutes
const P4 = 20_000 + 300; // ~20 seconds: keeps 1s candles lively

function wave(t: number, period: number, phase: number): number {
  // Reduce first: (t % period) is exact for integer t, so the argument stays small.
  return Math.sin(TWO_PI * ((t % period) / period) + phase);
}

/** The simulated traded price at wall time `t`, in ticks. */
function priceTicksAt(p: Traits, t: number): number {
  const w =
    0.03 * wave(t, P1, p.phase1) +
    0.012 * wave(t, P2, p.phase2) +
    0.002 * wave(t, P3, p.phase3) +
    0.0008 * wave(t, P4, p.phase4) +
    0.0006 * (unit(hashAt(p.seed, 0x5eed, t)) - 0.5);
  return Math.max(1, Math.round(p.baseTicks * (1 + w)));
}

/** Cumulative trade counter: non-decreasing, and grows by at least 2 over any 1 s. */
function tradeIdAt(p: Traits, t: number): number {
  return Math.floor(t * p.tradeRate) + (hashAt(p.seed, 0x7ade, t) % p.tradeJitter);
}

/**
 * `units` (integer count of 10^-8) with `decimals` (0–8) decimals, truncated. Truncation keeps every
 * order (taker ≤ total, partial ≤ final) that holds between the units.
 */
function formatUnits(units: bigint, decimals: number): string {
  const s = units.toString().padStart(9, '0');
  const int = s.slice(0, -8);
  return decimals <= 0 ? int : `${int}.${s.slice(-8, -8 + decimals || undefined)}`;
}

function formatTicks(p: Traits, style: SeriesStyle, ticks: number): string {
  return formatUnits(BigInt(ticks) * p.tickUnits, style.priceDecimals === 'eight' ? 8 : p.decimals);
}

/** Everything about a candle that does not depend on progress. */
interface Skeleton {
  readonly p: Traits;
  readonly style: SeriesStyle;
  readonly interval: string;
  readonly openTime: number;
  readonly closeTime: number;
  readonly samples: number[];
  readonly f: number;
  readonly n: number;
  readonly v: bigint;
  readonly bigV: bigint;
  readonly q: bigint;
  readonly bigQ: bigint;
  readonly wickUp: number;
  readonly wickDown: number;
}

function skeleton(style: SeriesStyle, symbol: string, interval: string, openTime: number): Skeleton {
  const p = traitsOf(style.salt, symbol);
  // A market without this interval has no ground truth for it either, so an audit cannot expect one.
  if (!style.intervals.has(interval)) throw new RangeError(`unknown kline interval ${interval} for this series`);
  const next = nextOpenTime(interval, openTime);
  const dur = next - openTime;
  const samples: number[] = [];
  for (let k = 0; k <= SAMPLES; k++) samples.push(priceTicksAt(p, openTime + Math.floor((k * dur) / SAMPLES)));
  const f = tradeIdAt(p, openTime);
  const n = Math.max(1, tradeIdAt(p, next) - f);
  const salt = hashAt(p.seed ^ fnv1a(interval), 0xca7d, openTime);
  // Average trade notional ~200–2000 quote units, expressed in base-asset 1e-8 units.
  const notional = 200 + 1800 * unit(fmix(salt ^ 0x11));
  const tradeUnits = BigInt(Math.max(1, Math.round((notional * 1e8 * 10 ** p.decimals) / p.baseTicks)));
  const v = BigInt(n) * tradeUnits;
  const takerPermille = BigInt(300 + (fmix(salt ^ 0x22) % 401));
  let hi = 0;
  let lo = Number.MAX_SAFE_INTEGER;
  for (const s of samples) {
    if (s > hi) hi = s;
    if (s < lo) lo = s;
  }
  const wickUp = Math.floor(p.baseTicks * 0.0004 * unit(fmix(salt ^ 0x33)));
  const wickDown = Math.min(lo - 1, Math.floor(p.baseTicks * 0.0004 * unit(fmix(salt ^ 0x44))));
  const first = samples[0] ?? 1;
  const last = samples[SAMPLES] ?? 1;
  const vwapTicks = BigInt(Math.round((first + last + hi + wickUp + lo - wickDown) / 4));
  // quote = base * price: (1e-8 units) * ticks * tickUnits / 1e8 -> 1e-8 quote units.
  const q = (v * vwapTicks * p.tickUnits) / UNITS;
  return {
    p,
    style,
    interval,
    openTime,
    closeTime: next - 1,
    samples,
    f,
    n,
    v,
    bigV: (v * takerPermille) / 1000n,
    q,
    bigQ: (q * takerPermille) / 1000n,
    wickUp,
    wickDown,
  };
}

function build(sk: Skeleton, o: number, c: number, h: number, l: number, n: number, closed: boolean): SeriesCandle {
  const nb = BigInt(n);
  const nt = BigInt(sk.n);
  const { p, style } = sk;
  return {
    openTime: sk.openTime,
    closeTime: sk.closeTime,
    open: formatTicks(p, style, o),
    high: formatTicks(p, style, h),
    low: formatTicks(p, style, l),
    close: formatTicks(p, style, c),
    volume: formatUnits((sk.v * nb) / nt, style.baseDecimals),
    quoteVolume: formatUnits((sk.q * nb) / nt, style.quoteDecimals),
    takerBuyVolume: formatUnits((sk.bigV * nb) / nt, style.baseDecimals),
    takerBuyQuoteVolume: formatUnits((sk.bigQ * nb) / nt, style.quoteDecimals),
    trades: n,
    firstTradeId: sk.f,
    lastTradeId: sk.f + n - 1,
    closed,
    symbol: p.upper,
    interval: sk.interval,
  };
}

/**
 * The final (closed) candle opening at `openTime` in `style`'s series. Throws RangeError on a bad
 * symbol or an interval the style does not have.
 */
export function candleAt(style: SeriesStyle, symbol: string, interval: string, openTime: number): SeriesCandle {
  const sk = skeleton(style, symbol, interval, openTime);
  let hi = 0;
  let lo = Number.MAX_SAFE_INTEGER;
  for (const s of sk.samples) {
    if (s > hi) hi = s;
    if (s < lo) lo = s;
  }
  const o = sk.samples[0] ?? 1;
  const c = sk.samples[SAMPLES] ?? 1;
  return build(sk, o, c, hi + sk.wickUp, lo - sk.wickDown, sk.n, true);
}

/**
 * The candle opening at `openTime` as it looks after `progress` (0 ≤ progress < 1) of its duration:
 * `closed: false`; trades, last trade id and volumes non-decreasing in progress; high/low only widen;
 * all within the final candle.
 */
export function formingCandleAt(style: SeriesStyle, symbol: string, interval: string, openTime: number, progress: number): SeriesCandle {
  const sk = skeleton(style, symbol, interval, openTime);
  const pr = Number.isFinite(progress) ? Math.min(Math.max(progress, 0), 0.999_999) : 0;
  const pos = pr * SAMPLES;
  const k = Math.floor(pos);
  const a = sk.samples[k] ?? 1;
  const b = sk.samples[k + 1] ?? a;
  // trunc keeps the interpolated price monotone along each segment, so the running max/min below is
  // exactly the extreme of the path so far (never shrinks as progress grows).
  const c = a + Math.trunc((b - a) * (pos - k));
  let hi = c;
  let lo = c;
  for (let j = 0; j <= k; j++) {
    const s = sk.samples[j] ?? c;
    if (s > hi) hi = s;
    if (s < lo) lo = s;
  }
  const n = 1 + Math.floor((sk.n - 1) * pr);
  return build(sk, sk.samples[0] ?? 1, c, hi, lo, n, false);
}
