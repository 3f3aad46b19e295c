import type { FastifyRequest } from 'fastify';

/**
 * Who is calling, as established by auth. Rate limits (`limitBy: apiKey`, `match.apiKeys`),
 * accounting and request logs read it; nothing downstream sees the key itself.
 */
export interface ClientIdentity {
  /** The key's id (never its secret); undefined when client auth is off. */
  keyId?: string;
  keyName?: string;
  /** Key labels, matched by RateLimitPolicy `match.apiKeys` selectors. */
  labels: Readonly<Record<string, string>>;
  /** Models the key is limited to (GET /v1/models lists only these); undefined: all. */
  models?: readonly string[];
}

export const ANONYMOUS: ClientIdentity = Object.freeze({ labels: Object.freeze({}) });

/** Resolves the caller of a /v1 request or throws a RelayError (401, 403, 429 for a spent budget). */
export interface Authenticator {
  /** At once when no I/O is needed (a cached key), else a promise; a refusal throws or rejects. */
  identify(req: FastifyRequest): ClientIdentity | Promise<ClientIdentity>;
}
