import { z } from 'zod';
import { PERIODS, type Period } from '../period.ts';

/**
 * API keys as the relay and its operators see them, independent of where they are stored.
 * `KeyRecord` is what the request path caches per secret; `ApiKeyInfo` is what listings and the
 * admin API show (never a hash or a secret).
 */

export interface Budget {
  /** USD per period. */
  amount: number;
  period: Period;
}

export interface KeyRecord {
  id: string;
  name: string;
  /** Models the key may use; empty means all. */
  models: readonly string[];
  labels: Readonly<Record<string, string>>;
  budget: Budget | null;
  expiresAt: number | null;
  revokedAt: number | null;
  /** SHA-256 of the secret that matched, and when that secret stops working (rotated out). */
  secretHash: string;
  secretExpiresAt: number | null;
}

export type KeyStatus = 'active' | 'expired' | 'revoked';

export interface ApiKeyInfo {
  id: string;
  name: string;
  /** Display prefix of the current secret. */
  prefix: string;
  status: KeyStatus;
  models: string[];
  labels: Record<string, string>;
  budget: Budget | null;
  createdAt: string;
  expiresAt: string | null;
  revokedAt: string | null;
  /** Working secrets: the current one, plus rotated-out ones still in their grace period. */
  secrets: { prefix: string; createdAt: string; expiresAt: string | null }[];
}

/** What `create` and `rotate` return: the only time the secret is ever shown. */
export interface CreatedKey {
  key: ApiKeyInfo;
  secret: string;
}

/** Key management, the same whether it runs on the database directly or through the admin API. */
export interface KeyAdmin {
  create(input: NewKey): Promise<CreatedKey>;
  list(opts?: { includeRevoked?: boolean }): Promise<ApiKeyInfo[]>;
  get(id: string): Promise<ApiKeyInfo>;
  revoke(id: string): Promise<ApiKeyInfo>;
  /** A new secret for the same key; the current one keeps working for `gracePeriodMs`. */
  rotate(id: string, gracePeriodMs: number): Promise<CreatedKey>;
}

export class KeyAdminError extends Error {
  readonly status: 400 | 404 | 409;
  readonly code: string;
  constructor(status: 400 | 404 | 409, code: string, message: string) {
    super(message);
    this.name = 'KeyAdminError';
    this.status = status;
    this.code = code;
  }
}

export const keyNotFound = (id: string) =>
  new KeyAdminError(404, 'key_not_found', `no API key with id ${id}`);

// Kubernetes label syntax, so RateLimitPolicy `match.apiKeys` selectors can address them.
const LABEL_NAME =
  /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;
const LABEL_VALUE = /^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$/;

export const budgetSchema = z.strictObject({
  amount: z.number().positive().max(1e12),
  period: z.enum(PERIODS),
});

export const newKeySchema = z.strictObject({
  name: z.string().trim().min(1).max(200),
  expiresAt: z.iso.datetime({ offset: true }).nullish(),
  models: z.array(z.string().min(1).max(200)).max(256).default([]),
  labels: z
    .record(
      z.string().regex(LABEL_NAME, 'label keys look like app or example.com/team'),
      z.string().regex(LABEL_VALUE, 'label values are up to 63 letters, digits, -, _ or .'),
    )
    .default({}),
  budget: budgetSchema.nullish(),
});
export type NewKey = z.input<typeof newKeySchema>;

/** Why a known key is refused right now, or undefined when it may be used. */
export function keyProblem(
  k: KeyRecord,
  now: number,
): { code: 'api_key_revoked' | 'api_key_expired' | 'api_key_rotated'; message: string } | undefined {
  if (k.revokedAt !== null && k.revokedAt <= now) {
    return { code: 'api_key_revoked', message: `API key ${k.id} was revoked` };
  }
  if (k.expiresAt !== null && k.expiresAt <= now) {
    return {
      code: 'api_key_expired',
      message: `API key ${k.id} expired at ${new Date(k.expiresAt).toISOString()}`,
    };
  }
  if (k.secretExpiresAt !== null && k.secretExpiresAt <= now) {
    return {
      code: 'api_key_rotated',
      message: `this secret of API key ${k.id} was rotated and its grace period ended at ${new Date(k.secretExpiresAt).toISOString()}; use the new secret`,
    };
  }
  return undefined;
}

export function modelAllowed(k: Pick<KeyRecord, 'models'>, model: string): boolean {
  return k.models.length === 0 || k.models.includes(model);
}

export function keyStatus(k: { revokedAt: Date | null; expiresAt: Date | null }, now: number): KeyStatus {
  if (k.revokedAt && k.revokedAt.getTime() <= now) return 'revoked';
  if (k.expiresAt && k.expiresAt.getTime() <= now) return 'expired';
  return 'active';
}

/** `10/day`, `$250.50/month` -> a Budget. */
export function parseBudget(text: string): Budget {
  const m = /^\$?(\d+(?:\.\d+)?)\/(day|month)$/.exec(text.trim());
  if (!m || Number(m[1]) <= 0) {
    throw new KeyAdminError(
      400,
      'invalid_budget',
      `budget must look like 10/day or 250.50/month, not "${text}"`,
    );
  }
  return { amount: Number(m[1]), period: m[2] as Budget['period'] };
}

/** `team=search` -> ['team', 'search']. */
export function parseLabel(text: string): [string, string] {
  const i = text.indexOf('=');
  if (i <= 0) throw new KeyAdminError(400, 'invalid_label', `label must look like key=value, not "${text}"`);
  return [text.slice(0, i), text.slice(i + 1)];
}

/** What the request path needs from key storage. */
export interface KeyLookup {
  findBySecretHash(hash: string): Promise<KeyRecord | null>;
  /**
   * Keys changed after `since` (epoch ms on the database clock; null: none yet), each with all of
   * its secret hashes, plus the database's current time to poll from next.
   */
  changedSince(since: number | null): Promise<{ now: number; changed: KeyChange[] }>;
}

export interface KeyChange {
  id: string;
  /** Epoch ms (database clock): tells a change apart from one already handled. */
  updatedAt: number;
  hashes: string[];
}
