import type { FastifyBaseLogger } from 'fastify';
import type { RequestRecorder } from '../core/accounting.ts';
import type { ConcurrencyGate } from '../core/concurrency.ts';
import type { PinnedKind, PinStore } from '../core/pins/store.ts';
import type { Limiter } from '../core/ratelimit/limiter.ts';
import type { Candidate } from '../core/selection.ts';
import type { StateStore } from '../core/state/store.ts';
import type { Operation } from '../providers/contract.ts';
import type { ChannelStats } from './channel-stats.ts';
import type { Ingress } from './ingress/contract.ts';
import type { RelayMetrics } from './metrics.ts';
import type { RelayState } from './relay-state.ts';

/** What the request path (proxy.ts, respond.ts, failures.ts) is given: a route and its dependencies. */

export interface RelayRoute {
  /** Public path, also the `route` metric label. */
  path: string;
  /** The operation, which the channel's provider adapter turns into its own URL and body. */
  operation: Operation;
  /** Whether `stream: true` is meaningful (and usage can be requested for it). */
  streamable: boolean;
  /**
   * An ingress API other than chat completions (Anthropic Messages, the Responses API): how each
   * channel serves it (natively or through chat) and its error shape (relay/ingress/contract.ts).
   */
  ingress?: Ingress;
  /** The body is multipart/form-data (relay/multipart.ts), not JSON. */
  multipart?: boolean;
  /** What a 2xx answer is: JSON (default), or `media`: any type but an HTML page (audio, text). */
  answers?: 'json' | 'media';
  /** Answers create an object that lives upstream: its id is pinned to the channel (core/pins/). */
  pins?: PinnedKind;
  /** Narrows the model's candidate tiers for a request (e.g. to the channel an id is pinned to). */
  candidates?: (deps: ProxyDeps, req: RouteRequest, tiers: Candidate[][]) => Promise<Candidate[][]>;
}

/** What a route hook sees of one request. */
export interface RouteRequest {
  model: string;
  body: Readonly<Record<string, unknown>>;
  keyId: string | undefined;
}

export interface ProxyDeps {
  state: RelayState;
  store: StateStore;
  gate: ConcurrencyGate;
  metrics: RelayMetrics;
  log: FastifyBaseLogger;
  maxAttempts: number;
  recorder?: RequestRecorder;
  /** RateLimitPolicy counters: in-process, or fleet-wide in Redis. */
  limiter: Limiter;
  /** Per-channel figures for pod reports. */
  stats?: ChannelStats;
  /** Which channel each upstream object (response, file, batch) lives on (core/pins/). */
  pins: PinStore;
}
