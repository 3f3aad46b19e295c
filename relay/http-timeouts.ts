import type { Duplex } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { clientErrorResponse } from './errors.ts';

/**
 * How long a client may take to send a request, and keep a connection idle. Node's own defaults
 * (and Fastify's) let a client hold a connection for minutes: no deadline for the body at all,
 * 60 s for headers checked every 30 s. These bound receiving a request only; a response, such as
 * an SSE stream that runs for minutes, is never cut by them (the channel's timeouts bound that).
 */
export interface HttpTimeouts {
  /** Headers of a request must arrive within this, counted from the connection or the request start. */
  headersMs: number;
  /** The whole request, headers and body, must arrive within this (a body sent at 1 byte/s). */
  requestMs: number;
  /** An idle keep-alive connection is closed after this. */
  keepAliveMs: number;
  /** How often Node checks the two deadlines above (the precision of both). */
  checkIntervalMs: number;
}

export const DEFAULT_HTTP_TIMEOUTS: HttpTimeouts = {
  headersMs: 10_000,
  // A 32 MiB body in 60 s needs ~4.5 Mbit/s; raise it for clients uploading large files slowly.
  requestMs: 60_000,
  // Longer than the 60 s idle timeout of common proxies and load balancers (ingress-nginx, ALB)
  // that pool connections to the relay: they close first, never racing a request into a close.
  keepAliveMs: 65_000,
  checkIntervalMs: 1_000,
};

/** KUBERELAY_HEADERS_TIMEOUT_MS, KUBERELAY_REQUEST_TIMEOUT_MS, KUBERELAY_KEEPALIVE_TIMEOUT_MS. */
export function httpTimeoutsFromEnv(env = process.env): HttpTimeouts {
  const ms = (name: string, def: number) => {
    const v = env[name];
    if (v === undefined || v === '') return def;
    const n = Number(v);
    if (!Number.isInteger(n) || n <= 0) {
      throw new Error(`${name}="${v}" must be a positive number of milliseconds`);
    }
    return n;
  };
  const t: HttpTimeouts = {
    headersMs: ms('KUBERELAY_HEADERS_TIMEOUT_MS', DEFAULT_HTTP_TIMEOUTS.headersMs),
    requestMs: ms('KUBERELAY_REQUEST_TIMEOUT_MS', DEFAULT_HTTP_TIMEOUTS.requestMs),
    keepAliveMs: ms('KUBERELAY_KEEPALIVE_TIMEOUT_MS', DEFAULT_HTTP_TIMEOUTS.keepAliveMs),
    checkIntervalMs: DEFAULT_HTTP_TIMEOUTS.checkIntervalMs,
  };
  if (t.headersMs > t.requestMs) {
    throw new Error(
      `KUBERELAY_HEADERS_TIMEOUT_MS (${t.headersMs}) must not exceed KUBERELAY_REQUEST_TIMEOUT_MS (${t.requestMs})`,
    );
  }
  return t;
}

/** Fastify options applying `t` (both listeners: public and admin). */
export function serverOptions(t: HttpTimeouts) {
  return {
    requestTimeout: t.requestMs,
    keepAliveTimeout: t.keepAliveMs,
    http: {
      headersTimeout: t.headersMs,
      // How often Node looks for requests past those deadlines (its default, 30 s, adds that much).
      connectionsCheckingInterval: t.checkIntervalMs,
    },
    clientErrorHandler: answerClientError,
  };
}

/**
 * Node's parser errors (bad request line, header overflow, the deadlines above) answered in the
 * OpenAI shape, then the connection closed.
 */
function answerClientError(this: FastifyInstance, err: NodeJS.ErrnoException, socket: Duplex) {
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  this.log.debug({ err: err.message, code: err.code }, 'client error');
  // Not when a response has started on this connection: its bytes would corrupt it.
  const started = (socket as Duplex & { _httpMessage?: { headersSent?: boolean } })._httpMessage?.headersSent;
  if (socket.writable && !started) socket.write(clientErrorResponse(err));
  socket.destroy();
}
