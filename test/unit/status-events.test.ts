import { describe, expect, it } from 'vitest';
import type { ChannelStatus, Condition } from '../../operator/status.ts';
import { statusEvents } from '../../operator/status-events.ts';

const at = '2026-12-01T13:07:41Z';
const c = (type: string, status: Condition['status'], reason: string, message = '', gen = 1): Condition => ({
  type,
  status,
  reason,
  message,
  observedGeneration: gen,
  lastTransitionTime: at,
});
const serving = (
  health: ChannelStatus['health'],
  gen = 1,
  extra: Partial<ChannelStatus> = {},
): ChannelStatus => ({
  observedGeneration: gen,
  conditions: [
    c('Accepted', 'True', 'Accepted', 'ok', gen),
    c('Programmed', 'True', 'Programmed', `all 2 relays serve generation ${gen}`, gen),
  ],
  health,
  relays: { ready: 2, total: 2 },
  ...extra,
});

describe('status transitions -> Events', () => {
  it('refused with the Accepted reason, once, and accepted again', () => {
    const conflict: ChannelStatus = {
      observedGeneration: 1,
      conditions: [c('Accepted', 'False', 'ModelConflict', 'model gpt-4o is served by team-a/openai')],
    };
    expect(statusEvents(undefined, conflict)).toEqual([
      {
        type: 'Warning',
        reason: 'ModelConflict',
        message: 'refused: model gpt-4o is served by team-a/openai',
      },
    ]);
    expect(statusEvents(conflict, conflict)).toEqual([]);
    expect(statusEvents(conflict, serving('Healthy', 2))).toEqual([
      { type: 'Normal', reason: 'Accepted', message: 'valid and in the relay config' },
      { type: 'Normal', reason: 'Programmed', message: 'all 2 relays serve the latest spec' },
    ]);
  });

  it('Programmed once per generation', () => {
    expect(statusEvents(serving('Healthy'), serving('Healthy'))).toEqual([]);
    expect(statusEvents(serving('Healthy', 1), serving('Healthy', 2))).toEqual([
      { type: 'Normal', reason: 'Programmed', message: 'all 2 relays serve the latest spec' },
    ]);
  });

  it('entered cooldown with the last error code, left it once', () => {
    const cooling = serving('CoolingDown', 1, {
      lastError: { code: 'status_503', message: 'Service Unavailable', at },
      cooldownUntil: at,
    });
    expect(statusEvents(serving('Healthy'), cooling)).toEqual([
      {
        type: 'Warning',
        reason: 'CoolingDown',
        message: 'entered cooldown after status_503: no requests until it ends',
      },
    ]);
    expect(statusEvents(cooling, { ...cooling, consecutiveFailures: 7 })).toEqual([]);
    expect(statusEvents(cooling, serving('Healthy'))).toEqual([
      { type: 'Normal', reason: 'CooldownEnded', message: 'left cooldown: serving again' },
    ]);
  });
});
