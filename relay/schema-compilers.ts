import { createRequire } from 'node:module';
import type { FastifyServerOptions } from 'fastify';

/**
 * Fastify's validator (Ajv) and serializer (fast-json-stringify) compilers, loaded on the first route
 * that declares a schema instead of when the server is built. The relay's routes declare none, so a
 * relay never loads them: ~130 modules and a few MB of heap it would not use. (Fastify then treats
 * them as custom compilers, which matters only to a `headers` schema: its keys are not lower-cased.)
 */
// Fastify's own dependencies, resolved as Fastify resolves them.
const require = createRequire(createRequire(import.meta.url).resolve('fastify'));

type Factory = (...args: unknown[]) => unknown;
const lazy = (pkg: string): Factory => {
  let built: Factory | undefined;
  return (...args) => {
    built ??= (require(pkg) as () => Factory)();
    return built(...args);
  };
};

export const lazySchemaCompilers = (): NonNullable<FastifyServerOptions['schemaController']> => ({
  compilersFactory: {
    buildValidator: lazy('@fastify/ajv-compiler') as never,
    buildSerializer: lazy('@fastify/fast-json-stringify-compiler') as never,
  },
});
