import { Agent } from 'undici';
import type { ChannelConfig, RelayConfig } from '../core/config/relay-config.ts';
import { buildModelIndex, type ModelIndex } from '../core/selection.ts';
import { statusMatcher } from '../core/status-match.ts';
import type { ChannelTarget, ProviderAdapter } from '../providers/contract.ts';
import { adapterFor } from '../providers/index.ts';
import { upstreamConnector } from './upstream-connect.ts';

/** A channel ready to forward to: its config plus a connection pool. */
export interface ChannelRuntime {
  config: ChannelConfig;
  dispatcher: Agent;
  /** `http://host:port` and the path prefix of baseURL (e.g. `/v1`). */
  origin: string;
  basePath: string;
  /** The provider adapter: auth, URLs, translation. */
  adapter: ProviderAdapter;
  target: ChannelTarget;
  /** Static headers and the credential, lower-case names, set on every upstream request. */
  headers: Record<string, string>;
  /** Streams: how long the preamble may be held waiting for the first token. */
  firstTokenMs: number;
  /** Does this upstream status count as a failure (cooldown.onStatus, or the provider's own)? */
  isFailure: (status: number) => boolean;
}

/** One config snapshot compiled for the request path. Immutable; replaced whole on reload. */
export interface Runtime {
  config: RelayConfig;
  index: ModelIndex;
  channels: Map<string, ChannelRuntime>;
  /** Configured model names, sorted (GET /v1/models, metric label whitelist). */
  models: string[];
}

/**
 * Compiles a snapshot, reusing the connection pools of channels whose endpoint did not change and
 * returning the pools that are no longer used (the caller closes them once in-flight requests end).
 */
export function compileRuntime(
  config: RelayConfig,
  previous?: Runtime,
): { runtime: Runtime; retired: Agent[] } {
  const channels = new Map<string, ChannelRuntime>();
  const reused = new Set<Agent>();
  for (const c of config.channels) {
    const url = new URL(c.baseURL);
    const origin = url.origin;
    const prev = previous?.channels.get(c.id);
    const same =
      prev &&
      prev.origin === origin &&
      prev.config.timeouts.connectMs === c.timeouts.connectMs &&
      prev.config.allowLinkLocal === c.allowLinkLocal;
    const dispatcher = same ? prev.dispatcher : newAgent(c);
    if (same) reused.add(dispatcher);
    const basePath = url.pathname.replace(/\/+$/, '');
    const adapter = adapterFor(c.provider);
    const target: ChannelTarget = { baseURL: c.baseURL, basePath, apiKey: c.apiKey };
    if (c.azure) target.azureApiVersion = c.azure.apiVersion;
    if (c.credentials) target.credentials = c.credentials;
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(c.headers ?? {})) headers[k.toLowerCase()] = v;
    Object.assign(headers, adapter.auth(target));
    const onStatus = statusMatcher(c.cooldown.onStatus);
    const own = adapter.retryable;
    channels.set(c.id, {
      config: c,
      dispatcher,
      origin,
      basePath,
      adapter,
      target,
      headers,
      firstTokenMs: c.timeouts.firstTokenMs ?? c.timeouts.firstByteMs,
      isFailure: own ? (s) => own(s) ?? onStatus(s) : onStatus,
    });
  }
  const retired = previous
    ? [...previous.channels.values()].map((c) => c.dispatcher).filter((d) => !reused.has(d))
    : [];
  const index = buildModelIndex(config.channels);
  const models = [...new Set(config.channels.flatMap((c) => c.models.map((m) => m.name)))].sort();
  return { runtime: { config, index, channels, models }, retired };
}

function newAgent(c: ChannelConfig): Agent {
  return new Agent({
    connect: upstreamConnector({
      channel: c.id,
      connectTimeoutMs: c.timeouts.connectMs,
      allowLinkLocal: c.allowLinkLocal === true,
    }),
    keepAliveTimeout: 30_000,
    keepAliveMaxTimeout: 600_000,
    // Pipelining would let one slow generation block others on the same socket.
    pipelining: 1,
  });
}
