// Where and how a Gemini channel is called: `{baseURL}/v1beta/models/{model}:{method}` with the key
// in `x-goog-api-key` (never in the `?key=` query, which would put it in access logs).

export type GeminiMethod =
  | 'generateContent'
  | 'streamGenerateContent'
  | 'embedContent'
  | 'batchEmbedContents'
  | 'predictLongRunning';

/**
 * The model's resource name: `upstreamName` as Google's docs write it (`gemini-2.5-flash`,
 * `models/gemini-2.5-flash`) or a tuned model (`tunedModels/my-model`).
 */
export function modelResource(upstreamModel: string): string {
  const m = /^(models|tunedModels)\/(.+)$/.exec(upstreamModel);
  return m ? `${m[1]}/${encodeURIComponent(m[2]!)}` : `models/${encodeURIComponent(upstreamModel)}`;
}

/** The API version root under the channel's origin: `{basePath}/v1beta` unless baseURL names one. */
export function geminiRoot(basePath: string): string {
  const base = basePath.replace(/\/+$/, '');
  return /\/v1(beta|alpha)?$/.test(base) ? base : `${base}/v1beta`;
}

/** Path and query under the channel's origin; `basePath` is the baseURL's path ('' for Google's). */
export function geminiPath(basePath: string, upstreamModel: string, method: GeminiMethod): string {
  const url = `${geminiRoot(basePath)}/${modelResource(upstreamModel)}:${method}`;
  return method === 'streamGenerateContent' ? `${url}?alt=sse` : url;
}

export function geminiAuthHeaders(apiKey: string): Record<string, string> {
  return { 'x-goog-api-key': apiKey };
}
