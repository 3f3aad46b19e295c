// The relay configs bench/run.ts can serve: a scenario is a relay config plus relay environment.

import { readFileSync } from 'node:fs';
import path from 'node:path';
import { CHAT_MODEL, EMBEDDING_MODEL } from '../lib/requests.ts';

export interface ScenarioContext {
  /** e.g. http://127.0.0.1:PORT/v1 */
  mockBaseURL: string;
  mockApiKey: string;
}

export interface Scenario {
  name: string;
  description: string;
  /** The relay's config file (multi-document YAML). */
  config(ctx: ScenarioContext): string;
  /** Extra relay environment (on top of LOG_LEVEL=warn). */
  env: Record<string, string>;
}

export const passthroughConfig = (ctx: ScenarioContext) => `apiVersion: v1
kind: Secret
metadata: { name: bench-upstream }
stringData: { apiKey: ${ctx.mockApiKey} }
---
apiVersion: kuberelay.io/v1alpha1
kind: Channel
metadata: { name: bench }
spec:
  provider: openai-compatible
  baseURL: ${ctx.mockBaseURL}
  apiKeySecretRef: { name: bench-upstream }
  models:
    - name: ${CHAT_MODEL}
      pricing: { inputPer1M: "0.15", outputPer1M: "0.60" }
    - name: ${EMBEDDING_MODEL}
      pricing: { inputPer1M: "0.02" }
`;

export const SCENARIOS: Record<string, Scenario> = {
  passthrough: {
    name: 'passthrough',
    description:
      'one channel, no RateLimitPolicy, no channel concurrency limit, client auth off (KUBERELAY_AUTH=none), metrics on',
    config: passthroughConfig,
    env: { KUBERELAY_AUTH: 'none' },
  },
  limits: {
    name: 'limits',
    description:
      'as passthrough, plus a channel concurrency limit (1000) and RateLimitPolicies that never trigger ' +
      '(per client IP: requests and tokens per minute; global: concurrent), so the limiter runs on every request',
    config: (ctx) =>
      passthroughConfig(ctx).replace(
        '  models:\n',
        '  limits: { maxConcurrent: 1000, maxQueue: 1000 }\n  models:\n',
      ) +
      `---
apiVersion: kuberelay.io/v1alpha1
kind: RateLimitPolicy
metadata: { name: bench-per-ip }
spec:
  limitBy: clientIP
  limits:
    - { requests: 1000000000, per: 1m }
    - { tokens: 1000000000000, per: 1m }
---
apiVersion: kuberelay.io/v1alpha1
kind: RateLimitPolicy
metadata: { name: bench-global }
spec:
  limitBy: global
  limits:
    - { concurrent: 100000 }
`,
    env: { KUBERELAY_AUTH: 'none' },
  },
  'channel-limit': {
    name: 'channel-limit',
    description: 'as passthrough, plus limits.maxConcurrent 1000 on the channel (the concurrency gate runs)',
    config: (ctx) =>
      passthroughConfig(ctx).replace(
        '  models:\n',
        '  limits: { maxConcurrent: 1000, maxQueue: 1000 }\n  models:\n',
      ),
    env: { KUBERELAY_AUTH: 'none' },
  },
};

/** `--config FILE`: a template where {{MOCK_BASE_URL}} and {{MOCK_API_KEY}} are replaced. */
export function templateScenario(file: string, env: Record<string, string>): Scenario {
  const text = readFileSync(file, 'utf8');
  return {
    name: `config:${path.basename(file)}`,
    description: `config template ${file}`,
    config: (ctx) =>
      text.replaceAll('{{MOCK_BASE_URL}}', ctx.mockBaseURL).replaceAll('{{MOCK_API_KEY}}', ctx.mockApiKey),
    env,
  };
}
