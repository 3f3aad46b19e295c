// Where and how a Gemini channel is called: `{baseURL}/v1beta/models/{model}:{method}` with the key
// in `x-goog-api-key` (never in the `?key=` query, which would put it in access logs).

export type GeminiMethod =
  | 'generateContent'
  | 'streamGenerateContent'
  | 'embedContent'
  | 'batchEmbedContents';

export function geminiUrl(baseURL: string, upstreamModel: string, method: GeminiMethod): string {
  const base = baseURL.replace(/\/+$/, '');
  const root = /\/v1(beta|alpha)?$/.test(base) ? base : `${base}/v1beta`;
  const url = `${root}/models/${encodeURIComponent(upstreamModel)}:${method}`;
  return method === 'streamGenerateContent' ? `${url}?alt=sse` : url;
}

export function geminiAuthHeaders(apiKey: string): Record<string, string> {
  return { 'x-goog-api-key': apiKey };
}
