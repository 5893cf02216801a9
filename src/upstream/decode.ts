/**
 * Frame decoding before anything reads a frame (venue.ts FrameEncoding): BingX sends every frame,
 * heartbeats included, as a GZIP member in a binary message (exchanges.md §3: "All response data
 * from Websocket Server are compressed into GZIP format", BingX-API/BingX-spot-api-doc@1d9d095
 * `WebSocket API.md` "Data Compression"; the same in BingX-swap-api-v2-doc@4a961e5).
 *
 * Bounded: ws already caps the compressed message at CONNECTOR_MAX_MESSAGE_BYTES (maxPayload), and
 * the inflated output is capped at the same figure with zlib's `maxOutputLength`, which stops
 * inflating as soon as the output would pass it (a 5 MB frame of zeros is a few KB of gzip: without
 * the cap one frame could take any amount of memory). A frame that inflates past the cap, or is not
 * valid gzip, is dropped and counted; it never throws out of here.
 *
 * Why `gunzipSync` per frame rather than a streaming or asynchronous inflater: frames must be handled
 * in socket order, synchronously, on the data path (heartbeats are recognised in the decoded bytes,
 * and the parser runs in the same turn); each frame is its own gzip member, so a stream would carry no
 * useful state across frames; and the cost is small. bench/gunzip.ts (`node bench/gunzip.ts`, 2-core
 * machine, Node 24): 7.2 µs per BingX kline push with the cap, 6.7 µs without it, 5.7 µs for
 * inflateRawSync past a hand-skipped header (no CRC check), 90 µs for an async gunzip awaited frame by
 * frame; JSON.parse of the same text is 0.9 µs. At BingX's one push a second per stream, 1000 streams
 * cost about 7 ms of CPU a second. The cap costs 0.5 µs and is what keeps a gzip bomb out of memory.
 */
import { gunzipSync } from 'node:zlib';
import type { FrameEncoding } from './venue.ts';

/** Why a frame could not be decoded. */
export type DecodeFailure = 'too-large' | 'corrupt';

export interface FrameDecoder {
  /** The decoded frame, or why there is none. Never throws. */
  decode(frame: Buffer): Buffer | DecodeFailure;
}

/** gunzip with the output capped at `maxBytes`. */
export class GzipFrameDecoder implements FrameDecoder {
  readonly #options: { readonly maxOutputLength: number };

  constructor(maxBytes: number) {
    this.#options = { maxOutputLength: maxBytes };
  }

  decode(frame: Buffer): Buffer | DecodeFailure {
    try {
      return gunzipSync(frame, this.#options);
    } catch (err) {
      // zlib throws RangeError ERR_BUFFER_TOO_LARGE at the cap, Z_DATA_ERROR / Z_BUF_ERROR for bad input:
      // both are the venue's bad frame, answered by the caller (counted, dropped).
      return err instanceof RangeError ? 'too-large' : 'corrupt';
    }
  }
}

/** The decoder for a venue's encoding; undefined for plain frames (no step on the data path at all). */
export function frameDecoder(encoding: FrameEncoding | undefined, maxBytes: number): FrameDecoder | undefined {
  switch (encoding) {
    case undefined:
    case 'none':
      return undefined;
    case 'gzip':
      return new GzipFrameDecoder(maxBytes);
  }
}
