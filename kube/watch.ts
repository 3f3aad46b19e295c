import {
  type KubeConfig,
  type KubernetesListObject,
  type KubernetesObject,
  ListWatch,
  Watch,
} from '@kubernetes/client-node';

/**
 * A list+watch cache that heals itself. client-node's ListWatch stops for good on an error and
 * has known silent stalls, so this wrapper (1) restarts it with exponential backoff after an
 * error and (2) re-lists on a fixed period, swapping in the fresh cache once it has synced.
 * Nothing it starts can end in an unhandled rejection: every failure becomes a restart.
 */
export interface ResourceWatchOptions<T extends KubernetesObject> {
  /** Metric label, e.g. `channels`. */
  resource: string;
  path: string;
  list: () => Promise<KubernetesListObject<T>>;
  fieldSelector?: string;
  /** An object was added, updated or deleted (`object`), or the cache was replaced (none). */
  onChange: (object?: T, phase?: 'add' | 'update' | 'delete') => void;
  onRestart: (resource: string, reason: string) => void;
  resyncMs?: number;
  backoff?: { initialMs: number; maxMs: number };
}

export class ResilientWatch<T extends KubernetesObject> {
  readonly #kc: KubeConfig;
  readonly #opts: ResourceWatchOptions<T>;
  #current: ListWatch<T> | undefined;
  #synced = false;
  #stopped = false;
  #delayMs: number;
  #retry: NodeJS.Timeout | undefined;
  #resync: NodeJS.Timeout | undefined;

  constructor(kc: KubeConfig, opts: ResourceWatchOptions<T>) {
    this.#kc = kc;
    this.#opts = opts;
    this.#delayMs = opts.backoff?.initialMs ?? 500;
  }

  get synced(): boolean {
    return this.#synced;
  }

  list(): readonly T[] {
    return this.#current?.list() ?? [];
  }

  /** Lists and watches; if the API server cannot be reached it keeps retrying (never throws). */
  async start(): Promise<void> {
    await this.#replace('start');
    this.#resync = setInterval(() => void this.#replace('resync'), this.#opts.resyncMs ?? 5 * 60_000);
    this.#resync.unref();
  }

  async stop() {
    this.#stopped = true;
    clearTimeout(this.#retry);
    clearInterval(this.#resync);
    await this.#current?.stop();
  }

  /** Lists afresh into a new ListWatch; the old cache serves until the new one has synced. */
  async #replace(reason: string) {
    if (this.#stopped) return;
    const lw = new ListWatch<T>(
      this.#opts.path,
      new Watch(this.#kc),
      this.#opts.list,
      false,
      undefined,
      this.#opts.fieldSelector,
    );
    const changed = (phase: 'add' | 'update' | 'delete') => (obj: T) => {
      if (this.#current === lw) this.#opts.onChange(obj, phase);
    };
    lw.on('add', changed('add'));
    lw.on('update', changed('update'));
    lw.on('delete', changed('delete'));
    let failure: unknown;
    lw.on('error', (err?: unknown) => {
      failure = err ?? new Error('watch failed');
      // A live watch that fails is restarted; a replacement that fails is handled below.
      if (this.#current === lw) this.#scheduleRestart(failure);
    });
    try {
      await lw.start();
    } catch (err) {
      // The first watch request itself failed (API server unreachable): same as an error event.
      failure ??= err ?? new Error('watch failed');
    }
    if (this.#stopped) {
      await lw.stop();
      return;
    }
    if (failure !== undefined) {
      await lw.stop();
      this.#scheduleRestart(failure);
      return;
    }
    const old = this.#current;
    this.#current = lw;
    this.#synced = true;
    this.#delayMs = this.#opts.backoff?.initialMs ?? 500;
    if (old) await old.stop();
    if (reason !== 'start') this.#opts.onRestart(this.#opts.resource, reason);
    this.#opts.onChange();
  }

  #scheduleRestart(err: unknown) {
    if (this.#stopped || this.#retry) return;
    const delay = this.#delayMs;
    this.#delayMs = Math.min(this.#delayMs * 2, this.#opts.backoff?.maxMs ?? 30_000);
    this.#retry = setTimeout(() => {
      this.#retry = undefined;
      void this.#replace(`error: ${(err as Error)?.message ?? String(err)}`);
    }, delay);
    this.#retry.unref();
  }
}
