import { DEFAULT_AZURE_API_VERSION } from './azure-openai/index.ts';
import type { ChannelTarget } from './contract.ts';

/**
 * Where a provider keeps objects that live upstream (OpenAI's Files and Batch APIs), for the
 * providers that have them: OpenAI and OpenAI-compatible servers under baseURL, Azure OpenAI
 * under `/openai/v1` (or `/openai/...?api-version=` for a dated version). The bodies are
 * OpenAI's on all of them, so nothing is translated. A provider missing here serves no files.
 */

export type ObjectPath = (channel: ChannelTarget, path: string) => string;

const underBase: ObjectPath = (ch, path) => ch.basePath + path;

const azure: ObjectPath = (ch, path) => {
  const version = ch.azureApiVersion ?? DEFAULT_AZURE_API_VERSION;
  if (version === 'v1') return `${ch.basePath}/openai/v1${path}`;
  const sep = path.includes('?') ? '&' : '?';
  return `${ch.basePath}/openai${path}${sep}api-version=${encodeURIComponent(version)}`;
};

const OBJECT_APIS: ReadonlyMap<string, ObjectPath> = new Map([
  ['openai', underBase],
  ['openai-compatible', underBase],
  ['azure-openai', azure],
]);

/** The path under the channel's origin of `path` (`/files`, `/batches/{id}`, with a query), or undefined. */
export function objectPathFor(provider: string): ObjectPath | undefined {
  return OBJECT_APIS.get(provider);
}
