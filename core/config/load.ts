import { basename } from 'node:path';
import { parseAllDocuments } from 'yaml';
import type { RelayConfig } from './relay-config.ts';
import { type ObjectResult, type RenderOptions, renderRelayConfig, type SourcedObject } from './render.ts';

/** A config that must not be served, with every problem found (file, document, object, field). */
export class ConfigError extends Error {
  readonly code = 'KR_CONFIG_INVALID';
  readonly problems: string[];
  constructor(problems: string[]) {
    super(`invalid config:\n  - ${problems.join('\n  - ')}`);
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

/** Multi-document YAML (the file `kubectl apply -f` takes) -> objects tagged with their document. */
export function parseObjects(text: string, file: string): SourcedObject[] {
  const name = basename(file);
  const objects: SourcedObject[] = [];
  const problems: string[] = [];
  parseAllDocuments(text).forEach((doc, i) => {
    const source = `${name}, document ${i + 1}`;
    if (doc.errors.length > 0) {
      for (const e of doc.errors) problems.push(`${source}: ${e.message.split('\n')[0]}`);
      return;
    }
    const value: unknown = doc.toJS();
    if (value === null || value === undefined) return; // an empty document, e.g. a trailing `---`
    if (typeof value !== 'object' || Array.isArray(value)) {
      problems.push(`${source}: expected a Kubernetes object (a mapping with apiVersion and kind)`);
      return;
    }
    const list = value as { kind?: unknown; items?: unknown };
    if (list.kind === 'List' && Array.isArray(list.items)) {
      list.items.forEach((item, j) => {
        objects.push({ object: item, source: `${source}, item ${j + 1}` });
      });
      return;
    }
    objects.push({ object: value, source });
  });
  if (problems.length > 0) throw new ConfigError(problems);
  return objects;
}

export interface LoadedConfig {
  config: RelayConfig;
  results: ObjectResult[];
}

/**
 * Standalone mode is strict: a file with any invalid object is refused as a whole, so an edit
 * with a typo never silently drops a channel (the caller keeps serving the last good config).
 */
export function renderFile(text: string, file: string, opts: RenderOptions): LoadedConfig {
  const { config, results } = renderRelayConfig(parseObjects(text, file), opts);
  const problems = results.flatMap((r) => r.errors);
  if (problems.length > 0) throw new ConfigError(problems);
  return { config, results };
}
