/** What the ops layer (metrics, /ready) reads from the running daemon; main.ts builds one and hands it in. */
import type { UpstreamSnapshot, UpstreamStats } from '../core/source.ts';
import type { BackfillStats, PipelineStats, RelayStats, SinkStats } from '../core/stats.ts';

export interface OpsSources {
  /** One per exchange (today only binance). */
  upstreams(): readonly UpstreamSnapshot[];
  /** Index-aligned with `upstreams()`: `upstreamStats()[i]` belongs to `upstreams()[i].exchange`. */
  upstreamStats(): readonly UpstreamStats[];
  pipeline(): PipelineStats;
  backfill(): BackfillStats;
  relay(): RelayStats;
  /** Every sink but the relay, in configuration order. */
  sinks(): readonly SinkStats[];
  /** True from the first SIGTERM/SIGINT on. */
  draining(): boolean;
}
