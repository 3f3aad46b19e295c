import type { CoreV1Api, V1Secret } from '@kubernetes/client-node';
import { statusCode, withSignal } from '../kube/client.ts';

/**
 * The Secrets that Channels reference, read one by one with GET (RBAC: `get` on secrets, no
 * list or watch, so the operator never sees a Secret nobody referenced). Each is re-read on a
 * period spread over time (at most `maxReadsPerSecond` overall), so a rotated key reaches the
 * relays within `refreshMs` for small installs; a missing Secret is retried with backoff, so a
 * Channel applied just before its Secret resolves within seconds.
 */
export interface SecretRefsOptions {
  core: CoreV1Api;
  /** Called when a re-read finds a Secret changed, appeared or gone. */
  onChange: () => void;
  /** Target re-read period of each Secret (default 10 s)... */
  refreshMs?: number;
  /** ...stretched so that all of them together stay under this rate (default 10/s). */
  maxReadsPerSecond?: number;
  concurrency?: number;
}

interface Entry {
  namespace: string;
  name: string;
  /** undefined: not found (404). */
  secret: V1Secret | undefined;
  dueAt: number;
  misses: number;
}

export class SecretRefs {
  readonly #o: SecretRefsOptions;
  readonly #entries = new Map<string, Entry>();
  #timer: NodeJS.Timeout | undefined;
  #refreshing = false;

  constructor(opts: SecretRefsOptions) {
    this.#o = opts;
  }

  /** Runs the re-read loop (leader only). */
  start() {
    if (this.#timer) return;
    this.#timer = setInterval(() => void this.#refreshDue(), 1000);
    this.#timer.unref();
  }

  stop() {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** Forgets everything (a new leader reads afresh). */
  clear() {
    this.#entries.clear();
  }

  get size(): number {
    return this.#entries.size;
  }

  /**
   * The referenced Secrets (`namespace/name` keys) that exist, read now if not yet known.
   * Secrets no longer referenced are dropped. Throws if a read fails for another reason than 404.
   */
  async resolve(refs: ReadonlySet<string>, signal: AbortSignal): Promise<V1Secret[]> {
    for (const key of this.#entries.keys()) if (!refs.has(key)) this.#entries.delete(key);
    const unknown = [...refs].filter((k) => !this.#entries.has(k));
    await this.#readAll(unknown, signal);
    const out: V1Secret[] = [];
    for (const key of refs) {
      const s = this.#entries.get(key)?.secret;
      if (s) out.push(s);
    }
    return out;
  }

  async #readAll(keys: string[], signal: AbortSignal): Promise<boolean> {
    let changed = false;
    let next = 0;
    const worker = async () => {
      while (next < keys.length) {
        const key = keys[next++]!;
        if (await this.#read(key, signal)) changed = true;
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.#o.concurrency ?? 16, keys.length) }, worker));
    return changed;
  }

  /** Reads one Secret into the cache; true when what is known about it changed. */
  async #read(key: string, signal: AbortSignal): Promise<boolean> {
    const slash = key.indexOf('/');
    const namespace = key.slice(0, slash);
    const name = key.slice(slash + 1);
    let secret: V1Secret | undefined;
    try {
      secret = await this.#o.core.readNamespacedSecret({ namespace, name }, withSignal(signal));
    } catch (err) {
      if (statusCode(err) !== 404) {
        const e = this.#entries.get(key);
        if (e) e.dueAt = Date.now() + 5000; // keep what is known; try again a little later
        throw err;
      }
    }
    const prev = this.#entries.get(key);
    const misses = secret ? 0 : (prev?.misses ?? 0) + 1;
    const now = Date.now();
    // Missing: retry after 1 s, 2 s, 4 s ... up to the refresh period.
    const wait = secret
      ? this.#periodMs() * (0.75 + Math.random() * 0.5)
      : Math.min(1000 * 2 ** (misses - 1), this.#periodMs());
    this.#entries.set(key, { namespace, name, secret: stripped(secret), dueAt: now + wait, misses });
    return prev === undefined || prev.secret?.metadata?.resourceVersion !== secret?.metadata?.resourceVersion;
  }

  #periodMs(): number {
    const perSecond = this.#o.maxReadsPerSecond ?? 10;
    return Math.max(this.#o.refreshMs ?? 10_000, (this.#entries.size / perSecond) * 1000);
  }

  async #refreshDue() {
    if (this.#refreshing) return;
    this.#refreshing = true;
    try {
      const now = Date.now();
      const due = [...this.#entries.entries()].filter(([, e]) => e.dueAt <= now).map(([k]) => k);
      if (due.length === 0) return;
      // A failed re-read keeps what is known; the next tick tries again.
      const changed = await this.#readAll(due, AbortSignal.timeout(10_000)).catch(() => false);
      if (changed) this.#o.onChange();
    } finally {
      this.#refreshing = false;
    }
  }
}

/** What render needs: data and identity; managedFields and annotations are dropped (memory). */
function stripped(s: V1Secret | undefined): V1Secret | undefined {
  if (!s) return undefined;
  const { name, namespace, resourceVersion, generation } = s.metadata ?? {};
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name, namespace, resourceVersion, generation },
    data: s.data,
    type: s.type,
  };
}
