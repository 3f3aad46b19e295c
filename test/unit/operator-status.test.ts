import { describe, expect, it } from 'vitest';
import type { ObjectResult } from '../../core/config/render.ts';
import {
  type Condition,
  channelStatus,
  channelStatusWithoutFleet,
  policyStatus,
  sameStatus,
} from '../../operator/status.ts';
import type { ChannelReport, PodReport } from '../../redis/pod-reports.ts';

const NOW = Date.parse('2026-11-22T12:00:00Z');
const accepted = (generation = 2): ObjectResult => ({
  kind: 'Channel',
  namespace: 'ns',
  name: 'a',
  generation,
  conditions: [
    { type: 'ResolvedRefs', status: 'True', reason: 'ResolvedRefs', message: 'ok' },
    { type: 'Accepted', status: 'True', reason: 'Accepted', message: 'ok' },
  ],
  errors: [],
});
const ch = (over: Partial<ChannelReport> = {}): ChannelReport => ({
  generation: 2,
  requests5m: 100,
  errors5m: 0,
  requestsTotal: 1000,
  errorsTotal: 0,
  inflight: 0,
  consecutiveFailures: 0,
  cooldownUntil: 0,
  ...over,
});
const pod = (name: string, c: ChannelReport | undefined): PodReport => ({
  pod: name,
  loadedHash: 'h',
  generation: 9,
  at: new Date(NOW).toISOString(),
  startedAt: new Date(NOW).toISOString(),
  channels: c ? { 'ns/a': c } : {},
});
const facts = (reports: PodReport[], extra: { suspend?: boolean } = {}) => ({
  result: accepted(),
  id: 'ns/a',
  suspend: extra.suspend ?? false,
  reports,
  spend: { today: 1.5, month: 12.25 },
  now: NOW,
});
const cond = (s: { conditions: Condition[] }, type: string) => s.conditions.find((c) => c.type === type);

describe('operator: channel status from pod reports', () => {
  it('is Programmed and Healthy when every live relay serves this generation without errors', () => {
    const s = channelStatus(
      facts([pod('p1', ch({ p50LatencyMs: 100 })), pod('p2', ch({ p50LatencyMs: 300, requests5m: 300 }))]),
      undefined,
    );
    expect(cond(s, 'Programmed')).toMatchObject({ status: 'True', observedGeneration: 2 });
    expect(cond(s, 'Healthy')).toMatchObject({ status: 'True' });
    expect(s.health).toBe('Healthy');
    expect(s.relays).toEqual({ ready: 2, total: 2 });
    expect(s.usage).toEqual({
      requests5m: 400,
      errorRate5m: 0,
      p50LatencyMs: 250,
      spendToday: '1.500000',
      spendMonth: '12.250000',
    });
  });

  it('is not Programmed while a relay still serves an older generation', () => {
    const s = channelStatus(facts([pod('p1', ch()), pod('p2', ch({ generation: 1 }))]), undefined);
    expect(cond(s, 'Programmed')).toMatchObject({
      status: 'False',
      reason: 'Pending',
      message: '1 of 2 relays serve generation 2',
    });
  });

  it('reports CoolingDown with the cooldown end and the last error', () => {
    const until = NOW + 30_000;
    const s = channelStatus(
      facts([
        pod(
          'p1',
          ch({
            consecutiveFailures: 5,
            cooldownUntil: until,
            lastError: {
              code: 'status_503',
              message: 'upstream answered 503',
              at: new Date(NOW - 1000).toISOString(),
            },
          }),
        ),
        pod('p2', ch()),
      ]),
      undefined,
    );
    expect(s.health).toBe('CoolingDown');
    expect(s.cooldownUntil).toBe(new Date(until).toISOString());
    expect(s.consecutiveFailures).toBe(5);
    expect(s.lastError).toEqual({
      code: 'status_503',
      message: 'upstream answered 503',
      at: new Date(NOW - 1000).toISOString(),
    });
    expect(cond(s, 'Healthy')).toMatchObject({ status: 'False', reason: 'CoolingDown' });
  });

  it('is Degraded above the error-rate threshold, Suspended when suspended, Unknown without relays', () => {
    expect(channelStatus(facts([pod('p1', ch({ errors5m: 30 }))]), undefined).health).toBe('Degraded');
    expect(channelStatus(facts([pod('p1', ch({ errors5m: 10 }))]), undefined).health).toBe('Healthy');
    // One failure out of one request is not a rate yet.
    expect(channelStatus(facts([pod('p1', ch({ requests5m: 1, errors5m: 1 }))]), undefined).health).toBe(
      'Healthy',
    );
    expect(channelStatus(facts([pod('p1', ch())], { suspend: true }), undefined).health).toBe('Suspended');
    const none = channelStatus(facts([]), undefined);
    expect(none.health).toBe('Unknown');
    expect(cond(none, 'Programmed')).toMatchObject({ status: 'Unknown', reason: 'NoRelays' });
  });

  it('says what to enable when the operator has no Redis to read reports from', () => {
    const s = channelStatus({ ...facts([]), reportsAvailable: false }, undefined);
    expect(s.health).toBe('Unknown');
    for (const type of ['Programmed', 'Healthy'])
      expect(cond(s, type)).toMatchObject({ status: 'Unknown', reason: 'ReportsUnavailable' });
    expect(cond(s, 'Programmed')?.message).toMatch(/REDIS_URL.*redis\.bundled\.enabled/);
    expect(cond(s, 'Accepted')).toMatchObject({ status: 'True' });
  });

  it('keeps lastTransitionTime while a condition keeps its status, and moves it on a flip', () => {
    const first = channelStatus(facts([pod('p1', ch())]), undefined);
    const later = { ...facts([pod('p1', ch())]), now: NOW + 60_000 };
    const same = channelStatus(later, first.conditions as never);
    expect(cond(same, 'Healthy')).toEqual(cond(first, 'Healthy'));
    expect(sameStatus(first, same)).toBe(true);
    const flipped = channelStatus(
      { ...later, reports: [pod('p1', ch({ cooldownUntil: NOW + 120_000 }))] },
      first.conditions as never,
    );
    expect(cond(flipped, 'Healthy')?.lastTransitionTime).toBe('2026-11-22T12:01:00Z');
  });

  it('does not claim anything about a channel that is not accepted', () => {
    const r = accepted();
    r.conditions = [
      { type: 'Accepted', status: 'False', reason: 'UnresolvedRefs', message: 'Secret ns/x not found' },
    ];
    const s = channelStatus({ ...facts([pod('p1', ch())]), result: r }, undefined);
    expect(s.health).toBeUndefined();
    expect(cond(s, 'Programmed')).toMatchObject({ status: 'False', reason: 'NotAccepted' });
  });

  it('copies render conditions into policy status with observedGeneration', () => {
    const s = policyStatus({ ...accepted(4), kind: 'RateLimitPolicy' }, undefined, NOW);
    expect(s.observedGeneration).toBe(4);
    expect(s.conditions.map((c) => [c.type, c.status, c.observedGeneration])).toEqual([
      ['ResolvedRefs', 'True', 4],
      ['Accepted', 'True', 4],
    ]);
  });
});

describe('operator: channel status while the relay reports cannot be read', () => {
  it('still writes what the render decided (Accepted, ResolvedRefs, observedGeneration) and keeps the fleet fields', () => {
    const before = channelStatus(facts([pod('p1', ch({ requests5m: 5 }))]), undefined);
    expect(cond(before, 'Programmed')?.status).toBe('True');
    // Generation 3 was rendered while Redis is down.
    const s = channelStatusWithoutFleet(accepted(3), before, NOW + 60_000);
    expect(s.observedGeneration).toBe(3);
    expect(cond(s, 'Accepted')).toMatchObject({ status: 'True', observedGeneration: 3 });
    expect(cond(s, 'ResolvedRefs')).toMatchObject({ status: 'True', observedGeneration: 3 });
    // What only the fleet knows is left as it was, not guessed.
    expect(cond(s, 'Programmed')).toEqual(cond(before, 'Programmed'));
    expect(cond(s, 'Healthy')).toEqual(cond(before, 'Healthy'));
    expect(s.health).toBe(before.health);
    expect(s.usage).toEqual(before.usage);
  });

  it('an object refused by the render is written as refused', () => {
    const refused: ObjectResult = {
      ...accepted(4),
      conditions: [
        { type: 'ResolvedRefs', status: 'False', reason: 'SecretNotFound', message: 'gone' },
        { type: 'Accepted', status: 'False', reason: 'UnresolvedRefs', message: 'gone' },
      ],
    };
    const s = channelStatusWithoutFleet(refused, undefined, NOW);
    expect(cond(s, 'Accepted')).toMatchObject({ status: 'False', reason: 'UnresolvedRefs' });
    expect(cond(s, 'Programmed')).toMatchObject({ status: 'False', reason: 'NotAccepted' });
  });
});

describe('operator: job figures in Channel status usage', () => {
  const at = (name: string, ms: number, c: ChannelReport): PodReport => ({
    ...pod(name, c),
    at: new Date(NOW - ms).toISOString(),
  });
  it("takes the freshest report's fleet-wide job figures (every pod reads the same job table), never a sum", () => {
    const s = channelStatus(
      facts([
        at('p1', 5_000, ch({ jobs: { queued: 9, running: 1, completed: 3, failed: 0 } })),
        at('p2', 1_000, ch({ jobs: { queued: 4, running: 1, completed: 8, failed: 2 } })),
        at('p3', 0, ch()),
      ]),
      undefined,
    );
    expect(s.usage).toMatchObject({ jobsQueued: 4, jobsRunning: 1, jobsCompleted24h: 8, jobsFailed24h: 2 });
  });
  it('a channel without jobs has no job fields', () => {
    const s = channelStatus(facts([pod('p1', ch())]), undefined);
    expect(s.usage).not.toHaveProperty('jobsQueued');
    expect(s.usage).not.toHaveProperty('jobsRunning');
  });
});
