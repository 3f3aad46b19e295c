import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A plain node:http server on a free loopback port whose answer to each path a test scripts, for
 * tests of the relay's HTTP client itself (relay/upstream-call.ts): exact bytes, chunkings, resets
 * and stalls at chosen points, and what the server saw of the client (its writes draining, the
 * connection closing). Provider behaviour belongs in the mock upstream (mock-upstream/), not here.
 */
export interface ScriptedHttp {
  origin: string;
  /** Answers requests to `path` with `handler`. */
  on(path: string, handler: (req: IncomingMessage, res: ServerResponse) => void): void;
  close(): Promise<void>;
}

export async function startScriptedHttp(): Promise<ScriptedHttp> {
  const handlers = new Map<string, (req: IncomingMessage, res: ServerResponse) => void>();
  const server: Server = createServer((req, res) => {
    const h = handlers.get(req.url ?? '');
    if (!h) {
      res.writeHead(404).end();
      return;
    }
    req.resume();
    h(req, res);
  });
  server.keepAliveTimeout = 30_000;
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    origin: `http://127.0.0.1:${port}`,
    on: (path, handler) => handlers.set(path, handler),
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

/** Writes `chunks` one by one, waiting for the socket to drain when it is full; resolves when all were handed to the kernel. */
export async function writeAll(
  res: ServerResponse,
  chunks: Buffer[],
  between?: () => Promise<void>,
): Promise<void> {
  for (const c of chunks) {
    if (res.destroyed) return;
    if (!res.write(c)) await drainedOrClosed(res);
    if (between) await between();
  }
}

/** The next 'drain' or 'close', whichever comes first; the other's listener is taken off again. */
function drainedOrClosed(res: ServerResponse): Promise<void> {
  return new Promise<void>((resolve) => {
    const done = () => {
      res.off('drain', done).off('close', done);
      resolve();
    };
    res.once('drain', done).once('close', done);
  });
}
