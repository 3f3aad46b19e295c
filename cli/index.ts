#!/usr/bin/env node
import { Command, InvalidArgumentError, Option } from 'commander';
import { ConfigError } from '../core/config/load.ts';
import { runMockUpstreamCli } from '../mock-upstream/server.ts';
import { runDemo } from './demo.ts';
import { runRelayCommand } from './relay.ts';

const int = (name: string) => (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError(`${name} must be a non-negative integer`);
  return n;
};

const program = new Command('kuberelay')
  .description('Kubernetes operator and relay for AI provider APIs')
  .showHelpAfterError();

program
  .command('relay')
  .description('serve the OpenAI-compatible relay')
  .requiredOption(
    '--config <file>',
    'multi-document YAML of Secret, Channel and RateLimitPolicy objects (watched)',
  )
  .addOption(new Option('--port <port>', 'public port').env('PORT').default(8080).argParser(int('port')))
  .addOption(new Option('--host <host>', 'listen address').env('HOST').default('0.0.0.0'))
  .action(async (o) => {
    await runRelayCommand({ configFile: o.config, port: o.port, host: o.host });
  });

program
  .command('mock-upstream')
  .description('an OpenAI-compatible fake provider with fault injection (demos, tests, benchmarks)')
  .addOption(new Option('--port <port>', 'port').default(9100).argParser(int('port')))
  .option('--host <host>', 'listen address', '0.0.0.0')
  .option('--name <name>', 'name reported in x-mock-name')
  .option('--api-key <key>', 'require this bearer key')
  .addOption(new Option('--latency-ms <ms>', 'delay before every response').argParser(int('latency')))
  .addOption(new Option('--status <code>', 'answer every request with this status').argParser(int('status')))
  .addOption(new Option('--chunk-delay-ms <ms>', 'delay between stream chunks').argParser(int('chunk delay')))
  .action(async (o) => {
    await runMockUpstreamCli({
      port: o.port,
      host: o.host,
      name: o.name,
      apiKey: o.apiKey,
      latencyMs: o.latencyMs,
      status: o.status,
      chunkDelayMs: o.chunkDelayMs,
    });
  });

program
  .command('demo')
  .description("start mock upstreams for the config's loopback channels and a relay without client auth")
  .option('--config <file>', 'config file', 'examples/quickstart.yaml')
  .addOption(new Option('--port <port>', 'relay port').env('PORT').default(8080).argParser(int('port')))
  .action(async (o) => runDemo({ configFile: o.config, port: o.port }));

program.parseAsync().catch((err: unknown) => {
  if (err instanceof ConfigError) {
    process.stderr.write(`kuberelay: ${err.message}\n`);
  } else {
    process.stderr.write(`kuberelay: ${(err as Error).stack ?? String(err)}\n`);
  }
  process.exit(1);
});
