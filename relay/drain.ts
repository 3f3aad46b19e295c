import type { Server, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

/**
 * Closing HTTP/1.1 keep-alive connections at shutdown without failing requests. An idle
 * connection cannot be closed without a race: its client may be sending the next request as the
 * close goes out, and that request fails ("other side closed"). Node's `server.close()` (which
 * Fastify's close calls) closes every idle connection at once, including one whose response
 * ended a millisecond ago and whose client is about to reuse it; in a rolling update, clients
 * with pooled connections to the old pod (kube-proxy keeps established connections) lost
 * requests that way. Draining instead:
 * - responses not yet started get `Connection: close` (Fastify adds it to requests that arrive
 *   while it closes), so the client learns from the response itself that the connection ends;
 * - an idle connection is closed only after it has been quiet for `quietMs`: a client still
 *   using it has sent its next request by then, and is answered.
 */
export function connectionDrain(server: Server, quietMs = 1000) {
  const idleSince = new Map<Socket, number>();
  const pending = new Set<ServerResponse>();
  server.on('connection', (socket: Socket) => {
    idleSince.set(socket, Date.now());
    socket.once('close', () => idleSince.delete(socket));
  });
  // One listener function for every response ('close' comes once): no closure or once-wrapper per request.
  function onResponseClose(this: ServerResponse) {
    pending.delete(this);
    const socket = this.req.socket;
    if (!socket.destroyed) idleSince.set(socket, Date.now());
  }
  server.prependListener('request', (req, res: ServerResponse) => {
    idleSince.delete(req.socket);
    pending.add(res);
    res.on('close', onResponseClose);
  });
  return {
    /** From now on `server.closeIdleConnections()` closes only connections quiet for quietMs. */
    start(): void {
      for (const res of pending) if (!res.headersSent) res.setHeader('connection', 'close');
      server.closeIdleConnections = () => {
        const now = Date.now();
        for (const [socket, since] of idleSince) if (now - since >= quietMs) socket.destroy();
      };
    },
  };
}
