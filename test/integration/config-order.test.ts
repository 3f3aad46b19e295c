import { mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { renderFile } from '../../core/config/load.ts';
import { FileConfigSource } from '../../relay/file-source.ts';
import { createRelayMetrics } from '../../relay/metrics.ts';
import { RelayState } from '../../relay/relay-state.ts';
import { configYaml } from '../helpers/harness.ts';

// In cluster mode the relay follows the config Secret through the API and polls the kubelet's
// mounted copy of it beside that. The mount lags (up to a minute); a lagging mount must never
// swap an older generation in over the newer one the watch delivered.

const snapshot = (generation: number, model: string) =>
  renderFile(
    configYaml([{ name: 'a', baseURL: 'http://127.0.0.1:9/v1', models: `[{ name: ${model} }]` }]),
    'objects.yaml',
    { generation },
  ).config;

describe('relay config ordering: Secret watch and mounted file', () => {
  let dir: string | undefined;
  let source: FileConfigSource | undefined;
  afterEach(async () => {
    source?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  // Like the kubelet: a new file swapped in with a rename (the ..data symlink dance).
  const mount = async (file: string, content: unknown) => {
    await writeFile(`${file}.tmp`, JSON.stringify(content));
    await rename(`${file}.tmp`, file);
  };

  it('a lagging mount never rolls a relay back; a mount that is ahead is served', async () => {
    dir = await mkdtemp(join(tmpdir(), 'kuberelay-order-'));
    const file = join(dir, 'config.json');
    const state = new RelayState(pino({ level: 'silent' }), createRelayMetrics({ defaultMetrics: false }));
    await mount(file, snapshot(4, 'gen-4'));
    source = new FileConfigSource(file, state);
    await source.start({ pollMs: 50 });
    expect(state.runtime?.config.generation).toBe(4);

    // The watch delivers generation 6 (what SecretConfigSource does with each Secret version).
    expect(state.offer(snapshot(6, 'gen-6'), 'secret ns/kuberelay-relay-config')).toBe(true);
    // The mount catches up only to generation 5.
    await mount(file, snapshot(5, 'gen-5'));
    await source.reload();
    expect(state.runtime?.config.generation).toBe(6);
    expect(state.runtime?.config.channels[0]?.models[0]?.name).toBe('gen-6');

    // Once the mount is ahead of the watch (API server unreachable), it moves the relay forward.
    await mount(file, snapshot(7, 'gen-7'));
    await source.reload();
    expect(state.runtime?.config.generation).toBe(7);
  });

  it('standalone: edits of a rendered snapshot file are served whatever their generation', async () => {
    dir = await mkdtemp(join(tmpdir(), 'kuberelay-order-'));
    const file = join(dir, 'config.json');
    const state = new RelayState(pino({ level: 'silent' }), createRelayMetrics({ defaultMetrics: false }));
    await mount(file, snapshot(3, 'first'));
    source = new FileConfigSource(file, state);
    await source.start({ pollMs: 50 });
    await mount(file, snapshot(1, 'edited'));
    await source.reload();
    expect(state.runtime?.config.channels[0]?.models[0]?.name).toBe('edited');
  });
});
