/**
 * What each relay pod publishes about itself (with a TTL, so a dead pod drops out) and what the
 * operator folds into Channel status. Plain data: the Redis store writes and reads it.
 */

export interface ChannelReport {
  /** metadata.generation of the Channel in the config this pod serves. */
  generation: number;
  /** Requests and failed requests that ended in the last 5 minutes on this pod. */
  requests5m: number;
  errors5m: number;
  /** Median upstream latency over the same window (ms), when there were requests. */
  p50LatencyMs?: number;
  consecutiveFailures: number;
  /** Epoch ms; 0 when not cooling down. */
  cooldownUntil: number;
  lastError?: { code: string; message: string; at: number };
}

export interface PodReport {
  pod: string;
  /** Hash and generation of the RelayConfig the pod serves. */
  hash: string;
  generation: number;
  /** Epoch ms of the report. */
  at: number;
  channels: Record<string, ChannelReport>;
}

/** Reports older than this are from pods that are gone. */
export const POD_REPORT_TTL_MS = 15_000;
export const POD_REPORT_INTERVAL_MS = 2_000;
