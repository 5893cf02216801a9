/**
 * `Retry-After` (RFC 9110 §10.2.3): delay-seconds or an HTTP-date, venue-agnostic. The one parser the
 * REST clients, the WebSocket upgrade path and the simulator share, so a date is never honoured on one
 * path and ignored on another.
 *
 * - delay-seconds `120`: 120 000 ms. A decimal `1.5` is not RFC syntax, but a server that sends one
 *   means seconds, so it is read as 1 500 ms (rounded up to whole ms) rather than ignored.
 * - HTTP-date in any of the three forms a recipient must accept (IMF-fixdate
 *   `Sun, 06 Nov 1994 08:49:37 GMT`, obsolete RFC 850 `Sunday, 06-Nov-94 08:49:37 GMT`, asctime
 *   `Sun Nov  6 08:49:37 1994`): the time left until then, 0 when it has passed.
 * - Anything else (empty, negative, `soon`, a bare year that `Date.parse` would happily read): undefined,
 *   and the caller uses its own default wait.
 */

const SECONDS_RE = /^\d+(?:\.\d+)?$/;
const IMF_FIXDATE_RE = /^[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT$/;
const RFC850_RE = /^[A-Z][a-z]{5,8}, \d{2}-[A-Z][a-z]{2}-\d{2} \d{2}:\d{2}:\d{2} GMT$/;
const ASCTIME_RE = /^[A-Z][a-z]{2} [A-Z][a-z]{2} [ \d]\d \d{2}:\d{2}:\d{2} \d{4}$/;

/**
 * Milliseconds to wait, from a `Retry-After` header value (the first one when repeated), measured
 * against `nowWall` (wall-clock ms) for the date form. Undefined when absent or unreadable.
 */
export function parseRetryAfter(value: string | readonly string[] | undefined, nowWall: number): number | undefined {
  const raw = typeof value === 'string' ? value : value?.[0];
  if (raw === undefined) return undefined;
  const v = raw.trim();
  if (SECONDS_RE.test(v)) return Math.ceil(Number(v) * 1000);
  if (IMF_FIXDATE_RE.test(v) || RFC850_RE.test(v) || ASCTIME_RE.test(v)) {
    // asctime carries no zone: it is GMT by definition, and Date.parse would read it as local time.
    const at = Date.parse(ASCTIME_RE.test(v) ? `${v} GMT` : v);
    if (Number.isNaN(at)) return undefined;
    return Math.max(0, at - nowWall);
  }
  return undefined;
}
