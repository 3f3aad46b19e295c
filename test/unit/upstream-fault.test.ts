import net from 'node:net';
import { Agent, errors, request } from 'undici';
import { describe, expect, it } from 'vitest';
import { LinkLocalRefusedError } from '../../relay/upstream-connect.ts';
import { fitsEndpoint, upstreamFault } from '../../relay/upstream-fault.ts';

/** The error undici raises for one request (or undefined when it succeeded). */
async function errorOf(send: () => Promise<unknown>): Promise<unknown> {
  try {
    await send();
    return undefined;
  } catch (err) {
    return err;
  }
}

describe('which side failed', () => {
  it("a channel name that resolves to a link-local address is the channel's failure", () => {
    expect(upstreamFault(new LinkLocalRefusedError('refusing 169.254.169.254'))).toBe('connect');
  });

  it("the relay's own errors are not the upstream's: an unsendable header, a closed pool", async () => {
    const expect100 = await errorOf(() =>
      request('http://127.0.0.1:9/', { method: 'POST', headers: { expect: '100-continue' }, body: 'x' }),
    );
    expect(expect100).toBeInstanceOf(errors.NotSupportedError);
    expect(upstreamFault(expect100)).toBeUndefined();
    const badHeader = await errorOf(() =>
      request('http://127.0.0.1:9/', { headers: { 'x-bad': 'line\nbreak' } }),
    );
    expect(badHeader).toBeDefined();
    expect(upstreamFault(badHeader)).toBeUndefined();
    const agent = new Agent();
    await agent.close();
    const closed = await errorOf(() => request('http://127.0.0.1:9/', { dispatcher: agent }));
    expect(upstreamFault(closed)).toBeUndefined();
    expect(
      upstreamFault(Object.assign(new Error('too many open files'), { code: 'EMFILE', syscall: 'connect' })),
    ).toBeUndefined();
  });

  it("connection errors are the upstream's: refused, reset, bad HTTP, timeouts", async () => {
    const server = net.createServer((s) => s.resetAndDestroy()).listen(0, '127.0.0.1');
    await new Promise((r) => server.once('listening', r));
    const port = (server.address() as net.AddressInfo).port;
    expect(upstreamFault(await errorOf(() => request(`http://127.0.0.1:${port}/`)))).toBe('reset');
    server.close();
    await new Promise((r) => server.once('close', r));
    expect(upstreamFault(await errorOf(() => request(`http://127.0.0.1:${port}/`)))).toBe('connect');

    const garbage = net.createServer((s) => s.end('NOT HTTP\r\n\r\n')).listen(0, '127.0.0.1');
    await new Promise((r) => garbage.once('listening', r));
    const gport = (garbage.address() as net.AddressInfo).port;
    expect(upstreamFault(await errorOf(() => request(`http://127.0.0.1:${gport}/`)))).toBe('network');
    garbage.close();

    expect(upstreamFault(new errors.HeadersTimeoutError())).toBe('timeout');
    expect(upstreamFault(new errors.BodyTimeoutError())).toBe('timeout');
    expect(upstreamFault(new errors.SocketError('other side closed'))).toBe('reset');
  });
});

describe('does a 2xx fit the endpoint', () => {
  it('JSON for JSON endpoints, an event stream for streams', () => {
    expect(fitsEndpoint('application/json', false)).toBe(true);
    expect(fitsEndpoint('application/json; charset=utf-8', false)).toBe(true);
    expect(fitsEndpoint('application/problem+json', false)).toBe(true);
    expect(fitsEndpoint('text/html; charset=utf-8', false)).toBe(false);
    expect(fitsEndpoint('', false)).toBe(false);
    expect(fitsEndpoint('text/event-stream; charset=utf-8', true)).toBe(true);
    expect(fitsEndpoint('application/json', true)).toBe(false);
    expect(fitsEndpoint('Text/Event-Stream', true)).toBe(true);
  });
});
