import fc from 'fast-check';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { CounterFamily, GaugeFamily, HistogramFamily, type Names } from '../../relay/metric-series.ts';
import { exposition, OPENMETRICS_TEXT } from '../../relay/metrics-exposition.ts';

/**
 * The relay's own metric families render what prom-client renders for the same calls: for any
 * sequence of increments, observations, sets and resets, over label values with quotes,
 * backslashes, newlines and non-ASCII, values on and between bucket bounds, with exemplars stamped
 * by a clock that is not on a second boundary, the Prometheus text, the OpenMetrics text
 * (exemplars included) and getMetricsAsJSON() of a registry of families equal those of a
 * registry of prom-client metrics.
 */

const LATENCY = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];
const SMALL = [0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.003, 0.005, 0.01, 0.025, 0.05, 0.1];

interface Spec {
  kind: 'counter' | 'gauge' | 'histogram';
  name: string;
  labelNames: string[];
  buckets?: number[];
  exemplars?: boolean;
}

const SPECS: Spec[] = [
  { kind: 'counter', name: 'c_plain_total', labelNames: [] },
  { kind: 'counter', name: 'c_result_total', labelNames: ['result'] },
  { kind: 'counter', name: 'c_requests_total', labelNames: ['route', 'model', 'channel', 'code'] },
  { kind: 'gauge', name: 'g_plain', labelNames: [] },
  { kind: 'gauge', name: 'g_state', labelNames: ['channel', 'state'] },
  { kind: 'histogram', name: 'h_plain_seconds', labelNames: [], buckets: SMALL },
  { kind: 'histogram', name: 'h_attempts', labelNames: ['route'], buckets: [1, 2, 3, 4, 5, 8] },
  {
    kind: 'histogram',
    name: 'h_duration_seconds',
    labelNames: ['route', 'model'],
    buckets: LATENCY,
    exemplars: true,
  },
];

// No commas: prom-client's own label hash (`name:value,`) confuses values that hold `,name:`.
const labelValue = fc.constantFrom(
  '',
  'a',
  'gpt-4o-mini',
  '/v1/chat/completions',
  'quo"te',
  'back\\slash',
  'new\nline',
  'ünïcødé 模型',
  'sp ace',
  '200',
);
const amount = fc.oneof(
  fc.constant(undefined),
  fc.nat(1000),
  fc.double({ min: 0, max: 1e6, noNaN: true, noDefaultInfinity: true }),
);
const anyNumber = fc.double({ min: -1e6, max: 1e6, noNaN: true, noDefaultInfinity: true });
const observation = fc.oneof(
  fc.constantFrom(...LATENCY, ...SMALL, 0, 8, 3),
  fc.double({ min: -1, max: 500, noNaN: true, noDefaultInfinity: true }),
);
const traceId = fc.option(fc.stringMatching(/^[0-9a-f]{32}$/), { nil: undefined });

type Op =
  | {
      op: 'inc' | 'dec' | 'set' | 'setToCurrentTime' | 'observe' | 'reset';
      family: number;
      values: string[];
      n: number | undefined;
      bound: boolean;
      trace: string | undefined;
    }
  | { op: 'tick'; ms: number };

const familyOp: fc.Arbitrary<Op> = fc
  .record({
    family: fc.nat(SPECS.length - 1),
    values: fc.array(labelValue, { minLength: 4, maxLength: 4 }),
    choice: fc.nat(99),
    amount,
    anyNumber,
    observation,
    bound: fc.boolean(),
    trace: traceId,
  })
  .map(({ family, values, choice, amount, anyNumber, observation, bound, trace }) => {
    const spec = SPECS[family]!;
    const vs = values.slice(0, spec.labelNames.length);
    const base = { family, values: vs, bound, trace };
    if (choice < 5) return { ...base, op: 'reset', n: undefined };
    if (spec.kind === 'counter') return { ...base, op: 'inc', n: amount };
    if (spec.kind === 'histogram') return { ...base, op: 'observe', n: observation };
    const op = (['set', 'inc', 'dec', 'setToCurrentTime'] as const)[choice % 4]!;
    return { ...base, op, n: op === 'set' ? anyNumber : amount };
  });
const ops = fc.array(
  fc.oneof(
    { weight: 8, arbitrary: familyOp },
    {
      weight: 1,
      arbitrary: fc.record({ op: fc.constant('tick' as const), ms: fc.integer({ min: 1, max: 120_000 }) }),
    },
  ),
  {
    maxLength: 60,
  },
);

type Theirs = Counter<string> | Gauge<string> | Histogram<string>;
type Ours = CounterFamily<Names> | GaugeFamily<Names> | HistogramFamily<Names>;

function registries() {
  const theirs = new Registry();
  const ours = new Registry();
  const t: Theirs[] = [];
  const o: Ours[] = [];
  for (const s of SPECS) {
    const c = { name: s.name, help: `help of ${s.name} with a \\ and a\nnewline`, labelNames: s.labelNames };
    if (s.kind === 'counter') {
      t.push(new Counter({ ...c, registers: [theirs] }));
      o.push(new CounterFamily({ ...c, registers: [ours] }));
    } else if (s.kind === 'gauge') {
      t.push(new Gauge({ ...c, registers: [theirs] }));
      o.push(new GaugeFamily({ ...c, registers: [ours] }));
    } else {
      // prom-client refuses exemplars on a Prometheus registry at construction: joined by hand, as the relay did.
      const h = new Histogram({
        ...c,
        buckets: s.buckets!,
        enableExemplars: s.exemplars === true,
        registers: [],
      });
      theirs.registerMetric(h);
      t.push(h);
      o.push(
        new HistogramFamily({
          ...c,
          buckets: s.buckets!,
          exemplars: s.exemplars === true,
          registers: [ours],
        }),
      );
    }
  }
  return { theirs, ours, t, o };
}

function labelsOf(spec: Spec, values: string[]): Record<string, string> {
  return Object.fromEntries(spec.labelNames.map((n, i) => [n, values[i]!]));
}

/** The call to prom-client, as the relay made it. */
function applyTheirs(m: Theirs, spec: Spec, op: Exclude<Op, { op: 'tick' }>) {
  const labels = labelsOf(spec, op.values);
  const plain = spec.labelNames.length === 0;
  if (op.op === 'reset') return m.reset();
  if (m instanceof Counter) return plain ? m.inc(op.n) : m.inc(labels, op.n);
  if (m instanceof Gauge) {
    if (op.op === 'setToCurrentTime') return plain ? m.setToCurrentTime() : m.setToCurrentTime(labels);
    const f = op.op as 'set' | 'inc' | 'dec';
    return plain ? m[f](op.n as number) : m[f](labels, op.n as number);
  }
  if (spec.exemplars) {
    const exemplarLabels = op.trace === undefined ? {} : { trace_id: op.trace };
    return m.observe({ labels, value: op.n as number, exemplarLabels });
  }
  return plain ? m.observe(op.n as number) : m.observe(labels, op.n as number);
}

/** The same call to a family: through its prom-client-shaped methods, or to the bound series. */
function applyOurs(m: Ours, spec: Spec, op: Exclude<Op, { op: 'tick' }>) {
  const labels = labelsOf(spec, op.values);
  const plain = spec.labelNames.length === 0;
  if (op.op === 'reset') return m.reset();
  const series = op.bound ? (plain ? m.labels() : m.labels(...op.values)) : undefined;
  if (m instanceof CounterFamily) {
    if (series) return (series as ReturnType<CounterFamily['labels']>).inc(op.n);
    return plain ? m.inc(op.n) : m.inc(labels, op.n);
  }
  if (m instanceof GaugeFamily) {
    const s =
      (series as ReturnType<GaugeFamily['labels']> | undefined) ?? (plain ? undefined : m.labels(labels));
    if (op.op === 'setToCurrentTime') return s ? s.setToCurrentTime() : m.setToCurrentTime();
    const f = op.op as 'set' | 'inc' | 'dec';
    if (s) return s[f](op.n as number);
    return m[f](op.n as number);
  }
  const h = m as HistogramFamily;
  if (spec.exemplars || series) {
    const s = (series as ReturnType<HistogramFamily['labels']> | undefined) ?? h.labels(labels);
    return s.observe(op.n as number, op.trace === undefined ? undefined : { trace_id: op.trace });
  }
  return plain ? h.observe(op.n as number) : h.observe(labels, op.n as number);
}

describe('metric families render what prom-client renders', () => {
  beforeEach(() => {
    vi.useFakeTimers({ toFake: ['Date'] });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('for any sequence of calls: Prometheus text, OpenMetrics text and JSON', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1_700_000_000_000, max: 1_900_000_000_000 }),
        ops,
        async (start, seq) => {
          vi.setSystemTime(start);
          const { theirs, ours, t, o } = registries();
          for (const op of seq) {
            if (op.op === 'tick') {
              vi.setSystemTime(Date.now() + op.ms);
              continue;
            }
            const spec = SPECS[op.family]!;
            applyTheirs(t[op.family]!, spec, op);
            applyOurs(o[op.family]!, spec, op);
          }
          const text = [await exposition(theirs, undefined), await exposition(ours, undefined)];
          expect(text[1]).toEqual(text[0]);
          const om = [await exposition(theirs, OPENMETRICS_TEXT), await exposition(ours, OPENMETRICS_TEXT)];
          expect(om[1]).toEqual(om[0]);
          // Through JSON: a gauge prom-client creates by dec(0) holds -0, which renders as 0 in both.
          const json = async (r: Registry) => JSON.parse(JSON.stringify(await r.getMetricsAsJSON()));
          expect(await json(ours)).toEqual(await json(theirs));
        },
      ),
      { numRuns: 300 },
    );
  });

  it('renders exemplars in OpenMetrics only, on the bucket the value fell into', async () => {
    vi.setSystemTime(1_764_612_345_678);
    const ours = new Registry();
    const h = new HistogramFamily({
      name: 'd_seconds',
      help: 'd',
      labelNames: ['route'],
      buckets: [0.1, 1],
      exemplars: true,
      registers: [ours],
    });
    h.labels('/v1/x').observe(0.5, { trace_id: '0af7651916cd43dd8448eb211c80319c' });
    h.labels('/v1/x').observe(2, { trace_id: 'b7ad6b7169203331b7ad6b7169203331' });
    const om = (await exposition(ours, OPENMETRICS_TEXT)).body;
    expect(om).toContain(
      'd_seconds_bucket{le="1",route="/v1/x"} 1 # {trace_id="0af7651916cd43dd8448eb211c80319c"} 0.5 1764612345.678',
    );
    expect(om).toContain(
      'd_seconds_bucket{le="+Inf",route="/v1/x"} 2 # {trace_id="b7ad6b7169203331b7ad6b7169203331"} 2 1764612345.678',
    );
    expect(om).toContain('d_seconds_bucket{le="0.1",route="/v1/x"} 0\n');
    expect((await exposition(ours, undefined)).body).not.toContain('trace_id');
  });
});
