/**
 * BingX market-data frames → canonical candles, for spot and USDT-M perpetual swap (exchanges.md §3).
 * The connection has already gunzipped the frame (venue.ts FrameEncoding `gzip`) and answered the
 * server's pings (HeartbeatKind `server-json`), so what reaches `parse` is one JSON text:
 *
 * - spot kline push (BingX-API/BingX-spot-api-doc@1d9d095 `WebSocket API.md` "Kline Streams"; ccxt
 *   `ts/src/pro/bingx.ts` handleOHLCV; JKorf/BingX.Net `BingXKlineUpdate.cs`):
 *   `{"code":0,"dataType":"BTC-USDT@kline_1min","data":{"e":"kline","E":…,"s":"BTC-USDT","K":{"t":open,
 *   "T":close,"s":…,"i":"1min","o","h","l","c","v","q","n"}},"success":true}`;
 * - swap kline push (BingX-swap-api-v2-doc@4a961e5 `Perpetual_Swap_WebSocket_Market_Interface.md`
 *   "Subscribe K-Line Data"; ccxt handleOHLCV): `{"code":0,"dataType":"BTC-USDT@kline_1m","s":"BTC-USDT",
 *   "data":[{"o","h","l","c","v","T"}]}`. The sources disagree twice here, and both readings are taken:
 *   the doc shows `data` as one object, ccxt as an array (the newest entry is used); the doc's example
 *   `T` is a close time (…779999), ccxt (PR #20516) reads it as the open time, so the open time is the
 *   start of the candle that contains `T`, which is right under either reading. Swap frames carry no
 *   event time, quote volume or trade count: the event time is the receive time, the others absent;
 * - subscribe replies `{"id":"…","code":0,"msg":""}` (non-zero `code`: refused, e.g. 100400 illegal
 *   argument, 100410 frequency limit, 100503 busy; the spot doc's error code list).
 *
 * Neither kline shape has a closed flag: every candle is an open update, and the finalizer
 * (src/upstream/finalizer.ts) closes it with REST's row once a later one has started. Prices and
 * volumes stay the venue's decimal strings; a number where a string is expected is written as
 * JavaScript's shortest round-trip form (the inverse-swap pushes in ccxt's comments use numbers).
 * What is not valid is counted, reported as a rate-limited `parse.error` event, and skipped; never thrown.
 */
import * as z from 'zod';
import type { Candle, StreamRef } from '../../core/candle.ts';
import type { Clock } from '../../core/clock.ts';
import { closeTimeOf, openTimeAt } from '../../core/intervals.ts';
import type { StreamRegistry } from '../../core/streams.ts';
import { CONTROL_ERROR, CONTROL_REPLY, PARSE_ERROR, UNKNOWN_STREAM, type FrameOutcome, type FrameParser, type FrameSignal, type ParserContext } from '../../upstream/venue.ts';
import { jsonObjectOf, ParseErrorReporter } from '../../upstream/parse-errors.ts';

/** A BingX decimal: a decimal string, or a JSON number (written back in its shortest form). */
export const decimal = z.union([z.string().regex(/^-?\d+(\.\d+)?$/, { message: 'expected a decimal string' }), z.number().transform((n) => String(n))]);

const SpotKline = z.object({
  t: z.int(),
  T: z.int(),
  s: z.string(),
  i: z.string(),
  o: decimal,
  h: decimal,
  l: decimal,
  c: decimal,
  v: decimal,
  q: decimal.optional(),
  n: z.int().nonnegative().optional(),
});
const SpotData = z.object({ e: z.literal('kline'), E: z.int(), s: z.string(), K: SpotKline });

const SwapKline = z.object({ o: decimal, h: decimal, l: decimal, c: decimal, v: decimal, T: z.int() });
const SwapData = z.union([z.array(SwapKline).min(1), SwapKline]);

const ControlReply = z.object({ id: z.union([z.string(), z.int()]), code: z.int(), msg: z.string().optional() });


/** How often a `parse.error` event is emitted at most (every error is counted). */
const REPORT_INTERVAL_MS = 10_000;

export class BingxFrameParser implements FrameParser {
  readonly #errors: ParseErrorReporter;

  /** Bad frames (counted and reported by ParseErrorReporter); metrics read it. */
  get parseErrors(): number {
    return this.#errors.count;
  }
  unknownStreams = 0;
  lastControlId: number | string | null = null;
  lastControlError: { readonly code: number; readonly msg: string } | undefined = undefined;
  readonly #market: 'spot' | 'swap';
  readonly #venue: string;
  readonly #registry: StreamRegistry;
  readonly #clock: Clock;
  /** Swap event times (receive times): strictly increasing, so two pushes in one millisecond stay in order. */
  #lastEventTime = 0;

  constructor(context: ParserContext, market: 'spot' | 'swap') {
    this.#market = market;
    this.#venue = context.venue;
    this.#registry = context.registry;
    this.#clock = context.clock;
    this.#errors = new ParseErrorReporter(context.venue, context.status, context.clock, REPORT_INTERVAL_MS);
  }

  parse(frame: Buffer, receivedAt: number): FrameOutcome {
    // UTF-8 validated before anything is decoded (the socket skips ws's validation): invalid text is an error, never a candle.
    const decoded = jsonObjectOf(frame);
    if ('error' in decoded) return this.#error(decoded.error, decoded.text);
    const { value, text } = decoded;
    const dataType = value['dataType'];
    if (typeof dataType === 'string') {
      const ref = this.#registry.get(this.#venue, dataType);
      if (ref === undefined) {
        this.unknownStreams++;
        return UNKNOWN_STREAM;
      }
      if (value['code'] !== undefined && value['code'] !== 0) return this.#error(`push with code ${JSON.stringify(value['code'])}`, text);
      return this.#market === 'spot' ? this.#spot(value['data'], ref, text, receivedAt) : this.#swap(value['data'], ref, text, receivedAt);
    }
    if ('id' in value && 'code' in value) {
      const reply = ControlReply.safeParse(value);
      if (!reply.success) return this.#error('malformed subscribe reply', text);
      this.lastControlId = reply.data.id;
      if (reply.data.code === 0) return CONTROL_REPLY;
      this.lastControlError = { code: reply.data.code, msg: reply.data.msg ?? '' };
      return CONTROL_ERROR;
    }
    return this.#error('unrecognised frame', text);
  }

  #spot(data: unknown, ref: StreamRef, text: string, receivedAt: number): FrameOutcome {
    const parsed = SpotData.safeParse(data);
    if (!parsed.success) return this.#invalid(parsed.error, text);
    const ev = parsed.data;
    const k = ev.K;
    if (ev.s !== ref.symbol || k.s !== ref.symbol || k.i !== ref.nativeInterval) return this.#error(`kline for ${k.s} ${k.i} on stream ${ref.topic}`, text);
    if (k.T < k.t || openTimeAt(ref.interval, k.t) !== k.t) return this.#error('kline open time not aligned, or close time before it', text);
    return {
      stream: ref,
      openTime: k.t,
      closeTime: k.T,
      eventTime: ev.E,
      closed: false,
      open: k.o,
      high: k.h,
      low: k.l,
      close: k.c,
      volume: k.v,
      ...(k.q === undefined ? {} : { quoteVolume: k.q }),
      ...(k.n === undefined ? {} : { trades: k.n }),
      source: 'ws',
      raw: undefined,
      receivedAt,
    };
  }

  #swap(data: unknown, ref: StreamRef, text: string, receivedAt: number): FrameOutcome {
    const parsed = SwapData.safeParse(data);
    if (!parsed.success) return this.#invalid(parsed.error, text);
    let k: z.infer<typeof SwapKline>;
    if (Array.isArray(parsed.data)) {
      let newest = parsed.data[0];
      for (const c of parsed.data) if (newest === undefined || c.T > newest.T) newest = c;
      if (newest === undefined) return this.#error('empty kline list', text);
      k = newest;
    } else {
      k = parsed.data;
    }
    const openTime = openTimeAt(ref.interval, k.T);
    const now = this.#clock.now();
    const eventTime = (this.#lastEventTime = Math.max(now, this.#lastEventTime + 1));
    return {
      stream: ref,
      openTime,
      closeTime: closeTimeOf(ref.interval, openTime),
      eventTime,
      closed: false,
      open: k.o,
      high: k.h,
      low: k.l,
      close: k.c,
      volume: k.v,
      source: 'ws',
      raw: undefined,
      receivedAt,
    };
  }

  #invalid(error: z.ZodError, text: string): FrameSignal {
    const issue = error.issues[0];
    const where = issue === undefined ? '' : ` at ${issue.path.join('.') || '(root)'}: ${issue.message}`;
    return this.#error(`invalid kline push${where}`, text);
  }

  #error(reason: string, text: string): FrameSignal {
    this.#errors.report(reason, text);
    return PARSE_ERROR;
  }
}

/** Spot's and swap's REST rows as candles (`closed: true`, `source: 'rest'`), or what is wrong with the body. */
const SpotRow = z.tuple([z.int(), decimal, decimal, decimal, decimal, decimal, z.int(), decimal]).rest(z.unknown());
const SwapRow = z.object({ open: decimal, close: decimal, high: decimal, low: decimal, volume: decimal, time: z.int() });
const Envelope = z.object({ code: z.int(), msg: z.string().optional(), data: z.unknown().optional() });

export function parseRestBody(market: 'spot' | 'swap', path: string, body: unknown, stream: StreamRef, nowWall: number, nowMono: number): readonly Candle[] | string {
  const env = Envelope.safeParse(body);
  if (!env.success) return `unexpected ${path} body: ${z.prettifyError(env.error).slice(0, 300)}`;
  // BingX answers some refusals with HTTP 200 and a business code (e.g. 100410 frequency limit).
  if (env.data.code !== 0) return `${path} answered code ${env.data.code}${env.data.msg === undefined || env.data.msg === '' ? '' : `: ${env.data.msg}`}`;
  if (market === 'spot') {
    const rows = z.array(SpotRow).safeParse(env.data.data ?? []);
    if (!rows.success) return `unexpected ${path} rows: ${z.prettifyError(rows.error).slice(0, 300)}`;
    return rows.data.map((r) => restCandle(stream, r[0], r[6], r[1], r[2], r[3], r[4], r[5], r[7], nowWall, nowMono));
  }
  const rows = z.array(SwapRow).safeParse(env.data.data ?? []);
  if (!rows.success) return `unexpected ${path} rows: ${z.prettifyError(rows.error).slice(0, 300)}`;
  return rows.data.map((r) => restCandle(stream, r.time, closeTimeOf(stream.interval, r.time), r.open, r.high, r.low, r.close, r.volume, undefined, nowWall, nowMono));
}

function restCandle(
  stream: StreamRef,
  openTime: number,
  closeTime: number,
  open: string,
  high: string,
  low: string,
  close: string,
  volume: string,
  quoteVolume: string | undefined,
  nowWall: number,
  nowMono: number,
): Candle {
  return {
    stream,
    openTime,
    closeTime,
    eventTime: nowWall,
    closed: true,
    open,
    high,
    low,
    close,
    volume,
    ...(quoteVolume === undefined ? {} : { quoteVolume }),
    source: 'rest',
    raw: undefined,
    receivedAt: nowMono,
  };
}
