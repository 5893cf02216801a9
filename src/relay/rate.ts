/**
 * The per-client inbound rate limit: a token bucket, charged when a frame arrives.
 *
 * Why a bucket and not Binance's fixed one-second window: under CPU load an honest client's frames
 * wait in the kernel and are then read together, so a window counted them as a burst and cut clients
 * sending 4/s with 1008 (issue 12). A bucket refilled at `rate` tokens per second by elapsed time,
 * holding at most BURST_SECONDS worth, keeps the sustained rate at `rate` and lets frames that queued
 * behind a busy event loop for up to that long through.
 *
 * "Arrives" is the socket read that carried the frame, not the moment it is handled: ws parses every
 * frame of one read synchronously, so a frame handled after costly earlier ones in the same read is
 * stamped with the read's time, not with the time their parsing took (the server stamps it from a
 * 'data' listener that runs before ws's).
 */

/** How much a client may send at once, in seconds' worth of its rate (10 frames at the default 5/s). */
export const BURST_SECONDS = 2;

/** The bucket's state, kept on the session (plain fields: no allocation per frame). */
export interface Bucket {
  /** Tokens left at `tokensAt`. A new client starts with a full bucket. */
  tokens: number;
  /** Monotonic ms of the last refill. */
  tokensAt: number;
}

/**
 * Take one token for a frame that arrived at `at` (monotonic ms). False when the bucket is empty:
 * the client is over its rate. `rate` is frames per second.
 */
export function takeToken(bucket: Bucket, at: number, rate: number): boolean {
  const burst = rate * BURST_SECONDS;
  // Frames of one read share `at`; a read never goes back in time, but guard against it anyway.
  const elapsed = at > bucket.tokensAt ? at - bucket.tokensAt : 0;
  let tokens = bucket.tokens + (elapsed * rate) / 1000;
  if (tokens > burst) tokens = burst;
  bucket.tokensAt = at > bucket.tokensAt ? at : bucket.tokensAt;
  if (tokens < 1) {
    bucket.tokens = tokens;
    return false;
  }
  bucket.tokens = tokens - 1;
  return true;
}
