// Errors in Anthropic's shape (https://docs.anthropic.com/en/api/errors):
// {"type":"error","error":{"type","message"}}, for clients of the Messages API.

/** Anthropic's error type for an HTTP status. */
export function errorType(status: number): string {
  switch (status) {
    case 400:
      return 'invalid_request_error';
    case 401:
      return 'authentication_error';
    case 402:
      return 'billing_error';
    case 403:
      return 'permission_error';
    case 404:
      return 'not_found_error';
    case 413:
      return 'request_too_large';
    case 429:
      return 'rate_limit_error';
    case 503:
    case 529:
      return 'overloaded_error';
    case 504:
      return 'timeout_error';
    default:
      return status >= 500 ? 'api_error' : 'invalid_request_error';
  }
}

export function errorBody(status: number, message: string) {
  return { type: 'error', error: { type: errorType(status), message } };
}

/** The `error` event that ends a Messages stream that failed after its first byte. */
export function errorEvent(message: string, status = 500): string {
  return `event: error\ndata: ${JSON.stringify(errorBody(status, message))}\n\n`;
}
