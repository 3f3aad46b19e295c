import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  type MockUpstream,
  type MockUpstreamOptions,
  startMockUpstream,
} from '../../mock-upstream/server.ts';
import { type RelayProcessOptions, type RunningRelay, startRelay } from '../../relay/main.ts';

export { metric } from './prometheus-text.ts';

export interface ChannelSpec {
  name: string;
  /** Mock to point at, or a raw base URL (e.g. a closed port). */
  mock?: MockUpstream;
  baseURL?: string;
  priority?: number;
  weight?: number;
  models?: string;
  /** Default openai-compatible. */
  provider?: string;
  /** Extra YAML lines under spec (two-space indented). */
  extra?: string;
}

export const CHANNEL_KEY = 'sk-channel-secret-0123456789';

/** A config file (Secret + Channels + extra documents) in the format users write. */
export function configYaml(channels: ChannelSpec[], extraDocs = ''): string {
  const docs = [
    `apiVersion: v1\nkind: Secret\nmetadata: { name: creds }\nstringData: { apiKey: ${CHANNEL_KEY} }\n`,
    ...channels.map(
      (c) => `apiVersion: kuberelay.io/v1alpha1
kind: Channel
metadata: { name: ${c.name} }
spec:
  provider: ${c.provider ?? 'openai-compatible'}
  baseURL: ${c.baseURL ?? `${c.mock!.url}/v1`}
  apiKeySecretRef: { name: creds }
  priority: ${c.priority ?? 0}
  weight: ${c.weight ?? 1}
  models: ${c.models ?? '[{ name: gpt-4o-mini }]'}
${c.extra ?? ''}`,
    ),
  ];
  if (extraDocs) docs.push(extraDocs);
  return docs.join('---\n');
}

export interface Harness {
  relay: RunningRelay;
  url: string;
  file: string;
  writeConfig(yaml: string): Promise<void>;
  close(): Promise<void>;
}

/** An in-process relay on a random port serving `yaml` from a temp file (auth off unless given). */
export async function startHarness(
  yaml: string,
  opts: Partial<
    Pick<
      RelayProcessOptions,
      'maxAttempts' | 'bodyLimit' | 'auth' | 'persistence' | 'trustProxy' | 'timeouts' | 'metricsListener'
    >
  > = {},
): Promise<Harness> {
  const dir = await mkdtemp(join(tmpdir(), 'kuberelay-test-'));
  const file = join(dir, 'config.yaml');
  await writeFile(file, yaml);
  const relay = await startRelay({
    configFile: file,
    port: 0,
    host: '127.0.0.1',
    auth: 'none',
    logLevel: process.env.TEST_LOG_LEVEL ?? 'silent',
    shutdownTimeoutMs: 5000,
    ...opts,
  });
  return {
    relay,
    url: relay.url,
    file,
    async writeConfig(text: string) {
      await writeFile(file, text);
      await relay.source!.reload();
    },
    async close() {
      await relay.shutdown();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export async function startMocks(names: string[], opts: MockUpstreamOptions = {}): Promise<MockUpstream[]> {
  return Promise.all(names.map((name) => startMockUpstream({ name, apiKey: CHANNEL_KEY, ...opts })));
}

export const chat = (extra: Record<string, unknown> = {}) => ({
  model: 'gpt-4o-mini',
  messages: [{ role: 'user' as const, content: 'Say hello to the relay' }],
  ...extra,
});

export async function post(url: string, path: string, body: unknown, headers: Record<string, string> = {}) {
  const res = await fetch(`${url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  // biome-ignore lint/suspicious/noExplicitAny: tests read arbitrary response shapes
  let json: any;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, text, json };
}
