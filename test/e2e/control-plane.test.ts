// Smoke tests of the e2e control plane itself: if these fail, every other e2e test would fail
// for reasons unrelated to kuberelay.
import { request } from 'node:https';
import { join } from 'node:path';
import { beforeAll, describe, expect, inject, it } from 'vitest';
import { connect, type RunOptions } from '../cluster/control-plane.ts';

const cluster = connect(inject('kubeconfig'));
const fixtures = join(import.meta.dirname, 'fixtures');
// Namespaces cannot be deleted without a controller-manager, so each run uses a fresh one.
const ns = `cp-smoke-${Date.now().toString(36)}`;

async function kubectl(args: string[], opts?: RunOptions): Promise<string> {
  const r = await cluster.kubectl(args, opts);
  if (r.code !== 0) throw new Error(`kubectl ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
  return r.stdout;
}

function widget(name: string, spec: Record<string, unknown>): string {
  return JSON.stringify({
    apiVersion: 'test.kuberelay.io/v1',
    kind: 'Widget',
    metadata: { name, namespace: ns },
    spec,
  });
}

interface WatchEvent {
  type: string;
  object: { metadata: { name: string; resourceVersion: string }; spec?: { size?: number } };
}

/** Raw watch (the same HTTP stream every client library uses) until `match` says stop. */
function watchUntil(
  path: string,
  match: (e: WatchEvent) => boolean,
  timeoutMs = 30_000,
): Promise<WatchEvent> {
  return new Promise((resolve, reject) => {
    const req = request(`${cluster.server}${path}`, cluster.tls, (res) => {
      if (res.statusCode !== 200) {
        reject(new Error(`watch ${path}: HTTP ${res.statusCode}`));
        res.resume();
        return;
      }
      let buf = '';
      res.setEncoding('utf8').on('data', (chunk: string) => {
        buf += chunk;
        for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
          const event = JSON.parse(buf.slice(0, nl)) as WatchEvent;
          buf = buf.slice(nl + 1);
          if (match(event)) {
            clearTimeout(timer);
            req.destroy();
            resolve(event);
            return;
          }
        }
      });
    });
    const timer = setTimeout(() => {
      req.destroy();
      reject(new Error(`watch ${path}: no matching event within ${timeoutMs} ms`));
    }, timeoutMs);
    req.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    req.end();
  });
}

beforeAll(async () => {
  await kubectl(['create', 'namespace', ns]);
  await kubectl(['apply', '--server-side', '-f', join(fixtures, 'widget-crd.yaml')]);
  await kubectl(['wait', '--for=condition=Established', 'crd/widgets.test.kuberelay.io', '--timeout=60s']);
});

describe('control plane', () => {
  it('is ready, reports a stamped version and has the default namespace', async () => {
    expect(await kubectl(['get', '--raw', '/readyz'])).toBe('ok');
    const version = JSON.parse(await kubectl(['version', '-o', 'json'])) as {
      serverVersion: { gitVersion: string };
      clientVersion: { gitVersion: string };
    };
    expect(version.serverVersion.gitVersion).toMatch(/^v1\.\d+\.\d+$/);
    expect(version.clientVersion.gitVersion).toBe(version.serverVersion.gitVersion);
    expect(await kubectl(['get', 'namespace', 'default', '-o', 'jsonpath={.status.phase}'])).toBe('Active');
  });

  it('applies a custom object server-side and reads it back', async () => {
    await kubectl(['apply', '--server-side', '-f', '-'], {
      input: widget('first', { size: 3, color: 'blue' }),
    });
    const got = JSON.parse(
      await kubectl(['get', 'widget', 'first', '-n', ns, '-o', 'json', '--show-managed-fields']),
    ) as {
      spec: { size: number; color: string };
      metadata: { managedFields: { manager: string; operation: string }[] };
    };
    expect(got.spec).toEqual({ size: 3, color: 'blue' });
    expect(got.metadata.managedFields).toContainEqual(
      expect.objectContaining({ manager: 'kubectl', operation: 'Apply' }),
    );
  });

  it('streams the change to a watch', async () => {
    await kubectl(['apply', '--server-side', '-f', '-'], { input: widget('watched', { size: 1 }) });
    const rv = await kubectl([
      'get',
      'widget',
      'watched',
      '-n',
      ns,
      '-o',
      'jsonpath={.metadata.resourceVersion}',
    ]);
    // Watching from the resourceVersion just read means the patch below cannot be missed.
    const seen = watchUntil(
      `/apis/test.kuberelay.io/v1/namespaces/${ns}/widgets?watch=true&resourceVersion=${rv}` +
        '&fieldSelector=metadata.name%3Dwatched',
      (e) => e.type === 'MODIFIED',
    );
    await kubectl(['patch', 'widget', 'watched', '-n', ns, '--type=merge', '-p', '{"spec":{"size":7}}']);
    const event = await seen;
    expect(event.object.metadata.name).toBe('watched');
    expect(event.object.spec?.size).toBe(7);
    expect(Number(event.object.metadata.resourceVersion)).toBeGreaterThan(Number(rv));
  });

  it('refuses objects that break the CRD schema with the API server message', async () => {
    const tooSmall = await cluster.kubectl(['apply', '--server-side', '-f', '-'], {
      input: widget('too-small', { size: 0 }),
    });
    expect(tooSmall.code).not.toBe(0);
    expect(tooSmall.stderr).toContain(
      'spec.size: Invalid value: 0: spec.size in body should be greater than or equal to 1',
    );

    const cel = await cluster.kubectl(['apply', '--server-side', '-f', '-'], {
      input: widget('big-red', { size: 7, color: 'red' }),
    });
    expect(cel.code).not.toBe(0);
    expect(cel.stderr).toContain('red widgets are at most size 5');

    const missing = await cluster.kubectl(['get', 'widget', 'too-small', 'big-red', '-n', ns]);
    expect(missing.stderr).toContain('widgets.test.kuberelay.io "too-small" not found');
    expect(missing.stderr).toContain('widgets.test.kuberelay.io "big-red" not found');
  });

  it('enforces RBAC on a ServiceAccount token', async () => {
    await kubectl(['create', 'serviceaccount', 'reader', '-n', ns]);
    await kubectl(['create', 'role', 'get-configmaps', '-n', ns, '--verb=get', '--resource=configmaps']);
    await kubectl([
      'create',
      'rolebinding',
      'reader-get-configmaps',
      '-n',
      ns,
      '--role=get-configmaps',
      `--serviceaccount=${ns}:reader`,
    ]);
    await kubectl(['create', 'configmap', 'settings', '-n', ns, '--from-literal=mode=test']);
    const kubeconfig = await cluster.mintServiceAccountKubeconfig(ns, 'reader');
    const user = `system:serviceaccount:${ns}:reader`;

    const allowed = await cluster.kubectl(
      ['get', 'configmap', 'settings', '-n', ns, '-o', 'jsonpath={.data.mode}'],
      {
        kubeconfig,
      },
    );
    expect(allowed).toMatchObject({ code: 0, stdout: 'test' });

    const secrets = await cluster.kubectl(['get', 'secrets', '-n', ns], { kubeconfig });
    expect(secrets.code).not.toBe(0);
    expect(secrets.stderr).toContain(
      `Error from server (Forbidden): secrets is forbidden: User "${user}" cannot list resource "secrets" in API group "" in the namespace "${ns}"`,
    );

    const write = await cluster.kubectl(['create', 'configmap', 'other', '-n', ns], { kubeconfig });
    expect(write.code).not.toBe(0);
    expect(write.stderr).toContain(`User "${user}" cannot create resource "configmaps"`);

    // The Role grants get, not list.
    const list = await cluster.kubectl(['get', 'configmaps', '-n', ns], { kubeconfig });
    expect(list.code).not.toBe(0);
    expect(list.stderr).toContain(`User "${user}" cannot list resource "configmaps"`);
  });

  it('installs a chart with helm', async () => {
    const install = await cluster.helm([
      'install',
      'smoke',
      join(fixtures, 'smoke-chart'),
      '--namespace',
      ns,
      '--set',
      'greeting=hi',
    ]);
    expect(install, install.stderr).toMatchObject({ code: 0 });
    const data = JSON.parse(
      await kubectl(['get', 'configmap', 'smoke-smoke', '-n', ns, '-o', 'jsonpath={.data}']),
    ) as {
      greeting: string;
      kubeVersion: string;
    };
    expect(data.greeting).toBe('hi');
    expect(data.kubeVersion).toMatch(/^v1\.\d+\.\d+$/);
    const list = await cluster.helm(['list', '--namespace', ns, '-o', 'json']);
    expect(JSON.parse(list.stdout)).toContainEqual(
      expect.objectContaining({ name: 'smoke', status: 'deployed' }),
    );
  });
});
