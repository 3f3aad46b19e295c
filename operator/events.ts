import type { CoreV1Api, CoreV1Event } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { describeError, mergePatch, statusCode, withSignal } from '../kube/client.ts';
import {
  type CoreEvent,
  type CorrelatorOptions,
  EventCorrelator,
  type EventInput,
} from './event-correlator.ts';

/**
 * Writes core/v1 Events (what `kubectl describe` lists under "Events:") through the correlator,
 * one at a time and off the reconcile path: a slow or failing API server delays or loses Events,
 * never a reconcile. The queue is bounded; what does not fit is dropped and counted.
 */

const MAX_PENDING = 256;

export interface EventRecorderOptions extends CorrelatorOptions {
  core: CoreV1Api;
  log: Logger;
  /** Counts each event by what became of it (created, patched, dropped_spam, dropped_queue, error). */
  onResult?: (result: string) => void;
  now?: () => number;
}

export class EventRecorder {
  readonly #o: EventRecorderOptions;
  readonly #correlator: EventCorrelator;
  readonly #stop = new AbortController();
  #pending = 0;
  #tail: Promise<void> = Promise.resolve();

  constructor(o: EventRecorderOptions) {
    this.#o = o;
    this.#correlator = new EventCorrelator(o);
  }

  emit(e: EventInput) {
    const d = this.#correlator.correlate(e, (this.#o.now ?? Date.now)());
    if (d.action === 'drop') return this.#o.onResult?.('dropped_spam');
    if (this.#pending >= MAX_PENDING || this.#stop.signal.aborted) return this.#o.onResult?.('dropped_queue');
    this.#pending++;
    this.#tail = this.#tail
      .then(() => this.#write(d.action as 'create' | 'patch', d.event))
      .finally(() => this.#pending--);
  }

  /** Resolves when everything queued so far is written (or failed). */
  flush(): Promise<void> {
    return this.#tail;
  }

  /** Aborts the write in flight and drops the rest. */
  async close() {
    this.#stop.abort(new Error('event recorder closed'));
    await this.#tail;
  }

  async #write(action: 'create' | 'patch', event: CoreEvent) {
    if (this.#stop.signal.aborted) return;
    const { core, log } = this.#o;
    const namespace = event.metadata.namespace;
    const signal = this.#stop.signal;
    try {
      if (action === 'patch') {
        try {
          const { count, lastTimestamp, message } = event;
          await core.patchNamespacedEvent(
            { namespace, name: event.metadata.name, body: { count, lastTimestamp, message } },
            withSignal(signal, mergePatch()),
          );
          this.#o.onResult?.('patched');
          return;
        } catch (err) {
          // Expired (Events live an hour by default) or deleted: create it anew, as client-go does.
          if (statusCode(err) !== 404) throw err;
        }
      }
      await core.createNamespacedEvent(
        { namespace, body: event as unknown as CoreV1Event },
        withSignal(signal),
      );
      this.#o.onResult?.('created');
    } catch (err) {
      if (signal.aborted) return;
      this.#o.onResult?.('error');
      if (statusCode(err) === 409 || statusCode(err) === 404) this.#correlator.forget(event);
      log.warn(
        {
          err: describeError(err),
          event: `${event.involvedObject.kind}/${namespace}/${event.involvedObject.name}`,
          reason: event.reason,
        },
        'event not written',
      );
    }
  }
}
