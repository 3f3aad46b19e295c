// Command-line options of bench/run.ts.

import path from 'node:path';
import { parseArgs } from 'node:util';
import { envPairs } from '../lib/children.ts';
import { SCENARIOS, type Scenario, templateScenario } from './scenarios.ts';

export interface Params {
  quick: boolean;
  scenario: string;
  /** Concurrency-1 chat: warm-up requests per path, measured requests per path. */
  chatWarmup: number;
  chatRequests: number;
  embeddingsWarmup: number;
  embeddingsRequests: number;
  embeddingDimensions: number;
  streamWarmup: number;
  streamRequests: number;
  streamTokens: number;
  chunkDelayMs: number;
  /** Load levels (concurrency) and seconds measured per path per level. */
  concurrency: number[];
  durationS: number;
  loadWarmupS: number;
  completionTokens: number;
  only: Set<string>;
  relayCpuProf: string | undefined;
  /** Extra node flags for the relay process, and its entry point (default cli/index.ts). */
  relayNodeArgs: string[];
  relayCli: string | undefined;
  /** Run the mock and the relay from a tsc build (as deployed) instead of the .ts sources. */
  compiled: boolean;
  pin: boolean;
}

const HELP = `usage: node bench/run.ts [options]        (npm run bench -- [options])

  --quick                     short runs (smoke check; figures are not meaningful)
  --json FILE                 write the raw result object to FILE
  --scenario NAME             ${Object.keys(SCENARIOS).join(' | ')} (default passthrough)
  --config FILE               relay config template instead of a scenario ({{MOCK_BASE_URL}}, {{MOCK_API_KEY}})
  --relay-env K=V             extra relay environment (repeatable)
  --client-key KEY            bearer key sent to the relay (when the scenario turns client auth on)
  --only LIST                 subset of chat,embeddings,stream,load (default all)
  --chat-requests N           concurrency-1 chat requests per path (default 5000; quick 200)
  --embeddings-requests N     concurrency-1 embeddings requests per path (default 2000; quick 50)
  --embedding-dimensions N    embedding size in the responses (default 1536)
  --stream-requests N         concurrency-1 streams per path (default 500; quick 30)
  --stream-tokens N           content chunks per stream (default 16)
  --chunk-delay-ms MS         delay between streamed chunks at the mock (default 1)
  --concurrency LIST          load levels, e.g. 32,64 (default 32,64; quick 8)
  --duration S                seconds measured per path per load level (default 10; quick 1)
  --load-warmup S             warm-up seconds per path per load level (default 1; quick 0.25)
  --relay-cpu-prof DIR        run the relay with --cpu-prof, profile written to DIR at exit
  --relay-node-args "ARGS"    extra node flags for the relay, e.g. "--max-semi-space-size=4"
  --compiled                  build with tsc into a temp dir and run mock and relay from the .js (as deployed)
  --relay-cli FILE            relay entry point (default cli/index.ts, or the build's with --compiled)
  --pin                       taskset: relay on CPU 0, mock on CPU 1 (run this process under taskset -c 1)
`;

export function parseParams(argv: string[]) {
  const { values } = parseArgs({
    args: argv,
    options: {
      help: { type: 'boolean' },
      quick: { type: 'boolean' },
      json: { type: 'string' },
      scenario: { type: 'string' },
      config: { type: 'string' },
      'relay-env': { type: 'string', multiple: true },
      'client-key': { type: 'string' },
      only: { type: 'string' },
      'chat-requests': { type: 'string' },
      'embeddings-requests': { type: 'string' },
      'embedding-dimensions': { type: 'string' },
      'stream-requests': { type: 'string' },
      'stream-tokens': { type: 'string' },
      'chunk-delay-ms': { type: 'string' },
      concurrency: { type: 'string' },
      duration: { type: 'string' },
      'load-warmup': { type: 'string' },
      'relay-cpu-prof': { type: 'string' },
      'relay-node-args': { type: 'string' },
      'relay-cli': { type: 'string' },
      compiled: { type: 'boolean' },
      pin: { type: 'boolean' },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(HELP);
    process.exit(0);
  }
  const quick = values.quick === true;
  const num = (name: string, v: string | undefined, dflt: number, min = 0): number => {
    if (v === undefined) return dflt;
    const n = Number(v);
    if (!Number.isFinite(n) || n < min) throw new Error(`--${name} must be a number >= ${min}`);
    return n;
  };
  const env = envPairs(values['relay-env'] ?? [], '--relay-env');
  let scenario: Scenario;
  if (values.config !== undefined) scenario = templateScenario(values.config, env);
  else {
    const s = SCENARIOS[values.scenario ?? 'passthrough'];
    if (!s)
      throw new Error(`unknown scenario ${values.scenario}; known: ${Object.keys(SCENARIOS).join(', ')}`);
    scenario = { ...s, env: { ...s.env, ...env } };
  }
  const concurrency = (values.concurrency ?? (quick ? '8' : '32,64')).split(',').map((c) => {
    const n = Number(c.trim());
    if (!Number.isInteger(n) || n < 1) throw new Error('--concurrency expects positive integers, e.g. 32,64');
    return n;
  });
  const only = new Set((values.only ?? 'chat,embeddings,stream,load').split(',').map((s) => s.trim()));
  for (const o of only) {
    if (!['chat', 'embeddings', 'stream', 'load'].includes(o)) throw new Error(`--only: unknown part ${o}`);
  }
  const chatRequests = num('chat-requests', values['chat-requests'], quick ? 200 : 5000, 1);
  const embeddingsRequests = num('embeddings-requests', values['embeddings-requests'], quick ? 50 : 2000, 1);
  const streamRequests = num('stream-requests', values['stream-requests'], quick ? 30 : 500, 1);
  const params: Params = {
    quick,
    scenario: scenario.name,
    chatWarmup: quick ? 50 : 500,
    chatRequests,
    embeddingsWarmup: quick ? 10 : 200,
    embeddingsRequests,
    embeddingDimensions: num('embedding-dimensions', values['embedding-dimensions'], 1536, 1),
    streamWarmup: quick ? 5 : 50,
    streamRequests,
    streamTokens: num('stream-tokens', values['stream-tokens'], 16, 1),
    chunkDelayMs: num('chunk-delay-ms', values['chunk-delay-ms'], 1),
    concurrency,
    durationS: num('duration', values.duration, quick ? 1 : 10, 0.1),
    loadWarmupS: num('load-warmup', values['load-warmup'], quick ? 0.25 : 1),
    completionTokens: 32,
    only,
    relayCpuProf: values['relay-cpu-prof'],
    relayNodeArgs: (values['relay-node-args'] ?? '').split(/\s+/).filter(Boolean),
    relayCli: values['relay-cli'] !== undefined ? path.resolve(values['relay-cli']) : undefined,
    compiled: values.compiled === true,
    pin: values.pin === true,
  };
  return { params, scenario, jsonFile: values.json, clientKey: values['client-key'] ?? 'bench-client-key' };
}
