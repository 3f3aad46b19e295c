import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import { parse } from 'yaml';
import type { MockFaults } from '../../mock-upstream/faults.ts';
import { CHANNEL_KEY } from './harness.ts';
import { freePort, kuberelay, type Proc, REPO } from './process.ts';
import { metric } from './prometheus-text.ts';

/**
 * The fault-injection tier's rig: everything as the separate processes a user runs. Upstreams are
 * `kuberelay mock-upstream` processes whose faults are set through their control API (so no fault
 * header has to cross the relay); the relay is `kuberelay relay --config FILE` with the
 * environment the Helm chart renders (chartRelayEnv), on free loopback ports.
 */

export { metric };

/** The relay environment the chart renders from its default values (charts/kuberelay/templates/relay.yaml). */
export async function chartRelayEnv(): Promise<Record<string, string>> {
  const values = parse(await readFile(join(REPO, 'charts/kuberelay/values.yaml'), 'utf8'));
  const r = values.relay;
  return {
    KUBERELAY_AUTH: String(r.auth),
    LOG_LEVEL: String(r.logLevel),
    KUBERELAY_SHUTDOWN_TIMEOUT_MS: String(Number(r.shutdownTimeoutSeconds) * 1000),
    KUBERELAY_MAX_BODY_BYTES: String(r.maxBodyBytes),
    POD_NAMESPACE: 'default',
  };
}

export interface Upstream {
  name: string;
  /** http://127.0.0.1:PORT (no /v1). */
  url: string;
  proc: Proc;
  /** Instance faults through PUT /_mock/faults; null clears. */
  setFaults(f: MockFaults | null): Promise<void>;
  /** Requests the mock received (GET /_mock/stats). */
  requests(): Promise<number>;
  resetStats(): Promise<void>;
  stop(): Promise<void>;
}

export async function startUpstream(name: string, opts: { chunkDelayMs?: number } = {}): Promise<Upstream> {
  const args = ['mock-upstream', '--port', '0', '--host', '127.0.0.1', '--name', name];
  args.push('--api-key', CHANNEL_KEY);
  if (opts.chunkDelayMs !== undefined) args.push('--chunk-delay-ms', String(opts.chunkDelayMs));
  const proc = kuberelay(args);
  const url = (await proc.waitFor(/listening on (http:\/\/127\.0\.0\.1:\d+)/, 30_000))[1]!;
  const control = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(`${url}/_mock/${path}`, {
      method,
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`mock ${name} ${method} ${path}: ${res.status} ${text}`);
    return text ? JSON.parse(text) : undefined;
  };
  return {
    name,
    url,
    proc,
    setFaults: async (f) => void (await control('PUT', 'faults', f ?? {})),
    requests: async () => (await control('GET', 'stats')).requests as number,
    resetStats: async () => void (await control('POST', 'reset-stats')),
    stop: async () => void (await stopProc(proc, 'SIGTERM')),
  };
}

export interface RelayProc {
  url: string;
  adminUrl: string;
  proc: Proc;
  pid: number;
  file: string;
  /** POST /admin/keys: a new client key; returns its secret and id. */
  createKey(body?: Record<string, unknown>): Promise<{ id: string; secret: string }>;
  admin(path: string): Promise<unknown>;
  client(secret: string, opts?: { timeoutMs?: number }): OpenAI;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

export interface RelayOptions {
  yaml: string;
  /** DATABASE_URL (PostgreSQL, migrated first with `kuberelay migrate`, as the chart's Job does). */
  databaseUrl?: string;
  redisUrl?: string;
  /** On top of the chart's environment. */
  env?: Record<string, string>;
}

/** `kuberelay migrate` against DATABASE_URL, as the chart's pre-upgrade Job runs it. */
export async function migrate(databaseUrl: string): Promise<void> {
  const p = kuberelay(['migrate'], { DATABASE_URL: databaseUrl });
  const code = await p.exited();
  if (code !== 0) throw new Error(`kuberelay migrate exited ${code}:\n${p.output()}`);
}

export async function startRelayProc(o: RelayOptions): Promise<RelayProc> {
  const dir = await mkdtemp(join(tmpdir(), 'kuberelay-fault-'));
  const file = join(dir, 'config.yaml');
  await writeFile(file, o.yaml);
  if (o.databaseUrl) await migrate(o.databaseUrl);
  const adminToken = randomBytes(24).toString('hex');
  const adminPort = await freePort();
  const env: Record<string, string> = {
    ...(await chartRelayEnv()),
    // The chart's fixed 8080/8081 become free ports; both stay on loopback.
    PORT: '0',
    HOST: '127.0.0.1',
    ADMIN_PORT: String(adminPort),
    ADMIN_HOST: '127.0.0.1',
    ADMIN_TOKEN: adminToken,
    KUBERELAY_DATA_DIR: join(dir, 'data'),
    POD_NAME: `relay-${process.pid}-${adminPort}`,
    ...(o.databaseUrl ? { DATABASE_URL: o.databaseUrl } : {}),
    ...(o.redisUrl ? { REDIS_URL: o.redisUrl } : {}),
    ...o.env,
  };
  const proc = kuberelay(['relay', '--config', file], env);
  void proc.exited().then(() => rm(dir, { recursive: true, force: true }));
  const url = (await proc.waitFor(/"url":"(http:\/\/127\.0\.0\.1:\d+)"[^\n]*relay listening/, 60_000))[1]!;
  const adminUrl = `http://127.0.0.1:${adminPort}`;
  const admin = async (path: string, body?: unknown) => {
    const res = await fetch(`${adminUrl}${path}`, {
      method: body === undefined ? 'GET' : 'POST',
      headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(10_000),
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`admin ${path}: ${res.status} ${text}`);
    return JSON.parse(text);
  };
  return {
    url,
    adminUrl,
    proc,
    pid: proc.child.pid!,
    file,
    async createKey(body = {}) {
      const created = (await admin('/admin/keys', { name: 'fault', ...body })) as {
        secret: string;
        key: { id: string };
      };
      return { id: created.key.id, secret: created.secret };
    },
    admin: (path) => admin(path),
    client: (secret, opts = {}) =>
      new OpenAI({
        baseURL: `${url}/v1`,
        apiKey: secret,
        maxRetries: 0,
        timeout: opts.timeoutMs ?? 30_000,
      }),
    stop: (signal = 'SIGTERM') => stopProc(proc, signal),
  };
}

async function stopProc(proc: Proc, signal: NodeJS.Signals): Promise<number | null> {
  const c = proc.child;
  if (c.exitCode === null && c.signalCode === null) {
    c.kill(signal);
    const t = setTimeout(() => c.kill('SIGKILL'), 40_000);
    await proc.exited();
    clearTimeout(t);
  }
  return proc.exited();
}

/** Polls `check` until it holds; fails with `what` after the bound. */
export async function until(what: string, check: () => Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check().catch(() => false))) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * Nothing left behind: no upstream request in flight and no request queued for a permit, per the
 * relay's own /metrics. (Permits are checked by behaviour: see expectPermitsFree.)
 */
export async function expectSettled(relayUrl: string, timeoutMs = 15_000): Promise<void> {
  await until(
    'kuberelay_inflight_requests and kuberelay_queue_depth back to 0',
    async () =>
      (await metric(relayUrl, 'kuberelay_inflight_requests')) === 0 &&
      (await metric(relayUrl, 'kuberelay_queue_depth')) === 0,
    timeoutMs,
  );
}

/** The OpenAI error shape: {"error":{"message","type","code"}} with non-empty strings. */
export function isOpenAIError(body: unknown): boolean {
  const e = (body as { error?: Record<string, unknown> } | undefined)?.error;
  return (
    typeof e === 'object' &&
    e !== null &&
    typeof e.message === 'string' &&
    e.message.length > 0 &&
    typeof e.type === 'string' &&
    e.type.length > 0 &&
    'code' in e
  );
}

/** One raw HTTP call with a hard bound (a hang fails the test instead of stalling it). */
export async function call(
  url: string,
  init: { method?: string; headers?: Record<string, string>; body?: unknown; timeoutMs?: number } = {},
): Promise<{ status: number; headers: Headers; text: string; json: unknown; ms: number }> {
  const t0 = performance.now();
  const res = await fetch(url, {
    method: init.method ?? (init.body === undefined ? 'GET' : 'POST'),
    headers: { 'content-type': 'application/json', ...init.headers },
    body: init.body === undefined ? undefined : JSON.stringify(init.body),
    signal: AbortSignal.timeout(init.timeoutMs ?? 30_000),
  });
  const text = await res.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, text, json, ms: performance.now() - t0 };
}

/** The `data:` payloads of an SSE body (LF, CRLF or CR framed). */
export function sseData(text: string): string[] {
  return text
    .split(/\r\n|\r|\n/)
    .filter((l) => l.startsWith('data:'))
    .map((l) => l.slice(5).trim());
}
