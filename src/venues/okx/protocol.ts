/**
 * OKX v5 candle frames and rows → canonical candles (exchanges.md §2, [OKXD] = OKX's v5 docs as
 * copied in arakinyemi/exchange-api-docs `OKX/…`).
 *
 * A push on the business socket [OKXD Order_Book_Trading/Market_Data/Ws_Candlesticks_Channel.md]:
 *
 *   {"arg":{"channel":"candle1m","instId":"BTC-USDT"},"data":[["ts","o","h","l","c","vol","volCcy","volCcyQuote","confirm"]]}
 *
 * every value a string, `ts` the bar's open time in ms, `confirm` "0" (forming) or "1" (closed) as the
 * last element. REST answers the same rows inside `{"code":"0","msg":"","data":[…]}` (newest first)
 * [OKXD Get_Candlesticks.md]. `/history-candles` documents its row as `[ts,o,h,l,c,vol,volCcy,confirm]`
 * while its example shows nine columns [OKXD Get_Candlesticks_History.md]: both lengths are read, with
 * `confirm` always the last element.
 *
 * Volumes (Ws_Candlesticks_Channel.md, and OKX's Chinese text of the same table, quoted in
 * exchanges.md §2 and by Hummingbot's perpetual feed reading indices 6 and 7):
 *
 *   |                 | vol (5)        | volCcy (6)     | volCcyQuote (7)  |
 *   | spot `BTC-USDT` | base (BTC)     | quote (USDT)   | quote (USDT)     |
 *   | `BTC-USDT-SWAP` | contracts      | base (BTC)     | quote (USDT)     |
 *
 * so the canonical `volume` (base) is `vol` on spot and `volCcy` on perpetuals, and `quoteVolume` is
 * `volCcyQuote` on both (on an eight-column row: `volCcy` on spot, absent on perpetuals). OKX
 * publishes no close time (ours is the canonical one), no trade count, no trade ids, no taker volumes:
 * those stay absent and the relay writes `null` (contract §5).
 *
 * Stream topics are the subscribe arg itself, `{"channel":"candle1m","instId":"BTC-USDT"}`: the push's
 * `arg` has exactly these bytes, so the fast path finds a frame's stream by them without JSON.parse.
 * Anything the scanner does not recognise goes to JSON.parse + zod, the authority; what fails there is
 * counted, reported as a rate-limited `parse.error`, and skipped. Never thrown.
 */
import * as z from 'zod';
import type { Candle, StreamRef } from '../../core/candle.ts';
import type { Clock } from '../../core/clock.ts';
import { closeTimeOf, openTimeAt } from '../../core/intervals.ts';
import type { StreamRegistry } from '../../core/streams.ts';
import { CONTROL_ERROR, CONTROL_REPLY, PARSE_ERROR, SERVER_SHUTDOWN, UNKNOWN_STREAM, type FrameOutcome, type FrameParser, type FrameSignal, type ParserContext } from '../../upstream/venue.ts';
import { jsonObjectOf, ParseErrorReporter } from '../../upstream/parse-errors.ts';

/** The notice OKX sends 60 s before it closes a socket for a service upgrade [OKXD Introduction/WebSocket/Notification.md]. */
export const SERVICE_UPGRADE_NOTICE = '64008';

/** `candle1m`, `candle1Dutc`: the channel of a native bar name. */
export function candleChannel(nativeInterval: string): string {
  return `candle${nativeInterval}`;
}

/** The upstream topic: the subscribe arg as OKX echoes it in every push (`{"channel":…,"instId":…}`). */
export function okxTopic(channel: string, instId: string): string {
  return JSON.stringify({ channel, instId });
}

/** Perpetuals count `vol` in contracts: their base volume is `volCcy` (see the table above). */
export function isDerivative(instId: string): boolean {
  return instId.endsWith('-SWAP');
}

// ---------------------------------------------------------------------------------------------
// Rows (WebSocket and REST)

const tsString = z.string().regex(/^\d{1,15}$/, { message: 'expected a millisecond timestamp string' });
const decimal = z.string().regex(/^-?\d+(\.\d+)?$/, { message: 'expected a decimal string' });
/** burakoner/OKX.Api#49 read "1" as false: only these two strings, exactly. */
const confirm = z.enum(['0', '1']);

const Row9 = z.tuple([tsString, decimal, decimal, decimal, decimal, decimal, decimal, decimal, confirm]);
const Row8 = z.tuple([tsString, decimal, decimal, decimal, decimal, decimal, decimal, confirm]);
export const RowSchema = z.union([Row9, Row8]);
export type Row = z.infer<typeof RowSchema>;

/**
 * A validated row's fields as a candle. `closed` is the row's `confirm`; REST rows are built with
 * `source: 'rest'` and `closed: true` (the REST loop keeps those whose close time has passed).
 */
export function rowCandle(
  stream: StreamRef,
  openTime: number,
  fields: readonly string[],
  closed: boolean,
  source: 'ws' | 'rest',
  eventTime: number,
  receivedAt: number,
): Candle {
  const nine = fields.length === 9;
  const derivative = isDerivative(stream.symbol);
  const volume = (derivative ? fields[6] : fields[5]) ?? '0';
  const closeTime = closeTimeOf(stream.interval, openTime);
  const open = fields[1] ?? '0';
  const high = fields[2] ?? '0';
  const low = fields[3] ?? '0';
  const close = fields[4] ?? '0';
  const quoteVolume = nine ? fields[7] : derivative ? undefined : fields[6];
  // Two literals rather than a spread: one allocation per candle, and an absent field stays absent.
  if (quoteVolume === undefined) return { stream, openTime, closeTime, eventTime, closed, open, high, low, close, volume, source, raw: undefined, receivedAt };
  return { stream, openTime, closeTime, eventTime, closed, open, high, low, close, volume, quoteVolume, source, raw: undefined, receivedAt };
}

/** Why a row's open time is not a bar of `stream` (undefined: it is). The UTC+8 `6H`/`1D`… bars would fail here. */
export function misaligned(stream: StreamRef, openTime: number): string | undefined {
  return openTimeAt(stream.interval, openTime) === openTime ? undefined : `bar ${openTime} is not on a ${stream.interval} boundary (UTC)`;
}

// ---------------------------------------------------------------------------------------------
// Frames: fallback schemas

const ArgSchema = z.object({ channel: z.string(), instId: z.string() });
const PushSchema = z.object({ arg: ArgSchema, data: z.array(RowSchema).min(1) });
const EventSchema = z.object({
  event: z.string(),
  id: z.string().optional(),
  code: z.string().optional(),
  msg: z.string().optional(),
});


/** Informational events: a subscribe / unsubscribe ack, the connection-count report [OKXD Connection_Count_Limit.md]. */
const REPLY_EVENTS = new Set(['subscribe', 'unsubscribe', 'channel-conn-count']);

// ---------------------------------------------------------------------------------------------
// Fast path helpers

function ascii(s: string): Uint8Array {
  return Buffer.from(s, 'latin1');
}
const L_ARG = ascii('{"arg":');
const L_DATA = ascii(',"data":[[');

/** Position after `l` at p, or -1. */
function lit(b: Uint8Array, p: number, l: Uint8Array): number {
  const n = l.length;
  if (p < 0 || p + n > b.length) return -1;
  for (let i = 0; i < n; i++) if (b[p + i] !== l[i]) return -1;
  return p + n;
}

/** A decimal string body `-?\d+(\.\d+)?` at p: the position of its closing quote, or -1. */
function decEnd(b: Uint8Array, p: number): number {
  const n = b.length;
  if (p < n && b[p] === 45) p++;
  const intStart = p;
  let c = 0;
  while (p < n && ((c = b[p] ?? 0) - 48) >>> 0 < 10) p++;
  if (p === intStart || p >= n) return -1;
  if (c === 46) {
    const fracStart = ++p;
    while (p < n && ((c = b[p] ?? 0) - 48) >>> 0 < 10) p++;
    if (p === fracStart || p >= n) return -1;
  }
  return c === 34 ? p : -1;
}

function digitsOnly(b: Uint8Array, start: number, end: number): boolean {
  for (let i = start; i < end; i++) if (((b[i] ?? 0) - 48) >>> 0 >= 10) return false;
  return true;
}

export interface OkxFrameParserOptions extends ParserContext {
  /** At most one `parse.error` event per this many ms (the rest are counted into the next one). Default 1000. */
  readonly reportIntervalMs?: number;
}

/** Most fields a row has (nine), for the scanner's field offsets. */
const MAX_FIELDS = 9;

export class OkxFrameParser implements FrameParser {
  readonly #venue: string;
  readonly #registry: StreamRegistry;
  readonly #clock: Clock;
  /** Registered topics only: garbage cannot grow it. */
  readonly #byTopic = new Map<string, StreamRef>();
  /** Start and end offsets of the current row's fields (reused frame to frame). */
  readonly #spans = new Int32Array(MAX_FIELDS * 2);

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

  constructor(options: OkxFrameParserOptions) {
    this.#venue = options.venue;
    this.#registry = options.registry;
    this.#clock = options.clock;
    this.#errors = new ParseErrorReporter(options.venue, options.status, options.clock, options.reportIntervalMs ?? 1000);
  }

  parse(frame: Buffer, receivedAt: number): FrameOutcome {
    return this.#fast(frame, receivedAt) ?? this.#slow(frame, receivedAt);
  }

  #ref(topic: string): StreamRef | undefined {
    const cached = this.#byTopic.get(topic);
    if (cached !== undefined) return cached;
    const ref = this.#registry.get(this.#venue, topic);
    if (ref !== undefined) this.#byTopic.set(topic, ref);
    return ref;
  }

  // -- tier 1: the exact layout OKX sends, one row ------------------------------------------------

  /** undefined = "not the exact layout": let the fallback decide. */
  #fast(b: Buffer, receivedAt: number): FrameOutcome | undefined {
    const n = b.length;
    const argStart = lit(b, 0, L_ARG);
    if (argStart < 0 || b[argStart] !== 123 /* { */) return undefined;
    // The arg object holds no nested object: it ends at the first `}`. Printable ASCII only.
    let p = argStart + 1;
    for (;;) {
      if (p >= n) return undefined;
      const c = b[p] ?? 0;
      if (c === 125) break;
      if (c < 32 || c > 126 || c === 92) return undefined;
      p++;
    }
    const argEnd = p + 1;
    const ref = this.#ref(b.toString('latin1', argStart, argEnd));
    if (ref === undefined) return undefined; // the fallback tells an unknown stream from a broken frame
    p = lit(b, argEnd, L_DATA);
    if (p < 0) return undefined;
    const spans = this.#spans;
    let count = 0;
    for (;;) {
      if (count === MAX_FIELDS || b[p] !== 34) return undefined;
      const start = p + 1;
      const end = decEnd(b, start);
      if (end < 0) return undefined;
      spans[count * 2] = start;
      spans[count * 2 + 1] = end;
      count++;
      p = end + 1;
      if (b[p] === 44 /* , */) {
        p++;
        continue;
      }
      if (b[p] === 93 /* ] */) break;
      return undefined;
    }
    // One row only (`]]}` and the end): several rows, or anything after, go to the fallback.
    if (b[p + 1] !== 93 || b[p + 2] !== 125 || p + 3 !== n || (count !== 9 && count !== 8)) return undefined;
    // ts: digits only, at most 15; confirm: exactly "0" or "1".
    const tsStart = spans[0] ?? 0;
    const tsEnd = spans[1] ?? 0;
    if (tsEnd - tsStart > 15 || !digitsOnly(b, tsStart, tsEnd)) return undefined;
    const cStart = spans[(count - 1) * 2] ?? 0;
    const confirmByte = b[cStart];
    if ((spans[(count - 1) * 2 + 1] ?? 0) - cStart !== 1 || (confirmByte !== 48 && confirmByte !== 49)) return undefined;
    let openTime = 0;
    for (let i = tsStart; i < tsEnd; i++) openTime = openTime * 10 + ((b[i] ?? 48) - 48); // ≤ 15 digits: exact
    const wrong = misaligned(ref, openTime);
    if (wrong !== undefined) return this.#error(wrong, b.toString('latin1', 0, 200));
    const fields: string[] = [];
    for (let i = 0; i < count; i++) fields.push(b.toString('latin1', spans[i * 2] ?? 0, spans[i * 2 + 1] ?? 0));
    return rowCandle(ref, openTime, fields, confirmByte === 49, 'ws', this.#clock.now(), receivedAt);
  }

  // -- tier 2: JSON.parse + zod -----------------------------------------------------------------

  #slow(frame: Buffer, receivedAt: number): FrameOutcome {
    this.slowPath++;
    // The socket skips ws's UTF-8 validation: check here, before anything is decoded.
    // UTF-8 validated before anything is decoded (the socket skips ws's validation): invalid text is an error, never a candle.
    const decoded = jsonObjectOf(frame);
    if ('error' in decoded) return this.#error(decoded.error, decoded.text);
    const { value, text } = decoded;
    if ('event' in value) return this.#event(value, text);
    if ('arg' in value || 'data' in value) return this.#push(value, text, receivedAt);
    return this.#error('unrecognised frame', text);
  }

  #event(value: Record<string, unknown>, text: string): FrameOutcome {
    const parsed = EventSchema.safeParse(value);
    if (!parsed.success) return this.#error('malformed event', text);
    const ev = parsed.data;
    if (ev.event === 'error') {
      const code = Number(ev.code);
      if (!Number.isInteger(code)) return this.#error('error event without a numeric code', text);
      this.lastControlId = ev.id ?? null;
      this.lastControlError = { code, msg: ev.msg ?? '' };
      return CONTROL_ERROR;
    }
    if (ev.event === 'notice') {
      // 64008: this socket closes in 60 s for a service upgrade; the pool rotates it (make-before-break).
      if (ev.code === SERVICE_UPGRADE_NOTICE) {
        this.shutdownNotices++;
        return SERVER_SHUTDOWN;
      }
      return CONTROL_REPLY;
    }
    if (REPLY_EVENTS.has(ev.event)) {
      this.lastControlId = ev.id ?? null;
      return CONTROL_REPLY;
    }
    return this.#error(`unknown event ${ev.event.slice(0, 40)}`, text);
  }

  #push(value: Record<string, unknown>, text: string, receivedAt: number): FrameOutcome {
    const parsed = PushSchema.safeParse(value);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      const where = issue === undefined ? '' : ` at ${issue.path.join('.') || '(root)'}: ${issue.message}`;
      return this.#error(`invalid candle push${where}`, text);
    }
    const { arg, data } = parsed.data;
    const ref = this.#ref(okxTopic(arg.channel, arg.instId));
    if (ref === undefined) {
      this.unknownStreams++;
      return UNKNOWN_STREAM;
    }
    // A frame yields one outcome. OKX pushes one row per frame; should one carry several, the newest
    // wins: an older closed bar skipped here is a gap the pipeline recovers over REST.
    let row = data[0];
    for (const r of data) if (row === undefined || Number(r[0]) > Number(row[0])) row = r;
    if (row === undefined) return this.#error('candle push without rows', text);
    const openTime = Number(row[0]);
    const wrong = misaligned(ref, openTime);
    if (wrong !== undefined) return this.#error(wrong, text);
    return rowCandle(ref, openTime, row, row[row.length - 1] === '1', 'ws', this.#clock.now(), receivedAt);
  }

  #error(reason: string, text: string): FrameSignal {
    this.#errors.report(reason, text);
    return PARSE_ERROR;
  }
}
