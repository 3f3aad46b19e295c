import type { ChannelReport } from '../redis/pod-reports.ts';

/**
 * What this process sees per channel, for pod reports (the operator folds them into Channel
 * status): attempts and failures over the last 5 minutes and in total, the last error, and the
 * median time to response headers. Fixed memory per channel: ten 30-second buckets and a ring of
 * latency samples.
 */

const BUCKET_MS = 30_000;
const BUCKETS = 10; // 5 minutes
const SAMPLES = 256;

interface Entry {
  starts: number[];
  requests: number[];
  errors: number[];
  requestsTotal: number;
  errorsTotal: number;
  lastError?: { code: string; message: string; at: string };
  latency: Float64Array;
  latencyAt: Float64Array;
  next: number;
}

export type ChannelSnapshot = Omit<
  ChannelReport,
  'generation' | 'consecutiveFailures' | 'cooldownUntil' | 'inflight'
>;

export class ChannelStats {
  readonly #channels = new Map<string, Entry>();
  readonly #now: () => number;

  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  success(channelId: string, latencyMs: number) {
    const e = this.#entry(channelId);
    const now = this.#now();
    e.requests[this.#bucket(e, now)]!++;
    e.requestsTotal++;
    e.latency[e.next] = latencyMs;
    e.latencyAt[e.next] = now;
    e.next = (e.next + 1) % SAMPLES;
  }

  failure(channelId: string, code: string, message: string) {
    const e = this.#entry(channelId);
    const now = this.#now();
    const b = this.#bucket(e, now);
    e.requests[b]!++;
    e.errors[b]!++;
    e.requestsTotal++;
    e.errorsTotal++;
    e.lastError = { code, message, at: new Date(now).toISOString() };
  }

  snapshot(channelId: string): ChannelSnapshot {
    const e = this.#channels.get(channelId);
    if (!e) return { requests5m: 0, errors5m: 0, requestsTotal: 0, errorsTotal: 0 };
    const now = this.#now();
    let requests5m = 0;
    let errors5m = 0;
    for (let i = 0; i < BUCKETS; i++) {
      if (e.starts[i]! > now - BUCKETS * BUCKET_MS) {
        requests5m += e.requests[i]!;
        errors5m += e.errors[i]!;
      }
    }
    const recent: number[] = [];
    for (let i = 0; i < SAMPLES; i++) {
      if (e.latencyAt[i]! > now - BUCKETS * BUCKET_MS) recent.push(e.latency[i]!);
    }
    const out: ChannelSnapshot = {
      requests5m,
      errors5m,
      requestsTotal: e.requestsTotal,
      errorsTotal: e.errorsTotal,
    };
    if (e.lastError) out.lastError = e.lastError;
    if (recent.length > 0) {
      recent.sort((a, b) => a - b);
      out.p50LatencyMs = Math.round(recent[Math.floor((recent.length - 1) / 2)]! * 10) / 10;
    }
    return out;
  }

  #entry(channelId: string): Entry {
    let e = this.#channels.get(channelId);
    if (!e) {
      e = {
        starts: new Array(BUCKETS).fill(0),
        requests: new Array(BUCKETS).fill(0),
        errors: new Array(BUCKETS).fill(0),
        requestsTotal: 0,
        errorsTotal: 0,
        latency: new Float64Array(SAMPLES),
        latencyAt: new Float64Array(SAMPLES),
        next: 0,
      };
      this.#channels.set(channelId, e);
    }
    return e;
  }

  /** The bucket for `now`, cleared first when it last held an older interval. */
  #bucket(e: Entry, now: number): number {
    const start = now - (now % BUCKET_MS);
    const i = Math.floor(now / BUCKET_MS) % BUCKETS;
    if (e.starts[i] !== start) {
      e.starts[i] = start;
      e.requests[i] = 0;
      e.errors[i] = 0;
    }
    return i;
  }
}
