#!/usr/bin/env node
// First: on an unsupported Node this says so before any dependency loads.
import './require-node.ts';
import { Command, InvalidArgumentError, Option } from 'commander';
import { ConfigError } from '../core/config/load.ts';
import { DEFAULT_CONFIG_SECRET, parseSecretRef } from '../core/config/snapshot.ts';

// Each command loads its own modules: a relay never pays for the Kubernetes client or Prisma it
// does not use (tens of MB of RSS).

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
  .option(
    '--config <file>',
    'YAML of Secret, Channel and RateLimitPolicy objects, watched (or, with --config-secret, the mounted Secret as a fallback)',
  )
  .option('--config-secret <ns/name>', 'follow the config Secret the operator writes (in cluster)')
  .option('--kubeconfig <file>', 'kubeconfig for --config-secret (default: in-cluster or KUBECONFIG)')
  .addOption(new Option('--port <port>', 'public port').env('PORT').default(8080).argParser(int('port')))
  .addOption(new Option('--host <host>', 'listen address').env('HOST').default('0.0.0.0'))
  .action(async (o) => {
    if (!o.config && !o.configSecret)
      throw new InvalidArgumentError('give --config FILE or --config-secret NAMESPACE/NAME');
    const { runRelayCommand } = await import('./relay.ts');
    await runRelayCommand({
      configFile: o.config,
      configSecret: o.configSecret ? parseSecretRef(o.configSecret) : undefined,
      kubeconfig: o.kubeconfig,
      port: o.port,
      host: o.host,
    });
  });

program
  .command('operator')
  .description('reconcile Channels and RateLimitPolicies into the relay config Secret; health into status')
  .addOption(
    new Option('--namespace <ns>', 'namespace the operator runs in (Lease, default config Secret)')
      .env('POD_NAMESPACE')
      .default('default'),
  )
  .addOption(
    new Option(
      '--watch-namespaces <list>',
      'comma-separated namespaces to watch, or * for all (default: --namespace)',
    ).env('WATCH_NAMESPACES'),
  )
  .option(
    '--config-secret <ns/name>',
    `config Secret to write (default: <namespace>/${DEFAULT_CONFIG_SECRET})`,
  )
  .option('--lease-name <name>', 'leader election Lease', 'kuberelay-operator')
  .option('--kubeconfig <file>', 'kubeconfig (default: in-cluster or KUBECONFIG)')
  .addOption(
    new Option('--metrics-port <port>', 'port for /metrics, /healthz, /readyz')
      .env('METRICS_PORT')
      .default(8080)
      .argParser(int('port')),
  )
  .action(async (o) => {
    const { runOperatorCommand } = await import('./operator.ts');
    await runOperatorCommand({
      namespace: o.namespace,
      watchNamespaces: o.watchNamespaces,
      configSecret: o.configSecret,
      leaseName: o.leaseName,
      kubeconfig: o.kubeconfig,
      metricsPort: o.metricsPort,
    });
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
  .addOption(
    new Option(
      '--volcengine-access-key-id <id>',
      'require Volcengine requests signed with this key pair',
    ).env('MOCK_VOLCENGINE_ACCESS_KEY_ID'),
  )
  .addOption(
    new Option('--volcengine-secret-access-key <key>', 'its secret (prefer the env variable)').env(
      'MOCK_VOLCENGINE_SECRET_ACCESS_KEY',
    ),
  )
  .addOption(
    new Option('--task-duration-ms <ms>', 'run time of simulated async tasks (Volcengine, Veo)').argParser(
      int('task duration'),
    ),
  )
  .addOption(
    new Option(
      '--task-max-concurrent <n>',
      "the simulated upstream's own limit of unfinished tasks",
    ).argParser(int('task limit')),
  )
  .action(async (o) => {
    const { runMockUpstreamCli } = await import('../mock-upstream/server.ts');
    await runMockUpstreamCli({
      port: o.port,
      host: o.host,
      name: o.name,
      apiKey: o.apiKey,
      latencyMs: o.latencyMs,
      status: o.status,
      chunkDelayMs: o.chunkDelayMs,
      volcengineAccessKeyId: o.volcengineAccessKeyId,
      volcengineSecretAccessKey: o.volcengineSecretAccessKey,
      taskDurationMs: o.taskDurationMs,
      taskMaxConcurrent: o.taskMaxConcurrent,
    });
  });

program
  .command('demo')
  .description("start mock upstreams for the config's loopback channels and a relay without client auth")
  .option('--config <file>', 'config file', 'examples/quickstart.yaml')
  .addOption(new Option('--port <port>', 'relay port').env('PORT').default(8080).argParser(int('port')))
  .action(async (o) => (await import('./demo.ts')).runDemo({ configFile: o.config, port: o.port }));

// Database commands load Prisma only when they run.
const keys = program
  .command('keys')
  .description(
    'manage client API keys: directly on the database, or through a running relay (embedded mode, or --admin-url)',
  );
const adminUrl = () =>
  new Option('--admin-url <url>', "a relay's admin API (token from ADMIN_TOKEN)").env('ADMIN_URL');
keys
  .command('create')
  .description('create a key; its secret is printed once')
  .requiredOption('--name <name>', 'what the key is for')
  .option('--expires-at <time>', 'ISO time, or a duration from now (30d)')
  .option('--models <list>', 'comma-separated models the key may use (default: all)')
  .option(
    '--label <k=v>',
    'label for RateLimitPolicy match.apiKeys (repeatable)',
    (v, all: string[]) => [...all, v],
    [],
  )
  .option('--budget <amount/period>', 'USD per day or month, e.g. 25/day')
  .option('--json', 'machine-readable output')
  .addOption(adminUrl())
  .action(async (o) => (await import('./keys.ts')).keysCreate(o));
keys
  .command('list')
  .description('list keys (secrets are never shown; prefixes are)')
  .option('--all', 'include revoked keys')
  .option('--json', 'machine-readable output')
  .addOption(adminUrl())
  .action(async (o) => (await import('./keys.ts')).keysList(o));
keys
  .command('revoke')
  .description('revoke a key: every relay refuses it within a second')
  .requiredOption('--id <id>', 'key id (key_…)')
  .option('--json', 'machine-readable output')
  .addOption(adminUrl())
  .action(async (o) => (await import('./keys.ts')).keysRevoke(o));
keys
  .command('rotate')
  .description('give a key a new secret; the old one keeps working for the grace period')
  .requiredOption('--id <id>', 'key id (key_…)')
  .option('--grace-period <duration>', 'how long the old secret keeps working', '0s')
  .option('--json', 'machine-readable output')
  .addOption(adminUrl())
  .action(async (o) => (await import('./keys.ts')).keysRotate(o));

program
  .command('migrate')
  .description('apply database migrations (DATABASE_URL, or the embedded data directory)')
  .option('--status', 'only report applied and pending migrations (exit 2 when some are pending)')
  .action(async (o) => (await import('./migrate.ts')).runMigrate(o));

// Errors a user can act on: the message says what to do, a stack trace would only hide it.
const USER_ERRORS = new Set(['CliError', 'DataDirBusyError', 'PersistenceConfigError', 'MigrationError']);

program.parseAsync().catch((err: unknown) => {
  if (err instanceof ConfigError || USER_ERRORS.has((err as Error)?.name)) {
    process.stderr.write(`kuberelay: ${(err as Error).message}\n`);
  } else {
    process.stderr.write(`kuberelay: ${(err as Error).stack ?? String(err)}\n`);
  }
  process.exit(1);
});
