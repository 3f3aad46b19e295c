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

const ENV_REF = /\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g;

/**
 * Standalone configs may write a Secret's `stringData` value (or part of it) as `${ENV_NAME}`,
 * read from the relay's environment, so provider keys need not sit in the file. A variable that
 * is not set is a problem naming it (never a value). The operator never calls this.
 */
export function expandSecretEnv(
  objects: SourcedObject[],
  env: Readonly<Record<string, string | undefined>>,
): SourcedObject[] {
  const problems: string[] = [];
  const out = objects.map((o) => {
    const obj = o.object as { kind?: unknown; metadata?: { name?: unknown }; stringData?: unknown };
    const data = obj.stringData;
    if (obj.kind !== 'Secret' || data === null || typeof data !== 'object') return o;
    const expanded: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(data)) {
      expanded[key] =
        typeof value !== 'string'
          ? value
          : value.replace(ENV_REF, (_, name: string) => {
              const v = env[name];
              if (v === undefined) {
                const where = `${o.source ? `${o.source}: ` : ''}Secret ${String(obj.metadata?.name)}`;
                problems.push(`${where}: stringData.${key}: environment variable ${name} is not set`);
                return '';
              }
              return v;
            });
    }
    return { ...o, object: { ...obj, stringData: expanded } };
  });
  if (problems.length > 0) throw new ConfigError(problems);
  return out;
}

/**
 * Standalone mode is strict: a file with any invalid object is refused as a whole, so an edit
 * with a typo never silently drops a channel (the caller keeps serving the last good config).
 * `${ENV_NAME}` in Secret values is read from `env` (the relay's environment).
 */
export function renderFile(
  text: string,
  file: string,
  opts: RenderOptions,
  env: Readonly<Record<string, string | undefined>> = process.env,
): LoadedConfig {
  const objects = expandSecretEnv(parseObjects(text, file), env);
  const { config, results } = renderRelayConfig(objects, opts);
  const problems = results.flatMap((r) => r.errors);
  if (problems.length > 0) throw new ConfigError(problems);
  return { config, results };
}
