import { execFile } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { parse, parseAllDocuments, stringify } from 'yaml';
import { type ClusterClient, connect } from '../cluster/control-plane.ts';

/**
 * The chart against a real API server: `helm lint`, and `helm template` with several value sets
 * piped into `kubectl apply --dry-run=server`, which runs every object through the API server's
 * validation and admission — including Pod Security admission at the `restricted` level
 * (namespaces labelled enforce+warn=restricted: a violating pod template is a warning, a
 * violating Pod is refused) and the real prometheus-operator CRD schemas for ServiceMonitor and
 * PrometheusRule. Bad values must be refused by values.schema.json with a message naming the key.
 */

const execFileAsync = promisify(execFile);
const CHART = fileURLToPath(new URL('../../charts/kuberelay', import.meta.url));
const RULES_FILE = fileURLToPath(
  new URL('../../charts/kuberelay/files/prometheus-rules.yaml', import.meta.url),
);
const DASHBOARD = fileURLToPath(
  new URL('../../charts/kuberelay/files/grafana-dashboard.json', import.meta.url),
);
const API_CRDS = fileURLToPath(new URL('../../crds/', import.meta.url));
const PROM_OPERATOR_CRDS = fileURLToPath(new URL('./fixtures/prometheus-operator/', import.meta.url));

interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: {
    name: string;
    namespace?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
  };
  // biome-ignore lint/suspicious/noExplicitAny: manifests are checked field by field below
  spec?: any;
  data?: Record<string, string>;
  stringData?: Record<string, string>;
}

const NS = {
  defaults: 'kr-chart-defaults',
  production: 'kr-chart-production',
  team: 'kr-chart-team',
  monitoring: 'kr-chart-monitoring',
  embedded: 'kr-chart-embedded',
};

/** Value sets; each is rendered into its own namespace. */
const VALUE_SETS: Record<'defaults' | 'production' | 'monitoring' | 'embedded', Record<string, unknown>> = {
  defaults: {},
  // External Redis and PostgreSQL from Secrets, a fleet with autoscaling, two watched namespaces.
  production: {
    image: { tag: '0.1.0-rc.1' },
    relay: {
      replicas: 3,
      autoscaling: { enabled: true, minReplicas: 3, maxReplicas: 12 },
      resources: { requests: { cpu: '1', memory: '256Mi' }, limits: { memory: '1Gi' } },
      service: { type: 'LoadBalancer', port: 443 },
      serviceAccount: { annotations: { 'iam.example.com/role': 'relay' } },
    },
    operator: { watchNamespaces: [NS.production, NS.team] },
    redis: { existingSecret: 'redis', existingSecretKey: 'url' },
    database: { external: { existingSecret: 'postgres' } },
  },
  // ServiceMonitors, PrometheusRule, dashboard, NetworkPolicies, bundled Redis.
  monitoring: {
    relay: { replicas: 2 },
    redis: { bundled: { enabled: true } },
    database: { external: { existingSecret: 'postgres', existingSecretKey: 'DATABASE_URL' } },
    monitoring: {
      serviceMonitor: { enabled: true, labels: { release: 'kube-prometheus-stack' } },
      prometheusRule: { enabled: true, dailyBudgetUSD: 250, disabledAlerts: ['KuberelayHighOverhead'] },
      grafanaDashboard: { enabled: true, annotations: { grafana_folder: 'AI' } },
    },
    networkPolicy: { enabled: true },
  },
  // Embedded PGlite on an existing claim, Redis from a URL, no client auth, a short name.
  embedded: {
    fullnameOverride: 'relay',
    relay: { auth: 'none', adminToken: { existingSecret: 'admin', key: 'token' } },
    redis: { url: 'redis://redis.cache.svc:6379/2' },
    database: { embedded: { persistence: { existingClaim: 'relay-data' } } },
  },
};

describe('Helm chart', () => {
  let k: ClusterClient;
  let dir: string;

  const valuesFile = async (name: string, values: Record<string, unknown>) => {
    const path = join(dir, `${name}.values.yaml`);
    await writeFile(path, stringify(values));
    return path;
  };
  const template = async (values: Record<string, unknown>, namespace: string, extra: string[] = []) =>
    k.helm([
      'template',
      'kr',
      CHART,
      '--namespace',
      namespace,
      '-f',
      await valuesFile(`${namespace}-${Date.now()}`, values),
      ...extra,
    ]);
  const render = async (set: keyof typeof VALUE_SETS) => {
    const r = await template(VALUE_SETS[set], NS[set], ['--include-crds']);
    expect(r.code, r.stderr).toBe(0);
    const objects = parseAllDocuments(r.stdout)
      .map((d) => d.toJS() as K8sObject | null)
      .filter((o): o is K8sObject => o !== null);
    return { yaml: r.stdout, objects };
  };
  const find = (objects: K8sObject[], kind: string, name: string) => {
    const o = objects.find((x) => x.kind === kind && x.metadata.name === name);
    expect(o, `${kind}/${name} rendered`).toBeDefined();
    return o!;
  };
  const container = (d: K8sObject, name: string) =>
    // biome-ignore lint/suspicious/noExplicitAny: see K8sObject
    d.spec.template.spec.containers.find((c: any) => c.name === name);
  const env = (c: { env: { name: string; value?: string; valueFrom?: unknown }[] }, name: string) =>
    c.env.find((e) => e.name === name);

  beforeAll(async () => {
    k = connect(inject('kubeconfig'));
    dir = await mkdtemp(join(tmpdir(), 'kuberelay-chart-'));
    const crds = await k.kubectl(['apply', '--server-side', '-f', PROM_OPERATOR_CRDS]);
    expect(crds.code, crds.stderr).toBe(0);
    for (const crd of ['servicemonitors.monitoring.coreos.com', 'prometheusrules.monitoring.coreos.com']) {
      const r = await k.kubectl(['wait', '--for=condition=Established', `crd/${crd}`, '--timeout=60s']);
      expect(r.code, r.stderr).toBe(0);
    }
    for (const ns of Object.values(NS)) {
      const r = await k.kubectl(['create', 'namespace', ns]);
      expect(r.code === 0 || r.stderr.includes('AlreadyExists'), r.stderr).toBe(true);
      const l = await k.kubectl([
        'label',
        '--overwrite',
        'namespace',
        ns,
        'pod-security.kubernetes.io/enforce=restricted',
        'pod-security.kubernetes.io/warn=restricted',
      ]);
      expect(l.code, l.stderr).toBe(0);
    }
  });

  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("ships the API's CRDs from their one home, crds/: rendered and packaged as they are", async () => {
    const files = (await readdir(API_CRDS)).filter((f) => f.endsWith('.yaml')).sort();
    expect(files.length).toBeGreaterThan(0);
    const rendered = await template({}, NS.defaults, ['--include-crds']);
    expect(rendered.code, rendered.stderr).toBe(0);
    const pkg = join(dir, 'package');
    const packaged = await k.helm(['package', CHART, '--destination', pkg]);
    expect(packaged.code, packaged.stderr).toBe(0);
    const [archive] = (await readdir(pkg)).filter((f) => f.endsWith('.tgz'));
    await execFileAsync('tar', ['-xzf', join(pkg, archive!), '-C', pkg]);
    expect((await readdir(join(pkg, 'kuberelay', 'crds'))).sort()).toEqual(files);
    for (const f of files) {
      const text = await readFile(join(API_CRDS, f), 'utf8');
      expect(rendered.stdout, `helm template --include-crds renders crds/${f}`).toContain(
        `# Source: kuberelay/crds/${f}\n${text}`,
      );
      expect(await readFile(join(pkg, 'kuberelay', 'crds', f), 'utf8'), `packaged crds/${f}`).toBe(text);
    }
  });

  it('passes helm lint with the defaults and with every value set', async () => {
    const plain = await k.helm(['lint', '--strict', CHART]);
    expect(plain.code, plain.stdout + plain.stderr).toBe(0);
    for (const [name, values] of Object.entries(VALUE_SETS)) {
      const r = await k.helm(['lint', '--strict', CHART, '-f', await valuesFile(`lint-${name}`, values)]);
      expect(r.code, `${name}: ${r.stdout}${r.stderr}`).toBe(0);
    }
  });

  for (const set of Object.keys(VALUE_SETS) as (keyof typeof VALUE_SETS)[]) {
    it(`value set "${set}": the API server accepts every rendered object (dry run, restricted Pod Security)`, async () => {
      const { yaml, objects } = await render(set);
      expect(objects.length).toBeGreaterThan(10);
      const r = await k.kubectl(['apply', '--dry-run=server', '-f', '-'], { input: yaml });
      expect(r.code, r.stderr).toBe(0);
      // A pod template below `restricted` is only a warning on Deployments and Jobs. (Other
      // warnings, e.g. about CRDs another test created server-side, are not this test's concern.)
      expect(r.stderr).not.toMatch(/would violate PodSecurity/);
      for (const o of objects) {
        const name = `${o.kind.toLowerCase()}(\\.[a-z0-9.]+)?/${o.metadata.name.replaceAll('.', '\\.')}`;
        expect(r.stdout, `${o.kind}/${o.metadata.name}`).toMatch(
          new RegExp(`^${name} (created|configured|unchanged) \\(server dry run\\)$`, 'm'),
        );
      }
    });
  }

  it('defaults: one relay on embedded PGlite (PVC, Recreate, fixed hostname), two operators, the bundled Redis', async () => {
    const { objects } = await render('defaults');
    const relay = find(objects, 'Deployment', 'kr-kuberelay-relay');
    expect(relay.spec.replicas).toBe(1);
    expect(relay.spec.strategy.type).toBe('Recreate');
    expect(relay.spec.template.spec.hostname).toBe('kr-kuberelay-relay');
    expect(relay.spec.template.spec.serviceAccountName).toBe('kr-kuberelay-relay');
    const c = container(relay, 'relay');
    expect(c.args).toEqual([
      'relay',
      '--config-secret',
      `${NS.defaults}/kuberelay-relay-config`,
      '--config',
      '/etc/kuberelay/config/config.json',
    ]);
    // The bundled Redis: relays report through it, so Channels get Programmed and Healthy.
    expect(env(c, 'REDIS_URL')?.value).toBe('redis://kr-kuberelay-redis:6379');
    expect(find(objects, 'Deployment', 'kr-kuberelay-redis').spec.replicas).toBe(1);
    expect(find(objects, 'Service', 'kr-kuberelay-redis').spec.ports[0].port).toBe(6379);
    expect(env(c, 'DATABASE_URL')).toBeUndefined();
    expect(env(c, 'KUBERELAY_DATA_DIR')?.value).toBe('/data');
    expect(env(c, 'KUBERELAY_AUTH')?.value).toBe('keys');
    expect(env(c, 'ADMIN_TOKEN')?.valueFrom).toEqual({
      secretKeyRef: { name: 'kr-kuberelay-admin', key: 'admin-token' },
    });
    // The relay defaults to a loopback admin API on a free port: the pod sets where its Service points.
    expect(env(c, 'ADMIN_PORT')?.value).toBe('8081');
    expect(env(c, 'ADMIN_HOST')?.value).toBe('0.0.0.0');
    expect(c.ports).toContainEqual({ name: 'admin', containerPort: 8081, protocol: 'TCP' });
    expect(env(c, 'KUBERELAY_METRICS_LISTENER')).toBeUndefined();
    expect(c.readinessProbe.httpGet).toEqual({ path: '/readyz', port: 'http' });
    expect(c.livenessProbe.httpGet).toEqual({ path: '/healthz', port: 'http' });
    expect(c.securityContext).toMatchObject({
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      runAsNonRoot: true,
      capabilities: { drop: ['ALL'] },
      seccompProfile: { type: 'RuntimeDefault' },
    });
    // biome-ignore lint/suspicious/noExplicitAny: volumes
    const volumes = Object.fromEntries(relay.spec.template.spec.volumes.map((v: any) => [v.name, v]));
    expect(volumes.config.secret).toEqual({ secretName: 'kuberelay-relay-config', optional: true });
    expect(volumes.data.persistentVolumeClaim).toEqual({ claimName: 'kr-kuberelay-data' });
    const pvc = find(objects, 'PersistentVolumeClaim', 'kr-kuberelay-data');
    expect(pvc.metadata.annotations?.['helm.sh/resource-policy']).toBe('keep');
    // One relay: no HPA, no relay PDB.
    expect(objects.filter((o) => o.kind === 'HorizontalPodAutoscaler')).toEqual([]);
    expect(
      objects.find((o) => o.kind === 'PodDisruptionBudget' && o.metadata.name === 'kr-kuberelay-relay'),
    ).toBe(undefined);
    expect(objects.find((o) => o.kind === 'Job')).toBeUndefined();

    const operator = find(objects, 'Deployment', 'kr-kuberelay-operator');
    expect(operator.spec.replicas).toBe(2);
    const oc = container(operator, 'operator');
    expect(oc.args).toEqual([
      'operator',
      '--config-secret',
      `${NS.defaults}/kuberelay-relay-config`,
      '--lease-name',
      'kuberelay-operator',
    ]);
    expect(env(oc, 'POD_NAMESPACE')?.valueFrom).toEqual({ fieldRef: { fieldPath: 'metadata.namespace' } });
    expect(env(oc, 'WATCH_NAMESPACES')?.value).toBe(NS.defaults);
    expect(env(oc, 'REDIS_URL')?.value).toBe('redis://kr-kuberelay-redis:6379');
    expect(find(objects, 'PodDisruptionBudget', 'kr-kuberelay-operator').spec.minAvailable).toBe(1);

    // The admin API has its own ClusterIP Service; the public one serves the API and /metrics.
    const admin = find(objects, 'Service', 'kr-kuberelay-relay-admin');
    expect(admin.spec.type).toBe('ClusterIP');
    expect(admin.spec.ports).toEqual([{ name: 'admin', port: 8081, targetPort: 'admin', protocol: 'TCP' }]);
    const pub = find(objects, 'Service', 'kr-kuberelay-relay');
    expect(pub.spec.ports).toEqual([{ name: 'http', port: 80, targetPort: 'http', protocol: 'TCP' }]);

    // Every Service selects the pods of some Deployment, by a port those pods name.
    for (const svc of objects.filter((o) => o.kind === 'Service')) {
      const target = objects.find(
        (d) =>
          d.kind === 'Deployment' &&
          Object.entries(svc.spec.selector).every(([key, v]) => d.spec.template.metadata.labels[key] === v),
      );
      expect(target, `pods of Service ${svc.metadata.name}`).toBeDefined();
      const named = (target!.spec.template.spec.containers as { ports: { name: string }[] }[]).flatMap((c) =>
        c.ports.map((p) => p.name),
      );
      for (const p of svc.spec.ports)
        expect(named, `${svc.metadata.name}:${p.targetPort}`).toContain(p.targetPort);
    }
    // The helm test pod asks the public Service for /readyz.
    const test = find(objects, 'Pod', 'kr-kuberelay-test-readyz');
    expect(test.metadata.annotations?.['helm.sh/hook']).toBe('test');
    expect(test.spec.containers[0].env).toContainEqual({
      name: 'READYZ_URL',
      value: `http://kr-kuberelay-relay.${NS.defaults}.svc:80/readyz`,
    });
  });

  it('production: PostgreSQL and Redis from Secrets, HPA, PDB, topology spread, a migration hook Job', async () => {
    const { objects } = await render('production');
    const relay = find(objects, 'Deployment', 'kr-kuberelay-relay');
    expect(relay.spec.replicas).toBeUndefined();
    expect(relay.spec.strategy).toEqual({
      type: 'RollingUpdate',
      rollingUpdate: { maxSurge: '25%', maxUnavailable: 0 },
    });
    expect(relay.spec.template.spec.hostname).toBeUndefined();
    expect(
      relay.spec.template.spec.topologySpreadConstraints.map((t: { topologyKey: string }) => t.topologyKey),
    ).toEqual(['topology.kubernetes.io/zone', 'kubernetes.io/hostname']);
    const c = container(relay, 'relay');
    expect(c.image).toBe('ghcr.io/kuberelay/kuberelay:0.1.0-rc.1');
    expect(env(c, 'REDIS_URL')?.valueFrom).toEqual({ secretKeyRef: { name: 'redis', key: 'url' } });
    // A Redis of one's own replaces the bundled one.
    expect(objects.filter((o) => o.metadata.name === 'kr-kuberelay-redis')).toEqual([]);
    expect(env(c, 'DATABASE_URL')?.valueFrom).toEqual({
      secretKeyRef: { name: 'postgres', key: 'database-url' },
    });
    // biome-ignore lint/suspicious/noExplicitAny: volumes
    expect(relay.spec.template.spec.volumes.find((v: any) => v.name === 'data').emptyDir).toBeDefined();
    expect(objects.find((o) => o.kind === 'PersistentVolumeClaim')).toBeUndefined();
    const hpa = find(objects, 'HorizontalPodAutoscaler', 'kr-kuberelay-relay');
    expect(hpa.spec).toMatchObject({
      minReplicas: 3,
      maxReplicas: 12,
      scaleTargetRef: { name: 'kr-kuberelay-relay' },
    });
    expect(find(objects, 'PodDisruptionBudget', 'kr-kuberelay-relay').spec.maxUnavailable).toBe(1);
    expect(find(objects, 'Service', 'kr-kuberelay-relay').spec.type).toBe('LoadBalancer');

    const job = find(objects, 'Job', 'kr-kuberelay-migrate');
    expect(job.metadata.annotations).toMatchObject({
      'helm.sh/hook': 'pre-install,pre-upgrade',
      'helm.sh/hook-delete-policy': 'before-hook-creation,hook-succeeded',
    });
    const pod = job.spec.template.spec;
    expect(pod.initContainers[0].name).toBe('wait-for-database');
    expect(pod.containers[0].args).toEqual(['migrate']);
    for (const ctr of [pod.initContainers[0], pod.containers[0]]) {
      expect(env(ctr, 'DATABASE_URL')?.valueFrom).toEqual({
        secretKeyRef: { name: 'postgres', key: 'database-url' },
      });
    }

    // The operator watches both namespaces, with a Role in each and none cluster-wide.
    const oc = container(find(objects, 'Deployment', 'kr-kuberelay-operator'), 'operator');
    expect(env(oc, 'WATCH_NAMESPACES')?.value).toBe(`${NS.production},${NS.team}`);
    expect(env(oc, 'REDIS_URL')?.valueFrom).toEqual({ secretKeyRef: { name: 'redis', key: 'url' } });
    const watchRoles = objects.filter(
      (o) => o.kind === 'Role' && o.metadata.name === 'kr-kuberelay-operator-watch',
    );
    expect(watchRoles.map((r) => r.metadata.namespace).sort()).toEqual([NS.production, NS.team].sort());
    expect(
      objects.filter((o) => o.kind.startsWith('Cluster') && o.kind !== 'CustomResourceDefinition'),
    ).toEqual([]);
    expect(find(objects, 'ServiceAccount', 'kr-kuberelay-relay').metadata.annotations).toEqual({
      'iam.example.com/role': 'relay',
    });
  });

  it('monitoring: ServiceMonitors select the Services, the PrometheusRule carries the budget, the dashboard is labelled for the sidecar', async () => {
    const { objects } = await render('monitoring');
    const services = objects.filter((o) => o.kind === 'Service');
    for (const [sm, port] of [
      ['kr-kuberelay-relay', 'http'],
      ['kr-kuberelay-operator', 'metrics'],
    ] as const) {
      const monitor = find(objects, 'ServiceMonitor', sm);
      expect(monitor.metadata.labels?.release).toBe('kube-prometheus-stack');
      const selected = services.filter((s) =>
        Object.entries(monitor.spec.selector.matchLabels).every(([key, v]) => s.metadata.labels?.[key] === v),
      );
      // Exactly one Service: the admin Service must never be scraped.
      expect(
        selected.map((s) => s.metadata.name),
        sm,
      ).toHaveLength(1);
      expect(selected[0]!.spec.ports.map((p: { name: string }) => p.name)).toContain(port);
      expect(monitor.spec.endpoints[0]).toMatchObject({ port, path: '/metrics' });
    }

    const rule = find(objects, 'PrometheusRule', 'kr-kuberelay');
    const file = parse(await readFile(RULES_FILE, 'utf8')) as {
      groups: { name: string; rules: { alert?: string; record?: string; expr: string }[] }[];
    };
    const rendered = rule.spec.groups as typeof file.groups;
    const alerts = (g: typeof file.groups) => g.flatMap((x) => x.rules.map((r) => r.alert)).filter(Boolean);
    expect(alerts(rendered)).toEqual(alerts(file.groups).filter((a) => a !== 'KuberelayHighOverhead'));
    const budget = rendered.flatMap((g) => g.rules).find((r) => r.record === 'kuberelay:budget_usd:daily');
    expect(budget?.expr).toBe('vector(250)');
    // The rendered groups are a valid rules file.
    const rulesPath = join(dir, 'rendered-rules.yaml');
    await writeFile(rulesPath, stringify({ groups: rendered }));
    const { stdout } = await execFileAsync('promtool', ['check', 'rules', rulesPath]);
    expect(stdout).toMatch(/SUCCESS: 13 rules found/);

    const dashboard = find(objects, 'ConfigMap', 'kr-kuberelay-dashboard');
    expect(dashboard.metadata.labels?.grafana_dashboard).toBe('1');
    expect(dashboard.metadata.annotations?.grafana_folder).toBe('AI');
    expect(JSON.parse(dashboard.data!['kuberelay.json']!)).toEqual(
      JSON.parse(await readFile(DASHBOARD, 'utf8')),
    );

    // NetworkPolicies: the admin port only from labelled clients; bundled Redis only from kuberelay.
    const relayPolicy = find(objects, 'NetworkPolicy', 'kr-kuberelay-relay');
    expect(relayPolicy.spec.ingress).toEqual([
      { ports: [{ port: 'http', protocol: 'TCP' }] },
      {
        ports: [{ port: 'admin', protocol: 'TCP' }],
        from: [{ podSelector: { matchLabels: { 'kuberelay.io/admin-client': 'true' } } }],
      },
    ]);
    const redisPolicy = find(objects, 'NetworkPolicy', 'kr-kuberelay-redis');
    expect(redisPolicy.spec.ingress[0].from).toHaveLength(2);
    const redis = find(objects, 'Deployment', 'kr-kuberelay-redis');
    expect(redis.spec.replicas).toBe(1);
    const rc = container(find(objects, 'Deployment', 'kr-kuberelay-relay'), 'relay');
    expect(env(rc, 'REDIS_URL')?.value).toBe('redis://kr-kuberelay-redis:6379');
  });

  it('metricsOnAdminPort: /metrics moves to the admin port, the ServiceMonitor and NetworkPolicy follow', async () => {
    const prometheus = [
      { namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'monitoring' } } },
    ];
    const r = await template(
      {
        ...VALUE_SETS.monitoring,
        relay: { replicas: 2, metricsOnAdminPort: true },
        networkPolicy: { enabled: true, metricsFrom: prometheus },
      },
      NS.monitoring,
    );
    expect(r.code, r.stderr).toBe(0);
    const objects = parseAllDocuments(r.stdout)
      .map((d) => d.toJS() as K8sObject | null)
      .filter((o): o is K8sObject => o !== null);
    const c = container(find(objects, 'Deployment', 'kr-kuberelay-relay'), 'relay');
    expect(env(c, 'KUBERELAY_METRICS_LISTENER')?.value).toBe('admin');
    expect(c.readinessProbe.httpGet).toEqual({ path: '/readyz', port: 'http' });
    const monitor = find(objects, 'ServiceMonitor', 'kr-kuberelay-relay');
    const selected = objects.filter(
      (o) =>
        o.kind === 'Service' &&
        Object.entries(monitor.spec.selector.matchLabels).every(([key, v]) => o.metadata.labels?.[key] === v),
    );
    expect(selected.map((s) => s.metadata.name)).toEqual(['kr-kuberelay-relay-admin']);
    expect(monitor.spec.endpoints[0]).toMatchObject({ port: 'admin', path: '/metrics' });
    expect(find(objects, 'NetworkPolicy', 'kr-kuberelay-relay').spec.ingress).toContainEqual({
      ports: [{ port: 'admin', protocol: 'TCP' }],
      from: prometheus,
    });
  });

  it('embedded: existing claim, Redis URL in a chart Secret, auth off, fullnameOverride', async () => {
    const { objects } = await render('embedded');
    const relay = find(objects, 'Deployment', 'relay-relay');
    // biome-ignore lint/suspicious/noExplicitAny: volumes
    const data = relay.spec.template.spec.volumes.find((v: any) => v.name === 'data');
    expect(data.persistentVolumeClaim).toEqual({ claimName: 'relay-data' });
    expect(objects.find((o) => o.kind === 'PersistentVolumeClaim')).toBeUndefined();
    const c = container(relay, 'relay');
    expect(env(c, 'KUBERELAY_AUTH')?.value).toBe('none');
    expect(env(c, 'REDIS_URL')?.valueFrom).toEqual({
      secretKeyRef: { name: 'relay-redis-url', key: 'redis-url' },
    });
    expect(find(objects, 'Secret', 'relay-redis-url').stringData).toEqual({
      'redis-url': 'redis://redis.cache.svc:6379/2',
    });
    expect(objects.filter((o) => o.metadata.name === 'relay-redis')).toEqual([]);
    expect(env(c, 'ADMIN_TOKEN')?.valueFrom).toEqual({ secretKeyRef: { name: 'admin', key: 'token' } });
    expect(objects.find((o) => o.kind === 'Secret' && o.metadata.name === 'relay-admin')).toBeUndefined();
    // The names the e2e operator test relies on follow fullnameOverride.
    find(objects, 'ServiceAccount', 'relay-operator');
    find(objects, 'ServiceAccount', 'relay-relay');
  });

  it('the relay Role reads exactly the config Secret; the operator writes only its Secret and Lease', async () => {
    const { objects } = await render('defaults');
    const relayRole = find(objects, 'Role', 'kr-kuberelay-relay');
    expect(relayRole.spec).toBeUndefined();
    // biome-ignore lint/suspicious/noExplicitAny: rules
    expect((relayRole as any).rules).toEqual([
      {
        apiGroups: [''],
        resources: ['secrets'],
        resourceNames: ['kuberelay-relay-config'],
        verbs: ['get', 'list', 'watch'],
      },
    ]);
    // biome-ignore lint/suspicious/noExplicitAny: rules
    const opRules = (find(objects, 'Role', 'kr-kuberelay-operator') as any).rules as {
      resources: string[];
      resourceNames?: string[];
      verbs: string[];
    }[];
    for (const r of opRules) {
      if (r.verbs.some((v) => v !== 'create')) expect(r.resourceNames?.length, JSON.stringify(r)).toBe(1);
    }
  });

  const REFUSED: [string, Record<string, unknown>, RegExp][] = [
    [
      'two relays on embedded PGlite',
      { relay: { replicas: 2 }, redis: { url: 'redis://r:6379' } },
      /\/relay\/replicas'.*embedded PGlite storage is single-process/,
    ],
    [
      'autoscaling on embedded PGlite',
      { relay: { autoscaling: { enabled: true } }, redis: { url: 'redis://r:6379' } },
      /\/relay\/autoscaling\/enabled'.*embedded PGlite storage is single-process/,
    ],
    [
      'a fleet without Redis',
      {
        relay: { replicas: 3 },
        redis: { bundled: { enabled: false } },
        database: { external: { existingSecret: 'pg' } },
      },
      /\/relay\/replicas'.*without Redis every relay keeps limits/,
    ],
    [
      'two Redis sources',
      { redis: { url: 'redis://a:6379', existingSecret: 'redis' } },
      /\/redis\/existingSecret'.*at most one of redis.url and redis.existingSecret/,
    ],
    [
      'a Redis URL that is not redis://',
      { redis: { url: 'http://redis:6379' } },
      /\/redis\/url'.*does not match pattern/,
    ],
    [
      'an unknown auth mode',
      { relay: { auth: 'open' } },
      /\/relay\/auth'.*value must be one of 'keys', 'none'/,
    ],
    ['a misspelt key', { relay: { replicsa: 2 } }, /\/relay'.*additional properties 'replicsa' not allowed/],
    [
      '/metrics on the admin port of a relay that runs no admin API',
      { relay: { auth: 'none', metricsOnAdminPort: true } },
      /\/relay\/metricsOnAdminPort'.*runs no admin API/,
    ],
    [
      'all namespaces (needs cluster-wide Secret access)',
      { operator: { watchNamespaces: ['*'] } },
      /\/operator\/watchNamespaces\/0'.*does not match pattern/,
    ],
    ['an unquoted numeric image tag', { image: { tag: 1.2 } }, /\/image\/tag'.*got number, want string/],
    [
      'a negative budget',
      { monitoring: { prometheusRule: { dailyBudgetUSD: -5 } } },
      /\/monitoring\/prometheusRule\/dailyBudgetUSD'.*minimum/,
    ],
    ['a bad log level', { operator: { logLevel: 'verbose' } }, /\/operator\/logLevel'.*value must be one of/],
    [
      'a bad scrape interval',
      { monitoring: { serviceMonitor: { interval: '30 seconds' } } },
      /interval'.*pattern/,
    ],
    [
      'minReplicas above maxReplicas',
      {
        relay: { autoscaling: { enabled: true, minReplicas: 5, maxReplicas: 2 } },
        redis: { url: 'redis://r:6379' },
        database: { external: { existingSecret: 'pg' } },
      },
      /relay.autoscaling.minReplicas \(5\) must not exceed relay.autoscaling.maxReplicas \(2\)/,
    ],
  ];
  for (const [what, values, message] of REFUSED) {
    it(`refuses ${what} with a message naming the key`, async () => {
      const r = await template(values, NS.defaults);
      expect(r.code, r.stdout).not.toBe(0);
      expect(r.stderr.replaceAll('\n', ' ')).toMatch(message);
    });
  }
});
