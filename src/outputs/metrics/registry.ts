// Counters, gauges and histograms with labels, rendered in the Prometheus text exposition format 0.0.4.
// Our own rather than prom-client: the format is one page, and prom-client plus its two dependencies cost
// ~6 MB of RSS in a daemon that exports a few dozen series (measured, docs/metrics.md).

export type Labels = Readonly<Record<string, string>>;

/** Series per metric beyond which new label combinations are ignored (labels come from config, not input). */
export const MAX_SERIES = 1000;

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

interface Rendered {
  readonly name: string;
  readonly help: string;
  readonly type: 'counter' | 'gauge' | 'histogram';
  render(): string[];
}

abstract class Family<S> implements Rendered {
  protected readonly series = new Map<string, { labels: Labels; value: S }>();

  constructor(
    readonly name: string,
    readonly help: string,
    readonly labelNames: readonly string[],
  ) {
    if (!NAME.test(name)) throw new Error(`metric name ${name} is not valid in Prometheus`);
    for (const l of labelNames) if (!LABEL.test(l) || l.startsWith('__') || l === 'le') throw new Error(`label ${l} of ${name} is not valid`);
  }

  abstract readonly type: 'counter' | 'gauge' | 'histogram';
  protected abstract initial(): S;
  abstract render(): string[];

  protected at(labels: Labels): { labels: Labels; value: S } | undefined {
    const values = this.labelNames.map((n) => {
      const v = labels[n];
      if (v === undefined) throw new Error(`metric ${this.name} needs label ${n}`);
      return v;
    });
    const key = values.join('\u0000');
    let s = this.series.get(key);
    if (!s) {
      if (this.series.size >= MAX_SERIES) return undefined;
      s = { labels: Object.fromEntries(this.labelNames.map((n, i) => [n, values[i] as string])), value: this.initial() };
      this.series.set(key, s);
    }
    return s;
  }
}

export class Counter extends Family<number> {
  readonly type = 'counter';

  protected initial(): number {
    return 0;
  }

  inc(labels: Labels = {}, by = 1): void {
    if (by < 0) throw new Error(`counter ${this.name} cannot decrease`);
    const s = this.at(labels);
    if (s) s.value += by;
  }

  render(): string[] {
    return [...this.series.values()].map((s) => sample(this.name, s.labels, s.value));
  }
}

export class Gauge extends Family<number> {
  readonly type = 'gauge';

  protected initial(): number {
    return 0;
  }

  set(labels: Labels, value: number): void {
    const s = this.at(labels);
    if (s) s.value = value;
  }

  render(): string[] {
    return [...this.series.values()].map((s) => sample(this.name, s.labels, s.value));
  }
}

interface HistogramState {
  buckets: number[];
  sum: number;
  count: number;
}

export class Histogram extends Family<HistogramState> {
  readonly type = 'histogram';

  constructor(
    name: string,
    help: string,
    labelNames: readonly string[],
    private readonly bounds: readonly number[],
  ) {
    super(name, help, labelNames);
    for (let i = 1; i < bounds.length; i++) {
      if ((bounds[i] as number) <= (bounds[i - 1] as number)) throw new Error(`buckets of ${name} must increase`);
    }
  }

  protected initial(): HistogramState {
    return { buckets: this.bounds.map(() => 0), sum: 0, count: 0 };
  }

  observe(labels: Labels, value: number): void {
    const s = this.at(labels);
    if (!s) return;
    for (let i = 0; i < this.bounds.length; i++) if (value <= (this.bounds[i] as number)) (s.value.buckets[i] as number)++;
    s.value.sum += value;
    s.value.count++;
  }

  render(): string[] {
    const lines: string[] = [];
    for (const { labels, value } of this.series.values()) {
      this.bounds.forEach((b, i) => lines.push(sample(`${this.name}_bucket`, { ...labels, le: formatValue(b) }, value.buckets[i] as number)));
      lines.push(sample(`${this.name}_bucket`, { ...labels, le: '+Inf' }, value.count));
      lines.push(sample(`${this.name}_sum`, labels, value.sum));
      lines.push(sample(`${this.name}_count`, labels, value.count));
    }
    return lines;
  }
}

/** A metric whose samples are read when scraped (RSS, CPU time, queue lengths). */
interface Collected {
  name: string;
  help: string;
  type: 'counter' | 'gauge';
  read: () => Array<[Labels, number]>;
}

export class Registry {
  private readonly families: Array<Rendered | Collected> = [];
  private readonly names = new Set<string>();

  counter(name: string, help: string, labelNames: readonly string[] = []): Counter {
    return this.add(new Counter(name, help, labelNames));
  }

  gauge(name: string, help: string, labelNames: readonly string[] = []): Gauge {
    return this.add(new Gauge(name, help, labelNames));
  }

  histogram(name: string, help: string, labelNames: readonly string[], buckets: readonly number[]): Histogram {
    return this.add(new Histogram(name, help, labelNames, buckets));
  }

  collect(name: string, help: string, type: 'counter' | 'gauge', read: () => Array<[Labels, number]>): void {
    if (!NAME.test(name)) throw new Error(`metric name ${name} is not valid in Prometheus`);
    this.claim(name);
    this.families.push({ name, help, type, read });
  }

  /** The exposition text, one family after another in registration order. */
  expose(): string {
    const out: string[] = [];
    for (const f of this.families) {
      const lines = 'render' in f ? f.render() : f.read().map(([labels, v]) => sample(f.name, labels, v));
      out.push(`# HELP ${f.name} ${f.help.replace(/\\/g, '\\\\').replace(/\n/g, '\\n')}`, `# TYPE ${f.name} ${f.type}`, ...lines);
    }
    return `${out.join('\n')}\n`;
  }

  private add<F extends Rendered>(f: F): F {
    this.claim(f.name);
    this.families.push(f);
    return f;
  }

  private claim(name: string): void {
    if (this.names.has(name)) throw new Error(`metric ${name} registered twice`);
    this.names.add(name);
  }
}

function sample(name: string, labels: Labels, value: number): string {
  const pairs = Object.entries(labels).map(([k, v]) => `${k}="${v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`);
  return `${name}${pairs.length > 0 ? `{${pairs.join(',')}}` : ''} ${formatValue(value)}`;
}

function formatValue(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return String(v);
}
