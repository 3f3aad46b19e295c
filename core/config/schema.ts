import { z } from 'zod';
import { decimal } from './decimal.ts';
import { duration, tryParseDuration } from './duration.ts';

/**
 * The API: one zod schema per kind, written to match crds/ field for field (a test keeps them in
 * step). Objects are strict, like a structural CRD schema under kubectl's strict field validation.
 */

export const API_GROUP = 'kuberelay.io';
export const API_VERSION = `${API_GROUP}/v1alpha1`;

export const PROVIDERS = [
  'openai',
  'openai-compatible',
  'azure-openai',
  'anthropic',
  'gemini',
  'volcengine',
] as const;
/**
 * Providers with an adapter in providers/ (a test keeps this equal to the registry); the others are
 * valid API values, refused at render.
 */
export const SUPPORTED_PROVIDERS: ReadonlySet<string> = new Set([
  'openai',
  'openai-compatible',
  'azure-openai',
  'anthropic',
  'gemini',
  'volcengine',
]);

/**
 * Headers that carry a credential: a Channel's static `headers` may not set them (the credential
 * comes from the Secret, and only the provider adapter places it). Lower case; compared ignoring case.
 */
export const CREDENTIAL_HEADERS = [
  'authorization',
  'api-key',
  'x-api-key',
  'x-goog-api-key',
  'proxy-authorization',
  'cookie',
] as const;
export const HEADER_NAME_PATTERN = "^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,128}$";
/** `v1` or a dated Azure OpenAI API version such as 2024-10-21 or 2025-04-01-preview. */
export const AZURE_API_VERSION_PATTERN = '^(v1|[0-9]{4}-[0-9]{2}-[0-9]{2}(-preview)?)$';

const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
export const MODEL_NAME_PATTERN = '^[A-Za-z0-9][A-Za-z0-9._:/@+-]{0,127}$';
const modelName = z
  .string()
  .regex(new RegExp(MODEL_NAME_PATTERN), 'must be a model name such as gpt-4o-mini');

export const metadataSchema = z.looseObject({
  name: z.string().regex(DNS_SUBDOMAIN, 'must be a lowercase DNS subdomain name'),
  namespace: z.string().regex(DNS_LABEL, 'must be a lowercase DNS label').optional(),
  generation: z.number().int().min(1).optional(),
  labels: z.record(z.string(), z.string()).optional(),
});

/**
 * Providers whose credential is more than one Secret key (AK/SK request signing): the Secret that
 * `apiKeySecretRef.name` names must hold all of these keys (`apiKeySecretRef.key` is not used).
 * Every other provider reads the one key `apiKeySecretRef.key`.
 */
export const PROVIDER_SECRET_KEYS: Readonly<Partial<Record<(typeof PROVIDERS)[number], readonly string[]>>> =
  { volcengine: ['accessKeyId', 'secretAccessKey'] };

// ---- Secret ---------------------------------------------------------------------------------

export const secretSchema = z.looseObject({
  apiVersion: z.literal('v1'),
  kind: z.literal('Secret'),
  metadata: metadataSchema,
  data: z.record(z.string(), z.base64('must be base64 (use stringData for plain text)')).optional(),
  stringData: z.record(z.string(), z.string()).optional(),
});
export type SecretObject = z.infer<typeof secretSchema>;

// ---- Channel --------------------------------------------------------------------------------

export const pricingSchema = z.strictObject({
  inputPer1M: decimal().optional(),
  outputPer1M: decimal().optional(),
  cachedInputPer1M: decimal().optional(),
  cacheWritePer1M: decimal().optional(),
  perRequest: decimal().optional(),
  perSecond: decimal().optional(),
  /** Text to speech: per character of `input`. */
  perCharacter: decimal().optional(),
  /** Batch API requests (`/v1/batches`), per 1M tokens; unset: inputPer1M / outputPer1M. */
  batchInputPer1M: decimal().optional(),
  batchOutputPer1M: decimal().optional(),
});

export const channelModelSchema = z.strictObject({
  name: modelName,
  upstreamName: modelName.optional(),
  pricing: pricingSchema.optional(),
});

/** A status code (429) or a class (`5xx`). */
export const statusMatcherSchema = z.union([
  z.number().int().min(100).max(599),
  z.string().regex(/^[1-5]xx$/, 'must be a status code or a class such as 5xx'),
]);

export const DEFAULT_ON_STATUS = [401, 403, 408, 429, '5xx'] as const;

export const channelSpecSchema = z
  .strictObject({
    provider: z.enum(PROVIDERS),
    baseURL: z
      .string()
      .max(2048)
      .regex(/^https?:\/\/[^\s/?#]+(\/[^\s?#]*)?$/, 'must be an http(s) URL without query or fragment')
      .refine((v) => URL.canParse(v), 'must be an http(s) URL'),
    headers: z
      .record(
        z.string().regex(new RegExp(HEADER_NAME_PATTERN), 'must be an HTTP header name'),
        z
          .string()
          .max(4096)
          .regex(/^[^\r\n]*$/, 'must be one line'),
      )
      .refine((h) => Object.keys(h).length <= 32, 'at most 32 headers')
      .superRefine((h, ctx) => {
        for (const name of Object.keys(h)) {
          if ((CREDENTIAL_HEADERS as readonly string[]).includes(name.toLowerCase())) {
            ctx.addIssue({
              code: 'custom',
              path: [name],
              message: `must not set the credential header ${name}: the credential comes from apiKeySecretRef`,
            });
          }
        }
      })
      .optional(),
    azure: z
      .strictObject({
        apiVersion: z
          .string()
          .regex(new RegExp(AZURE_API_VERSION_PATTERN), 'must be v1 or a dated version such as 2024-10-21')
          .default('v1'),
      })
      .optional(),
    apiKeySecretRef: z.strictObject({
      name: z.string().regex(DNS_SUBDOMAIN, 'must be a Secret name'),
      key: z
        .string()
        .regex(/^[-._a-zA-Z0-9]{1,253}$/, 'must be a Secret key')
        .default('apiKey'),
    }),
    models: z
      .array(channelModelSchema)
      .min(1)
      .max(256)
      .refine((ms) => new Set(ms.map((m) => m.name)).size === ms.length, 'model names must be unique'),
    priority: z.number().int().min(0).max(1000).default(0),
    weight: z.number().int().min(0).max(10000).default(1),
    limits: z
      .strictObject({
        maxConcurrent: z.number().int().min(1).max(100000).optional(),
        maxQueue: z.number().int().min(0).max(100000).default(100),
        queueTimeout: duration('1ms', '1h').default('30s'),
        /** Async jobs (video, image tasks): fleet-wide slots held from upstream submit to a terminal state. */
        jobs: z
          .strictObject({
            maxConcurrent: z.number().int().min(1).max(100000).optional(),
            maxQueue: z.number().int().min(0).max(100000).default(100),
          })
          .optional(),
      })
      .prefault({}),
    /** Async jobs on this channel: how often the one poller asks, and when it gives up. */
    jobs: z
      .strictObject({
        pollInterval: duration('500ms', '1h').default('30s'),
        timeout: duration('1s', '168h').default('30m'),
      })
      .optional(),
    cooldown: z
      .strictObject({
        failureThreshold: z.number().int().min(1).max(1000).default(5),
        duration: duration('1s', '24h').default('60s'),
        maxDuration: duration('1s', '24h').default('10m'),
        onStatus: z
          .array(statusMatcherSchema)
          .max(16)
          .default(() => [...DEFAULT_ON_STATUS]),
      })
      .prefault({})
      .refine((c) => (tryParseDuration(c.maxDuration) ?? Infinity) >= (tryParseDuration(c.duration) ?? 0), {
        message: 'maxDuration must be at least duration',
        path: ['maxDuration'],
      }),
    timeouts: z
      .strictObject({
        connect: duration('1ms', '5m').default('10s'),
        firstByte: duration('1ms', '1h').default('5m'),
        /**
         * Streams: how long role-only preamble chunks are held waiting for the first content or
         * tool call, so a slow first token still fails over. Unset: firstByte.
         */
        firstToken: duration('1ms', '1h').optional(),
        total: duration('1ms', '24h').default('10m'),
      })
      .prefault({}),
    suspend: z.boolean().default(false),
    /** Allow a baseURL on a link-local or cloud metadata address (core/config/link-local.ts). */
    allowLinkLocal: z.boolean().default(false),
  })
  .refine((s) => s.weight > 0 || s.suspend, {
    message: 'weight must be greater than 0 unless the channel is suspended',
    path: ['weight'],
  })
  .refine((s) => s.azure === undefined || s.provider === 'azure-openai', {
    message: 'azure is only for provider azure-openai',
    path: ['azure'],
  });

export const channelSchema = z.strictObject({
  apiVersion: z.literal(API_VERSION),
  kind: z.literal('Channel'),
  metadata: metadataSchema,
  spec: channelSpecSchema,
  status: z.unknown().optional(),
});
export type ChannelObject = z.infer<typeof channelSchema>;
export type ChannelSpec = z.infer<typeof channelSpecSchema>;

// ---- RateLimitPolicy ------------------------------------------------------------------------

export const labelSelectorSchema = z.strictObject({
  matchLabels: z.record(z.string(), z.string()).optional(),
  matchExpressions: z
    .array(
      z.strictObject({
        key: z.string().min(1),
        operator: z.enum(['In', 'NotIn', 'Exists', 'DoesNotExist']),
        values: z.array(z.string()).optional(),
      }),
    )
    .optional(),
});
export type LabelSelector = z.infer<typeof labelSelectorSchema>;

export const LIMIT_BY_PATTERN = '^(apiKey|clientIP|model|channel|global|header:[A-Za-z0-9-]{1,64})$';

export const limitSchema = z
  .strictObject({
    requests: z.number().int().min(1).optional(),
    tokens: z.number().int().min(1).optional(),
    cost: decimal().optional(),
    concurrent: z.number().int().min(1).optional(),
    per: duration('1s', '30d').optional(),
  })
  .superRefine((l, ctx) => {
    const kinds = (['requests', 'tokens', 'cost', 'concurrent'] as const).filter((k) => l[k] !== undefined);
    if (kinds.length !== 1) {
      ctx.addIssue({
        code: 'custom',
        message: 'set exactly one of requests, tokens, cost or concurrent',
      });
    } else if (kinds[0] === 'concurrent' && l.per !== undefined) {
      ctx.addIssue({ code: 'custom', message: 'a concurrent limit takes no per', path: ['per'] });
    } else if (kinds[0] !== 'concurrent' && l.per === undefined) {
      ctx.addIssue({ code: 'custom', message: `a ${kinds[0]} limit needs per (e.g. 1m)`, path: ['per'] });
    }
  });
export type Limit = z.infer<typeof limitSchema>;

export const policySpecSchema = z.strictObject({
  match: z
    .strictObject({
      models: z.array(modelName).max(256).optional(),
      apiKeys: labelSelectorSchema.optional(),
      channels: z.array(z.string().regex(DNS_SUBDOMAIN, 'must be a Channel name')).max(256).optional(),
      paths: z.array(z.string().max(256).regex(/^\//, 'must be a path starting with /')).max(64).optional(),
    })
    .prefault({}),
  limitBy: z
    .string()
    .regex(new RegExp(LIMIT_BY_PATTERN), 'must be apiKey, clientIP, model, channel, global or header:<name>')
    .default('apiKey'),
  limits: z.array(limitSchema).min(1).max(16),
  algorithm: z.enum(['sliding-window', 'fixed-window', 'token-bucket']).default('sliding-window'),
  onRedisUnavailable: z.enum(['allow', 'deny']).default('allow'),
  shadow: z.boolean().default(false),
});

export const policySchema = z.strictObject({
  apiVersion: z.literal(API_VERSION),
  kind: z.literal('RateLimitPolicy'),
  metadata: metadataSchema,
  spec: policySpecSchema,
  status: z.unknown().optional(),
});
export type PolicyObject = z.infer<typeof policySchema>;
export type PolicySpec = z.infer<typeof policySpecSchema>;

export const KINDS = {
  Secret: secretSchema,
  Channel: channelSchema,
  RateLimitPolicy: policySchema,
} as const;
export type Kind = keyof typeof KINDS;
