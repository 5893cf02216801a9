/**
 * Binance's wire dialect for the venue simulator engine (src/simulator/dialect.ts), one per profile
 * (profiles.ts: spot, USD-M): market-stream routes (`/ws`, `/ws/<s>`, `/stream?streams=`, under a
 * route prefix), JSON control messages (control.ts), WebSocket ping frames, kline events raw or in the
 * combined envelope (the session's form), `serverShutdown`, and `GET /api/v3/klines` /
 * `GET /fapi/v1/klines` with the REQUEST_WEIGHT budget, 429 + Retry-After and 418 bans
 * (binance-protocol.md §1–§5, §7; exchanges.md §6).
 */
import type { ControlOp, GateContext, RestAnswer, RestEndpoint, SessionView, StreamRef, VenueDialect, WsRoute } from '../../../simulator/dialect.ts';
import { errorReply, parseControl, resultReply } from './control.ts';
import { klineEventJson, simKline } from './klines.ts';
import { simulatorProfile } from './profiles.ts';
import type { SimulatorProfile, SimulatorProfileId } from './profiles.ts';
import { limitForWeight, parseKlinesQuery } from './rest.ts';

/** Session forms: what a `combined` socket (`/stream…`, or SET_PROPERTY combined true) receives. */
export const RAW = 0;
export const COMBINED = 1;

const GARBAGE_FRAMES: readonly string[] = [
  'this is not json',
  '{"e":"kline","E":"soon","s":42,"k":[]}',
  '{"e":"mysteryEvent","E":1,"s":"BTCUSDT"}',
  '{"e":"kline","E":1700000000000,"s":"BTCUSDT","k":{"t":1700000000000,"T":17',
  '{"stream":"btcusdt@kline_1m","data":',
  '[1,2,3]',
  '{"result":"unexpected","id":"nobody-asked"}',
  'null',
];

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s; // a malformed escape stays as typed: it simply names no stream
  }
}

/**
 * Stream names from a query string, parsed by hand: URLSearchParams would turn the `+` of
 * `@+08:00` into a space (binance-protocol.md, implication 8).
 */
function streamsFromQuery(query: string): string[] {
  for (const part of query.split('&')) {
    if (part.startsWith('streams=')) {
      return part
        .slice('streams='.length)
        .split('/')
        .filter((s) => s !== '')
        .map(safeDecode);
    }
  }
  return [];
}

/**
 * The upgrade path on `profile`'s routes: under a route's prefix, `/ws` (empty, raw), `/ws/<s1>/<s2>`
 * (raw), `/stream` (empty, combined) or `/stream?streams=…`.
 */
function route(profile: SimulatorProfile, path: string, query: string): WsRoute | undefined {
  for (const r of profile.routes) {
    if (r.prefix !== '' && path !== r.prefix && !path.startsWith(r.prefix + '/')) continue;
    const rest = path.slice(r.prefix.length);
    if (rest === '/ws') return { streams: [], form: RAW, delivers: r.delivers };
    if (rest.startsWith('/ws/')) {
      const streams = rest
        .slice(4)
        .split('/')
        .filter((s) => s !== '')
        .map(safeDecode);
      return { streams, form: RAW, delivers: r.delivers };
    }
    if (rest === '/stream') return { streams: streamsFromQuery(query), form: COMBINED, delivers: r.delivers };
    if (r.prefix !== '') return undefined; // under a known prefix, nothing else is served
  }
  return undefined;
}

function control(text: string, session: SessionView): ControlOp {
  const req = parseControl(text);
  switch (req.kind) {
    case 'error':
      return { kind: 'reply', replies: [errorReply(req.code, req.msg, req.id)] };
    case 'SUBSCRIBE':
      return {
        kind: 'subscribe',
        streams: req.streams,
        ok: [resultReply('null', req.id)],
        // Binance has no per-request limits; past 1024 streams: undocumented but observed on Binance
        // (binance-protocol.md §2, unicorn#17).
        reject: () => ({ replies: [errorReply(4, 'Too many subscriptions', req.id)] }),
      };
    case 'UNSUBSCRIBE':
      return { kind: 'unsubscribe', streams: req.streams, ok: [resultReply('null', req.id)], reject: () => ({}) };
    case 'LIST_SUBSCRIPTIONS':
      return { kind: 'reply', replies: [resultReply(JSON.stringify([...session.streams]), req.id)] };
    case 'SET_PROPERTY':
      return { kind: 'set-form', form: req.value ? COMBINED : RAW, replies: [resultReply('null', req.id)] };
    case 'GET_PROPERTY':
      return { kind: 'reply', replies: [resultReply(String(session.form === COMBINED), req.id)] };
  }
}

function json(status: number, code: number, msg: string, headers?: Record<string, string>): RestAnswer {
  const body = `{"code":${code},"msg":${JSON.stringify(msg)}}`;
  return headers === undefined ? { status, body } : { status, body, headers };
}

function tooMuchWeight(capacity: number): string {
  return `Too much request weight used; current limit is ${capacity} request weight per 1 MINUTE.`;
}

function banAnswer(ctx: GateContext, retryAfter: string, backoffMs: number): RestAnswer {
  return {
    ...json(418, -1003, `Way too much request weight used; IP banned until ${ctx.untilWall}. Please use WebSocket Streams for live updates to avoid bans.`, {
      'Retry-After': retryAfter,
    }),
    backoffMs,
  };
}

function makeDialect(profile: SimulatorProfile): VenueDialect {
  const streamRefs = new Map<string, StreamRef | undefined>();
  const rest = profile.rest;
  const klines: RestEndpoint = { kind: 'klines' };
  const ping: RestEndpoint = { kind: 'static', body: () => '{}' };
  const time: RestEndpoint = { kind: 'static', body: (now) => `{"serverTime":${now}}` };
  // One update's raw event, kept for the combined form of the same update (serialize once per tick).
  let lastUpdate: object | undefined;
  let lastRaw = '';
  return {
    id: profile.id,
    title: profile.title,
    series: profile.series,
    ws: {
      route: (path, query) => route(profile, path, query),
      primaryPath: profile.primaryPrefix,
      streamOf: (name) => {
        if (streamRefs.has(name)) return streamRefs.get(name);
        const m = profile.streamRe.exec(name);
        const ref = m?.[1] !== undefined && m[2] !== undefined ? { symbol: m[1], interval: m[2] } : undefined;
        if (streamRefs.size < 100_000) streamRefs.set(name, ref);
        return ref;
      },
      updateMs: profile.updateMs,
      limits: {
        maxStreamsPerConnection: profile.maxStreamsPerConnection,
        maxInboundPerSecond: profile.maxInboundPerSecond,
        inboundFlood: { close: { code: 1008, reason: 'Too many requests' } },
        maxConnectionsPerWindow: profile.maxConnectionsPer5Min,
        connectionWindowMs: 5 * 60_000,
        connectionMaxAgeMs: profile.connectionMaxAgeMs,
      },
      heartbeat: {
        kind: 'ws-ping',
        intervalMs: profile.pingIntervalMs,
        timeoutMs: profile.pongTimeoutMs,
        anyPongKeepsAlive: profile.unsolicitedPongKeepsAlive,
      },
      control: { parse: control },
      event: {
        frame: (u, form) => {
          if (u !== lastUpdate) {
            lastUpdate = u;
            lastRaw = klineEventJson(simKline(u.candle), u.eventTime);
          }
          return form === COMBINED ? '{"stream":"' + u.stream + '","data":' + lastRaw + '}' : lastRaw;
        },
        closed: 'flag',
      },
      encoding: 'text',
      rotationNotice: (now, form) => {
        const event = `{"e":"serverShutdown","E":${now}}`;
        return form === COMBINED ? `{"stream":"!serverShutdown","data":${event}}` : event;
      },
      garbage: GARBAGE_FRAMES,
      rejectBody: (reason, detail) => {
        const code = reason === 'too-many-attempts' ? -1003 : reason === 'closing' ? -1016 : -1;
        return `{"code":${code},"msg":${JSON.stringify(detail)}}`;
      },
    },
    rest: {
      endpoint: (path) =>
        rest.klinesPaths.includes(path) ? klines : path === rest.pingPath ? ping : path === rest.timePath ? time : undefined,
      parse: (params) => {
        const q = parseKlinesQuery(params, profile);
        return 'code' in q ? json(q.status, q.code, q.msg) : q;
      },
      rows: (candles) =>
        JSON.stringify(
          candles.map((c) => [c.openTime, c.open, c.high, c.low, c.close, c.volume, c.closeTime, c.quoteVolume, c.trades, c.takerBuyVolume, c.takerBuyQuoteVolume, '0']),
        ),
      rate: {
        windowMs: 60_000,
        capacity: rest.weightPerMinute,
        // Spot klines weigh 2 whatever the limit; USD-M weighs them by limit (profiles.ts); ping and time 1.
        cost: (kind, params) => (kind === 'klines' ? rest.klinesWeight(limitForWeight(params, profile)) : 1),
        usageHeaders: (used) => ({ 'X-MBX-USED-WEIGHT-1M': String(used) }),
        limited: (ctx) => ({
          ...json(429, -1003, `${tooMuchWeight(ctx.capacity)} Please use WebSocket Streams for live updates to avoid polling the API.`, {
            'Retry-After': String(ctx.retryAfterSeconds),
            'X-MBX-USED-WEIGHT-1M': String(ctx.used),
          }),
          backoffMs: ctx.retryAfterSeconds * 1000,
        }),
        // Binance bans only an IP that keeps sending after 429s (the engine's restBanAfterViolations).
        banMs: 0,
        banExtendMs: 0,
        banned: (ctx) => banAnswer(ctx, String(ctx.retryAfterSeconds), ctx.retryAfterSeconds * 1000),
      },
      injected: (status, retryAfter, retryAfterMs, ctx) => {
        switch (status) {
          case 429:
            return { ...json(429, -1003, tooMuchWeight(ctx.capacity), { 'Retry-After': retryAfter }), backoffMs: retryAfterMs };
          case 418:
            return banAnswer(ctx, retryAfter, retryAfterMs);
          case 403:
            // Binance's WAF answers with an HTML page, not a JSON error.
            return {
              status: 403,
              body: '<html><head><title>403 Forbidden</title></head><body>Request blocked.</body></html>',
              contentType: 'text/html',
            };
          case 500:
            return json(500, -1000, 'An unknown error occurred while processing the request.');
        }
      },
      notFound: json(404, -1, 'Not found.'),
      methodNotAllowed: json(405, -1, 'Method not allowed.'),
      internalError: (msg) => json(500, -1000, msg),
    },
  };
}

/**
 * The engine dialect of a Binance profile. A fresh value per simulator: its small caches (stream
 * names, the last serialized event) belong to the simulator that uses it.
 */
export function binanceDialect(id: SimulatorProfileId): VenueDialect {
  return makeDialect(simulatorProfile(id));
}
