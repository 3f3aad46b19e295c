// A real Kubernetes control plane for tests (what envtest is to Go operators): etcd and
// kube-apiserver on free loopback ports, with their own PKI and data under one temp dir, plus
// kubectl and helm wired to it. Binaries come from test/cluster/build.sh. No controller-manager,
// scheduler or kubelet runs: Deployments never get pods, and deleted namespaces stay Terminating,
// so tests use fresh namespaces rather than deleting them.
import { type ChildProcess, execFile, execFileSync, spawn, spawnSync } from 'node:child_process';
import { accessSync, closeSync, constants, openSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:https';
import { type AddressInfo, createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);
const here = import.meta.dirname;

export interface Binaries {
  kubeApiserver: string;
  etcd: string;
  kubectl: string;
  helm: string;
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  /** Written to the command's stdin. */
  input?: string;
  /** Kubeconfig to use instead of the admin one (e.g. from mintServiceAccountKubeconfig). */
  kubeconfig?: string;
  /** Killed after this long; default 60 s. */
  timeoutMs?: number;
}

/** What a test process needs to talk to a running control plane (see connect()). */
export interface ClusterClient {
  /** Admin kubeconfig (client certificate in group system:masters), self-contained JSON. */
  kubeconfigPath: string;
  /** https://127.0.0.1:<port> */
  server: string;
  /** PEM of the cluster CA and the admin client certificate, for raw https clients. */
  tls: { ca: string; cert: string; key: string };
  binaries: Binaries;
  kubectl(args: string[], opts?: RunOptions): Promise<RunResult>;
  helm(args: string[], opts?: RunOptions): Promise<RunResult>;
  /** Mints a TokenRequest token for an existing ServiceAccount and writes a kubeconfig that uses it. */
  mintServiceAccountKubeconfig(
    namespace: string,
    name: string,
    opts?: { durationSeconds?: number },
  ): Promise<string>;
}

export interface ControlPlane extends ClusterClient {
  /** Temp dir holding PKI, etcd data, logs and kubeconfigs; removed by stop(). */
  dir: string;
  /** Milliseconds from spawning etcd to a ready API server with the default namespace. */
  startupMs: number;
  stop(): Promise<void>;
}

export interface ControlPlaneOptions {
  /** Extra kube-apiserver flags, appended last so they override the defaults. */
  apiServerFlags?: string[];
  /** Default 120 s (a cold 2-core machine needs ~10 s). */
  startTimeoutMs?: number;
  /** Keep the temp dir (logs, etcd data) after stop(); also KUBERELAY_KEEP_CONTROL_PLANE=1. */
  keepDir?: boolean;
}

/** Paths from bin-paths.sh (cache of build.sh, overridable by KUBE_APISERVER/ETCD/KUBECTL/HELM). */
export function locateBinaries(): Binaries {
  const out = execFileSync('bash', [join(here, 'bin-paths.sh')], { encoding: 'utf8' });
  const vars = new Map<string, string>();
  for (const line of out.split('\n')) {
    const eq = line.indexOf('=');
    if (eq > 0) vars.set(line.slice(0, eq), line.slice(eq + 1));
  }
  const binaries: Binaries = {
    kubeApiserver: vars.get('KUBE_APISERVER') ?? '',
    etcd: vars.get('ETCD') ?? '',
    kubectl: vars.get('KUBECTL') ?? '',
    helm: vars.get('HELM') ?? '',
  };
  const missing = Object.values(binaries).filter((p) => {
    try {
      accessSync(p, constants.X_OK);
      return false;
    } catch {
      return true;
    }
  });
  if (missing.length > 0) {
    throw new Error(
      `control-plane binaries not found: ${missing.join(', ')}. Run test/cluster/build.sh ` +
        '(builds etcd, kube-apiserver, kubectl and helm from Go modules; needs Go >= 1.26).',
    );
  }
  return binaries;
}

function run(bin: string, args: string[], env: NodeJS.ProcessEnv, opts: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(bin, args, { env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
    });
    const timer = setTimeout(() => {
      stderr += `\n[killed after ${opts.timeoutMs ?? 60_000} ms]`;
      child.kill('SIGKILL');
    }, opts.timeoutMs ?? 60_000);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code: code ?? (signal ? 128 : 1), stdout, stderr });
    });
    // The child may exit before reading stdin (EPIPE); its exit code tells what happened.
    child.stdin.on('error', () => {});
    child.stdin.end(opts.input ?? '');
  });
}

interface KubeconfigJson {
  clusters: { cluster: { server: string; 'certificate-authority-data': string } }[];
  users: { user: { 'client-certificate-data'?: string; 'client-key-data'?: string; token?: string } }[];
}

function kubeconfigJson(server: string, caPem: string, user: Record<string, string>, namespace: string) {
  const b64 = (s: string) => Buffer.from(s).toString('base64');
  return `${JSON.stringify(
    {
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'kuberelay-test', cluster: { server, 'certificate-authority-data': b64(caPem) } }],
      users: [{ name: 'user', user }],
      contexts: [{ name: 'kuberelay-test', context: { cluster: 'kuberelay-test', user: 'user', namespace } }],
      'current-context': 'kuberelay-test',
      preferences: {},
    },
    null,
    2,
  )}\n`;
}

/**
 * Client helpers for a control plane started elsewhere (e.g. by the vitest global setup in
 * another process), given its admin kubeconfig.
 */
export function connect(kubeconfigPath: string): ClusterClient {
  const binaries = locateBinaries();
  const dir = dirname(kubeconfigPath);
  const cfg = JSON.parse(readFileSync(kubeconfigPath, 'utf8')) as KubeconfigJson;
  const cluster = cfg.clusters[0]?.cluster;
  const user = cfg.users[0]?.user;
  if (!cluster || !user) throw new Error(`${kubeconfigPath}: not a kubeconfig written by control-plane.ts`);
  const unb64 = (s: string | undefined) => Buffer.from(s ?? '', 'base64').toString('utf8');
  const ca = unb64(cluster['certificate-authority-data']);
  const env = (kubeconfig: string): NodeJS.ProcessEnv => ({
    ...process.env,
    KUBECONFIG: kubeconfig,
    // Per-cluster discovery cache: ports get reused across runs, and a stale cache keyed by
    // host:port would hide CRDs.
    KUBECACHEDIR: join(dir, 'kube-cache'),
    HELM_CACHE_HOME: join(dir, 'helm', 'cache'),
    HELM_CONFIG_HOME: join(dir, 'helm', 'config'),
    HELM_DATA_HOME: join(dir, 'helm', 'data'),
  });
  const kubectl = (args: string[], opts: RunOptions = {}) =>
    run(binaries.kubectl, args, env(opts.kubeconfig ?? kubeconfigPath), opts);
  const helm = (args: string[], opts: RunOptions = {}) =>
    run(binaries.helm, args, env(opts.kubeconfig ?? kubeconfigPath), opts);

  return {
    kubeconfigPath,
    server: cluster.server,
    tls: { ca, cert: unb64(user['client-certificate-data']), key: unb64(user['client-key-data']) },
    binaries,
    kubectl,
    helm,
    async mintServiceAccountKubeconfig(namespace, name, opts = {}) {
      // TokenRequest refuses less than 10 minutes.
      const seconds = opts.durationSeconds ?? 3600;
      const r = await kubectl(['create', 'token', name, '-n', namespace, `--duration=${seconds}s`]);
      if (r.code !== 0) throw new Error(`kubectl create token -n ${namespace} ${name}: ${r.stderr.trim()}`);
      const path = join(dir, 'kubeconfigs', `${namespace}.${name}.${Date.now()}.kubeconfig`);
      await mkdir(dirname(path), { recursive: true });
      await writeFile(path, kubeconfigJson(cluster.server, ca, { token: r.stdout.trim() }, namespace), {
        mode: 0o600,
      });
      return path;
    },
  };
}

async function freeLoopbackPorts(n: number): Promise<number[]> {
  // All listeners are held open together so the ports are distinct; the OS hands out ports
  // in sequence, so reuse by another process between close and bind is unlikely.
  const servers = await Promise.all(
    Array.from(
      { length: n },
      () =>
        new Promise<Server>((resolve, reject) => {
          const s = createServer();
          s.once('error', reject);
          s.listen(0, '127.0.0.1', () => resolve(s));
        }),
    ),
  );
  const ports = servers.map((s) => (s.address() as AddressInfo).port);
  await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
  return ports;
}

async function openssl(args: string[], cwd: string): Promise<void> {
  try {
    await execFileAsync('openssl', args, { cwd });
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`openssl ${args.join(' ')}: ${e.stderr || e.message}`);
  }
}

interface CertSpec {
  name: string;
  subject: Record<string, string>;
  extensions: string[];
  /** Signed by ca.crt/ca.key; self-signed when absent. */
  signedByCa: boolean;
}

async function issue(pki: string, spec: CertSpec): Promise<void> {
  await openssl(
    ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', `${spec.name}.key`],
    pki,
  );
  // Own config so OpenSSL's defaults (v3_ca on every -x509 cert) do not leak into leaf certs.
  const cnf = [
    '[req]',
    'prompt = no',
    'distinguished_name = dn',
    'x509_extensions = ext',
    '[dn]',
    ...Object.entries(spec.subject).map(([k, v]) => `${k} = ${v}`),
    '[ext]',
    ...spec.extensions,
  ].join('\n');
  await writeFile(join(pki, `${spec.name}.cnf`), `${cnf}\n`);
  const ca = spec.signedByCa ? ['-CA', 'ca.crt', '-CAkey', 'ca.key'] : [];
  await openssl(
    ['req', '-x509', '-new', '-config', `${spec.name}.cnf`, '-key', `${spec.name}.key`, '-days', '7']
      .concat(ca)
      .concat(['-out', `${spec.name}.crt`]),
    pki,
  );
}

async function makePki(pki: string): Promise<void> {
  await mkdir(pki, { recursive: true });
  await issue(pki, {
    name: 'ca',
    subject: { CN: 'kuberelay-test-ca' },
    extensions: [
      'basicConstraints = critical, CA:TRUE',
      'keyUsage = critical, keyCertSign, cRLSign, digitalSignature',
      'subjectKeyIdentifier = hash',
    ],
    signedByCa: false,
  });
  const leaf = ['basicConstraints = critical, CA:FALSE', 'keyUsage = critical, digitalSignature'];
  await Promise.all([
    issue(pki, {
      name: 'apiserver',
      subject: { CN: 'kube-apiserver' },
      extensions: [
        ...leaf,
        'extendedKeyUsage = serverAuth',
        // 10.0.0.1 is the `kubernetes` Service IP in --service-cluster-ip-range.
        'subjectAltName = IP:127.0.0.1, IP:10.0.0.1, DNS:localhost, DNS:kubernetes, ' +
          'DNS:kubernetes.default, DNS:kubernetes.default.svc, DNS:kubernetes.default.svc.cluster.local',
      ],
      signedByCa: true,
    }),
    issue(pki, {
      name: 'admin',
      // O=system:masters: the API server grants this group everything, before RBAC.
      subject: { CN: 'kuberelay-test-admin', O: 'system:masters' },
      extensions: [...leaf, 'extendedKeyUsage = clientAuth'],
      signedByCa: true,
    }),
    openssl(
      ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', 'sa.key'],
      pki,
    ).then(() => openssl(['pkey', '-in', 'sa.key', '-pubout', '-out', 'sa.pub'], pki)),
  ]);
}

/** setpriv (util-linux) makes the kernel SIGKILL a child the moment its parent dies. */
const pdeathsigPrefix: string[] =
  spawnSync('setpriv', ['--help'], { stdio: 'ignore' }).status === 0
    ? ['setpriv', '--pdeathsig', 'KILL', '--']
    : [];

interface Managed {
  name: string;
  child: ChildProcess;
  exited: Promise<void>;
  log: string;
}

function startProcess(dir: string, name: string, bin: string, args: string[]): Managed {
  const log = join(dir, `${name}.log`);
  const fd = openSync(log, 'a');
  const argv = [...pdeathsigPrefix, bin, ...args];
  // Output goes to a file: nothing has to drain a pipe, and it survives for failure messages.
  const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', fd, fd] });
  closeSync(fd);
  const exited = new Promise<void>((resolve) => {
    child.once('exit', () => resolve());
    child.once('error', (err) => {
      writeFileSync(log, `spawn failed: ${err.message}\n`, { flag: 'a' });
      resolve();
    });
  });
  // setpriv execs the binary, so this pid is the server's own; the watchdog reads it.
  if (child.pid !== undefined) writeFileSync(join(dir, 'pids', name), String(child.pid));
  return { name, child, exited, log };
}

function isRunning(p: Managed): boolean {
  return p.child.exitCode === null && p.child.signalCode === null && p.child.pid !== undefined;
}

async function terminate(p: Managed, graceMs: number): Promise<void> {
  if (isRunning(p)) {
    p.child.kill('SIGTERM');
    const timer = sleep(graceMs).then(() => {
      if (isRunning(p)) p.child.kill('SIGKILL');
    });
    await Promise.race([p.exited, timer]);
  }
  await p.exited;
  await rm(join(dirname(p.log), 'pids', p.name), { force: true });
}

async function tail(path: string, lines = 40): Promise<string> {
  try {
    return (await readFile(path, 'utf8')).split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

function httpsStatus(
  url: string,
  tls: { ca: string; cert: string; key: string },
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { ...tls, timeout: 5_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (d: string) => {
        body += d;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

async function waitFor(
  what: string,
  deadline: number,
  procs: Managed[],
  check: () => Promise<boolean>,
): Promise<void> {
  let last = '';
  for (;;) {
    const dead = procs.find((p) => !isRunning(p));
    if (dead) {
      throw new Error(`${dead.name} exited while waiting for ${what}; log tail:\n${await tail(dead.log)}`);
    }
    try {
      if (await check()) return;
    } catch (err) {
      last = (err as Error).message;
    }
    if (Date.now() > deadline) {
      const logs = await Promise.all(procs.map(async (p) => `--- ${p.name}:\n${await tail(p.log)}`));
      throw new Error(`timed out waiting for ${what} (${last})\n${logs.join('\n')}`);
    }
    await sleep(200);
  }
}

export async function startControlPlane(opts: ControlPlaneOptions = {}): Promise<ControlPlane> {
  const binaries = locateBinaries();
  const started = Date.now();
  const deadline = started + (opts.startTimeoutMs ?? 120_000);
  const keepDir = opts.keepDir ?? process.env['KUBERELAY_KEEP_CONTROL_PLANE'] === '1';
  const dir = await mkdtemp(join(tmpdir(), 'kuberelay-cp-'));
  await mkdir(join(dir, 'pids'));

  // Reaps everything if this process dies without stop(); detached so it outlives us.
  const watchdog = spawn('sh', [join(here, 'watchdog.sh'), String(process.pid), dir], {
    detached: true,
    stdio: 'ignore',
  });
  watchdog.unref();

  const procs: Managed[] = [];
  // Last resort on process.exit(): kill synchronously; the watchdog then removes the dir.
  const onExit = () => {
    for (const p of procs) if (isRunning(p)) p.child.kill('SIGKILL');
  };
  process.on('exit', onExit);

  let stopping: Promise<void> | undefined;
  const stop = () => {
    stopping ??= (async () => {
      // API server first so it does not spend its shutdown retrying a vanished etcd.
      for (const p of [...procs].reverse()) await terminate(p, 10_000);
      process.off('exit', onExit);
      if (watchdog.exitCode === null) watchdog.kill('SIGKILL');
      if (!keepDir) await rm(dir, { recursive: true, force: true });
    })();
    return stopping;
  };

  try {
    const pki = join(dir, 'pki');
    const [ports] = await Promise.all([freeLoopbackPorts(3), makePki(pki)]);
    const [etcdClient, etcdPeer, apiPort] = ports as [number, number, number];
    const etcdUrl = `http://127.0.0.1:${etcdClient}`;
    const peerUrl = `http://127.0.0.1:${etcdPeer}`;
    // Plain http: etcd listens on loopback only and holds throwaway data.
    procs.push(
      startProcess(dir, 'etcd', binaries.etcd, [
        '--name=kuberelay-test',
        `--data-dir=${join(dir, 'etcd')}`,
        `--listen-client-urls=${etcdUrl}`,
        `--advertise-client-urls=${etcdUrl}`,
        `--listen-peer-urls=${peerUrl}`,
        `--initial-advertise-peer-urls=${peerUrl}`,
        `--initial-cluster=kuberelay-test=${peerUrl}`,
        // Test data need not survive a power cut; fsync is most of etcd's latency on CI disks.
        '--unsafe-no-fsync',
        '--log-level=warn',
      ]),
    );
    await waitFor('etcd /health', deadline, procs, async () => {
      const res = await fetch(`${etcdUrl}/health`);
      return res.ok && ((await res.json()) as { health?: string }).health === 'true';
    });

    const server = `https://127.0.0.1:${apiPort}`;
    procs.push(
      startProcess(dir, 'kube-apiserver', binaries.kubeApiserver, [
        `--etcd-servers=${etcdUrl}`,
        '--bind-address=127.0.0.1',
        '--advertise-address=127.0.0.1',
        `--secure-port=${apiPort}`,
        `--tls-cert-file=${join(pki, 'apiserver.crt')}`,
        `--tls-private-key-file=${join(pki, 'apiserver.key')}`,
        `--client-ca-file=${join(pki, 'ca.crt')}`,
        '--authorization-mode=RBAC',
        // Tokens minted with TokenRequest (`kubectl create token`) are signed with this key.
        '--service-account-issuer=https://kubernetes.default.svc.cluster.local',
        `--service-account-signing-key-file=${join(pki, 'sa.key')}`,
        `--service-account-key-file=${join(pki, 'sa.pub')}`,
        '--service-cluster-ip-range=10.0.0.0/24',
        // The lease reconciler refuses a loopback advertise address; no pod needs the
        // `kubernetes` Service endpoints here.
        '--endpoint-reconciler-type=none',
        // As envtest: no controller-manager creates the `default` ServiceAccount, and this
        // plugin would refuse every Pod that needs one.
        '--disable-admission-plugins=ServiceAccount',
        '--allow-privileged=true',
        '--profiling=false',
        ...(opts.apiServerFlags ?? []),
      ]),
    );

    const kubeconfigPath = join(dir, 'admin.kubeconfig');
    const [ca, cert, key] = await Promise.all(
      ['ca.crt', 'admin.crt', 'admin.key'].map((f) => readFile(join(pki, f), 'utf8')),
    );
    const tls = { ca: ca!, cert: cert!, key: key! };
    await writeFile(
      kubeconfigPath,
      kubeconfigJson(
        server,
        tls.ca,
        {
          'client-certificate-data': Buffer.from(tls.cert).toString('base64'),
          'client-key-data': Buffer.from(tls.key).toString('base64'),
        },
        'default',
      ),
      { mode: 0o600 },
    );
    await waitFor('kube-apiserver /readyz', deadline, procs, async () => {
      const res = await httpsStatus(`${server}/readyz`, tls);
      if (res.status !== 200) throw new Error(`/readyz ${res.status}: ${res.body.slice(0, 500)}`);
      return true;
    });

    const client = connect(kubeconfigPath);
    // The API server's own bootstrap controller normally creates it; make sure either way.
    await waitFor('namespace default', deadline, procs, async () => {
      const r = await client.kubectl(['create', 'namespace', 'default']);
      if (r.code !== 0 && !r.stderr.includes('AlreadyExists')) throw new Error(r.stderr.trim());
      return true;
    });

    return { ...client, dir, startupMs: Date.now() - started, stop };
  } catch (err) {
    // The error already carries the log tails (KUBERELAY_KEEP_CONTROL_PLANE=1 keeps the dir).
    await stop().catch(() => {});
    throw err;
  }
}
