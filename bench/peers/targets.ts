// How each gateway of bench/peers.ts is started against the one mock upstream, and how a client
// calls it: kuberelay as users run it (client keys on the embedded database, two RateLimitPolicies,
// metrics on, the default log level), Portkey's gateway with the mock as its custom host, LiteLLM's
// proxy with the mock as an OpenAI-compatible model, one worker, a master key.

import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { type Child, freePort, ROOT, startChild, startProcess, waitReady } from '../lib/children.ts';
import type { CommandWrap } from '../lib/memory-limit.ts';
import { CHAT_MODEL } from '../lib/requests.ts';
import { SCENARIOS } from '../run/scenarios.ts';
import type { Installed } from './install.ts';

export interface Running {
  child: Child;
  url: string;
  headers: Record<string, string>;
}

export interface Upstream {
  /** e.g. http://127.0.0.1:PORT (the mock's origin) */
  url: string;
  apiKey: string;
}

const JSON_HEADERS = { 'content-type': 'application/json' };

export async function startKuberelay(
  up: Upstream,
  tmp: string,
  opts: {
    cli: string;
    nodeArgs: string[];
    databaseUrl?: string;
    wrap?: CommandWrap;
    /** For a comparison of what one feature costs (bench/ab-relays.ts): a relay config other than `limits`, more environment. */
    scenario?: string;
    env?: Record<string, string>;
  },
): Promise<Running> {
  const config = path.join(tmp, 'kuberelay.yaml');
  // By default the `limits` scenario: a channel concurrency limit and two RateLimitPolicies that never trigger.
  const scenario = SCENARIOS[opts.scenario ?? 'limits'];
  if (!scenario) throw new Error(`no scenario ${opts.scenario}: ${Object.keys(SCENARIOS).join(', ')}`);
  writeFileSync(config, scenario.config({ mockBaseURL: `${up.url}/v1`, mockApiKey: up.apiKey }));
  const dataDir = path.join(tmp, 'kuberelay-data');
  mkdirSync(dataDir);
  const [port, adminPort] = [await freePort(), await freePort()];
  const adminToken = randomBytes(24).toString('hex');
  const db: Record<string, string> = opts.databaseUrl ? { DATABASE_URL: opts.databaseUrl } : {};
  if (opts.databaseUrl) {
    // What the chart's pre-install Job does before the relay starts.
    const migrate = startChild('kuberelay migrate', [opts.cli, 'migrate'], db);
    if ((await migrate.exited) !== 0) throw new Error(`kuberelay migrate failed: ${migrate.output()}`);
  }
  // Client auth is left at its default (keys); KUBERELAY_AUTH and LOG_LEVEL are not set. The
  // image's own environment (NODE_ENV, NODE_OPTIONS: its small young generation, MALLOC_ARENA_MAX) is, as it runs.
  const child = startChild(
    'kuberelay',
    [...opts.nodeArgs, opts.cli, 'relay', '--config', config, '--port', String(port), '--host', '127.0.0.1'],
    {
      ...imageEnv(),
      KUBERELAY_DATA_DIR: dataDir,
      ADMIN_PORT: String(adminPort),
      ADMIN_HOST: '127.0.0.1',
      ADMIN_TOKEN: adminToken,
      ...db,
      ...opts.env,
    },
    undefined,
    opts.wrap,
  );
  const url = `http://127.0.0.1:${port}`;
  await waitReady(child, `${url}/readyz`, 60_000);
  const res = await fetch(`http://127.0.0.1:${adminPort}/admin/keys`, {
    method: 'POST',
    headers: { ...JSON_HEADERS, authorization: `Bearer ${adminToken}` },
    body: JSON.stringify({ name: 'bench' }),
    signal: AbortSignal.timeout(30_000),
  });
  const created = (await res.json()) as { secret?: string };
  if (!res.ok || !created.secret) throw new Error(`kuberelay: creating a key: ${res.status}`);
  return { child, url, headers: { ...JSON_HEADERS, authorization: `Bearer ${created.secret}` } };
}

/** The floor: a bare Node proxy (bench/peers/floor-proxy.ts) with the image's Node flags, as kuberelay. */
export async function startFloor(up: Upstream, wrap?: CommandWrap): Promise<Running> {
  const port = await freePort();
  const script = path.join(ROOT, 'bench', 'peers', 'floor-proxy.ts');
  const args = [script, '--port', String(port), '--upstream', up.url];
  const child = startChild('floor', args, imageEnv(), undefined, wrap);
  const url = `http://127.0.0.1:${port}`;
  await waitReady(child, `${url}/`, 30_000);
  return { child, url, headers: { ...JSON_HEADERS, authorization: `Bearer ${up.apiKey}` } };
}

export async function startPortkey(up: Upstream, inst: Installed, wrap?: CommandWrap): Promise<Running> {
  const port = await freePort();
  const child = startProcess('portkey', inst.command, [...inst.args, `--port=${port}`], {}, inst.cwd, wrap);
  const url = `http://127.0.0.1:${port}`;
  await waitReady(child, `${url}/`, 60_000);
  return {
    child,
    url,
    headers: {
      ...JSON_HEADERS,
      authorization: `Bearer ${up.apiKey}`,
      'x-portkey-provider': 'openai',
      'x-portkey-custom-host': `${up.url}/v1`,
    },
  };
}

export async function startLiteLLM(
  up: Upstream,
  inst: Installed,
  tmp: string,
  wrap?: CommandWrap,
): Promise<Running> {
  const config = path.join(tmp, 'litellm.yaml');
  const masterKey = `sk-bench-${randomBytes(12).toString('hex')}`;
  writeFileSync(
    config,
    `model_list:
  - model_name: ${CHAT_MODEL}
    litellm_params:
      model: openai/${CHAT_MODEL}
      api_base: ${up.url}/v1
      api_key: ${up.apiKey}
general_settings:
  master_key: ${masterKey}
litellm_settings:
  telemetry: false
`,
  );
  const port = await freePort();
  const child = startProcess(
    'litellm',
    inst.command,
    [...inst.args, '--config', config, '--host', '127.0.0.1', '--port', String(port), '--num_workers', '1'],
    // The model cost map ships with the package; without this LiteLLM fetches it at start.
    { LITELLM_LOCAL_MODEL_COST_MAP: 'True', LITELLM_LOG: 'ERROR', PYTHONUNBUFFERED: '1' },
    inst.cwd,
    wrap,
  );
  const url = `http://127.0.0.1:${port}`;
  await waitReady(child, `${url}/health/liveliness`, 180_000);
  return { child, url, headers: { ...JSON_HEADERS, authorization: `Bearer ${masterKey}` } };
}

export const CLI = path.join(ROOT, 'cli', 'index.ts');

/** NODE_ENV and NODE_OPTIONS as the project's Dockerfile sets them for the relay's container. */
export function imageEnv(): Record<string, string> {
  const dockerfile = readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8');
  const env: Record<string, string> = {};
  for (const name of ['NODE_ENV', 'NODE_OPTIONS', 'MALLOC_ARENA_MAX']) {
    const m = new RegExp(`^\\s*(?:ENV\\s+)?${name}=(\\S+)`, 'm').exec(dockerfile);
    if (m) env[name] = m[1]!;
  }
  return env;
}
