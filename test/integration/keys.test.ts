import type { FastifyRequest } from 'fastify';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ApiKeyInfo, CreatedKey } from '../../core/keys/api-key.ts';
import { openDatabase } from '../../db/database.ts';
import { applyMigrations } from '../../db/migrate.ts';
import type { MockUpstream } from '../../mock-upstream/server.ts';
import { BACKENDS, type Backend, startBackend } from '../helpers/backends.ts';
import {
  chat,
  configYaml,
  type Harness,
  metric,
  post,
  startHarness,
  startMocks,
} from '../helpers/harness.ts';
import { refused } from '../helpers/sdk-errors.ts';

const ADMIN_TOKEN = 'admin-token-for-tests-0123456789';

/** A relay with client auth on, its admin API, and the database under it. */
describe.each(BACKENDS)('client keys, usage and the admin API on %s', (backendName) => {
  let backend: Backend;
  let mocks: MockUpstream[];
  let h: Harness;
  let adminUrl: string;

  const admin = async (method: string, path: string, body?: unknown, token = ADMIN_TOKEN) => {
    const res = await fetch(adminUrl + path, {
      method,
      headers: {
        ...(token ? { authorization: `Bearer ${token}` } : {}),
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    // biome-ignore lint/suspicious/noExplicitAny: tests read arbitrary response shapes
    return { status: res.status, json: (await res.json()) as any };
  };
  const create = async (body: Record<string, unknown>): Promise<CreatedKey> => {
    const r = await admin('POST', '/admin/keys', body);
    expect(r.status, JSON.stringify(r.json)).toBe(201);
    return r.json;
  };
  const client = (apiKey: string, maxRetries = 0) =>
    new OpenAI({ baseURL: `${h.url}/v1`, apiKey, maxRetries });

  beforeAll(async () => {
    backend = await startBackend(backendName);
    mocks = await startMocks(['main']);
    const { url, dataDir } = await backend.fresh();
    if (url) {
      // PostgreSQL is migrated by `kuberelay migrate`, never by a relay.
      const db = await openDatabase({ url, dataDir });
      await applyMigrations(db);
      await db.close();
    }
    h = await startHarness(
      configYaml([
        {
          name: 'main',
          mock: mocks[0],
          models: `
    - name: gpt-4o-mini
      pricing: { inputPer1M: "100000", outputPer1M: "100000" }
    - name: text-embedding-3-small`,
        },
      ]),
      {
        auth: 'keys',
        persistence: {
          databaseUrl: url,
          dataDir,
          admin: { port: 0, token: ADMIN_TOKEN },
          requestLog: { flushIntervalMs: 100 },
        },
      },
    );
    adminUrl = h.relay.adminUrl!;
  });
  afterAll(async () => {
    await h?.close();
    await Promise.all((mocks ?? []).map((m) => m.close()));
    await backend?.close();
  });

  it('no key, a malformed key, an unknown key: 401 invalid_api_key that says how to create one', async () => {
    const none = await post(h.url, '/v1/chat/completions', chat());
    expect(none.status).toBe(401);
    expect(none.json.error).toMatchObject({ code: 'invalid_api_key', type: 'authentication_error' });
    expect(none.json.error.message).toMatch(/missing API key.*kuberelay keys create/);
    const unknown = `sk-kr-${'A'.repeat(43)}`;
    for (const key of ['not-a-kuberelay-key', unknown]) {
      const err = await refused(client(key).chat.completions.create(chat()));
      expect(err).toBeInstanceOf(OpenAI.AuthenticationError);
      expect(err.code).toBe('invalid_api_key');
      expect(err.message).toMatch(/kuberelay keys create/);
      expect(JSON.stringify(err.error)).not.toContain(key);
    }
    expect(mocks[0]!.stats().requests).toBe(0);
  });

  it('a created key works with the SDK, by Bearer and by x-api-key, and carries its labels', async () => {
    const k = await create({ name: 'app', labels: { team: 'search' } });
    expect(k.secret).toMatch(/^sk-kr-/);
    const res = await client(k.secret).chat.completions.create(chat());
    expect(res.choices[0]!.message.content).toBeTruthy();
    const viaHeader = await fetch(`${h.url}/v1/models`, { headers: { 'x-api-key': k.secret } });
    expect(viaHeader.status).toBe(200);
    const identity = await h.relay.persistence!.authenticator!.authenticate({
      headers: { authorization: `Bearer ${k.secret}` },
      body: undefined,
    } as unknown as FastifyRequest);
    expect(identity).toMatchObject({ keyId: k.key.id, keyName: 'app', labels: { team: 'search' } });
    // Listed by prefix only.
    const list = await admin('GET', '/admin/keys');
    const listed = (list.json.data as ApiKeyInfo[]).find((x) => x.id === k.key.id)!;
    expect(listed.prefix).toBe(k.secret.slice(0, 14));
    expect(JSON.stringify(list.json)).not.toContain(k.secret);
  });

  it('a key limited to some models: 403 model_not_allowed for others, and /v1/models lists only its own', async () => {
    const k = await create({ name: 'embed-only', models: ['text-embedding-3-small'] });
    const c = client(k.secret);
    expect((await c.embeddings.create({ model: 'text-embedding-3-small', input: 'x' })).data).toHaveLength(1);
    const err = await refused(c.chat.completions.create(chat()));
    expect(err).toBeInstanceOf(OpenAI.PermissionDeniedError);
    expect(err.code).toBe('model_not_allowed');
    expect(err.message).toContain("may not use model 'gpt-4o-mini'");
    expect((await c.models.list()).data.map((m) => m.id)).toEqual(['text-embedding-3-small']);
  });

  it('an expired key: 401 api_key_expired', async () => {
    const k = await create({ name: 'short', expiresAt: new Date(Date.now() + 1500).toISOString() });
    await client(k.secret).chat.completions.create(chat());
    await new Promise((r) => setTimeout(r, Date.parse(k.key.expiresAt!) - Date.now() + 50));
    const err = await refused(client(k.secret).chat.completions.create(chat()));
    expect(err.status).toBe(401);
    expect(err.code).toBe('api_key_expired');
    expect(err.message).toContain(k.key.id);
  });

  it('a spent budget: 429 insufficient_quota, which the SDK does not retry', async () => {
    // 5 prompt + 5 completion tokens at $0.10 a token: $1 a request, against $1.50 a day.
    const k = await create({ name: 'budgeted', budget: { amount: 1.5, period: 'day' } });
    const c = client(k.secret, 2);
    await c.chat.completions.create({ ...chat(), max_tokens: 5 });
    await c.chat.completions.create({ ...chat(), max_tokens: 5 }); // $1 spent < $1.50: still allowed
    const before = await metric(h.url, 'kuberelay_auth_total', { result: 'budget_exhausted' });
    const err = await refused(c.chat.completions.create({ ...chat(), max_tokens: 5 }));
    expect(err).toBeInstanceOf(OpenAI.RateLimitError);
    expect(err.code).toBe('insufficient_quota');
    expect(err.type).toBe('insufficient_quota');
    expect(err.message).toMatch(/budget of \$1.5 per day/);
    expect(Number(err.headers?.get('retry-after'))).toBeGreaterThan(0);
    expect(await metric(h.url, 'kuberelay_auth_total', { result: 'budget_exhausted' })).toBe(before + 1);

    const spend = await admin('GET', `/admin/spend?keyId=${k.key.id}`);
    expect(spend.json.day.spent).toBeCloseTo(2, 6);
    expect(spend.json.month.spent).toBeCloseTo(2, 6);
  });

  it('rotation: both secrets work during the grace period, the old one fails after it', async () => {
    const k = await create({ name: 'rotating' });
    const r = await admin('POST', `/admin/keys/${k.key.id}/rotate`, { gracePeriod: '2s' });
    expect(r.status).toBe(200);
    const rotated = r.json as CreatedKey;
    expect(rotated.key.id).toBe(k.key.id);
    await client(k.secret).chat.completions.create(chat());
    await client(rotated.secret).chat.completions.create(chat());
    const graceEnd = Date.parse(rotated.key.secrets.find((s) => s.expiresAt)!.expiresAt!);
    await new Promise((res) => setTimeout(res, graceEnd - Date.now() + 50));
    const err = await refused(client(k.secret).chat.completions.create(chat()));
    expect(err.status).toBe(401);
    expect(err.code).toBe('api_key_rotated');
    await client(rotated.secret).chat.completions.create(chat());
  });

  it('revocation: the next request is refused', async () => {
    const k = await create({ name: 'doomed' });
    await client(k.secret).chat.completions.create(chat());
    const r = await admin('POST', `/admin/keys/${k.key.id}/revoke`, {});
    expect(r.json.status).toBe('revoked');
    const err = await refused(client(k.secret).chat.completions.create(chat()));
    expect(err.status).toBe(401);
    expect(err.code).toBe('api_key_revoked');
  });

  it('every request is rolled up and logged (errors included); usage and logs through the admin API', async () => {
    const k = await create({ name: 'metered' });
    const c = client(k.secret);
    for (let i = 0; i < 3; i++) await c.chat.completions.create({ ...chat(), max_tokens: 4 });
    await refused(c.chat.completions.create({ ...chat(), model: 'gpt-9' })); // 404 from the relay
    await h.relay.persistence!.recorder.flush();

    const usage = await admin('GET', `/admin/usage?keyId=${k.key.id}&groupBy=key,channel,model`);
    expect(usage.json.data).toEqual([
      {
        keyId: k.key.id,
        channel: '',
        model: 'other',
        requests: 1,
        errors: 1,
        promptTokens: 0,
        completionTokens: 0,
        cachedTokens: 0,
        cost: 0,
      },
      {
        keyId: k.key.id,
        channel: 'default/main',
        model: 'gpt-4o-mini',
        requests: 3,
        errors: 0,
        promptTokens: 15,
        completionTokens: 12,
        cachedTokens: 0,
        cost: expect.closeTo(2.7, 6),
      },
    ]);
    const logs = await admin('GET', `/admin/logs?keyId=${k.key.id}`);
    expect(logs.json.data.map((l: { status: number }) => l.status)).toEqual([404, 200, 200, 200]);
    expect(logs.json.data[0]).toMatchObject({ errorCode: 'model_not_found', channel: null, model: 'other' });
    expect(logs.json.data[1]).toMatchObject({
      channel: 'default/main',
      model: 'gpt-4o-mini',
      attempts: 1,
      promptTokens: 5,
      completionTokens: 4,
      stream: false,
    });
    // Refused keys are logged too, without a key id.
    const refusedLogs = await admin('GET', '/admin/logs?errors=true&limit=1000');
    expect(refusedLogs.json.data.some((l: { errorCode: string }) => l.errorCode === 'invalid_api_key')).toBe(
      true,
    );
    expect(await metric(h.url, 'kuberelay_request_logs_written_total')).toBeGreaterThan(0);
    expect(await metric(h.url, 'kuberelay_request_logs_dropped_total')).toBe(0);
    expect(await metric(h.url, 'kuberelay_database_up')).toBe(1);
  });

  it('admin API: token required, never on the public port; channel state with a manual reset', async () => {
    expect((await admin('GET', '/admin/keys', undefined, '')).status).toBe(401);
    const wrong = await admin('GET', '/admin/keys', undefined, 'wrong-token');
    expect(wrong.status).toBe(401);
    expect(wrong.json.error.code).toBe('invalid_admin_token');
    expect(
      (await fetch(`${h.url}/admin/keys`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })).status,
    ).toBe(404);

    await h.relay.store.recordFailure('default/main', {
      failureThreshold: 1,
      durationMs: 60_000,
      maxDurationMs: 60_000,
    });
    const cooling = await admin('GET', '/admin/channels');
    expect(cooling.json.data).toEqual([
      expect.objectContaining({ id: 'default/main', state: 'cooling_down', consecutiveFailures: 1 }),
    ]);
    const k = await create({ name: 'ops' });
    expect((await refused(client(k.secret).chat.completions.create(chat()))).code).toBe(
      'no_channel_available',
    );
    const reset = await admin('POST', '/admin/channels/default/main/reset');
    expect(reset.json).toMatchObject({ state: 'healthy', consecutiveFailures: 0, cooldownUntil: null });
    await client(k.secret).chat.completions.create(chat());
    expect((await admin('POST', '/admin/channels/default/nope/reset')).status).toBe(404);
    expect(
      (await admin('POST', '/admin/keys', { name: 'x', budget: { amount: -1, period: 'day' } })).status,
    ).toBe(400);
    expect((await admin('POST', '/admin/keys/key_nope/revoke', {})).status).toBe(404);
  });
});
