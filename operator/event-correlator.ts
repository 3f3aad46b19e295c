import { LRUCache } from 'lru-cache';

/**
 * What client-go's event recorder does before it writes an Event (tools/record/events_cache.go),
 * so a flapping object cannot flood the API server. Pure: the caller passes the clock.
 * - aggregation: from the `maxSimilar`-th distinct message with one source, object, type and
 *   reason within `aggregateWindowMs` on, they become one Event, "(combined from similar events): ...";
 * - dedup: an Event seen before (same key) is a patch of the existing object, `count` + 1;
 * - spam filter: a token bucket per source + object (`burst`, one token per `refillMs`); an event
 *   without a token is dropped, but still counted, so the next write carries the total count.
 */

export interface ObjectRef {
  apiVersion: string;
  kind: string;
  namespace: string;
  name: string;
  uid?: string | undefined;
}

export interface EventInput {
  object: ObjectRef;
  type: 'Normal' | 'Warning';
  reason: string;
  message: string;
}

/** A core/v1 Event as written (the shape `kubectl describe` lists). */
export interface CoreEvent {
  apiVersion: 'v1';
  kind: 'Event';
  metadata: { name: string; namespace: string };
  involvedObject: ObjectRef;
  type: 'Normal' | 'Warning';
  reason: string;
  message: string;
  source: { component: string; host?: string };
  count: number;
  firstTimestamp: string;
  lastTimestamp: string;
}

export type Decision = { action: 'create' | 'patch' | 'drop'; event: CoreEvent };

export interface CorrelatorOptions {
  component: string;
  host?: string | undefined;
  /** client-go: 25 and 1/300 s. */
  burst?: number;
  refillMs?: number;
  /** client-go: 10 distinct messages within 600 s. */
  maxSimilar?: number;
  aggregateWindowMs?: number;
  /** Objects and keys remembered (client-go: 4096). */
  cacheSize?: number;
}

export const COMBINED_PREFIX = '(combined from similar events): ';
/** The API server takes longer messages, but describe output and etcd need not. */
const MAX_MESSAGE = 1024;

export class EventCorrelator {
  readonly #o: Required<Omit<CorrelatorOptions, 'host'>> & { host?: string | undefined };
  readonly #buckets: LRUCache<string, { tokens: number; at: number }>;
  readonly #similar: LRUCache<string, { messages: Set<string>; at: number }>;
  readonly #seen: LRUCache<string, { name: string; count: number; first: string }>;

  constructor(o: CorrelatorOptions) {
    this.#o = {
      burst: 25,
      refillMs: 300_000,
      maxSimilar: 10,
      aggregateWindowMs: 600_000,
      cacheSize: 4096,
      ...o,
    };
    const max = this.#o.cacheSize;
    this.#buckets = new LRUCache({ max });
    this.#similar = new LRUCache({ max });
    this.#seen = new LRUCache({ max });
  }

  correlate(e: EventInput, now: number): Decision {
    const source = { component: this.#o.component, ...(this.#o.host ? { host: this.#o.host } : {}) };
    const objectKey = [source.component, source.host ?? '', ...refKey(e.object)].join('\u0000');
    const similarKey = [objectKey, e.type, e.reason].join('\u0000');
    let message = e.message.slice(0, MAX_MESSAGE);
    let key = [similarKey, message].join('\u0000');

    const similar = this.#similar.get(similarKey);
    const group =
      similar && now - similar.at <= this.#o.aggregateWindowMs
        ? similar
        : { messages: new Set<string>(), at: now };
    group.at = now;
    this.#similar.set(similarKey, group);
    if (group.messages.has(message) || group.messages.size < this.#o.maxSimilar - 1) {
      group.messages.add(message);
    } else {
      message = `${COMBINED_PREFIX}${message}`.slice(0, MAX_MESSAGE);
      key = similarKey;
    }

    const at = timestamp(now);
    const seen = this.#seen.get(key);
    const record = seen
      ? { name: seen.name, count: seen.count + 1, first: seen.first }
      : { name: eventName(e.object.name, now), count: 1, first: at };
    this.#seen.set(key, record);
    const event: CoreEvent = {
      apiVersion: 'v1',
      kind: 'Event',
      metadata: { name: record.name, namespace: e.object.namespace },
      involvedObject: { ...e.object },
      type: e.type,
      reason: e.reason,
      message,
      source,
      count: record.count,
      firstTimestamp: record.first,
      lastTimestamp: at,
    };
    if (!this.#take(objectKey, now)) return { action: 'drop', event };
    return { action: seen ? 'patch' : 'create', event };
  }

  /** The Event of this key is gone (a patch answered 404): the next occurrence creates one. */
  forget(event: CoreEvent) {
    for (const [k, v] of this.#seen.entries()) if (v.name === event.metadata.name) this.#seen.delete(k);
  }

  #take(key: string, now: number): boolean {
    const { burst, refillMs } = this.#o;
    const b = this.#buckets.get(key) ?? { tokens: burst, at: now };
    b.tokens = Math.min(burst, b.tokens + Math.max(0, now - b.at) / refillMs);
    b.at = now;
    this.#buckets.set(key, b);
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    return true;
  }
}

function refKey(r: ObjectRef): string[] {
  return [r.apiVersion, r.kind, r.namespace, r.name, r.uid ?? ''];
}

/** client-go's naming: the object's name and the time in hex nanoseconds. */
function eventName(object: string, now: number): string {
  const nanos = BigInt(Math.floor(now)) * 1_000_000n + BigInt(Math.floor(Math.random() * 1_000_000));
  return `${object}.${nanos.toString(16)}`;
}

function timestamp(now: number): string {
  return new Date(Math.floor(now / 1000) * 1000).toISOString().replace('.000Z', 'Z');
}
