import { z } from 'zod';
import { labelSelectorSchema, PROVIDERS } from './schema.ts';

/**
 * The rendered snapshot the relay serves: what the operator writes into the config Secret and what
 * `relay --config FILE` renders in-process. Plain numbers (milliseconds, USD) and credentials
 * resolved, so the relay never parses durations or decimals on the request path. The relay
 * validates every snapshot it receives against this schema before swapping it in.
 */

export const channelConfigSchema = z.strictObject({
  /** `namespace/name`: unique across the fleet, used in headers, metrics and state keys. */
  id: z.string().min(3),
  namespace: z.string(),
  name: z.string(),
  generation: z.number().int(),
  provider: z.enum(PROVIDERS),
  baseURL: z.string(),
  apiKey: z.string(),
  /**
   * Every Secret key of a provider that signs with more than one (volcengine: accessKeyId and
   * secretAccessKey; core/config/schema.ts PROVIDER_SECRET_KEYS). `apiKey` is then the first.
   */
  credentials: z.record(z.string(), z.string()).optional(),
  // Optional fields are written only when set: relays that predate them keep accepting snapshots.
  /** Extra static request headers (never a credential). */
  headers: z.record(z.string(), z.string()).optional(),
  azure: z.strictObject({ apiVersion: z.string() }).optional(),
  models: z.array(
    z.strictObject({
      name: z.string(),
      upstreamName: z.string(),
      pricing: z.strictObject({
        inputPer1M: z.number(),
        outputPer1M: z.number(),
        cachedInputPer1M: z.number(),
        /** Prompt tokens written to the provider's cache; absent (older snapshots): inputPer1M. */
        cacheWritePer1M: z.number().optional(),
        perRequest: z.number(),
        perSecond: z.number(),
        /** Per character of input (text to speech); absent (older snapshots): 0. */
        perCharacter: z.number().optional(),
        /** Batch API tokens (relay/objects/billing.ts); absent: inputPer1M / outputPer1M. */
        batchInputPer1M: z.number().optional(),
        batchOutputPer1M: z.number().optional(),
      }),
    }),
  ),
  priority: z.number().int().min(0),
  weight: z.number().int().min(0),
  suspend: z.boolean(),
  /** The Channel opted in to a link-local/metadata upstream; the relay's connector checks it. */
  allowLinkLocal: z.boolean().optional(),
  limits: z.strictObject({
    maxConcurrent: z.number().int().min(1).nullable(),
    maxQueue: z.number().int().min(0),
    queueTimeoutMs: z.number().min(1),
  }),
  /** Async jobs (limits.jobs and jobs); absent when the Channel sets neither (jobs/ applies defaults). */
  jobs: z
    .strictObject({
      maxConcurrent: z.number().int().min(1).nullable(),
      maxQueue: z.number().int().min(0),
      pollIntervalMs: z.number().min(1),
      timeoutMs: z.number().min(1),
    })
    .optional(),
  cooldown: z.strictObject({
    failureThreshold: z.number().int().min(1),
    durationMs: z.number().min(1),
    maxDurationMs: z.number().min(1),
    onStatus: z.array(z.union([z.number().int(), z.string()])),
  }),
  timeouts: z.strictObject({
    connectMs: z.number().min(1),
    firstByteMs: z.number().min(1),
    /** Preamble hold on streams; absent: firstByteMs. */
    firstTokenMs: z.number().min(1).optional(),
    totalMs: z.number().min(1),
  }),
});
export type ChannelConfig = z.infer<typeof channelConfigSchema>;
export type ModelPricing = ChannelConfig['models'][number]['pricing'];

export const policyLimitSchema = z.strictObject({
  kind: z.enum(['requests', 'tokens', 'cost', 'concurrent']),
  amount: z.number().positive(),
  /** Window length; absent for `concurrent`. */
  perMs: z.number().min(1).optional(),
});
export type PolicyLimit = z.infer<typeof policyLimitSchema>;

export const policyConfigSchema = z.strictObject({
  id: z.string(),
  namespace: z.string(),
  name: z.string(),
  generation: z.number().int(),
  match: z.strictObject({
    models: z.array(z.string()).optional(),
    apiKeys: labelSelectorSchema.optional(),
    /** Channel ids (`namespace/name`), resolved from the names in the spec. */
    channels: z.array(z.string()).optional(),
    paths: z.array(z.string()).optional(),
  }),
  limitBy: z.string(),
  limits: z.array(policyLimitSchema).min(1),
  algorithm: z.enum(['sliding-window', 'fixed-window', 'token-bucket']),
  onRedisUnavailable: z.enum(['allow', 'deny']),
  shadow: z.boolean(),
});
export type PolicyConfig = z.infer<typeof policyConfigSchema>;

export const relayConfigSchema = z.strictObject({
  generation: z.number().int().min(0),
  /** sha256 of the channels and policies: what pods report as loaded. */
  hash: z.string(),
  channels: z.array(channelConfigSchema),
  policies: z.array(policyConfigSchema),
});
export type RelayConfig = z.infer<typeof relayConfigSchema>;
