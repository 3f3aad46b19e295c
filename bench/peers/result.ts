// The result of one bench:peers run: what bench/peers.ts measures, bench/peers/report.ts renders
// and --json writes.

import type { MemoryLimitReport } from '../lib/memory-limit.ts';
import type { RunMeta } from '../lib/meta.ts';
import type { AddedLatency, LatencyStats } from '../lib/stats.ts';

export interface PeerParams {
  quick: boolean;
  rounds: number;
  warmup: number;
  streamRounds: number;
  streamWarmup: number;
  streamTokens: number;
  chunkDelayMs: number;
  /** How the mock ends a stream: the terminator with the last events, or 1 ms after [DONE]. */
  streamEnd: 'together' | 'split';
  concurrency: number;
  durationS: number;
  loadWarmupS: number;
  /** Segments per target in the load phase, rotated over the targets. */
  loadSegments: number;
  install: boolean;
  peers: string[];
  relayNodeArgs: string[];
  /** kuberelay from a tsc build (as the image runs it), or from the .ts sources. */
  compiled: boolean;
  /** kuberelay's database: PostgreSQL (production) or embedded PGlite (the chart's try-out default). */
  database: 'postgres' | 'embedded';
  /** A second kuberelay built from this commit, measured beside the working tree's (before/after). */
  compare?: string;
  /** Each gateway's memory cgroup limit (a Kubernetes quantity; the chart's relay limit by default), or `none`. */
  memoryLimit: string;
}

export interface GatewayResult {
  name: string;
  label: string;
  status: 'measured' | 'not installed' | 'failed to start' | 'failed';
  reason?: string;
  errors: number;
  errorSamples: string[];
  chat?: { latency: LatencyStats; added: AddedLatency };
  stream?: {
    firstToken: { latency: LatencyStats; added: AddedLatency };
    complete: { latency: LatencyStats; added: AddedLatency };
  };
  load?: {
    concurrency: number;
    requests: number;
    seconds: number;
    rps: number;
    latency: LatencyStats;
    /** CPU of the gateway's process tree per request (0 for the direct baseline). */
    cpuMsPerRequest: number;
    /** Everything else on the machine during its segments, in cores (noise). */
    otherCores: number;
  };
  /** Process tree RSS: after start, before any request; and the highest of samples and VmHWM. */
  rss?: { idleBytes: number; peakBytes: number };
}

export interface PeersResult {
  version: 1;
  startedAt: string;
  meta: RunMeta;
  params: PeerParams;
  /** The limit asked for, and whether the gateways ran under it (not: why). */
  memoryLimit: MemoryLimitReport;
  gateways: GatewayResult[];
  totalErrors: number;
  /** Failed requests of the baseline, the floor and kuberelay (a peer's own failures are reported, not fatal). */
  ownErrors: number;
  durationS: number;
}
