/**
 * Closed-by-next-open (upstream/finalizer.ts → Pipeline.opened → GapTracker.opened), for venues
 * whose frames carry no closed flag (BingX): the real pipeline with a recording inline sink and a REST
 * stand-in whose final rows differ from the last WebSocket update, as the real exchange's may. A
 * candle goes out closed once a later one has started, with REST's values, once, in order, before any
 * update of a later candle is taken for closed; REST that has not got the final row yet is asked again
 * (its newest row is final only once it has a later one); a hole only by the one hole rule.
 */
import { describe, expect, it } from 'vitest';
import { EnvSchema } from '../../src/config/schema.ts';
import type { Candle, InlineSink, StreamRef } from '../../src/core/candle.ts';
import type { RecoveredRange } from '../../src/core/recovery.ts';
import { openTimeAt } from '../../src/core/intervals.ts';
import { StatusStream, type StatusEvent } from '../../src/core/status.ts';
import { Pipeline } from '../../src/pipeline/pipeline.ts';
import { NextOpenFinalizer } from '../../src/upstream/finalizer.ts';
import { candle, streams } from '../helpers/candles.ts';
import { eventsOf, waitFor } from '../upstream/helpers.ts';

const MIN = 60_000;

/** A REST stand-in: the rows it has (open time → close price), each `final` unless told otherwise; every ask recorded. */
class FakeRest {
  readonly rows = new Map<number, string>();
  readonly asked: [number, number][] = [];

  fetch = (stream: StreamRef, from: number, to: number): Promise<RecoveredRange> => {
    this.asked.push([from, to]);
    const candles: Candle[] = [];
    let frontier: number | undefined;
    for (const [t, close] of [...this.rows].sort((a, b) => a[0] - b[0])) {
      if (t < from || t > to) continue; // endTime inclusive: the row at `to` shows REST is past the range
      frontier = t;
      if (t < to) candles.push({ ...candle(stream, t, true, Date.now(), 'rest'), close });
    }
    return Promise.resolve({ candles, frontier });
  };
}

function setup() {
  const rest = new FakeRest();
  const status = new StatusStream();
  const events: StatusEvent[] = [];
  status.subscribe((e) => events.push(e));
  const out: Candle[] = [];
  const sink: InlineSink = { name: 'recorder', deliver: (batch) => out.push(...batch) };
  const pipeline = new Pipeline({
    config: EnvSchema.parse({}).pipeline,
    inline: [sink],
    sinks: [],
    status,
    clock: { now: () => Date.now(), monotonic: () => performance.now() },
    recover: rest.fetch,
    onBlocked: () => undefined,
    onUnblocked: () => undefined,
    gapRetryDelaysMs: [20, 40],
  });
  const btc = streams([['btc-usdt', '1m']]).refs[0]!;
  let wall = Date.now();
  const finalizer = new NextOpenFinalizer({
    inner: {
      candle: (c) => {
        pipeline.ingest(c);
      },
      resync: (s) => {
        pipeline.resync(s);
      },
    },
    opened: (s, t) => {
      pipeline.opened(s, t);
    },
    clock: { now: () => wall, monotonic: () => performance.now() },
    streams: [btc],
    graceMs: 2000,
  });
  // A recent minute, inside the hole horizon: nothing is a hole by age.
  const T0 = openTimeAt('1m', Date.now()) - 3 * MIN;
  let seq = 0;
  /** A WebSocket update of the candle opening at t, with its close price as that update says. */
  const ws = (t: number, close: string): void => {
    finalizer.candle({ ...candle(btc, t, false, T0 + ++seq), close });
  };
  const closed = (): Candle[] => out.filter((c) => c.closed);
  const setWall = (t: number): void => {
    wall = t;
  };
  return { rest, events, out, pipeline, ws, closed, T0, finalizer, setWall };
}

describe('closed by the next open, with REST’s final row', () => {
  it('delivers a candle closed once the next one starts, with REST’s final values rather than the last update’s, and drops its updates after that', async () => {
    const { rest, pipeline, ws, closed, out, events, T0 } = setup();
    rest.rows.set(T0, 'final-0').set(T0 + MIN, 'final-1');
    ws(T0, 'ws-0a');
    ws(T0, 'ws-0b');
    await waitFor('the open updates', () => out.length > 0);
    expect(closed()).toEqual([]);
    ws(T0 + MIN, 'ws-1a');
    await waitFor('the first candle closed', () => closed().length === 1);
    expect(closed()[0]).toMatchObject({ openTime: T0, close: 'final-0', source: 'rest', closed: true });
    // A late update of the closed candle never follows it.
    const before = out.length;
    ws(T0, 'ws-0c');
    ws(T0 + MIN, 'ws-1b');
    await waitFor('the later update', () => out.length > before);
    expect(out.slice(before).map((c) => [c.openTime, c.close])).toEqual([[T0 + MIN, 'ws-1b']]);
    expect(rest.asked).toEqual([[T0, T0 + MIN]]);
    expect(pipeline.gapStats).toMatchObject({ finalized: 1, backfills: 0, candlesRecovered: 0, holes: 0 });
    expect(eventsOf(events, 'backfill')).toEqual([]);
  });

  it('asks again while REST has not got a later row (its newest row may still change), then delivers the final one', async () => {
    const { rest, pipeline, ws, closed, T0 } = setup();
    rest.rows.set(T0, 'partial-0');
    ws(T0, 'ws-0');
    ws(T0 + MIN, 'ws-1');
    await waitFor('two asks', () => rest.asked.length >= 2);
    expect(closed()).toEqual([]);
    rest.rows.set(T0, 'final-0').set(T0 + MIN, 'forming-1');
    await waitFor('the first candle closed', () => closed().length === 1);
    expect(closed()[0]?.close).toBe('final-0');
    expect(pipeline.gapStats).toMatchObject({ finalized: 1, backfills: 0, holes: 0 });
  });

  it('asks for every candle superseded while a request waits in one request, and delivers them once, in order', async () => {
    const { rest, ws, closed, T0 } = setup();
    ws(T0, 'ws-0');
    ws(T0 + MIN, 'ws-1'); // REST has nothing yet: the ask is repeated
    await waitFor('an unanswered ask', () => rest.asked.length >= 1);
    ws(T0 + 2 * MIN, 'ws-2');
    rest.rows.set(T0, 'final-0').set(T0 + MIN, 'final-1').set(T0 + 2 * MIN, 'forming-2');
    await waitFor('two closed', () => closed().length === 2);
    expect(closed().map((c) => [c.openTime - T0, c.close])).toEqual([
      [0, 'final-0'],
      [MIN, 'final-1'],
    ]);
    expect(rest.asked.at(-1)).toEqual([T0, T0 + 2 * MIN]);
  });

  it('leaves a candle REST moved past absent (a hole, counted and reported), never the last update in its place', async () => {
    const { rest, pipeline, ws, closed, events, T0 } = setup();
    rest.rows.set(T0 + MIN, 'final-1').set(T0 + 2 * MIN, 'forming-2');
    ws(T0, 'ws-0');
    ws(T0 + MIN, 'ws-1');
    ws(T0 + 2 * MIN, 'ws-2');
    await waitFor('the second candle closed', () => closed().length === 1);
    expect(closed().map((c) => [c.openTime - T0, c.close])).toEqual([[MIN, 'final-1']]);
    expect(pipeline.gapStats.holes).toBe(1);
    expect(eventsOf(events, 'backfill').map((e) => [e.outcome, e.holes])).toEqual([['partial', 1]]);
  });

  it('closes a quiet stream’s candle by the clock, a grace after its end, when no later update comes', async () => {
    const { rest, ws, closed, T0, finalizer, setWall } = setup();
    rest.rows.set(T0, 'final-0').set(T0 + MIN, 'final-1');
    setWall(T0 + 30_000);
    ws(T0, 'ws-0');
    finalizer.tick();
    setWall(T0 + MIN + 1999); // the next candle started, but within the grace: not yet
    finalizer.tick();
    expect(rest.asked).toEqual([]);
    setWall(T0 + MIN + 2000);
    finalizer.tick();
    await waitFor('the quiet candle closed', () => closed().length === 1);
    expect(closed()[0]).toMatchObject({ openTime: T0, close: 'final-0' });
    // Its successor's first update changes nothing (already known to have started).
    ws(T0 + MIN, 'ws-1');
    finalizer.tick();
    expect(rest.asked).toEqual([[T0, T0 + MIN]]);
  });
});
