// The test helpers (Redis, PostgreSQL) pick free ports, and a port found free can be taken before
// the server binds it (another test's client socket gets it as its ephemeral port): CI once lost
// a whole Redis Cluster suite to "bind: Address already in use" on a cluster bus port.
import net from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort, onFreePorts } from '../helpers/process.ts';
import { launch } from '../helpers/redis.ts';

const held: net.Server[] = [];
afterAll(() => Promise.all(held.map((s) => new Promise((r) => s.close(r)))));

/** A port some other process holds, as one that was taken after it was found free. */
async function takenPort(): Promise<number> {
  const s = net.createServer((socket) => socket.destroy());
  held.push(s);
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  return (s.address() as net.AddressInfo).port;
}

describe('the test Redis helpers on ports taken in between', () => {
  it('start again on fresh ports when a port was taken, and say which port failed otherwise', async () => {
    const taken = await takenPort();
    const tried: number[][] = [];
    const server = await onFreePorts(2, async (ports) => {
      tried.push(ports);
      // The first attempt's bus port is the one somebody took since it was found free.
      const bus = tried.length === 1 ? taken : ports[1]!;
      return launch(ports[0]!, ['--cluster-enabled', 'yes', '--cluster-port', String(bus), '--dir', '/tmp']);
    });
    await server.kill();
    expect(tried).toHaveLength(2);

    const port = await takenPort();
    await expect(launch(port, [])).rejects.toThrow(`redis-server did not start on port ${port}`);
    // Anything but a taken port is not retried: a missing binary or a bad option fails at once.
    let calls = 0;
    await expect(
      onFreePorts(1, async ([p]) => {
        calls++;
        return launch(p!, ['--no-such-option', 'x']);
      }),
    ).rejects.toThrow('did not start');
    expect(calls).toBe(1);
    expect(await freePort()).toBeGreaterThan(0);
  });
});
