import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CountingUpstream, startCountingUpstream } from '../helpers/fleet.ts';
import { chat, configYaml, type Harness, metric, post, startHarness } from '../helpers/harness.ts';

// The channel concurrency gate on the request path: who waits, for what, and for how long.

let busyUp: CountingUpstream;
let freeUp: CountingUpstream;
let h: Harness;

beforeAll(async () => {
  busyUp = await startCountingUpstream(0);
  freeUp = await startCountingUpstream(0);
  const limits = (max: number) => `  limits: { maxConcurrent: ${max}, maxQueue: 10, queueTimeout: 25s }\n`;
  h = await startHarness(
    configYaml([
      // A tier of two: `busy` allows one request at a time, `free` five.
      {
        name: 'busy',
        baseURL: `${busyUp.url}/v1`,
        models: '[{ name: tier }, { name: solo }]',
        extra: limits(1),
      },
      { name: 'free', baseURL: `${freeUp.url}/v1`, models: '[{ name: tier }]', extra: limits(5) },
    ]),
  );
});
afterAll(async () => {
  busyUp?.releaseAll();
  await h?.close();
  await Promise.all([busyUp?.close(), freeUp?.close()]);
});

const depth = (channel: string) => metric(h.url, 'kuberelay_queue_depth', { channel: `default/${channel}` });

describe('the concurrency gate', () => {
  it('a client that disconnects while queued leaves the queue at once and takes no permit', async () => {
    busyUp.hold(true);
    const holder = post(h.url, '/v1/chat/completions', chat({ model: 'solo' }));
    await expect.poll(() => busyUp.inflight()).toBe(1);

    const client = new AbortController();
    const queued = fetch(`${h.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(chat({ model: 'solo' })),
      signal: client.signal,
    }).catch(() => 'aborted');
    await expect.poll(() => depth('busy')).toBe(1);
    client.abort();
    expect(await queued).toBe('aborted');
    // Well before the 25 s queue timeout.
    await expect.poll(() => depth('busy'), { timeout: 2000 }).toBe(0);

    busyUp.hold(false);
    busyUp.releaseAll();
    expect((await holder).status).toBe(200);
    const next = await post(h.url, '/v1/chat/completions', chat({ model: 'solo' }));
    expect(next.status).toBe(200);
    expect(busyUp.started()).toBe(2); // the one that left never reached the upstream
  });

  it('a request does not wait behind a busy channel while a peer of its tier has room', async () => {
    busyUp.hold(true);
    const before = busyUp.started();
    // Requests go to either channel (equal weights) until one holds `busy`'s only permit.
    const pending: Promise<unknown>[] = [];
    while (busyUp.started() === before) {
      pending.push(post(h.url, '/v1/chat/completions', chat({ model: 'tier' })));
      await expect.poll(() => busyUp.started() > before || freeUp.started() >= pending.length).toBe(true);
    }
    await expect.poll(() => busyUp.inflight()).toBe(1);

    const results = await Promise.all(
      Array.from({ length: 8 }, () => post(h.url, '/v1/chat/completions', chat({ model: 'tier' }))),
    );
    expect(results.map((r) => r.status)).toEqual(Array(8).fill(200));
    expect(results.map((r) => r.headers.get('x-kuberelay-channel'))).toEqual(Array(8).fill('default/free'));
    expect(await depth('busy')).toBe(0);
    expect(await metric(h.url, 'kuberelay_queue_rejections_total')).toBe(0);

    busyUp.hold(false);
    busyUp.releaseAll();
    await Promise.all(pending);
  });
});
