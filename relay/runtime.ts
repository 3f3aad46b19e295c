import { Agent } from 'undici';
import type { ChannelConfig, RelayConfig } from '../core/config/relay-config.ts';
import { buildModelIndex, type ModelIndex } from '../core/selection.ts';
import { statusMatcher } from '../core/status-match.ts';
import { upstreamConnector } from './upstream-connect.ts';

/** A channel ready to forward to: its config plus a connection pool. */
export interface ChannelRuntime {
  config: ChannelConfig;
  dispatcher: Agent;
  /** `http://host:port` and the path prefix of baseURL (e.g. `/v1`). */
  origin: string;
  basePath: string;
  authorization: string;
  /** Does this upstream status count as a failure (cooldown.onStatus)? */
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
    channels.set(c.id, {
      config: c,
      dispatcher,
      origin,
      basePath: url.pathname.replace(/\/+$/, ''),
      authorization: `Bearer ${c.apiKey}`,
      isFailure: statusMatcher(c.cooldown.onStatus),
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
