import type { FastifyRequest } from 'fastify';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import type { KeyChange, KeyLookup, KeyRecord } from '../../core/keys/api-key.ts';
import { generateSecret, hashSecret } from '../../core/keys/secret.ts';
import { KeyAuthenticator } from '../../relay/auth.ts';
import { DatabaseHealth } from '../../relay/db-health.ts';
import type { RelayError } from '../../relay/errors.ts';
import { createRelayMetrics } from '../../relay/metrics.ts';

/** Key storage under the test's control: rows, a change feed, an outage switch, gated reads. */
class ScriptedKeys implements KeyLookup {
  rows = new Map<string, KeyRecord>();
  changes: KeyChange[] = [];
  clock = 1_000_000;
  down = false;
  reads = 0;
  /** When set, reads wait for it (a lookup "in flight"). */
  gate: Promise<void> | undefined;

  async findBySecretHash(hash: string) {
    this.reads++;
    const snapshot = this.rows.get(hash) ?? null;
    if (this.gate) await this.gate;
    if (this.down) throw new Error('connection refused');
    return snapshot && { ...snapshot };
  }
  async changedSince(since: number | null) {
    if (this.down) throw new Error('connection refused');
    return {
      now: this.clock,
      changed: since === null ? [] : this.changes.filter((c) => c.updatedAt > since),
    };
  }
  change(hash: string, patch: Partial<KeyRecord>) {
    const r = this.rows.get(hash)!;
    this.rows.set(hash, { ...r, ...patch });
    this.clock += 10;
    this.changes.push({ id: r.id, updatedAt: this.clock, hashes: [hash] });
  }
}

function setup(cacheTtlMs = 60_000) {
  const keys = new ScriptedKeys();
  const metrics = createRelayMetrics({ defaultMetrics: false });
  const health = new DatabaseHealth(metrics, pino({ level: 'silent' }));
  const auth = new KeyAuthenticator({
    keys,
    metrics,
    health,
    options: { cacheTtlMs, pollMs: 3_600_000 },
  });
  const secret = generateSecret();
  const hash = hashSecret(secret);
  keys.rows.set(hash, {
    id: 'key_a',
    name: 'a',
    models: [],
    labels: { team: 'x' },
    budget: null,
    expiresAt: null,
    revokedAt: null,
    secretHash: hash,
    secretExpiresAt: null,
  });
  const req = { headers: { authorization: `Bearer ${secret}` }, body: {} } as unknown as FastifyRequest;
  const code = (p: Promise<unknown>) =>
    p.then(
      () => 'ok',
      (e: RelayError) => e.code,
    );
  return { keys, auth, hash, req, code, health };
}

describe('key authenticator cache', () => {
  it('reads a key once, then serves it from the cache', async () => {
    const { keys, auth, req } = setup();
    await auth.start();
    for (let i = 0; i < 5; i++) expect((await auth.authenticate(req)).labels).toEqual({ team: 'x' });
    expect(keys.reads).toBe(1);
    auth.stop();
  });

  it('a poll that sees a change drops the key; the same change seen again by an overlapping poll does not', async () => {
    const { keys, auth, hash, req, code } = setup();
    await auth.start();
    await auth.authenticate(req);
    keys.change(hash, { revokedAt: 1 });
    expect(await code(auth.authenticate(req))).toBe('ok'); // not polled yet: cached
    await auth.poll();
    expect(await code(auth.authenticate(req))).toBe('api_key_revoked');
    const reads = keys.reads;
    await auth.poll(); // the change is still inside the overlap window
    await auth.authenticate(req).catch(() => {});
    expect(keys.reads).toBe(reads);
    auth.stop();
  });

  it('a lookup in flight while a change is seen answers its request but is not cached', async () => {
    const { keys, auth, hash, req, code } = setup();
    await auth.start();
    let release!: () => void;
    keys.gate = new Promise((r) => {
      release = r;
    });
    const inFlight = code(auth.authenticate(req)); // reads the row before the revocation
    keys.change(hash, { revokedAt: 1 });
    await auth.poll();
    keys.gate = undefined;
    release();
    expect(await inFlight).toBe('ok');
    expect(await code(auth.authenticate(req))).toBe('api_key_revoked');
    auth.stop();
  });

  it('database down: cached keys keep working past their TTL, unknown keys get 503', async () => {
    const { keys, auth, req, code, health } = setup(1);
    await auth.start();
    expect(await code(auth.authenticate(req))).toBe('ok');
    keys.down = true;
    await new Promise((r) => setTimeout(r, 5));
    expect(await code(auth.authenticate(req))).toBe('ok'); // stale, served
    const stranger = { headers: { 'x-api-key': generateSecret() }, body: {} } as unknown as FastifyRequest;
    expect(await code(auth.authenticate(stranger))).toBe('auth_unavailable');
    expect(health.up).toBe(false);
    keys.down = false;
    await auth.poll();
    expect(health.up).toBe(true);
    expect(await code(auth.authenticate(stranger))).toBe('invalid_api_key');
    auth.stop();
  });
});
