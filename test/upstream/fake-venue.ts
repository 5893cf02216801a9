/**
 * A tiny venue for testing the venue-agnostic upstream (connection, pool, REST) without Binance:
 * frames are `{"s":"<topic>","t":<openTime>}`, 1m candles, REST pages `/k?start&end&limit` of rows
 * `[openTime, o, h, l, c, v]`, newest first (Bybit-like) unless told otherwise. Everything the
 * adapter interface lets a venue choose (heartbeat kind, REST order) is a parameter.
 */
import type { Candle, StreamRef } from '../../src/core/candle.ts';
import { closeTimeOf } from '../../src/core/intervals.ts';
import { PARSE_ERROR, UNKNOWN_STREAM, type FrameOutcome, type FrameParser, type HeartbeatKind, type ParserContext, type VenueAdapter } from '../../src/upstream/venue.ts';

export interface FakeVenueOptions {
  readonly heartbeat?: HeartbeatKind;
  readonly order?: 'oldest-first' | 'newest-first';
  readonly pageLimit?: number;
}

class FakeParser implements FrameParser {
  parseErrors = 0;
  unknownStreams = 0;
  lastControlId: number | string | null = null;
  lastControlError: { code: number; msg: string } | undefined = undefined;
  readonly #ctx: ParserContext;

  constructor(ctx: ParserContext) {
    this.#ctx = ctx;
  }

  parse(frame: Buffer, receivedAt: number): FrameOutcome {
    let v: unknown;
    try {
      v = JSON.parse(frame.toString('utf8'));
    } catch {
      // not JSON: a parse error, counted below
    }
    if (typeof v !== 'object' || v === null || !('s' in v) || !('t' in v) || typeof v.s !== 'string' || typeof v.t !== 'number') {
      this.parseErrors++;
      return PARSE_ERROR;
    }
    const ref = this.#ctx.registry.get(this.#ctx.venue, v.s);
    if (ref === undefined) {
      this.unknownStreams++;
      return UNKNOWN_STREAM;
    }
    return candle(ref, v.t, 'ws', receivedAt);
  }
}

export function candle(stream: StreamRef, openTime: number, source: 'ws' | 'rest', receivedAt: number): Candle {
  return {
    stream,
    openTime,
    closeTime: closeTimeOf(stream.interval, openTime),
    eventTime: openTime,
    closed: false,
    open: '1',
    high: '2',
    low: '0.5',
    close: '1.5',
    volume: '10',
    source,
    raw: undefined,
    receivedAt,
  };
}

export function fakeVenue(options: FakeVenueOptions = {}): VenueAdapter {
  const pageLimit = options.pageLimit ?? 100;
  return {
    id: 'fake',
    title: 'Fake',
    env: {
      vars: { symbols: 'X_SYMBOLS', intervals: 'X_INTERVALS', wsUrl: 'X_WS_URL', restUrl: 'X_REST_URL' },
      defaults: { intervals: ['1m'], wsUrl: 'ws://127.0.0.1:1', restUrl: 'http://127.0.0.1:1' },
      symbolPattern: /^[A-Z]+$/,
      symbolCase: 'upper',
      symbolForm: 'letters',
      intervals: { '1m': '1' },
    },
    streams: (symbols, intervals) =>
      symbols.flatMap((symbol) => intervals.map((interval) => ({ name: `fake:${symbol.toLowerCase()}@kline_${interval}`, topic: `k.${symbol}`, symbol, interval, nativeInterval: '1' }))),
    ws: {
      maxStreamsPerConnection: 10,
      controlBudgetPerSecond: 10,
      subscribeSpacingMs: 10,
      heartbeat: options.heartbeat ?? { kind: 'ws-ping' },
      rateLimit: { closeCodes: [4029], closePenaltyMs: 1000, upgradeStatuses: [429], defaultRetryAfterMs: 1000 },
      connectUrl: (base) => ({ url: `${base}/ws`, carried: 0 }),
      subscribeBatches: (topics) => [topics],
      subscribeFrame: (topics, id) => JSON.stringify({ op: 'sub', args: topics, id }),
      createParser: (ctx) => new FakeParser(ctx),
    },
    rest: {
      order: options.order ?? 'newest-first',
      page: (_stream, start, end) => ({ path: `/k?start=${start}&end=${end}&limit=${pageLimit}`, limit: pageLimit, weight: 1 }),
      parse(body, stream, nowWall, nowMono) {
        if (!Array.isArray(body)) return 'not an array';
        const out: Candle[] = [];
        for (const row of body as unknown[]) {
          if (!Array.isArray(row) || typeof row[0] !== 'number') return 'bad row';
          out.push({ ...candle(stream, row[0], 'rest', nowMono), closed: true, eventTime: nowWall });
        }
        return out;
      },
      usedWeightHeader: undefined,
      weightLimitPerMinute: 1000,
      gateStatuses: { 429: 1000 },
      banStatuses: [],
    },
  };
}
