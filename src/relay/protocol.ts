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
      } else if (key === 'timeUnit') {
        const unit = raw.toLowerCase();
        if (unit === 'microsecond') return { kind: 'bad-request', reason: 'timeUnit=MICROSECOND is not supported by this relay' };
        if (unit !== 'millisecond') return { kind: 'bad-request', reason: `invalid timeUnit ${raw}` };
      }
    }
  }
  return { kind: 'ok', combined, streams, token };
}

// ---------------------------------------------------------------------------------------------
// Control messages

export const METHODS = ['SUBSCRIBE', 'UNSUBSCRIBE', 'LIST_SUBSCRIPTIONS', 'SET_PROPERTY', 'GET_PROPERTY'] as const;
export type Method = (typeof METHODS)[number];

export type ControlRequest =
  | { readonly method: 'SUBSCRIBE' | 'UNSUBSCRIBE'; readonly params: readonly string[]; readonly id: string }
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
  /** The request id as JSON text (`null` when it could not be read or was invalid). */
  readonly id: string;
}

export type ParseResult = { readonly ok: true; readonly request: ControlRequest } | { readonly ok: false; readonly error: ControlError };

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
const STRING_ID = /^[A-Za-z0-9]{1,36}$/;
const INTEGER_SOURCE = /^-?\d+$/;

/** Marks an `id` number whose exact source text we kept (JSON numbers lose precision past 2^53). */
class IdNumber {
  readonly source: string;
  constructor(source: string) {
    this.source = source;
  }
}

/**
 * Reviver keeping the source text of every number under an `id` key (Node ≥ 21 passes `context.source`;
 * on runtimes without it the value falls back to the parsed number, exact up to 2^53).
 */
function keepIdSource(this: unknown, key: string, value: unknown, context?: { source?: string }): unknown {
  if (key === 'id' && typeof value === 'number' && context?.source !== undefined) return new IdNumber(context.source);
  return value;
}

function fail(code: number, msg: string, id = 'null'): ParseResult {
  return { ok: false, error: { error: { code, msg }, id } };
}

/** `id` → its canonical JSON text, or undefined when it is not a 64-bit integer, ≤36-char alphanumeric string or null. */
function idText(id: unknown): string | undefined {
  if (id === null) return 'null';
  if (id instanceof IdNumber) {
    if (!INTEGER_SOURCE.test(id.source)) return undefined;
    const big = BigInt(id.source);
    return big >= INT64_MIN && big <= INT64_MAX ? big.toString() : undefined;
  }
  if (typeof id === 'number') return Number.isSafeInteger(id) ? String(id) : undefined;
  if (typeof id === 'string') return STRING_ID.test(id) ? `"${id}"` : undefined;
  return undefined;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Line and column (1-based, serde_json style: the column of the offending character, or the last one at EOF). */
export function lineColumn(text: string, offset: number): { line: number; column: number } {
  const pos = Math.min(offset, text.length - 1);
  let line = 1;
  let lineStart = 0;
  for (let i = 0; i < pos; i++) {
    if (text.charCodeAt(i) === 10) {
      line++;
      lineStart = i + 1;
    }
  }
  return { line, column: pos - lineStart + 1 };
}

const WS_CHARS = new Set([' ', '\t', '\n', '\r']);

/**
 * Offset of the first JSON syntax error in `text` (text.length for an unexpected end), or -1 if it is
 * valid. Only run after JSON.parse has failed (V8's messages do not always carry a position).
 * Iterative, so a deeply nested frame cannot overflow the stack.
 */
export function jsonErrorOffset(text: string): number {
  const n = text.length;
  let i = 0;
  const stack: number[] = []; // 0 array, 1 object
  const skipWs = (): void => {
    while (i < n && WS_CHARS.has(text.charAt(i))) i++;
  };
  const scanString = (): boolean => {
    // at '"'
    i++;
    while (i < n) {
      const c = text.charCodeAt(i);
      if (c === 34) {
        i++;
        return true;
      }
      if (c < 0x20) return false;
      if (c === 92) {
        const e = text.charAt(i + 1);
        if (e === 'u') {
          if (!/^[0-9a-fA-F]{4}$/.test(text.slice(i + 2, i + 6))) {
            i += 2;
            return false;
          }
          i += 6;
        } else if ('"\\/bfnrt'.includes(e) && e !== '') {
          i += 2;
        } else {
          i++;
          return false;
        }
      } else {
        i++;
      }
    }
    return false;
  };
  const scanNumber = (): boolean => {
    const m = /^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?/.exec(text.slice(i, i + 400));
    if (m === null || m[0] === '-' || m[0] === '') return false;
    i += m[0].length;
    return true;
  };
  // After '{' or ',' in an object: expect `"key" :` then a value.
  const scanKey = (): boolean => {
    skipWs();
    if (text.charAt(i) !== '"' || !scanString()) return false;
    skipWs();
    if (text.charAt(i) !== ':') return false;
    i++;
    return true;
  };

  for (;;) {
    // expecting a value
    skipWs();
    const c = text.charAt(i);
    if (c === '{') {
      i++;
      skipWs();
      if (text.charAt(i) === '}') {
        i++;
      } else {
        stack.push(1);
        if (!scanKey()) return i;
        continue;
      }
    } else if (c === '[') {
      i++;
      skipWs();
      if (text.charAt(i) === ']') {
        i++;
      } else {
        stack.push(0);
        continue;
      }
    } else if (c === '"') {
      if (!scanString()) return i;
    } else if (c === '-' || (c >= '0' && c <= '9')) {
      if (!scanNumber()) return i;
    } else if (text.startsWith('true', i)) {
      i += 4;
    } else if (text.startsWith('false', i)) {
      i += 5;
    } else if (text.startsWith('null', i)) {
      i += 4;
    } else {
      return i;
    }
    // after a value: close containers or move to the next element
    for (;;) {
      skipWs();
      const top = stack[stack.length - 1];
      if (top === undefined) return i < n ? i : -1;
      const d = text.charAt(i);
      if (d === ',') {
        i++;
        if (top === 1 && !scanKey()) return i;
        break;
      }
      if ((top === 0 && d === ']') || (top === 1 && d === '}')) {
        stack.pop();
        i++;
        continue;
      }
      return i;
    }
  }
}

function invalidJson(text: string): ParseResult {
  const offset = jsonErrorOffset(text);
  const { line, column } = lineColumn(text, offset < 0 ? text.length : offset);
  return fail(ERR_INVALID_JSON, `Invalid JSON: expected value at line ${line} column ${column}`);
}

/** Position just after the `"method": "<value>"` token, for serde's "unknown variant … at line L column C". */
function methodValueEnd(text: string): number {
  const m = /"method"\s*:\s*"(?:[^"\\]|\\.)*"/.exec(text);
  return m === null ? text.length : m.index + m[0].length - 1;
}

/** Parse and validate one inbound text frame. Never throws. */
export function parseControl(text: string): ParseResult {
  let value: unknown;
  try {
    value = JSON.parse(text, keepIdSource);
  } catch {
    // Any syntax error: compute Binance's line/column ourselves (V8's message format varies).
    return invalidJson(text);
  }
  if (!isRecord(value)) return fail(ERR_INVALID_REQUEST, 'Invalid request: expected a JSON object');

  const method = value['method'];
  if (method === undefined) {
    const { line, column } = lineColumn(text, text.trimEnd().length - 1);
    return fail(ERR_INVALID_REQUEST, `Invalid request: missing field \`method\` at line ${line} column ${column}`);
  }
  if (typeof method !== 'string') return fail(ERR_INVALID_REQUEST, 'Invalid request: method must be a string');
  if (!(METHODS as readonly string[]).includes(method)) {
    const { line, column } = lineColumn(text, methodValueEnd(text));
    return fail(
      ERR_INVALID_REQUEST,
      `Invalid request: unknown variant \`${method}\`, expected one of ${METHODS.map((m) => `\`${m}\``).join(', ')} at line ${line} column ${column}`,
    );
  }

  if (!('id' in value)) return fail(ERR_INVALID_REQUEST, 'Invalid request: missing field `id`');
  const id = idText(value['id']);
  if (id === undefined) {
    return fail(ERR_INVALID_REQUEST, 'Invalid request: request ID must be a 64-bit signed integer, an alphanumeric string of at most 36 characters, or null');
  }

  const params = value['params'];
  switch (method as Method) {
    case 'SUBSCRIBE':
    case 'UNSUBSCRIBE': {
      if (params === undefined) return fail(ERR_INVALID_REQUEST, 'Invalid request: missing field `params`', id);
      if (!Array.isArray(params)) return fail(ERR_INVALID_REQUEST, 'Invalid request: params must be an array', id);
      const names: string[] = [];
      for (const p of params as unknown[]) {
        if (typeof p !== 'string') return fail(ERR_INVALID_REQUEST, 'Invalid request: stream names must be strings', id);
        names.push(p);
      }
      return { ok: true, request: { method: method as 'SUBSCRIBE' | 'UNSUBSCRIBE', params: names, id } };
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
