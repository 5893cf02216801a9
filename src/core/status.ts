/**
 * The one typed status stream (style habit 2). Every state transition in the daemon is emitted here
 * exactly once; the logger, the Prometheus metrics and /ready all read this stream instead of being
 * called from the code that changes state. Per-message figures (messages processed, latency) are NOT
 * events: components keep plain counters that metrics read on scrape (see `*Stats` interfaces).
 */

export type ConnState =
  | 'connecting'
  | 'connected'
  | 'disconnected'
  | 'reconnecting'
  | 'suspended' // breaker open: no attempts until the breaker half-opens
  | 'failed' // gave up (retries exhausted); the pool replaces it
  | 'closed'; // closed on purpose (rotation done, shutdown)

export type QualityGrade = 'excellent' | 'good' | 'poor' | 'critical';

export type BreakerState = 'closed' | 'open' | 'half-open';

/** A queued sink's health (src/pipeline/sinks.ts): `failing` from its first failed batch until one succeeds; `stopped` after shutdown. */
export type SinkState = 'ok' | 'failing' | 'stopped';

export type StatusEvent =
  | {
      readonly type: 'connection.state';
      readonly venue: string;
      readonly connId: string;
      readonly from: ConnState;
      readonly to: ConnState;
      readonly reason: string;
      readonly streams: number;
    }
  | { readonly type: 'connection.quality'; readonly venue: string; readonly connId: string; readonly grade: QualityGrade }
  | { readonly type: 'connection.error'; readonly venue: string; readonly connId: string; readonly error: string }
  | {
      readonly type: 'connection.reconnect';
      readonly venue: string;
      readonly connId: string;
      readonly attempt: number;
      readonly delayMs: number;
      readonly reason: string;
    }
  | { readonly type: 'connection.rotation'; readonly venue: string; readonly connId: string; readonly reason: string }
  | { readonly type: 'server.shutdown-notice'; readonly venue: string; readonly connId: string }
  | { readonly type: 'stream.stale'; readonly venue: string; readonly stream: string; readonly silentMs: number; readonly connId: string }
  | { readonly type: 'stream.live'; readonly venue: string; readonly stream: string; readonly connId: string }
  | { readonly type: 'breaker'; readonly name: string; readonly from: BreakerState; readonly to: BreakerState }
  | { readonly type: 'parse.error'; readonly venue: string; readonly reason: string; readonly sample: string }
  | { readonly type: 'ratelimit'; readonly venue: string; readonly scope: 'ws' | 'rest'; readonly kind: string; readonly retryAfterMs: number }
  | {
      readonly type: 'backfill';
      readonly venue: string;
      readonly stream: string;
      readonly fromOpenTime: number;
      readonly toOpenTime: number;
      readonly missing: number;
      readonly recovered: number;
      readonly holes: number;
      readonly outcome: 'ok' | 'partial' | 'failed';
      readonly error?: string;
    }
  | { readonly type: 'queue.blocked'; readonly depth: number }
  | { readonly type: 'queue.resumed'; readonly depth: number; readonly blockedMs: number }
  | {
      readonly type: 'sink.state';
      readonly sink: string;
      readonly from: SinkState;
      readonly to: SinkState;
      /** Candles queued or in flight for this sink at the change (at `stopped`: what it never got). */
      readonly pending: number;
      /** Failed attempts so far in this failing spell (1 on ok → failing; the total on failing → ok / stopped). */
      readonly attempts: number;
      /** The failure that started the spell (ok → failing) or the last one (failing → stopped). */
      readonly error?: string;
    }
  | { readonly type: 'sink.shedding'; readonly sink: string; readonly pending: number; readonly catchUp: boolean }
  | { readonly type: 'sink.gap'; readonly sink: string; readonly candles: number; readonly streams: number; readonly catchUp: boolean }
  | { readonly type: 'relay.client.open'; readonly clientId: string; readonly remote: string; readonly path: string }
  | { readonly type: 'relay.client.close'; readonly clientId: string; readonly code: number; readonly reason: string }
  | { readonly type: 'relay.client.rejected'; readonly remote: string; readonly status: number; readonly reason: string }
  | {
      readonly type: 'relay.slow-consumer';
      readonly clientId: string;
      readonly bufferedBytes: number;
      /** Which bound it passed: its own (CONNECTOR_RELAY_MAX_BUFFERED_BYTES) or the relay's total budget. */
      readonly limit: 'client' | 'relay';
    }
  | { readonly type: 'relay.client.error'; readonly clientId: string; readonly code: number; readonly msg: string }
  | {
      /** Admission: `over` while new relay clients get 503 (unsent bytes above the budget's low watermark, or heap pressure). */
      readonly type: 'relay.budget';
      readonly state: 'over' | 'under';
      readonly cause: 'buffers' | 'heap';
      readonly bufferedBytes: number;
      readonly budgetBytes: number;
    }
  | { readonly type: 'relay.tls'; readonly outcome: 'reloaded' | 'failed'; readonly error?: string }
  /** V8 heap use crossed the pressure threshold (`high`) or fell back below the lower one (`normal`). */
  | { readonly type: 'heap.pressure'; readonly state: 'high' | 'normal'; readonly usedBytes: number; readonly limitBytes: number }
  | { readonly type: 'lifecycle'; readonly phase: 'starting' | 'started' | 'draining' | 'stopped'; readonly detail?: string };

export type StatusEventType = StatusEvent['type'];
export type StatusEventOf<T extends StatusEventType> = Extract<StatusEvent, { type: T }>;

export interface Disposable {
  dispose(): void;
}

type Listener = (event: StatusEvent) => void;

/**
 * A synchronous, typed broadcaster. Listeners run in registration order; a throwing listener is a
 * programming error and propagates (the process crashes and Kubernetes restarts it).
 */
export class StatusStream {
  #listeners: Listener[] = [];
  #byType = new Map<StatusEventType, Array<(event: StatusEvent) => void>>();

  emit(event: StatusEvent): void {
    for (const l of this.#listeners) l(event);
    const typed = this.#byType.get(event.type);
    if (typed !== undefined) for (const l of typed) l(event);
  }

  /** Listen to every event. */
  subscribe(listener: Listener): Disposable {
    this.#listeners = [...this.#listeners, listener];
    return {
      dispose: () => {
        this.#listeners = this.#listeners.filter((l) => l !== listener);
      },
    };
  }

  /** Listen to one event type, narrowed. */
  on<T extends StatusEventType>(type: T, listener: (event: StatusEventOf<T>) => void): Disposable {
    const wrapped = listener as (event: StatusEvent) => void;
    this.#byType.set(type, [...(this.#byType.get(type) ?? []), wrapped]);
    return {
      dispose: () => {
        const list = this.#byType.get(type);
        if (list !== undefined) this.#byType.set(type, list.filter((l) => l !== wrapped));
      },
    };
  }
}
