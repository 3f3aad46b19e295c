/**
 * The relay config the benchmarks serve: one channel on a mock upstream, chat priced like
 * gpt-4o-mini (multi-document YAML, the format users write).
 */
export function oneChannelConfig(o: { baseURL: string; apiKey: string; extraModels?: string }): string {
  return `apiVersion: v1
kind: Secret
metadata: { name: up }
stringData: { apiKey: ${o.apiKey} }
---
apiVersion: kuberelay.io/v1alpha1
kind: Channel
metadata: { name: bench }
spec:
  provider: openai-compatible
  baseURL: ${o.baseURL}
  apiKeySecretRef: { name: up }
  models:
    - name: gpt-4o-mini
      pricing: { inputPer1M: "0.15", outputPer1M: "0.60" }
${o.extraModels ?? ''}`;
}
