import type { Metric, Registry } from 'prom-client';

/**
 * Counter, gauge and histogram families for the metrics every request updates. prom-client
 * validates and hashes the label object on every inc()/observe() (its labels() children too);
 * here each label set is one series object, created on first use and found again through one Map
 * per label (no key string built) or held by the caller, so an update is a few number writes.
 *
 * To the prom-client Registry a family is one more metric: it reads the series at scrape time
 * (get()), so /metrics is what prom-client renders for the same calls: names, HELP, TYPE, label
 * order (the family's labelNames), buckets, `_sum`/`_count`, exemplars, and reset() dropping
 * every series. A series held across reset() is no longer exported: hold series only of families
 * nobody resets.
 */

/** A family's label names, in the order the exposition writes them. */
export type Names = readonly string[];
/** One series' labels, by name. */
export type LabelSet<N extends Names> = Record<N[number], string>;
/** One series' label values, in labelNames order. */
export type LabelValues<N extends Names> = { [K in keyof N]: string };

export interface FamilyConfig<N extends Names> {
  name: string;
  help: string;
  labelNames?: N;
  registers?: Registry[];
}

/** What prom-client's Registry renders: one sample, its labels and, on a histogram, its series' labels. */
export interface Sample {
  value: number;
  labels: Record<string, string | number>;
  sharedLabels?: Record<string, string>;
  metricName?: string;
  exemplar?: Exemplar | null;
}

/** A family at scrape time, in the shape of prom-client's get(). */
export interface Snapshot {
  name: string;
  help: string;
  type: string;
  values: Sample[];
  aggregator: string;
}

export interface Exemplar {
  labelSet: Record<string, string>;
  value: number;
  timestamp: number;
}

type Node = Map<string, unknown>;

abstract class Family<N extends Names, S> {
  abstract readonly type: 'counter' | 'gauge' | 'histogram';
  readonly name: string;
  readonly help: string;
  readonly labelNames: N;
  readonly aggregator = 'sum';
  /** One Map level per label name, the series at the leaves; unused without labels. */
  #index: Node = new Map();
  /** Every series in creation order, the order prom-client exports them in. */
  protected series: S[] = [];

  constructor(c: FamilyConfig<N>) {
    this.name = c.name;
    this.help = c.help;
    this.labelNames = c.labelNames ?? ([] as unknown as N);
  }

  /** Joins the registries; called by subclasses once their own fields are set. */
  protected register(registers: Registry[] | undefined) {
    this.reset();
    for (const r of registers ?? []) r.registerMetric(this as unknown as Metric);
  }

  protected abstract create(labels: LabelSet<N>): S;

  /** The series of one label set, by its values in labelNames order or as an object. */
  labels(...values: LabelValues<N>): S;
  labels(labels: LabelSet<N>): S;
  labels(...args: LabelValues<N> | [LabelSet<N>]): S {
    const first = args[0];
    if (typeof first === 'object' && first !== null) return this.of(first as LabelSet<N>);
    const names = this.labelNames;
    if (args.length !== names.length) {
      throw new Error(`${this.name}: ${args.length} label values for ${names.length} label names`);
    }
    let node = this.#index;
    const last = names.length - 1;
    if (last < 0) return this.series[0] ?? this.#add(node, '', {} as LabelSet<N>);
    for (let i = 0; i < last; i++) node = this.#branch(node, args[i] as string);
    const leaf = node.get(args[last] as string) as S | undefined;
    if (leaf !== undefined) return leaf;
    const labels = {} as Record<string, string>;
    for (let i = 0; i <= last; i++) labels[names[i]!] = args[i] as string;
    return this.#add(node, args[last] as string, labels as LabelSet<N>);
  }

  /** The series of a label object (prom-client's calling convention). */
  protected of(labels: LabelSet<N> | undefined): S {
    const names = this.labelNames;
    const last = names.length - 1;
    if (last < 0) return this.series[0] ?? this.#add(this.#index, '', {} as LabelSet<N>);
    if (labels === undefined) throw new Error(`${this.name}: labels ${names.join(', ')} are required`);
    let node = this.#index;
    for (let i = 0; i < last; i++) node = this.#branch(node, labels[names[i] as N[number]]);
    const key = labels[names[last] as N[number]];
    const leaf = node.get(key) as S | undefined;
    if (leaf !== undefined) return leaf;
    const own = {} as Record<string, string>;
    for (const n of names) own[n] = labels[n as N[number]];
    return this.#add(node, key, own as LabelSet<N>);
  }

  #branch(node: Node, key: string): Node {
    let next = node.get(key) as Node | undefined;
    if (next === undefined) {
      next = new Map();
      node.set(key, next);
    }
    return next;
  }

  #add(node: Node, key: string, labels: LabelSet<N>): S {
    const s = this.create(labels);
    node.set(key, s);
    this.series.push(s);
    return s;
  }

  /** Drops every series, as prom-client's reset() does. */
  reset() {
    this.#index = new Map();
    this.series = [];
  }

  protected abstract samples(): Sample[];

  protected snapshot(values: Sample[]): Snapshot {
    return { name: this.name, help: this.help, type: this.type, values, aggregator: this.aggregator };
  }

  async get(): Promise<Snapshot> {
    return this.snapshot(this.samples());
  }
}

export class CounterSeries<N extends Names = Names> {
  value = 0;
  readonly labels: LabelSet<N>;
  constructor(labels: LabelSet<N>) {
    this.labels = labels;
  }
  inc(value = 1) {
    if (!(value >= 0 && value < Infinity))
      throw new TypeError(`Counter increment is not a finite number >= 0: ${value}`);
    this.value += value;
  }
}

export class CounterFamily<const N extends Names = []> extends Family<N, CounterSeries<N>> {
  readonly type = 'counter';
  constructor(c: FamilyConfig<N>) {
    super(c);
    this.register(c.registers);
  }
  protected create(labels: LabelSet<N>) {
    return new CounterSeries(labels);
  }
  /** prom-client's signature: inc(labels, value?) or, without labels, inc(value?). */
  inc(labels?: LabelSet<N> | number, value?: number) {
    if (typeof labels === 'number' || labels === undefined) this.of(undefined).inc(labels);
    else this.of(labels).inc(value);
  }
  override reset() {
    super.reset();
    // prom-client exports an unlabelled counter as 0 before its first inc(), and after a reset.
    if (this.labelNames.length === 0) this.of(undefined);
  }
  protected samples(): Sample[] {
    return this.series.map((s) => ({ value: s.value, labels: s.labels }));
  }
}

export class GaugeSeries<N extends Names = Names> {
  value = 0;
  readonly labels: LabelSet<N>;
  constructor(labels: LabelSet<N>) {
    this.labels = labels;
  }
  set(value: number) {
    if (typeof value !== 'number') throw new TypeError(`Gauge value is not a number: ${value}`);
    this.value = value;
  }
  inc(value = 1) {
    this.value += value;
  }
  dec(value = 1) {
    this.value -= value;
  }
  setToCurrentTime() {
    this.value = Date.now() / 1000;
  }
}

export class GaugeFamily<const N extends Names = []> extends Family<N, GaugeSeries<N>> {
  readonly type = 'gauge';
  constructor(c: FamilyConfig<N>) {
    super(c);
    this.register(c.registers);
  }
  protected create(labels: LabelSet<N>) {
    return new GaugeSeries(labels);
  }
  set(labels: LabelSet<N> | number, value?: number) {
    if (typeof labels === 'number') this.of(undefined).set(labels);
    else this.of(labels).set(value as number);
  }
  inc(labels?: LabelSet<N> | number, value?: number) {
    if (typeof labels === 'number' || labels === undefined) this.of(undefined).inc(labels);
    else this.of(labels).inc(value);
  }
  dec(labels?: LabelSet<N> | number, value?: number) {
    if (typeof labels === 'number' || labels === undefined) this.of(undefined).dec(labels);
    else this.of(labels).dec(value);
  }
  setToCurrentTime(labels?: LabelSet<N>) {
    this.of(labels).setToCurrentTime();
  }
  override reset() {
    super.reset();
    if (this.labelNames.length === 0) this.of(undefined);
  }
  protected samples(): Sample[] {
    return this.series.map((s) => ({ value: s.value, labels: s.labels }));
  }
}

export class HistogramSeries<N extends Names = Names> {
  readonly labels: LabelSet<N>;
  /** Observations per bucket, not cumulative; above the last bound only count has them. */
  readonly counts: number[];
  sum = 0;
  count = 0;
  /** Per bucket (the last one +Inf), the latest exemplar; only on families with exemplars. */
  readonly exemplars: (Exemplar | null)[] | undefined;
  readonly #bounds: readonly number[];

  constructor(labels: LabelSet<N>, bounds: readonly number[], exemplars: boolean) {
    this.labels = labels;
    this.#bounds = bounds;
    this.counts = new Array<number>(bounds.length).fill(0);
    this.exemplars = exemplars ? new Array<Exemplar | null>(bounds.length + 1).fill(null) : undefined;
  }

  /** `exemplar` labels (e.g. a trace id) are kept on the bucket when the family has exemplars. */
  observe(value: number, exemplar?: Record<string, string>) {
    if (!Number.isFinite(value)) throw new TypeError(`Value is not a valid number: ${value}`);
    const bounds = this.#bounds;
    let i = 0;
    while (i < bounds.length && value > bounds[i]!) i++;
    if (i < bounds.length) this.counts[i]!++;
    this.sum += value;
    this.count++;
    if (exemplar !== undefined && this.exemplars !== undefined && Object.keys(exemplar).length > 0) {
      this.exemplars[i] = { labelSet: exemplar, value, timestamp: Date.now() / 1000 };
    }
  }
}

export interface HistogramConfig<N extends Names> extends FamilyConfig<N> {
  buckets: readonly number[];
  /** Keep the latest exemplar per bucket (rendered in OpenMetrics only). */
  exemplars?: boolean;
}

export class HistogramFamily<const N extends Names = []> extends Family<N, HistogramSeries<N>> {
  readonly type = 'histogram';
  readonly buckets: readonly number[];
  readonly #exemplars: boolean;
  constructor(c: HistogramConfig<N>) {
    super(c);
    this.buckets = Object.freeze([...c.buckets]);
    this.#exemplars = c.exemplars === true;
    this.register(c.registers);
    // prom-client shows an unlabelled histogram's zero series from the start (not after reset()).
    if (this.labelNames.length === 0) this.of(undefined);
  }
  protected create(labels: LabelSet<N>) {
    return new HistogramSeries(labels, this.buckets, this.#exemplars);
  }
  /** prom-client's signature without exemplars: observe(labels, value) or, without labels, observe(value). */
  observe(labels: LabelSet<N> | number, value?: number) {
    if (typeof labels === 'number') this.of(undefined).observe(labels);
    else this.of(labels).observe(value as number);
  }

  /** The Registry renders these (buckets with `le` first, then the series' labels, as prom-client's). */
  async getForPromString(): Promise<Snapshot> {
    return this.snapshot(this.samples());
  }

  /** As prom-client's get(): each sample's labels with the series' labels merged in. */
  override async get(): Promise<Snapshot> {
    const values = this.samples().map(({ sharedLabels, labels, ...rest }) => ({
      ...rest,
      labels: { ...labels, ...sharedLabels },
    }));
    return this.snapshot(values);
  }

  protected samples(): Sample[] {
    const out: Sample[] = [];
    const bucket = `${this.name}_bucket`;
    const bounds = this.buckets;
    for (const s of this.series) {
      const shared = s.labels;
      let acc = 0;
      for (let i = 0; i < bounds.length; i++) {
        acc += s.counts[i]!;
        const exemplar = s.exemplars?.[i] ?? null;
        out.push({
          labels: { le: bounds[i]! },
          sharedLabels: shared,
          value: acc,
          metricName: bucket,
          exemplar,
        });
      }
      // As prom-client: no +Inf exemplar is undefined on a family with exemplars, null without.
      const inf = s.exemplars ? (s.exemplars[bounds.length] ?? undefined) : null;
      out.push(
        { labels: { le: '+Inf' }, sharedLabels: shared, value: s.count, metricName: bucket, exemplar: inf },
        { labels: {}, sharedLabels: shared, value: s.sum, metricName: `${this.name}_sum` },
        { labels: {}, sharedLabels: shared, value: s.count, metricName: `${this.name}_count` },
      );
    }
    return out;
  }
}
