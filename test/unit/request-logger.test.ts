import Fastify from 'fastify';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { lazyChildLogger } from '../../relay/request-logger.ts';

/** A Fastify app on a real pino logger whose lines are kept, with the relay's request loggers. */
function app() {
  const lines: Record<string, unknown>[] = [];
  const logger = pino({ level: 'info' }, { write: (l: string) => lines.push(JSON.parse(l)) });
  const server = Fastify({
    loggerInstance: logger,
    childLoggerFactory: lazyChildLogger,
    disableRequestLogging: true,
  });
  return { server, lines, logger };
}

describe("a request's lazy logger", () => {
  it('lines from hooks, handlers, the error handler and child loggers all carry the request id', async () => {
    const { server, lines } = app();
    server.addHook('onRequest', (req, _reply, done) => {
      req.log.info({ step: 'hook' }, 'onRequest');
      done();
    });
    server.setErrorHandler<Error>((err, req, reply) => {
      req.log.error({ err }, 'request failed');
      void reply.code(500).send({ error: { message: err.message } });
    });
    server.get('/ok', (req, reply) => {
      req.log.warn('in the handler %s', 'formatted');
      reply.log.child({ part: 'sub' }).info('from a child');
      return { ok: true };
    });
    server.get('/fail', () => {
      throw new Error('boom');
    });
    const ok = await server.inject({ url: '/ok' });
    const fail = await server.inject({ url: '/fail' });
    expect(ok.statusCode).toBe(200);
    expect(fail.statusCode).toBe(500);
    const okId = lines[0]!.reqId;
    expect(typeof okId).toBe('string');
    expect(lines.map((l) => [l.reqId, l.level, l.msg])).toEqual([
      [okId, 30, 'onRequest'],
      [okId, 40, 'in the handler formatted'],
      [okId, 30, 'from a child'],
      [lines[3]!.reqId, 30, 'onRequest'],
      [lines[3]!.reqId, 50, 'request failed'],
    ]);
    expect(lines[3]!.reqId).not.toBe(okId);
    expect(lines[2]).toMatchObject({ part: 'sub', pid: process.pid });
    expect(lines[4]).toMatchObject({ err: { message: 'boom', type: 'Error' } });
    await server.close();
  });

  it("follows the parent's level, and a level set on it applies to that request only", async () => {
    const { server, lines, logger } = app();
    server.get('/', (req) => {
      expect(req.log.level).toBe(logger.level);
      req.log.debug('hidden');
      req.log.level = 'debug';
      req.log.debug('shown');
      return {};
    });
    server.get('/other', (req) => {
      req.log.debug('hidden: another request');
      req.log.info('info');
      return {};
    });
    await server.inject({ url: '/' });
    await server.inject({ url: '/other' });
    logger.level = 'warn';
    await server.inject({ url: '/other' });
    expect(lines.map((l) => l.msg)).toEqual(['shown', 'info']);
    await server.close();
  });
});
