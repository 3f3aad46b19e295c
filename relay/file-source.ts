import { type FSWatcher, watch } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import { ConfigError, renderFile } from '../core/config/load.ts';
import type { RelayState } from './relay-state.ts';

/**
 * Standalone mode: serve a YAML file and follow its edits. The directory is watched (editors and
 * ConfigMap mounts replace files rather than write them in place) and polled as a safety net.
 * Each changed text is rendered; an invalid edit is refused and the last good config serves on.
 */
export class FileConfigSource {
  readonly #file: string;
  readonly #state: RelayState;
  #generation = 0;
  #lastText: string | undefined;
  /** Hash of the last rendered snapshot this file put in service. */
  #offeredHash: string | undefined;
  #watcher: FSWatcher | undefined;
  #poll: NodeJS.Timeout | undefined;
  #debounce: NodeJS.Timeout | undefined;
  #loading: Promise<void> = Promise.resolve();

  constructor(file: string, state: RelayState) {
    this.#file = file;
    this.#state = state;
  }

  /** Loads the file once (throws ConfigError if it is invalid) and starts following it. */
  async start(opts: { pollMs?: number } = {}): Promise<void> {
    const text = await readFile(this.#file, 'utf8');
    this.#apply(text, true);
    try {
      this.#watcher = watch(dirname(this.#file), (_event, name) => {
        if (name === null || name === basename(this.#file)) this.#schedule();
      });
      this.#watcher.on('error', () => {}); // the poll below keeps working
    } catch {
      // Some filesystems cannot be watched; polling covers them.
    }
    this.#poll = setInterval(() => this.#schedule(), opts.pollMs ?? 1000);
    this.#poll.unref();
  }

  /** Re-reads the file now; resolves when the result has been offered. */
  reload(): Promise<void> {
    this.#loading = this.#loading.then(async () => {
      let text: string;
      try {
        text = await readFile(this.#file, 'utf8');
      } catch (err) {
        if (this.#lastText !== undefined) {
          this.#state.reject(this.#file, [`cannot read ${this.#file}: ${(err as Error).message}`]);
          this.#lastText = undefined;
        }
        return;
      }
      this.#apply(text, false);
    });
    return this.#loading;
  }

  stop() {
    this.#watcher?.close();
    clearInterval(this.#poll);
    clearTimeout(this.#debounce);
  }

  #schedule() {
    clearTimeout(this.#debounce);
    this.#debounce = setTimeout(() => void this.reload(), 50);
  }

  /**
   * In cluster mode the file is the kubelet's copy of the config Secret, which lags the API
   * watch by up to a minute: a rendered snapshot is served only if its generation is newer than
   * what another source (the Secret watch) put in service, so a lagging mount never rolls back.
   */
  #olderThanServed(snapshot: { hash: string; generation?: unknown }): boolean {
    const served = this.#state.runtime?.config;
    if (!served || served.hash === this.#offeredHash) return false;
    return typeof snapshot.generation !== 'number' || snapshot.generation <= served.generation;
  }

  #apply(text: string, initial: boolean) {
    if (text === this.#lastText) return;
    this.#lastText = text;
    try {
      const snapshot = renderedSnapshot(text);
      if (snapshot !== undefined) {
        if (this.#olderThanServed(snapshot)) return;
        if (this.#state.offer(snapshot, this.#file)) this.#offeredHash = snapshot.hash;
        return;
      }
      const { config } = renderFile(text, this.#file, { generation: this.#generation + 1 });
      if (this.#state.offer(config, this.#file)) this.#generation++;
    } catch (err) {
      if (initial) throw err;
      const problems = err instanceof ConfigError ? err.problems : [(err as Error).message];
      this.#state.reject(this.#file, problems);
    }
  }
}

/** The operator's rendered snapshot (the mounted config Secret) rather than YAML objects. */
function renderedSnapshot(text: string): { hash: string; generation?: unknown } | undefined {
  if (!text.trimStart().startsWith('{')) return undefined;
  try {
    const v = JSON.parse(text) as { hash?: unknown; channels?: unknown; generation?: unknown };
    return typeof v.hash === 'string' && Array.isArray(v.channels) ? { ...v, hash: v.hash } : undefined;
  } catch {
    return undefined;
  }
}
