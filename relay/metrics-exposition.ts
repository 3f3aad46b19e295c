import { type OpenMetricsContentType, Registry } from 'prom-client';

/**
 * GET /metrics in the format the scraper asks for: OpenMetrics 1.0 (the format that carries
 * exemplars, which link a latency bucket to its trace) when its Accept header prefers it, as
 * Prometheus does; Prometheus text 0.0.4 otherwise (curl, promtool, older scrapers).
 *
 * One registry serves both: prom-client renders a registry in one format only, and switching it
 * would rename its counters in place (OpenMetrics strips `_total` from the family name), so the
 * OpenMetrics text is rendered by a second, empty registry of that type from views of the metrics
 * that carry the family name it wants.
 */

export const PROMETHEUS_TEXT = Registry.PROMETHEUS_CONTENT_TYPE;
export const OPENMETRICS_TEXT = Registry.OPENMETRICS_CONTENT_TYPE;

/** What prom-client's registries hold and render (its JS API; the typings leave it out). */
interface Source {
  type?: string;
  get(): Promise<{ name: string }>;
  getForPromString?(): Promise<{ name: string }>;
}
interface Renderer {
  getMetricsAsString(m: Source): Promise<string>;
}

const openMetrics = new Registry<OpenMetricsContentType>();
openMetrics.setContentType(Registry.OPENMETRICS_CONTENT_TYPE);
const render = openMetrics as unknown as Renderer;

/** Which format an Accept header prefers: OpenMetrics only when its q is above zero and not below text/plain's. */
export function prefersOpenMetrics(accept: string | undefined): boolean {
  if (!accept) return false;
  let om = 0;
  let text = 0;
  for (const range of accept.split(',')) {
    const [type = '', ...params] = range.split(';').map((s) => s.trim().toLowerCase());
    const qp = params.find((p) => p.startsWith('q='));
    const q = qp === undefined ? 1 : Number(qp.slice(2));
    if (!Number.isFinite(q)) continue;
    if (type === 'application/openmetrics-text') om = Math.max(om, q);
    else if (type === 'text/plain' || type === 'text/*' || type === '*/*') text = Math.max(text, q);
  }
  return om > 0 && om >= text;
}

export async function exposition(
  registry: Registry,
  accept: string | undefined,
): Promise<{ contentType: string; body: string }> {
  if (!prefersOpenMetrics(accept)) return { contentType: PROMETHEUS_TEXT, body: await registry.metrics() };
  const families = await Promise.all(
    (registry.getMetricsAsArray() as unknown as Source[]).map((m) =>
      render.getMetricsAsString(familyView(m)),
    ),
  );
  return { contentType: OPENMETRICS_TEXT, body: `${families.join('\n')}\n# EOF\n` };
}

/** A counter as OpenMetrics names it: the family without `_total`, its sample with it. */
function familyView(m: Source): Source {
  if (m.type !== 'counter') return m;
  return {
    get: async () => {
      const data = await m.get();
      return { ...data, name: data.name.replace(/_total$/, '') };
    },
  };
}
