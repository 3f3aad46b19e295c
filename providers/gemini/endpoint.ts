// Where and how a Gemini channel is called: `{baseURL}/v1beta/models/{model}:{method}` with the key
// in `x-goog-api-key` (never in the `?key=` query, which would put it in access logs).

export type GeminiMethod =
  | 'generateContent'
  | 'streamGenerateContent'
  | 'embedContent'
  | 'batchEmbedContents';

/** Path and query under the channel's origin; `basePath` is the baseURL's path ('' for Google's). */
export function geminiPath(basePath: string, upstreamModel: string, method: GeminiMethod): string {
  const base = basePath.replace(/\/+$/, '');
  const root = /\/v1(beta|alpha)?$/.test(base) ? base : `${base}/v1beta`;
  const url = `${root}/models/${encodeURIComponent(upstreamModel)}:${method}`;
  return method === 'streamGenerateContent' ? `${url}?alt=sse` : url;
}

export function geminiAuthHeaders(apiKey: string): Record<string, string> {
  return { 'x-goog-api-key': apiKey };
}
