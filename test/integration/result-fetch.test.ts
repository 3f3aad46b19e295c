import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { renderFile } from '../../core/config/load.ts';
import { fetchResult, MAX_RESULT_REDIRECTS } from '../../jobs/result-fetch.ts';
import { type ChannelRuntime, compileRuntime } from '../../relay/runtime.ts';

/**
 * A job's result URL is opened through the channel's own dispatcher: the credential goes only to
 * the channel's origin, redirects are followed (bounded) and go bare to another origin, and the
 * link-local/metadata guard of the channel's connector applies.
 */

const KEY = 'AIza-result-fetch-secret';

interface Seen {
  path: string;
  headers: IncomingHttpHeaders;
}

async function listen(handler: (path: string, res: import('node:http').ServerResponse) => void) {
  const seen: Seen[] = [];
  const server = createServer((req, res) => {
    seen.push({ path: req.url ?? '', headers: req.headers });
    handler(req.url ?? '', res);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, seen, origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

function channel(baseURL: string): ChannelRuntime {
  const yaml = `apiVersion: v1
kind: Secret
metadata: { name: keys }
stringData: { apiKey: ${KEY} }
---
apiVersion: kuberelay.io/v1alpha1
kind: Channel
metadata: { name: veo }
spec:
  provider: gemini
  baseURL: ${baseURL}
  apiKeySecretRef: { name: keys }
  models: [{ name: veo }]
`;
  const { config } = renderFile(yaml, 'test.yaml', { generation: 1 }, {});
  return compileRuntime(config).runtime.channels.get('default/veo')!;
}

describe('fetchResult', () => {
  let api: Awaited<ReturnType<typeof listen>>;
  let media: Awaited<ReturnType<typeof listen>>;
  let servers: Server[];
  let ch: ChannelRuntime;
  const opts = (auth: boolean) => ({
    auth,
    headers: { accept: '*/*', range: 'bytes=0-3' },
    timeoutMs: 5_000,
  });

  beforeAll(async () => {
    media = await listen((_p, res) => {
      res.writeHead(206, { 'content-type': 'video/mp4' });
      res.end('MP4!');
    });
    api = await listen((p, res) => {
      if (p.startsWith('/v1beta/files/f1:download')) {
        res.writeHead(302, { location: '/v1beta/files/f1:signed' });
        return res.end();
      }
      if (p.startsWith('/v1beta/files/f1:signed')) {
        res.writeHead(302, { location: `${media.origin}/media/f1?sig=abc` });
        return res.end();
      }
      if (p.startsWith('/loop')) {
        res.writeHead(302, { location: p });
        return res.end();
      }
      res.writeHead(404).end();
    });
    servers = [api.server, media.server];
    ch = channel(api.origin);
  });
  afterAll(async () => {
    await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  });

  it("sends the credential on the channel's origin, follows redirects, and drops it on another origin", async () => {
    const res = await fetchResult(ch, `${api.origin}/v1beta/files/f1:download?alt=media`, opts(true));
    expect(res.statusCode).toBe(206);
    expect(await res.body.text()).toBe('MP4!');
    expect(api.seen.map((s) => s.headers['x-goog-api-key'])).toEqual([KEY, KEY]);
    expect(media.seen).toHaveLength(1);
    expect(media.seen[0]!.path).toBe('/media/f1?sig=abc');
    expect(media.seen[0]!.headers['x-goog-api-key']).toBeUndefined();
    expect(JSON.stringify(media.seen[0]!.headers)).not.toContain(KEY);
    // the client's Range reaches the host that serves the bytes
    expect(media.seen[0]!.headers.range).toBe('bytes=0-3');
  });

  it('sends no credential when the adapter did not ask for it (a bare signed URL)', async () => {
    api.seen.length = 0;
    const res = await fetchResult(ch, `${api.origin}/v1beta/files/f1:signed`, opts(false));
    await res.body.dump();
    expect(api.seen[0]!.headers['x-goog-api-key']).toBeUndefined();
  });

  it('gives up after a bounded number of redirects', async () => {
    api.seen.length = 0;
    await expect(fetchResult(ch, `${api.origin}/loop`, opts(true))).rejects.toThrow(/redirected more than/);
    expect(api.seen).toHaveLength(MAX_RESULT_REDIRECTS + 1);
  });

  it('refuses a result URL on the cloud metadata address, and a redirect to it', async () => {
    await expect(
      fetchResult(ch, 'http://169.254.169.254/latest/meta-data/iam/security-credentials/', opts(true)),
    ).rejects.toMatchObject({ code: 'ERR_KUBERELAY_LINK_LOCAL' });
    const evil = await listen((_p, res) => {
      res.writeHead(302, { location: 'http://169.254.169.254/latest/meta-data/' });
      res.end();
    });
    servers.push(evil.server);
    await expect(fetchResult(ch, `${evil.origin}/x`, opts(false))).rejects.toMatchObject({
      code: 'ERR_KUBERELAY_LINK_LOCAL',
    });
  });
});
