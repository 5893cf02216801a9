/**
 * Counting and reporting bad upstream frames, for every venue's parser (and the frame decoder): every
 * bad frame is counted (metrics read `count`), but a `parse.error` status event leaves at most once
 * per `intervalMs`, carrying how many were suppressed since the last one, so a venue sending garbage
 * at line rate costs one log line per interval, not one per frame.
 */
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
