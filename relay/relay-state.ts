import type { FastifyBaseLogger } from 'fastify';
import { type RelayConfig, relayConfigSchema } from '../core/config/relay-config.ts';
import { formatIssues } from '../core/config/render.ts';
import type { RelayMetrics } from './metrics.ts';
import { compileRuntime, type Runtime } from './runtime.ts';

/**
 * Holds the config snapshot being served. Every source (file watcher, Secret watch) offers
 * snapshots here; a snapshot is validated, compiled and swapped in with one assignment, so a
 * request sees either the old config or the new one, never a mix. A bad snapshot is refused and
 * the last good one keeps serving.
 */
export class RelayState {
  runtime: Runtime | undefined;
  lastError: string | undefined;
  draining = false;
  readonly #log: FastifyBaseLogger;
  readonly #metrics: RelayMetrics;
  readonly #endpointListeners = new Set<(channelIds: string[]) => void>();

  constructor(log: FastifyBaseLogger, metrics: RelayMetrics) {
    this.#log = log;
    this.#metrics = metrics;
  }

  /** Returns true when the snapshot is now served. */
  offer(candidate: unknown, source: string): boolean {
    const parsed = relayConfigSchema.safeParse(candidate);
    if (!parsed.success) {
      this.reject(source, formatIssues(parsed.error));
      return false;
    }
    const config: RelayConfig = parsed.data;
    if (this.runtime?.config.hash === config.hash) return true;
    const previous = this.runtime;
    const { runtime, retired } = compileRuntime(config, previous);
    this.runtime = runtime;
    const changed = endpointChanges(previous, runtime);
    if (changed.length > 0) for (const l of this.#endpointListeners) l(changed);
    this.lastError = undefined;
    // Pools of removed or re-pointed channels close once their in-flight requests finish.
    for (const agent of retired) void agent.close().catch(() => {});
    this.#metrics.configReloads.inc({ result: 'success' });
    this.#metrics.configInfo.set(config.generation);
    this.#metrics.configLastReload.setToCurrentTime();
    this.#log.info(
      {
        source,
        generation: config.generation,
        hash: config.hash.slice(0, 12),
        channels: config.channels.length,
      },
      'config loaded',
    );
    return true;
  }

  /**
   * Called with the channels whose upstream endpoint or credential changed in a new snapshot (a
   * rotated key, a re-pointed baseURL): their failure history was earned by the old one.
   */
  onEndpointChange(listener: (channelIds: string[]) => void): () => void {
    this.#endpointListeners.add(listener);
    return () => this.#endpointListeners.delete(listener);
  }

  /** Records a refused snapshot; the current one keeps serving. */
  reject(source: string, problems: string[]) {
    this.lastError = problems.join('; ');
    this.#metrics.configReloads.inc({ result: 'invalid' });
    this.#log.error(
      { source, problems, serving: this.runtime?.config.hash.slice(0, 12) ?? null },
      this.runtime
        ? 'config refused; the last good config keeps serving'
        : 'config refused; nothing to serve yet',
    );
  }

  async close() {
    if (!this.runtime) return;
    await Promise.allSettled([...this.runtime.channels.values()].map((c) => c.dispatcher.close()));
  }
}

/** Channels kept from `previous` whose provider, baseURL or key differ in `next`. */
export function endpointChanges(previous: Runtime | undefined, next: Runtime): string[] {
  if (!previous) return [];
  const out: string[] = [];
  for (const [id, ch] of next.channels) {
    const old = previous.channels.get(id)?.config;
    if (!old) continue;
    const c = ch.config;
    const keysChanged = JSON.stringify(old.credentials) !== JSON.stringify(c.credentials);
    if (old.apiKey !== c.apiKey || keysChanged || old.baseURL !== c.baseURL || old.provider !== c.provider)
      out.push(id);
  }
  return out;
}
