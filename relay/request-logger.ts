import type { FastifyBaseLogger } from 'fastify';
import type { Bindings, ChildLoggerOptions, LevelWithSilentOrString } from 'pino';

type Level = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace';

/**
 * Fastify's `childLoggerFactory`: a request's logger (`req.log`, `reply.log`) that builds pino's
 * child (the request id bound) only when something logs through it. Fastify otherwise builds
 * one per request (pino's child: a new logger object and its bindings serialised), and most
 * requests log nothing: the access line is written apart (access-log.ts).
 */
export function lazyChildLogger(
  logger: FastifyBaseLogger,
  bindings: Bindings,
  opts: ChildLoggerOptions,
): FastifyBaseLogger {
  return new LazyChildLogger(logger, bindings, opts) as unknown as FastifyBaseLogger;
}

class LazyChildLogger {
  readonly #parent: FastifyBaseLogger;
  readonly #bindings: Bindings;
  readonly #opts: ChildLoggerOptions;
  #child: FastifyBaseLogger | undefined;

  constructor(parent: FastifyBaseLogger, bindings: Bindings, opts: ChildLoggerOptions) {
    this.#parent = parent;
    this.#bindings = bindings;
    this.#opts = opts;
  }

  get #log(): FastifyBaseLogger {
    this.#child ??= this.#parent.child(this.#bindings, this.#opts);
    return this.#child;
  }

  get level(): LevelWithSilentOrString {
    return this.#child?.level ?? this.#opts.level ?? this.#parent.level;
  }
  set level(level: LevelWithSilentOrString) {
    this.#log.level = level;
  }
  // Methods on the prototype: nothing is allocated per request until a line is written.
  fatal(...a: unknown[]) {
    this.#call('fatal', a);
  }
  error(...a: unknown[]) {
    this.#call('error', a);
  }
  warn(...a: unknown[]) {
    this.#call('warn', a);
  }
  info(...a: unknown[]) {
    this.#call('info', a);
  }
  debug(...a: unknown[]) {
    this.#call('debug', a);
  }
  trace(...a: unknown[]) {
    this.#call('trace', a);
  }
  silent() {}
  #call(level: Level, a: unknown[]) {
    const log = this.#log;
    (log[level] as (...a: unknown[]) => void).apply(log, a);
  }
  child(bindings: Bindings, opts?: ChildLoggerOptions): FastifyBaseLogger {
    return this.#log.child(bindings, opts);
  }
  isLevelEnabled(level: string): boolean {
    return (this.#log as unknown as { isLevelEnabled(l: string): boolean }).isLevelEnabled(level);
  }
  bindings(): Bindings {
    return (this.#log as unknown as { bindings(): Bindings }).bindings();
  }
}
