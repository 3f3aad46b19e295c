/** The Messages API version every request is made against (its documented, current version). */
export const ANTHROPIC_VERSION = '2023-06-01';

/** Headers that authenticate a request to Anthropic. */
export function authHeaders(apiKey: string): Record<string, string> {
  return { 'x-api-key': apiKey, 'anthropic-version': ANTHROPIC_VERSION };
}

/** Headers a Channel's static `headers` may not set: they carry the credential and version. */
export const CREDENTIAL_HEADERS = ['x-api-key', 'anthropic-version'] as const;

/** Where chat completions go: `{baseURL}/v1/messages` (baseURL without `/v1`). */
export const MESSAGES_PATH = '/v1/messages';
