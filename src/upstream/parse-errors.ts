/**
 * Counting and reporting bad upstream frames, for every venue's parser (and the frame decoder): every
 * bad frame is counted (metrics read `count`), but a `parse.error` status event leaves at most once
 * per `intervalMs`, carrying how many were suppressed since the last one, so a venue sending garbage
 * at line rate costs one log line per interval, not one per frame.
 */
import { isUtf8 } from 'node:buffer';
import type { Clock } from '../core/clock.ts';
import type { StatusStream } from '../core/status.ts';

export class ParseErrorReporter {
  readonly #venue: string;
  readonly #status: StatusStream;
  readonly #clock: Clock;
  readonly #intervalMs: number;
  #lastReportAt = Number.NEGATIVE_INFINITY;
  #suppressed = 0;
  /** Bad frames seen (monotonic). */
  count = 0;

  constructor(venue: string, status: StatusStream, clock: Clock, intervalMs = 1000) {
    this.#venue = venue;
    this.#status = status;
    this.#clock = clock;
    this.#intervalMs = intervalMs;
  }

  /** One bad frame: counted, and reported unless another report went out less than an interval ago. */
  report(reason: string, sample: string): void {
    this.count++;
    const now = this.#clock.monotonic();
    if (now - this.#lastReportAt < this.#intervalMs) {
      this.#suppressed++;
      return;
    }
    const more = this.#suppressed > 0 ? ` (+${this.#suppressed} more since the last report)` : '';
    this.#lastReportAt = now;
    this.#suppressed = 0;
    this.#status.emit({ type: 'parse.error', venue: this.#venue, reason: reason + more, sample: sample.slice(0, 200) });
  }
}

/**
 * A frame's bytes as a JSON object, or why not: the slow path every venue's parser shares. The bytes
 * are UTF-8-validated before anything is decoded (sockets skip ws's validation), so invalid text is an
 * error and never a candle. `text` is the decoded frame (a prefix of it when not UTF-8), for the report.
 */
export function jsonObjectOf(frame: Buffer): { readonly value: Record<string, unknown>; readonly text: string } | { readonly error: string; readonly text: string } {
  if (!isUtf8(frame)) return { error: 'invalid UTF-8', text: frame.toString('utf8', 0, 200) };
  const text = frame.toString('utf8');
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { error: 'invalid JSON', text };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return { error: 'frame is not a JSON object', text };
  return { value: value as Record<string, unknown>, text };
}
