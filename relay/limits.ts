import type { FastifyBaseLogger, FastifyReply, FastifyRequest } from 'fastify';
import type { RelayConfig } from '../core/config/relay-config.ts';
import type { LimitCheck, LimitDecision, Limiter, SettleItem } from '../core/ratelimit/limiter.ts';
import {
  type CheckOwner,
  type CompiledPolicies,
  checksFor,
  compilePolicies,
  type RequestFacts,
  rateLimitItem,
  tightest,
} from '../core/ratelimit/policy.ts';
import type { SpendIncrement } from '../core/spend.ts';
import { estimateTokens } from '../core/usage.ts';
import { RelayError } from './errors.ts';
import { bodyChars } from './json-body.ts';
import type { RelayMetrics } from './metrics.ts';
import type { RequestTrace } from './tracing.ts';

/**
 * The `limits` step of the request path: RateLimitPolicies (core/ratelimit) applied to one request.
 * Request-level policies are decided in one limiter call before selection; channel policies once
 * per attempt when a channel is chosen (a rejected channel is skipped like a busy one). What a
 * request reserved is settled when it ends: real tokens and cost charged, permits released.
 * Without policies none of this runs.
 */

export interface LimitDeps {
  limiter: Limiter;
  metrics: RelayMetrics;
  log: FastifyBaseLogger;
}

const compiled = new WeakMap<RelayConfig, CompiledPolicies>();

/** Policies compiled once per config snapshot. */
export function policiesOf(config: RelayConfig): CompiledPolicies {
  let p = compiled.get(config);
  if (!p) {
    p = compilePolicies(config.policies);
    compiled.set(config, p);
  }
  return p;
}

interface Held {
  checks: LimitCheck[];
  decision: LimitDecision;
}

// Warn about an unavailable limiter at most this often per process.
const WARN_EVERY_MS = 10_000;
let lastWarn = 0;

export class RequestLimits {
  readonly #deps: LimitDeps;
  readonly #policies: CompiledPolicies;
  readonly #facts: RequestFacts;
  readonly #reserveTokens: number;
  #request: Held | undefined;
  #attempt: Held | undefined;
  #attemptServed = false;
  #usage: { tokens: number; cost: number } | undefined;
  #headerShare = Infinity;
  /** `RateLimit-Policy` and `RateLimit` for the response (the limit closest to exhaustion). */
  readonly headers: Record<string, string> = {};
  /** Why the last channel was refused by a channel policy (the error when no channel is left). */
  rejection: RelayError | undefined;

  readonly #trace: RequestTrace | undefined;

  constructor(
    deps: LimitDeps,
    policies: CompiledPolicies,
    facts: RequestFacts,
    reserveTokens: number,
    trace?: RequestTrace,
  ) {
    this.#deps = deps;
    this.#trace = trace;
    this.#policies = policies;
    this.#facts = facts;
    this.#reserveTokens = reserveTokens;
  }

  /**
   * Request-level policies; throws the 429 (or 503 when unavailable and a policy denies). Decided
   * at once (undefined) by a limiter that never waits; otherwise a promise.
   */
  admit(): Promise<void> | undefined {
    const { checks, owners } = checksFor(this.#policies.request, this.#facts, this.#reserveTokens);
    if (checks.length === 0) return undefined;
    const r = this.#decide(checks, owners);
    if (r instanceof Promise) return r.then((h) => this.#admitted(h));
    this.#admitted(r);
    return undefined;
  }

  #admitted(r: Held | RelayError | undefined) {
    if (r instanceof RelayError) throw r;
    this.#request = r;
  }

  /** Channel policies for one attempt; false when they refuse this channel (at once when it can). */
  admitChannel(channelId: string): boolean | Promise<boolean> {
    if (this.#policies.attempt.length === 0) return true;
    const { checks, owners } = checksFor(this.#policies.attempt, this.#facts, this.#reserveTokens, channelId);
    if (checks.length === 0) return true;
    const r = this.#decide(checks, owners);
    if (r instanceof Promise) return r.then((h) => this.#channelAdmitted(h));
    return this.#channelAdmitted(r);
  }

  #channelAdmitted(r: Held | RelayError | undefined): boolean {
    if (r instanceof RelayError) {
      this.rejection = r;
      return false;
    }
    this.#attempt = r;
    this.#attemptServed = false;
    return true;
  }

  /** Ends the current attempt; `sent` false when it never reached the upstream (refunds it whole). */
  endAttempt(sent = true) {
    const held = this.#attempt;
    if (!held) return;
    this.#attempt = undefined;
    this.#settle(held, this.#attemptServed ? this.#usage : undefined, sent);
  }

  /** The real usage of the request, once known. */
  charge(spend: SpendIncrement) {
    this.#usage = { tokens: spend.promptTokens + spend.completionTokens, cost: spend.cost };
    if (this.#attempt) this.#attemptServed = true;
  }

  /** The request is over: settle whatever is still held. Idempotent. */
  finish() {
    this.endAttempt();
    const held = this.#request;
    if (!held) return;
    this.#request = undefined;
    this.#settle(held, this.#usage, true);
  }

  /** The limiter's decision on `checks`: without a promise when the limiter answers at once. */
  #decide(
    checks: LimitCheck[],
    owners: CheckOwner[],
  ): Held | RelayError | undefined | Promise<Held | RelayError | undefined> {
    const limiter = this.#deps.limiter;
    const t0 = performance.now();
    if (limiter.checkNow !== undefined) {
      let decision: LimitDecision;
      try {
        decision = limiter.checkNow(checks);
      } catch (err) {
        return this.#unavailable(owners, err);
      } finally {
        this.#deps.metrics.ratelimitCheckDuration.observe((performance.now() - t0) / 1000);
      }
      return this.#decided(checks, owners, decision);
    }
    return limiter.check(checks).then(
      (decision) => {
        this.#deps.metrics.ratelimitCheckDuration.observe((performance.now() - t0) / 1000);
        return this.#decided(checks, owners, decision);
      },
      (err: unknown) => {
        this.#deps.metrics.ratelimitCheckDuration.observe((performance.now() - t0) / 1000);
        return this.#unavailable(owners, err);
      },
    );
  }

  #decided(checks: LimitCheck[], owners: CheckOwner[], decision: LimitDecision): Held | RelayError {
    const m = this.#deps.metrics;
    // One decision per policy (its checks are adjacent): rejected when any of its limits rejected.
    let rejected: number | undefined;
    let retryMs = 0;
    let policyRejected = false;
    const n = decision.outcomes.length;
    for (let i = 0; i < n; i++) {
      const o = decision.outcomes[i]!;
      if (!o.allowed) {
        policyRejected = true;
        if (!checks[i]!.shadow && o.resetMs >= retryMs) {
          retryMs = o.resetMs;
          rejected = i;
        }
      }
      const policy = owners[i]!.policy;
      if (i + 1 < n && owners[i + 1]!.policy === policy) continue;
      const d = policyRejected ? (policy.config.shadow ? 'shadow_rejected' : 'rejected') : 'allowed';
      m.ratelimitDecisions.labels(policy.id, d).inc();
      this.#trace?.rateLimit(policy.id, d); // tracing
      policyRejected = false;
    }

    if (!decision.allowed) {
      const i = rejected!;
      const { policy, limit } = owners[i]!;
      const retryAfter = Math.max(1, Math.ceil(retryMs / 1000));
      return new RelayError(
        429,
        'rate_limit_error',
        'rate_limit_exceeded',
        `rate limit exceeded: ${limit.summary} by ${policy.config.limitBy} (RateLimitPolicy ${policy.id}); retry after ${retryAfter}s`,
        {
          headers: {
            'retry-after': String(retryAfter),
            'ratelimit-policy': limit.policyItem,
            ratelimit: rateLimitItem(limit, decision.outcomes[i]!),
          },
        },
      );
    }
    const t = tightest(checks, decision.outcomes);
    if (t >= 0) {
      const share = decision.outcomes[t]!.remaining / checks[t]!.amount;
      if (share < this.#headerShare) {
        this.#headerShare = share;
        const { limit } = owners[t]!;
        this.headers['ratelimit-policy'] = limit.policyItem;
        this.headers.ratelimit = rateLimitItem(limit, decision.outcomes[t]!);
      }
    }
    return { checks, decision };
  }

  /** The limiter cannot answer: each matching policy's `onRedisUnavailable` decides. */
  #unavailable(owners: CheckOwner[], err: unknown): RelayError | undefined {
    const m = this.#deps.metrics;
    let denied: CheckOwner | undefined;
    const seen = new Set<string>();
    for (const o of owners) {
      if (seen.has(o.policy.id)) continue;
      seen.add(o.policy.id);
      const deny = o.policy.config.onRedisUnavailable === 'deny' && !o.policy.config.shadow;
      const d = deny ? 'unavailable_denied' : 'unavailable_allowed';
      m.ratelimitDecisions.inc({ policy: o.policy.id, decision: d });
      this.#trace?.rateLimit(o.policy.id, d); // tracing
      if (deny) denied ??= o;
    }
    const now = Date.now();
    if (now - lastWarn > WARN_EVERY_MS) {
      lastWarn = now;
      this.#deps.log.warn(
        { err: (err as Error).message },
        'rate limits cannot be checked; applying each policy’s onRedisUnavailable',
      );
    }
    if (!denied) return undefined;
    return new RelayError(
      503,
      'server_error',
      'rate_limit_unavailable',
      `rate limits cannot be checked right now and RateLimitPolicy ${denied.policy.id} denies requests meanwhile (onRedisUnavailable: deny)`,
      { headers: { 'retry-after': '1' } },
    );
  }

  #settle(held: Held, usage: { tokens: number; cost: number } | undefined, sent: boolean) {
    if (!held.decision.allowed) return;
    const items: SettleItem[] = [];
    for (let i = 0; i < held.checks.length; i++) {
      const c = held.checks[i]!;
      if (!held.decision.outcomes[i]!.allowed) continue;
      if (c.kind === 'concurrent') items.push({ check: c, delta: 0 });
      else if (c.kind === 'tokens') items.push({ check: c, delta: (usage?.tokens ?? 0) - c.reserve });
      else if (c.kind === 'cost' && usage && usage.cost > 0) items.push({ check: c, delta: usage.cost });
      else if (c.kind === 'requests' && !sent) items.push({ check: c, delta: -c.reserve });
    }
    if (items.length === 0) return;
    const limiter = this.#deps.limiter;
    if (limiter.settleNow !== undefined) {
      try {
        limiter.settleNow(held.decision, items);
      } catch (err) {
        this.#settleFailed(err);
      }
      return;
    }
    limiter.settle(held.decision, items).catch((err) => this.#settleFailed(err));
  }

  #settleFailed(err: unknown) {
    this.#deps.log.debug({ err }, 'rate limits: settling a request failed');
  }
}

/** What the limits know of a Fastify request (a class: no closure per request). */
class FastifyFacts implements RequestFacts {
  readonly model: string;
  readonly path: string;
  readonly keyId: string | undefined;
  readonly labels: Readonly<Record<string, string>>;
  readonly ip: string;
  readonly #headers: FastifyRequest['headers'];

  constructor(req: FastifyRequest, path: string, model: string) {
    this.model = model;
    this.path = path;
    this.keyId = req.client.keyId;
    this.labels = req.client.labels;
    this.ip = req.ip;
    this.#headers = req.headers;
  }

  header(name: string): string | undefined {
    const v = this.#headers[name];
    return Array.isArray(v) ? v[0] : v;
  }
}

const NO_LIMITS: Promise<undefined> = Promise.resolve(undefined);

/**
 * Checks the request-level policies of a request (rejects with the 429). Resolves to undefined when
 * the config has no policies, so requests without them pay nothing.
 */
export function admitRequest(
  deps: LimitDeps,
  config: RelayConfig,
  path: string,
  model: string,
  body: Record<string, unknown>,
  req: FastifyRequest,
  reply: FastifyReply,
): Promise<RequestLimits | undefined> {
  if (config.policies.length === 0) return NO_LIMITS;
  try {
    const facts = new FastifyFacts(req, path, model);
    const limits = new RequestLimits(deps, policiesOf(config), facts, reserveTokens(req, body), req.trace);
    const pending = limits.admit();
    if (pending === undefined) return Promise.resolve(withHeaders(limits, reply));
    return pending.then(() => withHeaders(limits, reply));
  } catch (err) {
    return Promise.reject(err);
  }
}

function withHeaders(limits: RequestLimits, reply: FastifyReply): RequestLimits {
  if (limits.headers.ratelimit) reply.headers(limits.headers);
  return limits;
}

/** Tokens a request may use: its prompt (estimated from the body size) plus what it asks to generate. */
function reserveTokens(req: FastifyRequest, body: Record<string, unknown>): number {
  const max = body.max_completion_tokens ?? body.max_tokens;
  const completion = typeof max === 'number' && Number.isFinite(max) && max > 0 ? Math.floor(max) : 0;
  return estimateTokens(Number(req.headers['content-length'] ?? bodyChars(req))) + completion;
}
