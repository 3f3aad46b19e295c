// Gemini's error shape, {"error":{"code","message","status"}}, with the messages Google's
// troubleshooting guide lists (https://ai.google.dev/gemini-api/docs/troubleshooting).

const STATUS: Record<number, [status: string, message: string]> = {
  400: ['INVALID_ARGUMENT', 'Request contains an invalid argument.'],
  401: ['UNAUTHENTICATED', 'Request had invalid authentication credentials.'],
  403: ['PERMISSION_DENIED', 'The caller does not have permission.'],
  404: ['NOT_FOUND', 'Requested entity was not found.'],
  408: ['DEADLINE_EXCEEDED', 'Request timed out.'],
  429: ['RESOURCE_EXHAUSTED', 'Resource has been exhausted (e.g. check quota).'],
  500: [
    'INTERNAL',
    'An internal error has occurred. Please retry or report in https://developers.generativeai.google/guide/troubleshooting',
  ],
  503: ['UNAVAILABLE', 'The model is overloaded. Please try again later.'],
  504: ['DEADLINE_EXCEEDED', 'Deadline expired before operation could complete.'],
};

export function geminiError(code: number, message?: string, details?: unknown[]): string {
  const [status, text] = STATUS[code] ?? [code >= 500 ? 'INTERNAL' : 'FAILED_PRECONDITION', `HTTP ${code}.`];
  const error: Record<string, unknown> = { code, message: message ?? `${text} (mock fault)`, status };
  if (details) error['details'] = details;
  return JSON.stringify({ error });
}

/** What Gemini answers to a wrong key (a 400, told apart by its ErrorInfo reason). */
export const INVALID_KEY = geminiError(400, 'API key not valid. Please pass a valid API key.', [
  {
    '@type': 'type.googleapis.com/google.rpc.ErrorInfo',
    reason: 'API_KEY_INVALID',
    domain: 'googleapis.com',
    metadata: { service: 'generativelanguage.googleapis.com' },
  },
]);
