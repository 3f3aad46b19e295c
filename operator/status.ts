import type { ObjectCondition, ObjectResult } from '../core/config/render.ts';
import type { PodReport } from '../redis/pod-reports.ts';

/**
 * Desired status of each object, computed from what the render said and what the relay pods
 * report. Pure: the reconciler compares the result with the stored status and patches only on
 * change. Conditions follow metav1.Condition; lastTransitionTime moves only when status flips.
 */

export interface Condition {
  type: string;
  status: 'True' | 'False' | 'Unknown';
  observedGeneration: number;
  lastTransitionTime: string;
  reason: string;
  message: string;
}

export type Health = 'Healthy' | 'Degraded' | 'CoolingDown' | 'Suspended' | 'Unknown';

export interface ChannelStatus {
  observedGeneration: number;
  conditions: Condition[];
  health?: Health;
  consecutiveFailures?: number;
  cooldownUntil?: string;
  lastError?: { code: string; message: string; at: string };
  relays?: { ready: number; total: number };
  usage?: {
    requests5m: number;
    errorRate5m: number;
    p50LatencyMs?: number;
    spendToday: string;
    spendMonth: string;
    /** Async jobs, fleet-wide: open now, and finished in the last 24 hours. */
    jobsQueued?: number;
    jobsRunning?: number;
    jobsCompleted24h?: number;
    jobsFailed24h?: number;
  };
}

export interface PolicyStatus {
  observedGeneration: number;
  conditions: Condition[];
}

/** An error rate above this over 5 minutes makes a channel Degraded... */
export const DEGRADED_ERROR_RATE = 0.2;
/** ...once there are enough requests for the rate to mean something. */
export const DEGRADED_MIN_REQUESTS = 10;

export interface ChannelFacts {
  result: ObjectResult;
  suspend: boolean;
  /** Channel id (`namespace/name`) as the relays know it. */
  id: string;
  reports: readonly PodReport[];
  /** False when the operator has no Redis to read reports from (no REDIS_URL): nothing can report. */
  reportsAvailable?: boolean;
  spend: { today: number; month: number } | undefined;
  now: number;
}

/** Why no relay has reported: none is live, or the operator has nowhere to read reports from. */
function noReports(f: ChannelFacts) {
  return f.reportsAvailable === false
    ? {
        reason: 'ReportsUnavailable',
        message:
          'the operator has no Redis (REDIS_URL), through which relays report: set redis.url, redis.existingSecret or redis.bundled.enabled',
      }
    : { reason: 'NoRelays', message: 'no live relay has reported' };
}

export function channelStatus(f: ChannelFacts, previous: Condition[] | undefined): ChannelStatus {
  const gen = f.result.generation;
  const conds: Omit<Condition, 'lastTransitionTime' | 'observedGeneration'>[] =
    f.result.conditions.map(fromRender);
  const accepted = f.result.conditions.find((c) => c.type === 'Accepted')?.status === 'True';
  const status: ChannelStatus = { observedGeneration: gen, conditions: [] };

  if (!accepted) {
    conds.push({
      type: 'Programmed',
      status: 'False',
      reason: 'NotAccepted',
      message: 'not in the relay config',
    });
    conds.push({
      type: 'Healthy',
      status: 'Unknown',
      reason: 'NotAccepted',
      message: 'not in the relay config',
    });
    status.conditions = withTimes(conds, previous, gen, f.now);
    return status;
  }

  const live = f.reports;
  const serving = live.filter((r) => r.channels[f.id]?.generation === gen);
  status.relays = { ready: serving.length, total: live.length };
  if (live.length === 0) {
    conds.push({ type: 'Programmed', status: 'Unknown', ...noReports(f) });
  } else if (serving.length === live.length) {
    conds.push({
      type: 'Programmed',
      status: 'True',
      reason: 'Programmed',
      message: `all ${live.length} relays serve generation ${gen}`,
    });
  } else {
    conds.push({
      type: 'Programmed',
      status: 'False',
      reason: 'Pending',
      message: `${serving.length} of ${live.length} relays serve generation ${gen}`,
    });
  }

  const mine = live.map((r) => r.channels[f.id]).filter((c) => c !== undefined);
  const requests = mine.reduce((n, c) => n + c.requests5m, 0);
  const errors = mine.reduce((n, c) => n + c.errors5m, 0);
  const errorRate = requests > 0 ? errors / requests : 0;
  const cooldownUntil = Math.max(0, ...mine.map((c) => c.cooldownUntil));
  const failures = Math.max(0, ...mine.map((c) => c.consecutiveFailures));
  const lastError = mine
    .map((c) => c.lastError)
    .filter((e) => e !== undefined)
    .sort((a, b) => Date.parse(b.at) - Date.parse(a.at))[0];
  const p50s = mine.filter((c) => c.p50LatencyMs !== undefined && c.requests5m > 0);

  let health: Health;
  let healthy: Omit<Condition, 'lastTransitionTime' | 'observedGeneration'>;
  if (f.suspend) {
    health = 'Suspended';
    healthy = {
      type: 'Healthy',
      status: 'False',
      reason: 'Suspended',
      message: 'suspended: no new requests',
    };
  } else if (cooldownUntil > f.now) {
    health = 'CoolingDown';
    healthy = {
      type: 'Healthy',
      status: 'False',
      reason: 'CoolingDown',
      message: `cooling down until ${new Date(cooldownUntil).toISOString()}${lastError ? ` after ${lastError.code}` : ''}`,
    };
  } else if (mine.length === 0) {
    health = 'Unknown';
    healthy = { type: 'Healthy', status: 'Unknown', ...noReports(f) };
  } else if (requests >= DEGRADED_MIN_REQUESTS && errorRate > DEGRADED_ERROR_RATE) {
    health = 'Degraded';
    healthy = {
      type: 'Healthy',
      status: 'False',
      reason: 'HighErrorRate',
      message: `${Math.round(errorRate * 100)}% of ${requests} requests failed in the last 5 minutes`,
    };
  } else {
    health = 'Healthy';
    healthy = { type: 'Healthy', status: 'True', reason: 'Healthy', message: 'serving' };
  }
  conds.push(healthy);

  status.conditions = withTimes(conds, previous, gen, f.now);
  status.health = health;
  status.consecutiveFailures = failures;
  if (cooldownUntil > f.now) status.cooldownUntil = new Date(cooldownUntil).toISOString();
  if (lastError) status.lastError = { ...lastError };
  status.usage = {
    requests5m: requests,
    errorRate5m: Math.round(errorRate * 1000) / 1000,
    spendToday: (f.spend?.today ?? 0).toFixed(6),
    spendMonth: (f.spend?.month ?? 0).toFixed(6),
  };
  // Every pod reads the same job table: the freshest report has the fleet's figures.
  const jobs = live
    .filter((r) => r.channels[f.id]?.jobs)
    .sort((a, b) => Date.parse(b.at) - Date.parse(a.at))[0]?.channels[f.id]?.jobs;
  if (jobs) {
    status.usage.jobsQueued = jobs.queued;
    status.usage.jobsRunning = jobs.running;
    status.usage.jobsCompleted24h = jobs.completed;
    status.usage.jobsFailed24h = jobs.failed;
  }
  if (p50s.length > 0) {
    // Request-weighted mean of the pods' medians: close enough to a fleet median for a status.
    const w = p50s.reduce((n, c) => n + c.requests5m, 0);
    status.usage.p50LatencyMs = Math.round(p50s.reduce((n, c) => n + c.p50LatencyMs! * c.requests5m, 0) / w);
  }
  return status;
}

/**
 * The status to write when the relays' reports cannot be read (Redis down): what the render
 * decided (Accepted, ResolvedRefs, observedGeneration) is written anyway; what only the fleet
 * knows (Programmed, Healthy, health, usage ...) stays as it was.
 */
export function channelStatusWithoutFleet(
  result: ObjectResult,
  previous: ChannelStatus | undefined,
  now: number,
): ChannelStatus {
  const accepted = result.conditions.find((c) => c.type === 'Accepted')?.status === 'True';
  if (!accepted) {
    // Not in the config: the fleet has nothing to say about it.
    return channelStatus(
      { result, suspend: false, id: '', reports: [], spend: undefined, now },
      previous?.conditions,
    );
  }
  const decided = withTimes(result.conditions.map(fromRender), previous?.conditions, result.generation, now);
  const fleetOnly = (previous?.conditions ?? []).filter((c) => !decided.some((r) => r.type === c.type));
  return { ...previous, observedGeneration: result.generation, conditions: [...decided, ...fleetOnly] };
}

export function policyStatus(
  result: ObjectResult,
  previous: Condition[] | undefined,
  now: number,
): PolicyStatus {
  return {
    observedGeneration: result.generation,
    conditions: withTimes(result.conditions.map(fromRender), previous, result.generation, now),
  };
}

function fromRender(c: ObjectCondition) {
  return { type: c.type, status: c.status, reason: c.reason, message: c.message };
}

function withTimes(
  conds: Omit<Condition, 'lastTransitionTime' | 'observedGeneration'>[],
  previous: Condition[] | undefined,
  generation: number,
  now: number,
): Condition[] {
  const at = new Date(Math.floor(now / 1000) * 1000).toISOString().replace('.000Z', 'Z');
  return conds.map((c) => {
    const prev = previous?.find((p) => p.type === c.type);
    return {
      ...c,
      observedGeneration: generation,
      lastTransitionTime: prev && prev.status === c.status ? prev.lastTransitionTime : at,
    };
  });
}

/** Whether two statuses differ in anything but volatile noise (used to skip no-op patches). */
export function sameStatus(a: unknown, b: unknown): boolean {
  return JSON.stringify(normalize(a)) === JSON.stringify(normalize(b));
}

function normalize(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(normalize);
  if (v && typeof v === 'object') {
    return Object.fromEntries(
      Object.entries(v as Record<string, unknown>)
        .filter(([, x]) => x !== undefined)
        .sort(([a], [b]) => a.localeCompare(b))
        .map(([k, x]) => [k, normalize(x)]),
    );
  }
  return v;
}
