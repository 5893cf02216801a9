/**
 * Binance market-stream control messages (binance-protocol.md §2): parse one inbound text frame into a
 * request or a Binance error, and build the replies. Error wire shape as observed on Binance:
 * `{"error":{"code":2,"msg":"…"},"id":1}`, `"id":null` when the request cannot be correlated.
 */

export type RequestId = number | string | null;

export type ControlRequest =
  | { readonly kind: 'SUBSCRIBE' | 'UNSUBSCRIBE'; readonly id: RequestId; readonly streams: readonly string[] }
  | { readonly kind: 'LIST_SUBSCRIPTIONS'; readonly id: RequestId }
  | { readonly kind: 'SET_PROPERTY'; readonly id: RequestId; readonly value: boolean }
  | { readonly kind: 'GET_PROPERTY'; readonly id: RequestId }
  | { readonly kind: 'error'; readonly id: RequestId; readonly code: number; readonly msg: string };

const METHODS = ['SUBSCRIBE', 'UNSUBSCRIBE', 'LIST_SUBSCRIPTIONS', 'SET_PROPERTY', 'GET_PROPERTY'] as const;
type Method = (typeof METHODS)[number];
const METHOD_LIST = METHODS.map((m) => `\`${m}\``).join(', ');
const BAD_ID = 'Invalid request: request ID must be an unsigned integer';
const INT64_MAX = 2 ** 63;
// Docs: "alphanumeric strings; max length 36" (UUID-sized); dashes/underscores tolerated here.
const STRING_ID_RE = /^[A-Za-z0-9_-]{1,36}$/;

function fail(code: number, msg: string, id: RequestId): ControlRequest {
  return { kind: 'error', code, msg, id };
}

function isMethod(x: unknown): x is Method {
  return typeof x === 'string' && (METHODS as readonly string[]).includes(x);
}

function validId(x: unknown): x is RequestId {
  if (x === null) return true;
  if (typeof x === 'number') return Number.isInteger(x) && Math.abs(x) < INT64_MAX;
  return typeof x === 'string' && STRING_ID_RE.test(x);
}

/** 1-based line/column of a character offset, for serde-style messages. */
function lineCol(text: string, offset: number): string {
  let line = 1;
  let col = 1;
  for (let i = 0; i < offset && i < text.length; i++) {
    if (text.charCodeAt(i) === 10) {
      line++;
      col = 1;
    } else {
      col++;
    }
  }
  return `line ${line} column ${col}`;
}

function jsonErrorOffset(err: unknown, text: string): number {
  const m = err instanceof Error ? /position (\d+)/.exec(err.message) : null;
  return m?.[1] !== undefined ? Number(m[1]) : text.length;
}

function stringParams(params: unknown): readonly string[] | undefined {
  if (!Array.isArray(params)) return undefined;
  for (const p of params) if (typeof p !== 'string') return undefined;
  return params as string[];
}

export function parseControl(text: string): ControlRequest {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    return fail(3, `Invalid JSON: expected value at ${lineCol(text, jsonErrorOffset(err, text))}`, null);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return fail(2, 'Invalid request: expected a JSON object', null);
  }
  const o = value as Record<string, unknown>;
  // A request without `id` is served and answered with `"id":null` (binance-spot-api-docs
  // web-socket-streams.md: "id ... null"; issue 11 point 4: Binance answers id-less requests).
  if ('id' in o && !validId(o.id)) return fail(2, BAD_ID, null);
  const id = 'id' in o ? (o.id as RequestId) : null;
  if (!('method' in o)) return fail(2, `Invalid request: missing field \`method\` at ${lineCol(text, text.length)}`, id);
  const method = o.method;
  if (!isMethod(method)) {
    const shown = typeof method === 'string' ? method : JSON.stringify(method);
    const at = text.indexOf('"method"');
    return fail(2, `Invalid request: unknown variant \`${shown}\`, expected one of ${METHOD_LIST} at ${lineCol(text, at < 0 ? 0 : at)}`, id);
  }
  const params = o.params;
  switch (method) {
    case 'SUBSCRIBE':
    case 'UNSUBSCRIBE': {
      const streams = stringParams(params);
      if (streams === undefined) return fail(2, 'Invalid request: params must be a list of stream names', id);
      return { kind: method, id, streams };
    }
    case 'LIST_SUBSCRIPTIONS':
      if (Array.isArray(params) && params.length > 0) return fail(2, 'Invalid request: too many parameters', id);
      return { kind: method, id };
    case 'SET_PROPERTY':
    case 'GET_PROPERTY': {
      if (!Array.isArray(params) || typeof params[0] !== 'string') {
        return fail(2, 'Invalid request: property name must be a string', id);
      }
      const arity = method === 'SET_PROPERTY' ? 2 : 1;
      if (params.length > arity) return fail(2, 'Invalid request: too many parameters', id);
      if (params[0] !== 'combined') return fail(0, 'Unknown property', id);
      if (method === 'GET_PROPERTY') return { kind: method, id };
      const v: unknown = params[1];
      if (typeof v !== 'boolean') return fail(1, 'Invalid value type: expected Boolean', id);
      return { kind: method, id, value: v };
    }
  }
}

function idJson(id: RequestId): string {
  return id === null ? 'null' : JSON.stringify(id);
}

/** `{"result":<resultJson>,"id":…}`; `resultJson` is already serialized. */
export function resultReply(resultJson: string, id: RequestId): string {
  return `{"result":${resultJson},"id":${idJson(id)}}`;
}

export function errorReply(code: number, msg: string, id: RequestId): string {
  return `{"error":{"code":${code},"msg":${JSON.stringify(msg)}},"id":${idJson(id)}}`;
}
