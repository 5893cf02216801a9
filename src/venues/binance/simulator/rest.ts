/**
 * `GET /api/v3/klines` (spot) and `GET /fapi/v1/klines` (USD-M) query semantics (binance-protocol.md
 * §5; USD-M: "Data is returned in ascending order", "If startTime and endTime are not sent, the most
 * recent klines are returned"): startTime → oldest rows from startTime; endTime only → most recent rows
 * up to endTime; neither → most recent rows. The rows themselves come from the engine
 * (src/simulator/query.ts): chronological, the last one possibly the candle still forming, holes
 * skipped and not counted towards `limit`.
 */
import type { KlinesQuery } from '../../../simulator/dialect.ts';
import type { SimulatorProfile } from './profiles.ts';

export interface RestError {
  readonly status: number;
  readonly code: number;
  readonly msg: string;
}

const REST_SYMBOL_RE = /^[A-Z0-9_.-]{1,20}$/;
const DIGITS_RE = /^[0-9]{1,20}$/;
/** Binance accepts µs timestamps in startTime/endTime; anything this large cannot be ms. */
const MICROS_THRESHOLD = 1e15;

function bad(code: number, msg: string): RestError {
  return { status: 400, code, msg };
}

function mandatory(name: string): RestError {
  return bad(-1102, `Mandatory parameter '${name}' was not sent, was empty/null, or malformed.`);
}

function parseLong(params: URLSearchParams, name: string): number | undefined | RestError {
  const raw = params.get(name);
  if (raw === null || raw === '') return undefined;
  if (!DIGITS_RE.test(raw)) {
    return bad(-1100, `Illegal characters found in parameter '${name}'; legal range is '^[0-9]{1,20}$'.`);
  }
  const n = Number(raw);
  return n >= MICROS_THRESHOLD ? Math.floor(n / 1000) : n;
}

function isError(x: unknown): x is RestError {
  return typeof x === 'object' && x !== null && 'code' in x;
}

/**
 * The limit a klines request is weighed by (USD-M weighs by limit): the one it asked for when that is
 * a number of rows at all, else the default (what Binance would have used).
 */
export function limitForWeight(params: URLSearchParams, profile: SimulatorProfile): number {
  const raw = params.get('limit');
  if (raw === null || !/^[0-9]{1,7}$/.test(raw)) return profile.rest.defaultLimit;
  const n = Number(raw);
  return n >= 1 ? n : profile.rest.defaultLimit;
}

/**
 * Validate query parameters the way Binance does (codes from errors.md; USD-M uses the same codes).
 * Past the maximum limit (spot 1000, USD-M 1500) the answer is -1130, not a clamped page: the USD-M page
 * says only "max 1500", and a refusal is what makes a client that asks for more fail in tests rather
 * than silently receive fewer rows than it believes it asked for.
 */
export function parseKlinesQuery(params: URLSearchParams, profile: SimulatorProfile): KlinesQuery | RestError {
  const symbol = params.get('symbol');
  if (symbol === null || symbol === '') return mandatory('symbol');
  const interval = params.get('interval');
  if (interval === null || interval === '') return mandatory('interval');
  // USD-M has no 1s interval (Kline-Candlestick-Data's interval list): -1120 as for any unknown one.
  if (!profile.intervals.has(interval)) return bad(-1120, 'Invalid interval.');
  if (!REST_SYMBOL_RE.test(symbol)) return bad(-1121, 'Invalid symbol.');
  const startTime = parseLong(params, 'startTime');
  if (isError(startTime)) return startTime;
  const endTime = parseLong(params, 'endTime');
  if (isError(endTime)) return endTime;
  let limit = profile.rest.defaultLimit;
  const rawLimit = params.get('limit');
  if (rawLimit !== null && rawLimit !== '') {
    if (!/^-?[0-9]{1,20}$/.test(rawLimit)) {
      return bad(-1100, "Illegal characters found in parameter 'limit'; legal range is '^[0-9]{1,20}$'.");
    }
    limit = Number(rawLimit);
    if (limit < 1 || limit > profile.rest.maxLimit) return bad(-1130, "Data sent for parameter 'limit' is not valid.");
  }
  if (startTime !== undefined && endTime !== undefined && startTime > endTime) {
    return bad(-1023, 'Start time is greater than end time.');
  }
  const to = endTime === undefined ? {} : { to: endTime };
  return startTime === undefined
    ? { symbol, interval, limit, take: 'newest', ...to }
    : { symbol, interval, limit, take: 'oldest', from: startTime, ...to };
}
