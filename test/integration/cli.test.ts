import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MockUpstream } from '../../mock-upstream/server.ts';
import { CHANNEL_KEY, configYaml, startMocks } from '../helpers/harness.ts';
import { freePort, kuberelay } from '../helpers/process.ts';

describe('kuberelay CLI (real processes)', () => {
  let mocks: MockUpstream[];
  let dir: string;
  beforeAll(async () => {
    mocks = await startMocks(['cli']);
    dir = await mkdtemp(join(tmpdir(), 'kuberelay-cli-'));
  });
  afterAll(async () => {
    await Promise.all(mocks.map((m) => m.close()));
  });

  it('relay: refuses to start on an invalid file, naming the file, document, object and field', async () => {
    const file = join(dir, 'bad.yaml');
    await writeFile(file, configYaml([{ name: 'x', mock: mocks[0], priority: -1 }]));
    const p = kuberelay(['relay', '--config', file, '--port', '0']);
    expect(await p.exited()).toBe(1);
    expect(p.output()).toContain('bad.yaml, document 2: Channel default/x: spec.priority:');
  }, 90_000); // it opens the embedded database before it reads the file

  it('relay: serves, keeps the channel key out of its output, and exits 0 on SIGTERM', async () => {
    const file = join(dir, 'good.yaml');
    await writeFile(file, configYaml([{ name: 'cli', mock: mocks[0] }]));
    const port = await freePort();
    const p = kuberelay(['relay', '--config', file, '--port', String(port), '--host', '127.0.0.1'], {
      KUBERELAY_AUTH: 'none',
      LOG_LEVEL: 'debug',
    });
    await p.waitFor(/relay listening/);
    expect(p.output()).toMatch(/KUBERELAY_AUTH=none: client authentication is OFF/);
    const client = new OpenAI({ baseURL: `http://127.0.0.1:${port}/v1`, apiKey: 'unused', maxRetries: 0 });
    const res = await client.chat.completions.create({
      model: 'gpt-4o-mini',
      messages: [{ role: 'user', content: 'hi' }],
    });
    expect(res.choices[0]!.message.content).toBeTruthy();
    p.child.kill('SIGTERM');
    expect(await p.exited()).toBe(0);
    expect(p.output()).not.toContain(CHANNEL_KEY);
  });

  it('relay: without KUBERELAY_AUTH=none every request needs a key, and the error says how to get one', async () => {
    const file = join(dir, 'auth.yaml');
    await writeFile(file, configYaml([{ name: 'cli', mock: mocks[0] }]));
    const port = await freePort();
    const p = kuberelay(['relay', '--config', file, '--port', String(port), '--host', '127.0.0.1'], {
      KUBERELAY_AUTH: '',
    });
    // The first start creates the embedded database (initdb): seconds, more on a loaded machine.
    await p.waitFor(/relay listening/, 60_000);
    const res = await fetch(`http://127.0.0.1:${port}/v1/models`);
    expect(res.status).toBe(401);
    const body = (await res.json()) as { error: { code: string; message: string } };
    expect(body.error.code).toBe('invalid_api_key');
    expect(body.error.message).toMatch(/kuberelay keys create/);
    p.child.kill('SIGTERM');
    await p.exited();
  }, 90_000);

  it('mock-upstream: starts on the given port and answers', async () => {
    const port = await freePort();
    const p = kuberelay(['mock-upstream', '--port', String(port), '--host', '127.0.0.1', '--name', 'solo']);
    await p.waitFor(/listening/);
    const res = await fetch(`http://127.0.0.1:${port}/v1/models`);
    expect(res.status).toBe(200);
    expect(res.headers.get('x-mock-name')).toBe('solo');
    p.child.kill('SIGTERM');
    expect(await p.exited()).toBe(0);
  });
});
