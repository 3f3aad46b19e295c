import { connect, type Socket } from 'node:net';

/**
 * A hand-driven HTTP/1.1 connection, for clients no library would write: headers dripped, bodies
 * sent at 1 byte/s, declared lengths never sent. Everything the server writes is collected.
 */
export interface RawConnection {
  socket: Socket;
  write(data: string | Buffer): void;
  /** What the server sent so far. */
  received(): string;
  /** Resolves when the server closed the connection, with how long it was open. */
  closed: Promise<{ afterMs: number; received: string }>;
  /** Writes `byte` every `everyMs` until the connection closes. */
  drip(byte: string, everyMs: number): void;
  destroy(): void;
}

export async function openRaw(url: string): Promise<RawConnection> {
  const { hostname, port } = new URL(url);
  const socket = connect(Number(port), hostname);
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  const openedAt = performance.now();
  let data = '';
  let timer: NodeJS.Timeout | undefined;
  socket.on('data', (d) => {
    data += d.toString();
  });
  // A reset after the server gave up on us is one way of being cut off.
  socket.on('error', () => {});
  const closed = new Promise<{ afterMs: number; received: string }>((resolve) => {
    socket.once('close', () => {
      clearInterval(timer);
      resolve({ afterMs: performance.now() - openedAt, received: data });
    });
  });
  return {
    socket,
    write: (d) => {
      if (!socket.destroyed) socket.write(d);
    },
    received: () => data,
    closed,
    drip(byte, everyMs) {
      timer = setInterval(() => {
        if (!socket.destroyed) socket.write(byte);
      }, everyMs);
    },
    destroy() {
      clearInterval(timer);
      socket.destroy();
    },
  };
}

/** Status and parsed JSON body of the (first) HTTP response in `raw`. */
export function parseResponse(raw: string): { status: number; headers: string; json: unknown } {
  const m = /^HTTP\/1\.1 (\d{3})[^\r\n]*\r\n([\s\S]*?)\r\n\r\n([\s\S]*)$/.exec(raw);
  if (!m) throw new Error(`not an HTTP response: ${JSON.stringify(raw.slice(0, 200))}`);
  let body = m[3]!;
  if (/transfer-encoding: chunked/i.test(m[2]!)) body = body.replace(/^[0-9a-f]+\r\n/i, '');
  const end = body.lastIndexOf('}');
  return { status: Number(m[1]), headers: m[2]!, json: JSON.parse(body.slice(0, end + 1)) };
}
