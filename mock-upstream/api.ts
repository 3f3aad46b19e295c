// The contract between the mock's server (server.ts: body reading, faults, stats, control API) and
// its per-provider modules (openai/, azure-openai/, anthropic/, gemini/): each module answers its
// provider's native paths, checks its provider's auth header and writes its provider's error shape.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { MockFaults } from './faults.ts';
import type { MockHttp } from './http.ts';

/** One request, parsed: what a handler needs. */
export interface MockRequest {
  req: IncomingMessage;
  /** Path without the query. */
  path: string;
  query: URLSearchParams;
  /** Parsed JSON body (undefined when empty; the raw text when it did not parse). */
  body: unknown;
  badJson: boolean;
  /** The raw body bytes (multipart bodies are binary). */
  bytes?: Buffer;
  faults: MockFaults | undefined;
}

export type MockHandler = (m: MockHttp, res: ServerResponse, r: MockRequest) => void;

export interface MockApi {
  name: string;
  /** Does this API own the path? (The first API that does answers, 404s included.) */
  owns(path: string): boolean;
  /** The handler for the method and path, or undefined (-> a 404 in this API's shape). */
  match(method: string, path: string): MockHandler | undefined;
  /** Is the request's credential the configured key? */
  authorized(r: MockRequest, apiKey: string): boolean;
  /** Writes an error in this API's own shape; `status` faults and auth failures come here too. */
  sendError(
    m: MockHttp,
    res: ServerResponse,
    status: number,
    message?: string,
    opts?: { code?: string; headers?: Record<string, string> },
  ): void;
}
