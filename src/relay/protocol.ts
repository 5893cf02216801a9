/**
 * Binance's public market-stream protocol, as the relay speaks it. Pure functions only: no sockets,
 * no clocks, no state. Three concerns:
 *
 * 1. Upgrade URLs (`/ws/<s1>/<s2>`, `/stream?streams=a/b`, bare `/ws` and `/stream`), parsed by hand
 *    because `URLSearchParams` turns the `+` of `@+08:00` into a space
 *    (binance-spot-api-docs web-socket-streams.md; CHANGELOG 2025-12-02 "supports URL-encoded urls").
 * 2. Control messages `{"method","params","id"}` and their replies/errors, with Binance's codes and
 *    (serde_json-style) messages: 0 unknown property, 1 invalid value type, 2 invalid request, 3 invalid JSON.
 * 3. Outbound payloads: kline events in Binance's exact key order, `{"stream","data"}` envelopes,
 *    `serverShutdown`, and pre-framed WebSocket text frames so one Buffer is shared by every client.
 */
import type { Candle } from '../core/candle.ts';

// ---------------------------------------------------------------------------------------------
// Upgrade URL

export type UpgradeTarget =
  | {
      readonly kind: 'ok';
      /** `/stream…` connections start with `combined = true` (envelopes), `/ws…` with false. */
      readonly combined: boolean;
      /** Stream names from the path or `streams=`, decoded, in order, duplicates kept (the caller dedupes). */
      readonly streams: readonly string[];
      /** `?token=` if present (decoded). */
      readonly token: string | undefined;
      /** `?since=<ms>` (resume, contract §5): replay closed candles with open time ≥ since first. */
      readonly since: number | undefined;
    }
  | { readonly kind: 'not-found' }
  | { readonly kind: 'bad-request'; readonly reason: string };

/** Percent-decode without treating `+` as a space; undefined on a malformed escape. */
function decodeComponent(s: string): string | undefined {
  if (!s.includes('%')) return s;
  try {
    return decodeURIComponent(s);
  } catch {
    // Malformed escape (e.g. `%zz`): the caller answers 400.
    return undefined;
  }
}

/** Decode a `/`-separated stream list. Decoding first means a fully encoded list (`%2F` separators) works too. */
function splitStreams(list: string, out: string[]): boolean {
  const decoded = decodeComponent(list);
  if (decoded === undefined) return false;
  for (const name of decoded.split('/')) if (name.length > 0) out.push(name);
  return true;
}

/**
 * Parse the request target of an upgrade. Accepted paths: `/ws`, `/ws/`, `/ws/<s1>/<s2>…`, `/stream`,
 * `/stream/` with `?streams=a/b`. Query parameters other than `streams`, `token` and `timeUnit` are ignored.
 * `timeUnit=MICROSECOND` is refused with 400 rather than silently sending millisecond timestamps.
 */
export function parseUpgradeUrl(url: string): UpgradeTarget {
  const q = url.indexOf('?');
  const path = q === -1 ? url : url.slice(0, q);
  const query = q === -1 ? '' : url.slice(q + 1);

  const streams: string[] = [];
  let combined: boolean;
  if (path === '/ws' || path === '/ws/') {
    combined = false;
  } else if (path.startsWith('/ws/')) {
    combined = false;
    if (!splitStreams(path.slice(4), streams)) return { kind: 'bad-request', reason: 'malformed percent-encoding in path' };
  } else if (path === '/stream' || path === '/stream/') {
    combined = true;
  } else {
    return { kind: 'not-found' };
  }

  let token: string | undefined;
  let since: number | undefined;
  if (query.length > 0) {
    for (const pair of query.split('&')) {
      const eq = pair.indexOf('=');
      const key = eq === -1 ? pair : pair.slice(0, eq);
      const raw = eq === -1 ? '' : pair.slice(eq + 1);
      if (key === 'streams') {
        if (!splitStreams(raw, streams)) return { kind: 'bad-request', reason: 'malformed percent-encoding in streams' };
      } else if (key === 'token') {
        const value = decodeComponent(raw);
        if (value === undefined) return { kind: 'bad-request', reason: 'malformed percent-encoding in token' };
        token = value;
      } else if (key === 'since') {
        since = parseSince(raw);
        if (since === undefined) return { kind: 'bad-request', reason: `invalid since ${quoteForMessage(raw)}: expected milliseconds since the epoch` };
      } else if (key === 'timeUnit') {
        const unit = raw.toLowerCase();
        if (unit === 'microsecond') return { kind: 'bad-request', reason: 'timeUnit=MICROSECOND is not supported by this relay' };
        if (unit !== 'millisecond') return { kind: 'bad-request', reason: `invalid timeUnit ${quoteForMessage(raw)}` };
      }
    }
  }
  return { kind: 'ok', combined, streams, token, since };
}

/** Latest `since` accepted (year 2255): past it a number is a mistake, not a time. */
export const SINCE_MAX = 9e12;

/** A `since` query value: decimal milliseconds, at most SINCE_MAX; undefined when malformed. */
function parseSince(raw: string): number | undefined {
  if (!/^[0-9]{1,13}$/.test(raw)) return undefined;
  const n = Number(raw);
  return n <= SINCE_MAX ? n : undefined;
}

// ---------------------------------------------------------------------------------------------
// Control messages

export const METHODS = ['SUBSCRIBE', 'UNSUBSCRIBE', 'LIST_SUBSCRIPTIONS', 'SET_PROPERTY', 'GET_PROPERTY'] as const;
export type Method = (typeof METHODS)[number];

export type ControlRequest =
  | { readonly method: 'SUBSCRIBE' | 'UNSUBSCRIBE'; readonly params: readonly string[]; readonly id: string; readonly since?: number }
  | { readonly method: 'LIST_SUBSCRIPTIONS'; readonly id: string }
  | { readonly method: 'SET_PROPERTY'; readonly property: 'combined'; readonly value: boolean; readonly id: string }
  | { readonly method: 'GET_PROPERTY'; readonly property: 'combined'; readonly id: string };

/** Binance's error codes for market-stream control messages. */
export const ERR_UNKNOWN_PROPERTY = 0;
export const ERR_INVALID_VALUE_TYPE = 1;
export const ERR_INVALID_REQUEST = 2;
export const ERR_INVALID_JSON = 3;

export interface ControlError {
  readonly error: { readonly code: number; readonly msg: string };
  /** The request id as JSON text (`null` when the frame is not a JSON object, or its id is missing or invalid). */
  readonly id: string;
}

export type ParseResult = { readonly ok: true; readonly request: ControlRequest } | { readonly ok: false; readonly error: ControlError };

/**
 * Most stream names one SUBSCRIBE/UNSUBSCRIBE may carry by default: Binance's 1024 streams per
 * connection, so a longer list cannot be a request any connection could honour.
 */
export const MAX_PARAMS = 1024;

export interface ControlLimits {
  /** Most stream names in one SUBSCRIBE/UNSUBSCRIBE (the relay's per-client stream cap); default MAX_PARAMS. */
  readonly maxParams?: number;
}

/** How much of an offending value an error message echoes (issue 12: a 64 KiB name echoed in full, twice escaped). */
export const MESSAGE_VALUE_MAX = 100;

/**
 * `value` as an error message shows it: in backticks (serde's style, as in "unknown variant `X`"),
 * cut after MESSAGE_VALUE_MAX characters (never inside a surrogate pair) with `…` and the full length.
 * Not JSON-escaped: errorReply escapes the whole message once, so escaping here would escape twice.
 */
export function quoteForMessage(value: string): string {
  if (value.length <= MESSAGE_VALUE_MAX) return `\`${value}\``;
  let cut = MESSAGE_VALUE_MAX;
  const last = value.charCodeAt(cut - 1);
  if (last >= 0xd800 && last <= 0xdbff) cut--; // keep a high surrogate with its low half: drop both
  return `\`${value.slice(0, cut)}…\` (${value.length} characters)`;
}

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
/** 2^63 as a double: every int64 has |value| ≤ this once parsed (±2^63 - 1 rounds up to it). */
const INT64_BOUND = 2 ** 63;
/**
 * Binance's rule for client-chosen ids, quoted in its own -1100 errors (`^[a-zA-Z0-9-_]{1,36}$`).
 * Its new Python SDK sends UUIDs (36 characters with hyphens).
 */
const STRING_ID = /^[A-Za-z0-9_-]{1,36}$/;
/** An integer literal as JSON writes it, at most 19 digits (int64's width); the range is checked on the BigInt. */
const INTEGER_SOURCE = /^-?[0-9]{1,19}$/;

const ID_ERROR =
  'Invalid request: request ID must be a 64-bit signed integer, a string of at most 36 letters, digits, `-` or `_`, or null';

function fail(code: number, msg: string, id = 'null'): ParseResult {
  return { ok: false, error: { error: { code, msg }, id } };
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function allStrings(list: readonly unknown[]): list is readonly string[] {
  for (const item of list) if (typeof item !== 'string') return false;
  return true;
}

/** A JSON string id → its JSON text, or undefined when Binance would refuse it. */
function stringIdText(id: string): string | undefined {
  // The allowed characters need no escaping, so the id's JSON text is the id in quotes.
  return STRING_ID.test(id) ? `"${id}"` : undefined;
}

/** A number id's source text → its canonical JSON text, or undefined unless it is a 64-bit integer literal. */
function integerIdText(source: string): string | undefined {
  if (!INTEGER_SOURCE.test(source)) return undefined; // fraction, exponent (`1.0`, `1e3`), or wider than int64
  const big = BigInt(source);
  return big >= INT64_MIN && big <= INT64_MAX ? big.toString() : undefined;
}

/** The id's JSON text from its source text in the frame, or undefined when it is not a valid id. */
function idTextFromSource(source: string): string | undefined {
  if (source === 'null') return 'null';
  const c = source.charCodeAt(0);
  if (c === QUOTE) {
    const id: unknown = JSON.parse(source);
    return typeof id === 'string' ? stringIdText(id) : undefined;
  }
  return c === MINUS || (c >= ZERO && c <= NINE) ? integerIdText(source) : undefined;
}

// ---------------------------------------------------------------------------------------------
// Top-level members of a frame JSON.parse has accepted

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const COLON = 0x3a;
const MINUS = 0x2d;
const ZERO = 0x30;
const NINE = 0x39;
const LBRACKET = 0x5b;
const RBRACKET = 0x5d;
const LBRACE = 0x7b;
const RBRACE = 0x7d;

/** Where a value sits in the frame's text: `[start, end)`. */
interface Span {
  readonly start: number;
  readonly end: number;
}

/** The frame's top-level `id` and `method` values (the last of each, as JSON.parse keeps the last duplicate). */
interface TopLevel {
  readonly id: Span | undefined;
  readonly method: Span | undefined;
}

function skipWs(text: string, i: number): number {
  for (;;) {
    const c = text.charCodeAt(i);
    if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) return i;
    i++;
  }
}

// Patterns for JSON already known to be valid. Each is unrolled (`run (escape run)*`): there is only
// one way to match a given text, so a failed attempt backtracks in linear time, never exponential.
const ANY_STRING = String.raw`"[^"\\]*(?:\\[^][^"\\]*)*"`;
/** A string with no `\u` escape: it cannot spell `id` or `method` in disguise (they are all letters). */
const PLAIN_KEY = String.raw`"[^"\\]*(?:\\[^u][^"\\]*)*"`;
const JSON_WS = '[ \\t\\n\\r]*';

/** The rest of a JSON string after an escaped quote, escapes crossed one at a time. */
const STRING_REST = /[^"\\]*(?:\\[^][^"\\]*)*"/y;
/**
 * Everything up to the next bracket outside a string, strings included, in one native step: nested
 * values are crossed at regex speed instead of one JavaScript iteration per character.
 */
const BRACKET_FREE_RUN = new RegExp(`[^"[\\]{}]*(?:${ANY_STRING}[^"[\\]{}]*)*`, 'y');

/** Whether the quote at `q` is escaped: an odd run of backslashes before it. */
function escapedQuote(text: string, q: number): boolean {
  let b = q - 1;
  while (text.charCodeAt(b) === BACKSLASH) b--;
  return ((q - 1 - b) & 1) === 1;
}

/**
 * End (past the closing quote) of the string token opening at `i`. indexOf finds quotes at memchr
 * speed; escaped quotes close together are left to STRING_REST, cheaper than one indexOf each.
 */
function stringEnd(text: string, i: number): number {
  let from = i + 1;
  for (;;) {
    const q = text.indexOf('"', from);
    if (q === -1) return text.length;
    if (!escapedQuote(text, q)) return q + 1;
    if (q - from < 16) {
      STRING_REST.lastIndex = q + 1;
      return STRING_REST.test(text) ? STRING_REST.lastIndex : text.length;
    }
    from = q + 1;
  }
}

/** From this length on, indexOf crosses a string faster than a regex (about 1 ns a character). */
const LONG_STRING = 64;

/** End of the array or object opening at `i`: brackets counted, everything between them crossed by BRACKET_FREE_RUN. */
function containerEnd(text: string, i: number): number {
  const n = text.length;
  let depth = 0;
  let j = i;
  while (j < n) {
    const c = text.charCodeAt(j);
    if (c === LBRACKET || c === LBRACE) {
      depth++;
      j++;
    } else if (c === RBRACKET || c === RBRACE) {
      j++;
      if (--depth === 0) return j;
    } else if (c === COMMA) {
      j++; // between nested containers: cheaper here than a regex call
    } else {
      if (c === QUOTE) {
        // A long string is crossed faster by stringEnd's indexOf than by the regex.
        const end = stringEnd(text, j);
        if (end - j >= LONG_STRING) {
          j = end;
          continue;
        }
      }
      BRACKET_FREE_RUN.lastIndex = j;
      BRACKET_FREE_RUN.test(text);
      // No progress can only mean text that is not JSON (an unterminated string): stop rather than spin.
      if (BRACKET_FREE_RUN.lastIndex === j) return n;
      j = BRACKET_FREE_RUN.lastIndex;
    }
  }
  return n;
}

function valueEnd(text: string, i: number): number {
  const c = text.charCodeAt(i);
  if (c === QUOTE) return stringEnd(text, i);
  if (c === LBRACKET || c === LBRACE) return containerEnd(text, i);
  // A number or a literal: up to the next delimiter (none of their characters is one).
  let j = i + 1;
  for (const n = text.length; j < n; j++) {
    const d = text.charCodeAt(j);
    if (d === COMMA || d === RBRACE || d === RBRACKET || d <= 0x20) break;
  }
  return j;
}

const HEX4 = /^[0-9a-fA-F]{4}$/;

/** Whether the string token `[start, end)` spells `word`, each letter as itself or as a `\u` escape. */
function spells(text: string, start: number, end: number, word: string): boolean {
  let at = start + 1;
  for (let k = 0; k < word.length; k++) {
    const letter = word.charCodeAt(k);
    if (text.charCodeAt(at) === letter) {
      at++;
    } else if (text.charCodeAt(at) === BACKSLASH && text.charCodeAt(at + 1) === 0x75 /* u */) {
      const hex = text.slice(at + 2, at + 6);
      if (!HEX4.test(hex) || Number.parseInt(hex, 16) !== letter) return false;
      at += 6;
    } else {
      return false;
    }
  }
  return at === end - 1;
}

/** Which key the string token `[start, end)` names, if `id` or `method` (escapes decoded, as JSON.parse does). */
function keyOf(text: string, start: number, end: number): 'id' | 'method' | undefined {
  const len = end - start;
  if (len === 4) return text.startsWith('"id"', start) ? 'id' : undefined;
  if (len === 8) return text.startsWith('"method"', start) ? 'method' : undefined;
  // Escaped forms: `"\u0069d"` (9 characters) up to six escapes for `method` (38).
  if (len < 9 || len > 38) return undefined;
  if (spells(text, start, end, 'id')) return 'id';
  return spells(text, start, end, 'method') ? 'method' : undefined;
}

/**
 * Complete top-level members, each with its comma, in one native step: thousands of them (duplicate
 * ids included) cost one regex call instead of one JavaScript iteration each. Only members whose key
 * has no `\u` escape (lastKeyIn finds `id` and `method` keys in the run as plain text) and whose
 * value holds no key (a nested id is not the request's): a number, a literal, a string, `{}`, or an
 * array without strings (one with strings, such as `params`, is left to containerEnd, which crosses
 * long strings with indexOf).
 */
const FLAT_ARRAY = '\\[[^"[\\]{}]*\\]';
const MEMBER_SKIP = new RegExp(
  `(?:${JSON_WS}${PLAIN_KEY}${JSON_WS}:${JSON_WS}(?:${ANY_STRING}|[-+.0-9a-zE]+|${FLAT_ARRAY}|\\{${JSON_WS}\\})${JSON_WS},)*`,
  'y',
);

/**
 * Start of the last `key` (`"id"` or `"method"`) member in `run`, the text of a MEMBER_SKIP run that
 * starts at `from`, or -1. In valid JSON an unescaped quote followed by `id"` opens the string `"id"`
 * (a closing quote cannot be followed by a letter), and a string followed by `:` is a key; MEMBER_SKIP
 * lets no value with keys of its own into a run, so such a key is a top-level one. The search stays
 * inside the run (a lastIndexOf on the whole text would cross everything before it, once per run:
 * quadratic).
 */
function lastKeyIn(run: string, from: number, key: string): number {
  for (let c = run.lastIndexOf(key); c >= 0; c = c === 0 ? -1 : run.lastIndexOf(key, c - 1)) {
    if (run.charCodeAt(skipWs(run, c + key.length)) === COLON && !escapedQuote(run, c)) return from + c;
  }
  return -1;
}

/** Short members taken one at a time before topLevelMembers tries a MEMBER_SKIP run. */
const MEMBERS_BEFORE_RUN = 4;

/** The value of the member whose key starts at `keyStart` (a plain `"id"` or `"method"`). */
function memberValue(text: string, keyStart: number, keyLength: number): Span {
  const start = skipWs(text, skipWs(text, keyStart + keyLength) + 1); // past ':'
  return { start, end: valueEnd(text, start) };
}

/**
 * The spans of the top-level `id` and `method` values of `text`, which must be JSON that JSON.parse
 * accepted, with an object at the top. Nothing is validated again: one linear, iterative pass (any
 * depth) of cheap steps, run only when a value's source text matters (an id number past 2^53 must be
 * echoed digit for digit, and `1.0` is not an integer id) or for an error's line and column.
 */
function topLevelMembers(text: string): TopLevel {
  let id: Span | undefined;
  let method: Span | undefined;
  let i = skipWs(text, 0) + 1; // past the top-level '{'
  // Members are taken one at a time (a long string value is then crossed by indexOf, far faster than
  // by MEMBER_SKIP) until a few short ones in a row suggest many more: then a run is tried.
  let short = 0;
  for (;;) {
    if (short >= MEMBERS_BEFORE_RUN) {
      short = 0;
      MEMBER_SKIP.lastIndex = i;
      MEMBER_SKIP.test(text); // a `(…)*` run always matches, if only the empty string
      const skipped = MEMBER_SKIP.lastIndex;
      if (skipped > i) {
        const run = text.slice(i, skipped); // a view into `text`, not a copy, past a dozen characters
        const idKey = lastKeyIn(run, i, '"id"');
        if (idKey >= 0) id = memberValue(text, idKey, 4);
        const methodKey = lastKeyIn(run, i, '"method"');
        if (methodKey >= 0) method = memberValue(text, methodKey, 8);
        i = skipped;
      }
    }
    // One member the long way.
    i = skipWs(text, i);
    if (text.charCodeAt(i) !== QUOTE) break; // the '}' of an empty object
    const keyEnd = stringEnd(text, i);
    const key = keyOf(text, i, keyEnd);
    const start = skipWs(text, skipWs(text, keyEnd) + 1); // past ':'
    const end = valueEnd(text, start);
    if (key === 'id') id = { start, end };
    else if (key === 'method') method = { start, end };
    short = end - i < LONG_STRING ? short + 1 : 0;
    i = skipWs(text, end);
    if (text.charCodeAt(i) !== COMMA) break;
    i++;
  }
  return { id, method };
}

// ---------------------------------------------------------------------------------------------
// Error positions

/** Line and column (1-based, serde_json style: the column of the offending character, or the last one at EOF). */
export function lineColumn(text: string, offset: number): { line: number; column: number } {
  const pos = Math.min(offset, text.length - 1); // -1 for empty text: column 0, as serde says
  let line = 1;
  let lineStart = 0;
  for (let nl = text.indexOf('\n'); nl !== -1 && nl < pos; nl = text.indexOf('\n', nl + 1)) {
    line++;
    lineStart = nl + 1;
  }
  return { line, column: pos - lineStart + 1 };
}

const NUMBER = '-?(?:0|[1-9][0-9]*)(?:\\.[0-9]+)?(?:[eE][+-]?[0-9]+)?';
// Unrolled (`run (escape run)*`): no two ways to match the same text, so a failing string costs linear time.
const STRING_CHARS = '[^"\\\\\\u0000-\\u001f]*';
const STRING_ESCAPE = '\\\\(?:["\\\\/bfnrt]|u[0-9a-fA-F]{4})';
const STRICT_STRING = `"${STRING_CHARS}(?:${STRING_ESCAPE}${STRING_CHARS})*"`;
const PRIMITIVE = `(?:${NUMBER}|${STRICT_STRING}|true|false|null)`;
const WS = '[ \\t\\n\\r]*';
/** A primitive, or an array or object of primitives (`[]`, `{}` included): the values a run crosses. */
const FLAT_VALUE =
  `(?:${PRIMITIVE}|\\[${WS}(?:${PRIMITIVE}(?:${WS},${WS}${PRIMITIVE})*${WS})?\\]` +
  `|\\{${WS}(?:${STRICT_STRING}${WS}:${WS}${PRIMITIVE}(?:${WS},${WS}${STRICT_STRING}${WS}:${WS}${PRIMITIVE})*${WS})?\\})`;
const NUMBER_TOKEN = new RegExp(NUMBER, 'y');
/** The longest valid start of a string (no closing quote): it never fails, so it never backtracks. */
const STRING_PREFIX = new RegExp(`"${STRING_CHARS}(?:${STRING_ESCAPE}${STRING_CHARS})*`, 'y');
/**
 * Runs of complete, valid `value ,` array elements and `"key" : value ,` object members (FLAT_VALUE),
 * consumed in one native step each: the error scanner's JavaScript loop then only sees brackets, the
 * last element before one, and the error itself. Compact runs first (whitespace patterns cost as much
 * as the tokens); spaced ones only where a compact run stopped at whitespace.
 */
const ELEMENT_RUN = new RegExp(`(?:${FLAT_VALUE},)*`, 'y');
const SPACED_ELEMENT_RUN = new RegExp(`(?:${WS}${FLAT_VALUE}${WS},)*`, 'y');
const MEMBER_RUN = new RegExp(`(?:${STRICT_STRING}:${FLAT_VALUE},)*`, 'y');
const SPACED_MEMBER_RUN = new RegExp(`(?:${WS}${STRICT_STRING}${WS}:${WS}${FLAT_VALUE}${WS},)*`, 'y');

function isWs(c: number): boolean {
  return c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;
}

/** Past a run of `compact` then, if it stopped at whitespace, of `spaced`, from `i`. */
function run(compact: RegExp, spaced: RegExp, text: string, i: number): number {
  compact.lastIndex = i;
  compact.test(text); // a `(…)*` run always matches, if only the empty string
  const j = compact.lastIndex;
  if (!isWs(text.charCodeAt(j))) return j;
  spaced.lastIndex = j;
  spaced.test(text);
  return spaced.lastIndex;
}

/** Run attempts a container skips after one that crossed nothing. */
const RUN_BACKOFF = 8;
const OPEN_BRACKETS = /\[+/y;
const CLOSE_BRACKETS = /\]+/y;
const CLOSE_BRACES = /\}+/y;

/** Length of the match of the sticky `re` at `i` (which must match). */
function runLength(re: RegExp, text: string, i: number): number {
  re.lastIndex = i;
  re.test(text);
  return re.lastIndex - i;
}

/** Whether `i` opens an array or object whose first element opens another. */
function opensNested(text: string, i: number): boolean {
  const c = text.charCodeAt(i);
  if (c !== LBRACKET && c !== LBRACE) return false;
  const d = text.charCodeAt(skipWs(text, i + 1));
  return d === LBRACKET || d === LBRACE;
}

/** Past the string token opening at `i`, or `-(offset + 1)` of its first invalid character (or the end). */
function strictStringEnd(text: string, i: number): number {
  STRING_PREFIX.lastIndex = i;
  STRING_PREFIX.test(text);
  const j = STRING_PREFIX.lastIndex;
  const c = text.charCodeAt(j);
  if (c === QUOTE) return j + 1;
  if (c !== BACKSLASH || j >= text.length) return -(j + 1); // a control character, or the end
  return -(text.charAt(j + 1) === 'u' ? j + 3 : j + 2); // the bad escape's character (or first hex digit)
}

/**
 * Offset of the first JSON syntax error in `text` (text.length for an unexpected end), or -1 if it is
 * valid. Only run after JSON.parse has failed (V8's messages do not always carry a position).
 * Iterative, so a deeply nested frame cannot overflow the stack; runs of valid elements are crossed
 * by sticky regexes, so its cost stays in proportion to JSON.parse's.
 */
export function jsonErrorOffset(text: string): number {
  const n = text.length;
  let i = 0;
  // Open containers, innermost last: 0 array, 1 object. A typed array, so runs of brackets (deep
  // nesting) are pushed with fill() and checked with lastIndexOf() instead of one step each.
  const stack = new Uint8Array(n + 1);
  let depth = 0;
  // Per open container: run attempts to skip. One that crossed nothing costs a partial match and its
  // backtracking, so a container whose elements are not flat stops trying for a while (and retries,
  // in case flat elements follow).
  const skipRuns = new Uint8Array(n + 1);
  const tryRun = (compact: RegExp, spaced: RegExp): void => {
    const at = depth - 1;
    const skip = skipRuns[at] ?? 0;
    if (skip > 0) {
      skipRuns[at] = skip - 1;
      return;
    }
    const end = run(compact, spaced, text, i);
    if (end === i) skipRuns[at] = RUN_BACKOFF;
    i = end;
  };
  // After '{' or ',' in an object: any run of complete members, then `"key" :` before a value.
  // Returns the offset of an error, or -1.
  const scanKey = (): number => {
    tryRun(MEMBER_RUN, SPACED_MEMBER_RUN);
    i = skipWs(text, i);
    if (text.charCodeAt(i) !== QUOTE) return i;
    const end = strictStringEnd(text, i);
    if (end < 0) return -end - 1;
    i = skipWs(text, end);
    if (text.charCodeAt(i) !== COLON) return i;
    i++;
    return -1;
  };

  for (;;) {
    // expecting a value; in an array, first cross any run of complete elements
    // (not where a nested container opens another: `[[[…` gains nothing from a run attempt per level)
    if (depth > 0 && stack[depth - 1] === 0 && !opensNested(text, i)) tryRun(ELEMENT_RUN, SPACED_ELEMENT_RUN);
    i = skipWs(text, i);
    const c = text.charCodeAt(i);
    if (c === LBRACE) {
      i = skipWs(text, i + 1);
      if (text.charCodeAt(i) === RBRACE) {
        i++;
      } else {
        skipRuns[depth] = 0;
        stack[depth++] = 1;
        const err = scanKey();
        if (err >= 0) return err;
        continue;
      }
    } else if (c === LBRACKET) {
      // `[[[…`: all but the last of a run of opening brackets open arrays whose first element is an array.
      const k = text.charCodeAt(i + 1) === LBRACKET ? runLength(OPEN_BRACKETS, text, i) : 1;
      stack.fill(0, depth, depth + k - 1);
      skipRuns.fill(0, depth, depth + k - 1);
      depth += k - 1;
      i = skipWs(text, i + k);
      if (text.charCodeAt(i) === RBRACKET) {
        i++;
      } else {
        skipRuns[depth] = 0;
        stack[depth++] = 0;
        continue;
      }
    } else if (c === QUOTE) {
      const end = strictStringEnd(text, i);
      if (end < 0) return -end - 1;
      i = end;
    } else if (c === MINUS || (c >= ZERO && c <= NINE)) {
      NUMBER_TOKEN.lastIndex = i;
      if (!NUMBER_TOKEN.test(text)) return i;
      i = NUMBER_TOKEN.lastIndex;
    } else if (text.startsWith('true', i) || text.startsWith('null', i)) {
      i += 4;
    } else if (text.startsWith('false', i)) {
      i += 5;
    } else {
      return i;
    }
    // after a value: close containers or move to the next element
    for (;;) {
      i = skipWs(text, i);
      if (depth === 0) return i < n ? i : -1;
      const open = stack[depth - 1];
      const d = text.charCodeAt(i);
      if (d === COMMA) {
        i++;
        if (open === 1) {
          const err = scanKey();
          if (err >= 0) return err;
        }
        break;
      }
      const kind = d === RBRACKET ? 0 : d === RBRACE ? 1 : -1;
      if (kind !== open) return i;
      // `]]]…`: as many as there are containers of that kind on top of the stack.
      const k =
        text.charCodeAt(i + 1) === d
          ? Math.min(runLength(kind === 0 ? CLOSE_BRACKETS : CLOSE_BRACES, text, i), depth - 1 - stack.lastIndexOf(1 - kind, depth - 1))
          : 1;
      depth -= k;
      i += k;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Parsing

/**
 * A frame JSON.parse refused: invalid JSON (code 3, with serde's line and column), or valid JSON that
 * V8 could not build (code 2, under the frame's id: a client waiting on it must not hang).
 */
function unparsable(text: string): ParseResult {
  const offset = jsonErrorOffset(text);
  if (offset >= 0) {
    const { line, column } = lineColumn(text, offset);
    return fail(ERR_INVALID_JSON, `Invalid JSON: expected value at line ${line} column ${column}`);
  }
  let id: string | undefined;
  if (text.charCodeAt(skipWs(text, 0)) === LBRACE) {
    const span = topLevelMembers(text).id;
    id = span === undefined ? 'null' : idTextFromSource(text.slice(span.start, span.end));
  }
  return fail(ERR_INVALID_REQUEST, 'Invalid request: the frame is nested too deeply to be read', id ?? 'null');
}

/**
 * Parse and validate one inbound text frame. Never throws.
 *
 * Cost: one plain JSON.parse of the frame (no reviver: one ran for every value of the frame, 5-10 ms
 * for a costly 64 KiB one, and recursed, so deep nesting overflowed it), plus at most one linear pass
 * over its text, and only when the id is an integer (its exact digits) or for an error's position.
 * A frame that cannot be a request any client could send (more stream names than `maxParams`) is
 * refused before anything looks at its elements.
 *
 * Every error of a frame that is a JSON object with a valid id carries that id (contract §5); `id` is
 * `null` only when the frame is not a JSON object or its id is invalid.
 */
export function parseControl(text: string, limits: ControlLimits = {}): ParseResult {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    // A syntax error (answered with Binance's line/column, computed here: V8's message format varies).
    return unparsable(text);
  }
  if (!isRecord(value)) return fail(ERR_INVALID_REQUEST, 'Invalid request: expected a JSON object');

  let members: TopLevel | undefined;
  let id = 'null'; // a request without an id is answered with "id":null, as Binance does
  if (Object.hasOwn(value, 'id')) {
    const raw = value['id'];
    let idText: string | undefined;
    if (raw === null) {
      idText = 'null';
    } else if (typeof raw === 'string') {
      idText = stringIdText(raw);
    } else if (typeof raw === 'number' && Number.isInteger(raw) && Math.abs(raw) <= INT64_BOUND) {
      // Only the source text tells `1` from `1.0`, and 2^53 + 1 from 2^53.
      members = topLevelMembers(text);
      idText = members.id === undefined ? undefined : integerIdText(text.slice(members.id.start, members.id.end));
    }
    if (idText === undefined) return fail(ERR_INVALID_REQUEST, ID_ERROR);
    id = idText;
  }

  const method = value['method'];
  if (method === undefined) {
    const { line, column } = lineColumn(text, text.trimEnd().length - 1);
    return fail(ERR_INVALID_REQUEST, `Invalid request: missing field \`method\` at line ${line} column ${column}`, id);
  }
  if (typeof method !== 'string') return fail(ERR_INVALID_REQUEST, 'Invalid request: method must be a string', id);
  if (!(METHODS as readonly string[]).includes(method)) {
    // serde reports the position just after the method's value (its closing quote).
    const span = (members ?? topLevelMembers(text)).method;
    const { line, column } = lineColumn(text, span === undefined ? text.length : span.end - 1);
    return fail(
      ERR_INVALID_REQUEST,
      `Invalid request: unknown variant ${quoteForMessage(method)}, expected one of ${METHODS.map((m) => `\`${m}\``).join(', ')} at line ${line} column ${column}`,
      id,
    );
  }

  const params = value['params'];
  switch (method as Method) {
    case 'SUBSCRIBE':
    case 'UNSUBSCRIBE': {
      if (params === undefined) return fail(ERR_INVALID_REQUEST, 'Invalid request: missing field `params`', id);
      if (!Array.isArray(params)) return fail(ERR_INVALID_REQUEST, 'Invalid request: params must be an array', id);
      if (params.length > (limits.maxParams ?? MAX_PARAMS)) return fail(ERR_INVALID_REQUEST, 'Invalid request: too many parameters', id);
      if (!allStrings(params)) return fail(ERR_INVALID_REQUEST, 'Invalid request: stream names must be strings', id);
      // `since` (resume, contract §5) is ours, not Binance's: only SUBSCRIBE reads it.
      const since = method === 'SUBSCRIBE' ? value['since'] : undefined;
      if (since === undefined) return { ok: true, request: { method: method as 'SUBSCRIBE' | 'UNSUBSCRIBE', params, id } };
      if (typeof since !== 'number' || !Number.isInteger(since) || since < 0 || since > SINCE_MAX) {
        return fail(ERR_INVALID_REQUEST, 'Invalid request: since must be milliseconds since the epoch (a non-negative integer)', id);
      }
      return { ok: true, request: { method: 'SUBSCRIBE', params, id, since } };
    }
    case 'LIST_SUBSCRIPTIONS': {
      if (params !== undefined && params !== null) {
        if (!Array.isArray(params)) return fail(ERR_INVALID_REQUEST, 'Invalid request: params must be an array', id);
        if (params.length > 0) return fail(ERR_INVALID_REQUEST, 'Invalid request: too many parameters', id);
      }
      return { ok: true, request: { method: 'LIST_SUBSCRIPTIONS', id } };
    }
    case 'SET_PROPERTY':
    case 'GET_PROPERTY': {
      const arity = method === 'SET_PROPERTY' ? 2 : 1;
      if (params === undefined) return fail(ERR_INVALID_REQUEST, 'Invalid request: missing field `params`', id);
      if (!Array.isArray(params)) return fail(ERR_INVALID_REQUEST, 'Invalid request: params must be an array', id);
      const list = params as unknown[];
      if (list.length > arity) return fail(ERR_INVALID_REQUEST, 'Invalid request: too many parameters', id);
      const name = list[0];
      if (typeof name !== 'string') return fail(ERR_INVALID_REQUEST, 'Invalid request: property name must be a string', id);
      if (name !== 'combined') return fail(ERR_UNKNOWN_PROPERTY, 'Unknown property', id);
      if (method === 'GET_PROPERTY') return { ok: true, request: { method: 'GET_PROPERTY', property: 'combined', id } };
      const v = list[1];
      if (typeof v !== 'boolean') return fail(ERR_INVALID_VALUE_TYPE, 'Invalid value type: expected Boolean', id);
      return { ok: true, request: { method: 'SET_PROPERTY', property: 'combined', value: v, id } };
    }
  }
}

/** `{"result":…,"id":…}`; `id` is JSON text from a parsed request. */
export function resultReply(result: null | boolean | readonly string[], id: string): string {
  return `{"result":${JSON.stringify(result)},"id":${id}}`;
}

export function errorReply(err: ControlError): string {
  return `{"error":{"code":${err.error.code},"msg":${JSON.stringify(err.error.msg)}},"id":${err.id}}`;
}

/** Error for a binary frame: the protocol is JSON text, so answer like Binance answers non-JSON. */
export const BINARY_FRAME_ERROR: ControlError = { error: { code: ERR_INVALID_JSON, msg: 'Invalid JSON: expected a text frame' }, id: 'null' };

// ---------------------------------------------------------------------------------------------
// Outbound payloads

/**
 * A Binance kline event for `candle`, key for key in Binance's order. When the candle carries its
 * venue's own event bytes (venues whose native event already is this event: Binance spot and USD-M),
 * those are the payload, unchanged (byte-identical prices, no re-encoding). Otherwise it is written
 * here: `s` and `k.s` the native symbol, `k.i` the canonical interval, and `null` for what the venue
 * does not publish (contract §5). `sentAt` is used as `E` for REST-recovered candles ("the time the
 * relay sent them").
 */
export function klinePayload(candle: Candle, sentAt: number): Buffer {
  if (candle.raw !== undefined) return candle.raw;
  const s = JSON.stringify(candle.stream.symbol);
  const eventTime = candle.source === 'rest' ? sentAt : candle.eventTime;
  return Buffer.from(
    `{"e":"kline","E":${eventTime},"s":${s},"k":{"t":${candle.openTime},"T":${candle.closeTime},"s":${s},` +
      `"i":${JSON.stringify(candle.stream.interval)},"f":${candle.firstTradeId ?? null},"L":${candle.lastTradeId ?? null},` +
      `"o":${JSON.stringify(candle.open)},"c":${JSON.stringify(candle.close)},"h":${JSON.stringify(candle.high)},` +
      `"l":${JSON.stringify(candle.low)},"v":${JSON.stringify(candle.volume)},"n":${candle.trades ?? null},"x":${candle.closed},` +
      `"q":${JSON.stringify(candle.quoteVolume ?? null)},"V":${JSON.stringify(candle.takerBuyBaseVolume ?? null)},` +
      `"Q":${JSON.stringify(candle.takerBuyQuoteVolume ?? null)},"B":${JSON.stringify(candle.ignore ?? null)}}}`,
  );
}

/** `{"stream":"<name>","data":<payload>}` — Binance's combined-stream envelope. */
export function envelope(stream: string, payload: string): string {
  return `{"stream":${JSON.stringify(stream)},"data":${payload}}`;
}

/** The envelope's bytes before the payload: `{"stream":"<name>","data":`. Built once per stream by the relay. */
export function envelopePrefix(stream: string): Buffer {
  return Buffer.from(`{"stream":${JSON.stringify(stream)},"data":`);
}

const ENVELOPE_SUFFIX = Buffer.from('}');

export function serverShutdownPayload(now: number, combined: boolean): string {
  const data = `{"e":"serverShutdown","E":${now}}`;
  return combined ? envelope('!serverShutdown', data) : data;
}

/**
 * One complete, unmasked, final WebSocket text frame (RFC 6455 §5.2) holding `payload` (the
 * concatenation of `parts`). Built once per delivered event and written as-is to every subscriber's
 * socket. Valid only because permessage-deflate is off (no RSV1, no per-client compression state).
 */
export function textFrame(...parts: readonly (string | Uint8Array)[]): Buffer {
  let len = 0;
  for (const part of parts) len += typeof part === 'string' ? Buffer.byteLength(part) : part.length;
  const header = len < 126 ? 2 : len < 65536 ? 4 : 10;
  const frame = Buffer.allocUnsafe(header + len);
  frame[0] = 0x81; // FIN + text opcode
  if (len < 126) {
    frame[1] = len;
  } else if (len < 65536) {
    frame[1] = 126;
    frame.writeUInt16BE(len, 2);
  } else {
    frame[1] = 127;
    frame.writeUInt32BE(0, 2); // payloads are far below 4 GiB
    frame.writeUInt32BE(len, 6);
  }
  let at = header;
  for (const part of parts) {
    if (typeof part === 'string') at += frame.write(part, at, 'utf8');
    else {
      frame.set(part, at);
      at += part.length;
    }
  }
  return frame;
}

/** A text frame holding `{"stream":…,"data":<payload>}`, from the stream's prebuilt envelopePrefix. */
export function envelopeFrame(prefix: Uint8Array, payload: Uint8Array): Buffer {
  return textFrame(prefix, payload, ENVELOPE_SUFFIX);
}
