/** What the ops layer (metrics, /ready) reads from the running daemon; main.ts builds one and hands it in. */
import type { UpstreamSnapshot, UpstreamStats } from '../core/source.ts';
import type { BackfillStats, PipelineStats, RelayStats, SinkStats, VenueRestStats } from '../core/stats.ts';

export interface OpsSources {
  /** One per configured venue, in CONNECTOR_VENUES order. */
  upstreams(): readonly UpstreamSnapshot[];
  /** Index-aligned with `upstreams()`: `upstreamStats()[i]` belongs to `upstreams()[i].venue`. */
  upstreamStats(): readonly UpstreamStats[];
  pipeline(): PipelineStats;
  /** Gap recovery (the pipeline's) with the REST figures of every venue summed up (the ban: the latest). */
  backfill(): BackfillStats;
  /** Each venue's REST client, naming its venue. */
  restStats(): readonly VenueRestStats[];
  relay(): RelayStats;
  /** Every sink but the relay, in configuration order. */
  sinks(): readonly SinkStats[];
  /** True from the first SIGTERM/SIGINT on. */
  draining(): boolean;
}
