import type { ChannelStatus, Condition, PolicyStatus } from './status.ts';

/**
 * The Kubernetes Events a status change is worth (shown by `kubectl describe`): refused (the
 * Accepted reason, e.g. ModelConflict), accepted again, Programmed on every relay, entered and
 * left cooldown. Pure: `before` is the last status written, `after` the one being written.
 * Messages leave out what changes on every occurrence (times, counts) so repeats aggregate.
 */

export interface StatusEvent {
  type: 'Normal' | 'Warning';
  reason: string;
  message: string;
}

type AnyStatus = Partial<ChannelStatus> | PolicyStatus;

export function statusEvents(before: AnyStatus | undefined, after: AnyStatus): StatusEvent[] {
  const events: StatusEvent[] = [];
  const was = cond(before, 'Accepted');
  const now = cond(after, 'Accepted');
  if (
    now?.status === 'False' &&
    (was?.status !== 'False' || was.reason !== now.reason || was.message !== now.message)
  ) {
    events.push({ type: 'Warning', reason: now.reason, message: `refused: ${now.message}` });
  } else if (now?.status === 'True' && was?.status === 'False') {
    events.push({ type: 'Normal', reason: 'Accepted', message: 'valid and in the relay config' });
  }

  const programmed = cond(after, 'Programmed');
  const wasProgrammed = cond(before, 'Programmed');
  if (
    programmed?.status === 'True' &&
    (wasProgrammed?.status !== 'True' || wasProgrammed.observedGeneration !== programmed.observedGeneration)
  ) {
    // Not the generation: a channel edited back and forth repeats one Event, not ten.
    const ready = (after as Partial<ChannelStatus>).relays?.ready;
    events.push({
      type: 'Normal',
      reason: 'Programmed',
      message: `${ready === undefined ? 'every relay serves' : `all ${ready} relays serve`} the latest spec`,
    });
  }

  const health = (after as Partial<ChannelStatus>).health;
  const wasHealth = (before as Partial<ChannelStatus> | undefined)?.health;
  if (health === 'CoolingDown' && wasHealth !== 'CoolingDown') {
    const code = (after as Partial<ChannelStatus>).lastError?.code;
    events.push({
      type: 'Warning',
      reason: 'CoolingDown',
      message: `entered cooldown${code ? ` after ${code}` : ''}: no requests until it ends`,
    });
  } else if (wasHealth === 'CoolingDown' && health !== undefined && health !== 'CoolingDown') {
    events.push({ type: 'Normal', reason: 'CooldownEnded', message: 'left cooldown: serving again' });
  }
  return events;
}

function cond(s: AnyStatus | undefined, type: string): Condition | undefined {
  return s?.conditions?.find((c) => c.type === type);
}
