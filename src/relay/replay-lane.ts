/**
 * Resume replays' share of the venue REST (contract §5): below live gap recovery. Both go through the
 * same RestClient, so the same IP-wide RestGate, weight budgets, bans and breaker apply; the lane
 * only decides when a replay may ask:
 *   - never while a gap recovery is in flight (recovery() counts them): a replay waits, polling every
 *     RECOVERY_POLL_MS, and so never takes weight a recovery is about to need;
 *   - at most one replay fetch at a time per venue, whatever the number of clients replaying (a
 *     fetch is one page run of at most the relay's REPLAY_REST_PAGE candles).
 * A replay that is waiting is aborted with its client (the signal).
 */
import { sleep } from '../core/sleep.ts';

const RECOVERY_POLL_MS = 50;

export class ReplayLane {
  #recovering = 0;
  /** Per venue: the end of the last queued replay fetch (a promise chain: one at a time). */
  readonly #tails = new Map<string, Promise<unknown>>();

  /** Gap recoveries in flight. */
  get recovering(): number {
    return this.#recovering;
  }

  /** Run a live gap recovery (counted: replays wait while any is in flight). */
  async recovery<T>(run: () => Promise<T>): Promise<T> {
    this.#recovering++;
    try {
      return await run();
    } finally {
      this.#recovering--;
    }
  }

  /** Run a replay fetch for `venue` once no recovery is in flight and no other replay fetch of the venue runs. */
  replay<T>(venue: string, signal: AbortSignal, run: () => Promise<T>): Promise<T> {
    const before = this.#tails.get(venue) ?? Promise.resolve();
    const mine = before.then(async () => {
      while (this.#recovering > 0) await sleep(RECOVERY_POLL_MS, signal);
      signal.throwIfAborted();
      return run();
    });
    // The chain must not break on one failure; the next waiter only needs this one to be over.
    const tail = mine.catch(() => undefined);
    this.#tails.set(venue, tail);
    void tail.then(() => {
      if (this.#tails.get(venue) === tail) this.#tails.delete(venue);
    });
    return mine;
  }
}
