import { describe, expect, it } from 'vitest';
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { parse, parseAllDocuments, stringify } from 'yaml';
import { Deployment, StatefulSet } from 'kubernetes-models/apps/v1';
import { ConfigMap, Service } from 'kubernetes-models/v1';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1';
import { NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1';
import { loadConfig } from '../../src/config/load.ts';
import { StatusStream } from '../../src/core/status.ts';
import { createMetrics } from '../../src/ops/metrics.ts';
import { isObj, podSpecOf, readYamlDocs, render, type Obj, type Resource } from './kustomize.ts';
import { findPromtool, promtool, PROMTOOL_MISSING } from './promtool.ts';
import { FakeSources, HEALTH } from './fake-sources.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
const OVERLAYS = ['development', 'staging', 'production'] as const;
const PRE_STOP_SECONDS = 5;

const rendered = new Map(OVERLAYS.map((env) => [env, render(path.join(ROOT, 'k8s/overlays', env))]));

function get(env: (typeof OVERLAYS)[number], kind: string, name?: string): Resource {
  const r = rendered.get(env)!.find((x) => x.kind === kind && (name === undefined || x.metadata.name === name));
  if (r === undefined) throw new Error(`${env}: no ${kind} ${name ?? ''}`);
  return r;
}

interface Container extends Obj {
  name: string;
  env?: Array<{ name: string; value?: string; valueFrom?: Obj }>;
  envFrom?: Array<{ configMapRef?: { name: string } }>;
  ports: Array<{ name: string; containerPort: number }>;
  resources: { requests?: Record<string, string>; limits?: Record<string, string> };
  securityContext: Obj & { capabilities?: { drop?: string[]; add?: string[] } };
  readinessProbe: { httpGet: { path: string; port: string }; failureThreshold: number };
  livenessProbe: { httpGet: { path: string; port: string }; failureThreshold: number };
  startupProbe: { httpGet: { path: string; port: string } };
  lifecycle: { preStop: { sleep: { seconds: number } } };
}

function container(env: (typeof OVERLAYS)[number]): Container {
  const containers = podSpecOf(get(env, 'Deployment')).containers as Container[];
  expect(containers).toHaveLength(1);
  return containers[0]!;
}

function configData(env: (typeof OVERLAYS)[number]): Record<string, string> {
  return get(env, 'ConfigMap').data as Record<string, string>;
}

/** The label a relay consumer's pod (same namespace) or namespace (any other) carries; docs/runbook.md explains it. */
const CLIENT_LABEL = 'kline-connector/client';

/**
 * The CONNECTOR_* environment the pod starts with: the ConfigMap, plus CONNECTOR_RELAY_TOKEN when the
 * container takes it from a Secret (a placeholder value here: the Secret is created by the operator).
 */
function podEnv(env: (typeof OVERLAYS)[number]): Record<string, string> {
  const fromSecret = container(env).env?.some((e) => e.name === 'CONNECTOR_RELAY_TOKEN' && isObj(e.valueFrom?.secretKeyRef)) ?? false;
  return { ...configData(env), ...(fromSecret ? { CONNECTOR_RELAY_TOKEN: 'from-the-secret' } : {}) };
}

function mebibytes(q: string): number {
  const m = /^(\d+)(Mi|Gi)$/.exec(q);
  if (m === null) throw new Error(`unexpected memory quantity ${q}`);
  return Number(m[1]) * (m[2] === 'Gi' ? 1024 : 1);
}

function kubectlAvailable(): boolean {
  return spawnSync('kubectl', ['version', '--client'], { stdio: 'ignore' }).status === 0;
}

/** GitHub's heading anchors: lower-case, punctuation dropped, spaces to dashes. */
function anchors(markdown: string): Set<string> {
  const out = new Set<string>();
  for (const m of markdown.matchAll(/^#{1,6} (.+)$/gm))
    out.add(
      m[1]!
        .trim()
        .toLowerCase()
        .replace(/[^\w\- ]/g, '')
        .replace(/ /g, '-'),
    );
  return out;
}

describe.each(OVERLAYS)('k8s overlay %s', (env) => {
  it('renders the same manifests as kubectl kustomize (when kubectl is installed)', (ctx) => {
    if (!kubectlAvailable()) {
      ctx.skip('kubectl not installed: relying on the test-side renderer only');
      return;
    }
    const theirs = parseAllDocuments(execFileSync('kubectl', ['kustomize', path.join(ROOT, 'k8s/overlays', env)], { encoding: 'utf8' }))
      .map((d) => d.toJS() as Resource)
      .sort((a, b) => `${a.kind}/${a.metadata.name}`.localeCompare(`${b.kind}/${b.metadata.name}`));
    const mine = [...rendered.get(env)!].sort((a, b) => `${a.kind}/${a.metadata.name}`.localeCompare(`${b.kind}/${b.metadata.name}`));
    expect(mine.map((r) => `${r.kind}/${r.metadata.name}`)).toEqual(theirs.map((r) => `${r.kind}/${r.metadata.name}`));
    mine.forEach((r, i) => {
      expect(isDeepStrictEqual(JSON.parse(JSON.stringify(r)), theirs[i]), `${r.kind}/${r.metadata.name}`).toBe(true);
    });
  });

  it('validates every core resource against the Kubernetes schemas and namespaces everything', () => {
    const resources = rendered.get(env)!;
    const kinds = resources.map((r) => r.kind).sort();
    expect(kinds).toEqual(['ConfigMap', 'Deployment', 'NetworkPolicy', 'NetworkPolicy', 'PodDisruptionBudget', 'PrometheusRule', 'Service', 'ServiceMonitor']);
    const namespaces = new Set(resources.map((r) => r.metadata.namespace));
    expect(namespaces.size).toBe(1);
    expect([...namespaces][0]).toMatch(/^kline-connector/);
    for (const r of resources) {
      const { apiVersion: _a, kind: _k, ...data } = r;
      switch (r.kind) {
        case 'Deployment':
          new Deployment(data).validate();
          break;
        case 'Service':
          new Service(data).validate();
          break;
        case 'ConfigMap':
          new ConfigMap(data).validate();
          break;
        case 'PodDisruptionBudget':
          new PodDisruptionBudget(data).validate();
          break;
        case 'NetworkPolicy':
          new NetworkPolicy(data).validate();
          break;
        default:
          // CRDs: no schema package installed; checked structurally below.
          expect(r.apiVersion).toBe('monitoring.coreos.com/v1');
      }
    }
  });

  it('meets Pod Security "restricted" with a numeric non-root user and a read-only root filesystem', () => {
    const pod = podSpecOf(get(env, 'Deployment'));
    const psc = pod.securityContext as Obj;
    expect(psc).toMatchObject({ runAsNonRoot: true, runAsUser: 1000, seccompProfile: { type: 'RuntimeDefault' } });
    expect(pod.hostNetwork ?? false).toBe(false);
    expect(pod.hostPID ?? false).toBe(false);
    expect(pod.hostIPC ?? false).toBe(false);
    for (const v of pod.volumes as Obj[]) expect(Object.keys(v).filter((k) => k !== 'name')).toEqual(expect.arrayContaining([expect.stringMatching(/^(emptyDir|configMap|secret|projected|downwardAPI)$/)]));
    const c = container(env);
    expect(c.securityContext).toMatchObject({ allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, runAsNonRoot: true, runAsUser: 1000 });
    expect(c.securityContext.privileged ?? false).toBe(false);
    expect(c.securityContext.capabilities?.drop).toEqual(['ALL']);
    expect(c.securityContext.capabilities?.add ?? []).toEqual([]);
    expect(pod.automountServiceAccountToken).toBe(false);
  });

  it('probes /ready for readiness and /health for liveness (higher threshold) and startup', () => {
    const c = container(env);
    expect(c.readinessProbe.httpGet).toEqual({ path: '/ready', port: 'metrics' });
    expect(c.livenessProbe.httpGet).toEqual({ path: '/health', port: 'metrics' });
    expect(c.livenessProbe.failureThreshold).toBeGreaterThan(c.readinessProbe.failureThreshold);
    // A failing startup probe kills the container; /ready depends on Binance, so startup uses /health.
    expect(c.startupProbe.httpGet).toEqual({ path: '/health', port: 'metrics' });
  });

  it('sets memory requests = limits, a CPU request, no CPU limit, and a heap of ~75 % of the limit', () => {
    const c = container(env);
    expect(c.resources.requests?.memory).toBeDefined();
    expect(c.resources.requests?.memory).toBe(c.resources.limits?.memory);
    expect(c.resources.requests?.cpu).toBeDefined();
    expect(c.resources.limits?.cpu).toBeUndefined();
    const limitMi = mebibytes(c.resources.limits!.memory!);
    const nodeOptions = c.env?.find((e) => e.name === 'NODE_OPTIONS')?.value ?? '';
    const heap = Number(/--max-old-space-size=(\d+)/.exec(nodeOptions)?.[1]);
    expect(heap / limitMi).toBeGreaterThanOrEqual(0.7);
    expect(heap / limitMi).toBeLessThanOrEqual(0.8);
    // The small young generation is what keeps 2000 streams under 100 MB RSS (ARCHITECTURE.md, Performance).
    expect(nodeOptions).toMatch(/--max-semi-space-size=2\b/);
    expect(Number(configData(env).CONNECTOR_MAX_MEMORY_MB)).toBe(limitMi);
  });

  it('gives SIGTERM handling its budget: preStop sleep, then more than preStop + CONNECTOR_SHUTDOWN_GRACE_MS', () => {
    const c = container(env);
    expect(c.lifecycle.preStop).toEqual({ sleep: { seconds: PRE_STOP_SECONDS } });
    const grace = Number(configData(env).CONNECTOR_SHUTDOWN_GRACE_MS ?? 10_000);
    const tgps = podSpecOf(get(env, 'Deployment')).terminationGracePeriodSeconds as number;
    expect(tgps * 1000).toBeGreaterThan(PRE_STOP_SECONDS * 1000 + grace);
  });

  it('feeds the container from the generated ConfigMap and the Secret, which the daemon\'s own config loader accepts', () => {
    const c = container(env);
    const cm = get(env, 'ConfigMap');
    expect(cm.metadata.name).toMatch(/^kline-connector-config-[a-z0-9]{10}$/);
    expect(c.envFrom).toEqual([{ configMapRef: { name: cm.metadata.name } }]);
    const data = configData(env);
    expect(Object.keys(data).every((k) => k.startsWith('CONNECTOR_'))).toBe(true);
    expect(data.CONNECTOR_ENV).toBe(env);
    expect(Object.keys(data)).not.toContain('CONNECTOR_RELAY_TOKEN');
    // What the pod's environment holds: the ConfigMap plus the token from the Secret, where referenced.
    const { config, warnings } = loadConfig({ env: podEnv(env), dotenvPath: null });
    expect(warnings).toEqual([]);
    expect(config.relay.port).toBe(c.ports.find((p) => p.name === 'relay')?.containerPort);
    expect(config.http.port).toBe(c.ports.find((p) => p.name === 'metrics')?.containerPort);
    expect(config.http.host).toBe('0.0.0.0'); // kubelet cannot reach 127.0.0.1
  });

  it('states the relay auth in writing: a required Secret in staging and production, CONNECTOR_RELAY_AUTH=none only in development', () => {
    const data = configData(env);
    const token = container(env).env?.find((e) => e.name === 'CONNECTOR_RELAY_TOKEN');
    if (env === 'development') {
      // The one overlay that runs without a token says so (contract §2), and has no token to contradict it.
      expect(data.CONNECTOR_RELAY_AUTH).toBe('none');
      expect(token).toBeUndefined();
    } else {
      expect(data.CONNECTOR_RELAY_AUTH).toBe('token');
      // Not optional: a missing Secret keeps the pod in CreateContainerConfigError instead of starting it open.
      expect(token?.valueFrom).toEqual({ secretKeyRef: { name: 'kline-connector-relay', key: 'token', optional: false } });
    }
  });

  it('spreads the replicas over nodes (hard) and zones (soft), counting only the pods of the same revision', () => {
    const pod = podSpecOf(get(env, 'Deployment'));
    const podLabels = (((get(env, 'Deployment').spec as Obj).template as Obj).metadata as { labels: Record<string, string> }).labels;
    const spread = pod.topologySpreadConstraints as Array<{
      maxSkew: number;
      topologyKey: string;
      whenUnsatisfiable: string;
      labelSelector: { matchLabels: Record<string, string> };
      matchLabelKeys?: string[];
      nodeTaintsPolicy?: string;
    }>;
    const byKey = new Map(spread.map((t) => [t.topologyKey, t]));
    expect(byKey.get('kubernetes.io/hostname')).toMatchObject({ maxSkew: 1, whenUnsatisfiable: 'DoNotSchedule' });
    expect(byKey.get('topology.kubernetes.io/zone')).toMatchObject({ maxSkew: 1, whenUnsatisfiable: 'ScheduleAnyway' });
    for (const t of spread) {
      // The selector must match this Deployment's pods, or the constraint counts nothing.
      expect(podLabels).toMatchObject(t.labelSelector.matchLabels);
      expect(Object.keys(t.labelSelector.matchLabels).length).toBeGreaterThan(0);
      // A rollout's surge pod is not blocked by the old ReplicaSet's pods on the other nodes.
      expect(t.matchLabelKeys).toEqual(['pod-template-hash']);
      // A cordoned (tainted) node is not a domain: draining one of two nodes must not leave a pod Pending.
      expect(t.nodeTaintsPolicy).toBe('Honor');
    }
  });

  it('mounts every file the configuration names, read-only', () => {
    const c = container(env) as Container & { volumeMounts?: Array<{ name: string; mountPath: string; readOnly?: boolean }> };
    const mounts = c.volumeMounts ?? [];
    for (const [k, v] of Object.entries(podEnv(env))) {
      if (!k.endsWith('_FILE')) continue;
      const m = mounts.find((mt) => v.startsWith(`${mt.mountPath.replace(/\/$/, '')}/`));
      expect(m, `${k}=${v} lies in a mounted volume`).toBeDefined();
      expect(m?.readOnly, `${k}: mount ${m?.mountPath}`).toBe(true);
    }
  });

  it("keeps its preset's log level: the ConfigMap does not silently override config/<env>.json", () => {
    const preset = JSON.parse(readFileSync(path.join(ROOT, 'config', `${env}.json`), 'utf8')) as Record<string, unknown>;
    const presetLevel = preset.CONNECTOR_LOG_LEVEL ?? 'info';
    expect(configData(env).CONNECTOR_LOG_LEVEL ?? presetLevel).toBe(presetLevel);
  });

  it('exposes named ports relay 8765 and metrics 8766 through the Service, and selects only by immutable labels', () => {
    const svc = get(env, 'Service');
    const spec = svc.spec as { ports: Array<{ name: string; port: number; targetPort: string }>; selector: Record<string, string> };
    expect(spec.ports.map((p) => [p.name, p.port, p.targetPort])).toEqual([
      ['relay', 8765, 'relay'],
      ['metrics', 8766, 'metrics'],
    ]);
    const selector = { 'app.kubernetes.io/name': 'kline-connector', 'app.kubernetes.io/instance': 'kline-connector' };
    expect(spec.selector).toEqual(selector);
    const dep = get(env, 'Deployment');
    expect((dep.spec as { selector: Obj }).selector).toEqual({ matchLabels: selector });
    const podLabels = ((dep.spec as Obj).template as { metadata: { labels: Record<string, string> } }).metadata.labels;
    expect(podLabels).toMatchObject({ ...selector, 'app.kubernetes.io/environment': env, 'app.kubernetes.io/part-of': 'market-data' });
  });

  it('has a PodDisruptionBudget of one with AlwaysAllow for unhealthy pods', () => {
    const spec = get(env, 'PodDisruptionBudget').spec as Obj;
    expect(spec).toMatchObject({ maxUnavailable: 1, unhealthyPodEvictionPolicy: 'AlwaysAllow' });
  });

  it('denies all traffic by default and allows only DNS, 443 egress, relay and metrics ingress', () => {
    const deny = get(env, 'NetworkPolicy', 'kline-connector-default-deny').spec as Obj;
    expect(deny).toEqual({ podSelector: {}, policyTypes: ['Ingress', 'Egress'] });
    const allow = get(env, 'NetworkPolicy', 'kline-connector').spec as {
      egress: Array<{ ports: Array<{ port: number | string; protocol: string }> }>;
      ingress: Array<{ ports: Array<{ port: number | string }> }>;
    };
    const egress = allow.egress.flatMap((r) => r.ports.map((p) => `${p.protocol}/${p.port}`));
    expect(egress).toEqual(expect.arrayContaining(['UDP/53', 'TCP/53', 'TCP/443']));
    expect(egress.every((p) => ['UDP/53', 'TCP/53', 'TCP/443', 'TCP/9443'].includes(p))).toBe(true);
    expect(allow.ingress.flatMap((r) => r.ports.map((p) => p.port)).sort()).toEqual(['metrics', 'relay']);
  });

  it('lets only labelled client pods and namespaces reach the relay, and only the monitoring namespace the metrics port', () => {
    const { ingress } = get(env, 'NetworkPolicy', 'kline-connector').spec as { ingress: Array<{ from?: Obj[]; ports: Array<{ port: string }> }> };
    const rule = (port: string) => {
      const r = ingress.filter((i) => i.ports.some((p) => p.port === port));
      expect(r, port).toHaveLength(1);
      return r[0]!;
    };
    const client = { matchLabels: { [CLIENT_LABEL]: 'true' } };
    // A rule without `from` (or with an empty selector) admits every pod in the cluster: the finding.
    // A pod label alone is trusted only inside our namespace (anyone may label their own pods; namespace
    // labels are the cluster admin's), so a peer from elsewhere needs its namespace labelled.
    expect(rule('relay').from).toEqual([{ podSelector: client }, { namespaceSelector: client }]);
    expect(rule('metrics').from).toEqual([{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'monitoring' } } }]);
  });

  it('scrapes the Service\'s metrics port with a ServiceMonitor', () => {
    const sm = get(env, 'ServiceMonitor').spec as { selector: { matchLabels: Record<string, string> }; endpoints: Array<{ port: string; path: string }> };
    expect(sm.endpoints.map((e) => [e.port, e.path])).toEqual([['metrics', '/metrics']]);
    expect(get(env, 'Service').metadata.labels).toMatchObject(sm.selector.matchLabels);
  });
});

describe('k8s overlay sharded (contract §10: n shards x 2 on NATS JetStream)', () => {
  const dir = path.join(ROOT, 'k8s/overlays/sharded');
  const resources = render(dir);
  const find = (kind: string, name: string): Resource => {
    const r = resources.find((x) => x.kind === kind && x.metadata.name === name);
    if (r === undefined) throw new Error(`sharded: no ${kind} ${name}`);
    return r;
  };
  const sts = find('StatefulSet', 'kline-connector');
  const stsSpec = sts.spec as { replicas: number; serviceName: string; podManagementPolicy: string; selector: Obj; template: { metadata: { labels: Record<string, string> }; spec: Obj } };
  const cm = resources.find((r) => r.kind === 'ConfigMap' && r.metadata.name.startsWith('kline-connector-config-'))!;
  const data = cm.data as Record<string, string>;
  const c = (stsSpec.template.spec.containers as Container[])[0]!;

  it('renders the same manifests as kubectl kustomize (when kubectl is installed)', (ctx) => {
    if (!kubectlAvailable()) {
      ctx.skip('kubectl not installed: relying on the test-side renderer only');
      return;
    }
    const theirs = parseAllDocuments(execFileSync('kubectl', ['kustomize', dir], { encoding: 'utf8' })).map((d) => d.toJS() as Resource);
    const key = (r: Resource): string => `${r.kind}/${r.metadata.name}`;
    expect([...resources].map(key).sort()).toEqual(theirs.map(key).sort());
  });

  it('replaces the Deployment with a StatefulSet and a NATS server, and validates every core resource against the Kubernetes schemas', () => {
    expect(resources.some((r) => r.kind === 'Deployment')).toBe(false);
    expect(resources.map((r) => `${r.kind}/${r.metadata.name.replace(/-[a-z0-9]{10}$/, '')}`).sort()).toEqual(
      [
        'ConfigMap/kline-connector-config',
        'ConfigMap/nats-config',
        'NetworkPolicy/kline-connector',
        'NetworkPolicy/kline-connector-default-deny',
        'NetworkPolicy/kline-connector-to-nats',
        'NetworkPolicy/nats',
        'PodDisruptionBudget/kline-connector',
        'PrometheusRule/kline-connector',
        'Service/kline-connector',
        'Service/kline-connector-peers',
        'Service/nats',
        'ServiceMonitor/kline-connector',
        'StatefulSet/kline-connector',
        'StatefulSet/nats',
      ].sort(),
    );
    for (const r of resources) {
      const { apiVersion: _a, kind: _k, ...rest } = r;
      if (r.kind === 'StatefulSet') new StatefulSet(rest).validate();
      else if (r.kind === 'Service') new Service(rest).validate();
      else if (r.kind === 'ConfigMap') new ConfigMap(rest).validate();
      else if (r.kind === 'NetworkPolicy') new NetworkPolicy(rest).validate();
      else if (r.kind === 'PodDisruptionBudget') new PodDisruptionBudget(rest).validate();
      else expect(r.apiVersion).toBe('monitoring.coreos.com/v1');
      expect(r.metadata.namespace).toBe('kline-connector');
    }
  });

  it('runs 2 x CONNECTOR_SHARD_COUNT pods, and each pod gets its shard from its name: ordinals i and i+n are one pair, every shard has two', () => {
    const n = Number(data.CONNECTOR_SHARD_COUNT);
    expect(n).toBeGreaterThan(1);
    expect(stsSpec.replicas).toBe(2 * n);
    expect(stsSpec.serviceName).toBe('kline-connector-peers');
    expect(stsSpec.podManagementPolicy).toBe('Parallel');
    expect(c.env?.find((e) => e.name === 'CONNECTOR_POD_NAME')?.valueFrom).toEqual({ fieldRef: { fieldPath: 'metadata.name' } });
    const shards = new Map<number, number>();
    const owned = new Map<number, readonly string[]>();
    for (let ordinal = 0; ordinal < stsSpec.replicas; ordinal++) {
      // What the pod starts with: the ConfigMap, its name from the downward API, the token from the Secret.
      const { config, warnings } = loadConfig({ env: { ...data, CONNECTOR_POD_NAME: `kline-connector-${ordinal}`, CONNECTOR_RELAY_TOKEN: 'from-the-secret' }, dotenvPath: null });
      expect(warnings).toEqual([]);
      expect(config.nats?.url).toBe('nats://nats:4222');
      shards.set(config.shard.index, (shards.get(config.shard.index) ?? 0) + 1);
      const symbols = config.venues.flatMap((v) => v.symbols);
      const pairOf = owned.get(config.shard.index);
      if (pairOf === undefined) owned.set(config.shard.index, symbols);
      else expect(symbols).toEqual(pairOf);
    }
    expect([...shards.entries()].sort()).toEqual(Array.from({ length: n }, (_, i) => [i, 2]));
    // Together the shards cover every configured symbol exactly once.
    const all = [...owned.values()].flat();
    expect(all.sort()).toEqual(data.CONNECTOR_SYMBOLS?.split(',').sort());
  });

  it("keeps the base Deployment's pod template: only the documented fields differ (pod name, relay token, memory, revision label)", () => {
    const base = render(path.join(ROOT, 'k8s/base')).find((r) => r.kind === 'Deployment')!;
    const basePod = structuredClone(podSpecOf(base)) as Obj & { containers: Container[]; topologySpreadConstraints: Array<{ matchLabelKeys: string[] }> };
    const pod = structuredClone(stsSpec.template.spec) as Obj & { containers: Container[]; topologySpreadConstraints: Array<{ matchLabelKeys: string[] }> };
    for (const t of basePod.topologySpreadConstraints) expect(t.matchLabelKeys).toEqual(['pod-template-hash']);
    for (const t of pod.topologySpreadConstraints) expect(t.matchLabelKeys).toEqual(['controller-revision-hash']);
    for (const p of [basePod, pod]) {
      for (const t of p.topologySpreadConstraints) t.matchLabelKeys = [];
      const ctr = p.containers[0]!;
      delete ctr.env;
      delete (ctr as Partial<Container>).resources;
      delete ctr.image; // the overlay's images transformer
      delete ctr.envFrom; // the generated ConfigMap's name (hash)
    }
    expect(pod).toEqual(basePod);
    expect(c.env?.map((e) => e.name).sort()).toEqual(['CONNECTOR_POD_NAME', 'CONNECTOR_RELAY_TOKEN', 'NODE_OPTIONS']);
    expect(c.env?.find((e) => e.name === 'CONNECTOR_RELAY_TOKEN')?.valueFrom).toEqual({ secretKeyRef: { name: 'kline-connector-relay', key: 'token', optional: false } });
    expect(Number(data.CONNECTOR_MAX_MEMORY_MB)).toBe(mebibytes(c.resources.limits?.memory ?? '0Mi'));
    expect(c.envFrom).toEqual([{ configMapRef: { name: cm.metadata.name } }]);
  });

  it('gives NATS JetStream a volume and a restricted pod, and lets only the connector and labelled consumers reach it', () => {
    const nats = find('StatefulSet', 'nats').spec as { volumeClaimTemplates: Array<{ metadata: { name: string } }>; template: { spec: Obj & { containers: Container[]; securityContext: Obj } } };
    expect(nats.volumeClaimTemplates.map((v) => v.metadata.name)).toEqual(['data']);
    const conf = (find('ConfigMap', 'nats-config').data as Record<string, string>)['nats.conf'] ?? '';
    expect(conf).toMatch(/jetstream \{[^}]*store_dir: \/data/);
    expect(conf).toMatch(/port: 4222/);
    const n = nats.template.spec.containers[0]!;
    expect(n.securityContext).toMatchObject({ allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, runAsNonRoot: true });
    expect(nats.template.spec.securityContext).toMatchObject({ runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } });
    const svc = find('Service', 'nats').spec as { ports: Array<{ name: string; port: number }> };
    expect(svc.ports.find((p) => p.name === 'client')?.port).toBe(Number(new URL(data.CONNECTOR_NATS_URL ?? '').port));
    // The base denies everything: the connector's egress to NATS and NATS's ingress are allowed explicitly.
    const toNats = find('NetworkPolicy', 'kline-connector-to-nats').spec as { egress: Array<{ to: Obj[]; ports: Array<{ port: number }> }> };
    expect(toNats.egress[0]?.ports).toEqual([{ port: 4222, protocol: 'TCP' }]);
    const natsPolicy = find('NetworkPolicy', 'nats').spec as { ingress: Array<{ from: Obj[]; ports: Array<{ port: string }> }>; egress: unknown[] };
    expect(natsPolicy.ingress.find((r) => r.ports.some((p) => p.port === 'client'))?.from).toContainEqual({ podSelector: { matchLabels: { [CLIENT_LABEL]: 'true' } } });
    expect(natsPolicy.egress).toEqual([]);
  });

  it('scrapes each connector pod once: the ServiceMonitor selects the base Service, not the peers Service', () => {
    const sm = find('ServiceMonitor', 'kline-connector').spec as { selector: { matchLabels: Record<string, string> } };
    expect(find('Service', 'kline-connector').metadata.labels).toMatchObject(sm.selector.matchLabels);
    const peers = find('Service', 'kline-connector-peers');
    expect(Object.entries(sm.selector.matchLabels).every(([k, v]) => peers.metadata.labels?.[k] === v)).toBe(false);
    expect((peers.spec as { clusterIP: string }).clusterIP).toBe('None');
  });
});

describe('k8s base', () => {
  it('fails closed on its own: an overlay that forgets the relay auth gets a daemon that refuses to start', () => {
    const cm = render(path.join(ROOT, 'k8s/base')).find((r) => r.kind === 'ConfigMap')!;
    const data = cm.data as Record<string, string>;
    expect(data.CONNECTOR_ENV).toBe('production');
    expect(() => loadConfig({ env: data, dotenvPath: null })).toThrow(/CONNECTOR_RELAY_TOKEN=unset .*CONNECTOR_RELAY_AUTH=none/);
  });
});

describe('production overlay TLS', () => {
  it('mounts the relay certificate Secret (kubernetes.io/tls keys) read-only, optional until TLS is switched on', () => {
    const pod = podSpecOf(get('production', 'Deployment'));
    const volume = (pod.volumes as Array<{ name: string; secret?: { secretName: string; optional?: boolean; defaultMode?: number } }>).find((v) => v.name === 'relay-tls');
    expect(volume?.secret).toMatchObject({ secretName: 'kline-connector-relay-tls', optional: true });
    // 0440 + fsGroup 1000: readable by the uid-1000 process, by nobody else.
    expect(volume?.secret?.defaultMode).toBe(0o440);
    const c = container('production') as Container & { volumeMounts: Array<{ name: string; mountPath: string; readOnly?: boolean }> };
    expect(c.volumeMounts.find((m) => m.name === 'relay-tls')).toEqual({ name: 'relay-tls', mountPath: '/etc/kline-connector/tls', readOnly: true });
  });
});

describe('docs/runbook.md', () => {
  it('says how to let a relay consumer in through the NetworkPolicy and how to give the relay its token', () => {
    const runbook = readFileSync(path.join(ROOT, 'docs/runbook.md'), 'utf8');
    expect(runbook).toContain(`${CLIENT_LABEL}=true`);
    expect(runbook).toMatch(/kubectl .*label namespace/);
    expect(runbook).toMatch(/kubectl .*create secret generic kline-connector-relay/);
    expect(runbook).toMatch(/kubectl .*create secret tls kline-connector-relay-tls/);
  });
});

describe('PrometheusRule', () => {
  const rule = readYamlDocs(path.join(ROOT, 'k8s/base/prometheusrule.yaml'))[0]!;
  const spec = rule.spec as { groups: Array<{ name: string; rules: Array<{ alert: string; expr: string; for?: string; labels: Obj; annotations: Record<string, string> }> }> };
  const alerts = spec.groups.flatMap((g) => g.rules);
  const runbook = readFileSync(path.join(ROOT, 'docs/runbook.md'), 'utf8');

  it('covers the failure modes operators page and ticket on, at both severities', () => {
    const names = alerts.map((a) => a.alert);
    expect(names).toEqual(
      expect.arrayContaining([
        'ConnectorTargetDown',
        'ConnectorNoReadyConnections',
        'ConnectorStreamsStale',
        'ConnectorCircuitBreakerOpen',
        'ConnectorClosedQueueNearFull',
        'ConnectorQueueBlocking',
        'ConnectorReconnectStorm',
        'ConnectorBackfillFailures',
        'ConnectorRestBanned',
        'ConnectorRelaySlowConsumers',
        'ConnectorMemoryNearLimit',
      ]),
    );
    expect(new Set(alerts.map((a) => a.labels.severity))).toEqual(new Set(['warning', 'critical']));
  });

  it('gives every alert a severity, summary, description and a runbook_url to an existing runbook section', () => {
    const sections = anchors(runbook);
    for (const a of alerts) {
      expect(['warning', 'critical'], a.alert).toContain(a.labels.severity);
      expect(a.annotations.summary, a.alert).toBeTruthy();
      expect(a.annotations.description, a.alert).toBeTruthy();
      const url = a.annotations.runbook_url ?? '';
      expect(url, a.alert).toMatch(/\/docs\/runbook\.md#[a-z0-9-]+$/);
      const anchor = url.split('#')[1]!;
      expect(anchor).toBe(a.alert.toLowerCase());
      expect(sections.has(anchor), `runbook section for ${a.alert}`).toBe(true);
    }
  });

  it('only uses metric names the daemon actually exports', async () => {
    const metrics = createMetrics({ status: new StatusStream(), sources: new FakeSources(), config: HEALTH });
    const scrape = await metrics.registry.metrics();
    metrics.dispose();
    const exported = new Set([...scrape.matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1]!));
    for (const a of alerts)
      for (const m of a.expr.matchAll(/\b((?:connector|nodejs|process)_[a-z0-9_]+)/g)) expect(exported.has(m[1]!.replace(/_(bucket|sum|count)$/, '')), `${a.alert}: ${m[1]}`).toBe(true);
  });

  it('passes promtool check rules and promtool test rules', (ctx) => {
    if (findPromtool() === undefined) {
      ctx.skip(PROMTOOL_MISSING);
      return;
    }
    const dir = mkdtempSync(path.join(tmpdir(), 'kc-rules-'));
    try {
      writeFileSync(path.join(dir, 'rules.yaml'), stringify(spec));
      copyFileSync(path.join(ROOT, 'test/ops/alerts.test.yaml'), path.join(dir, 'alerts.test.yaml'));
      const check = promtool(['check', 'rules', path.join(dir, 'rules.yaml')]);
      expect(check.code, check.out).toBe(0);
      const test = promtool(['test', 'rules', path.join(dir, 'alerts.test.yaml')]);
      expect(test.code, test.out).toBe(0);
      const tested = (parse(readFileSync(path.join(dir, 'alerts.test.yaml'), 'utf8')) as { tests: Array<{ alert_rule_test: Array<{ alertname: string }> }> }).tests.flatMap((t) =>
        t.alert_rule_test.map((r) => r.alertname),
      );
      expect(new Set(tested).size).toBeGreaterThanOrEqual(2);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('Grafana dashboard', () => {
  it('is valid JSON whose queries only use exported metrics and cover the operator\'s panels', async () => {
    const dash = JSON.parse(readFileSync(path.join(ROOT, 'docs/grafana-dashboard.json'), 'utf8')) as { panels: Array<{ title: string; targets?: Array<{ expr: string }> }> };
    const metrics = createMetrics({ status: new StatusStream(), sources: new FakeSources(), config: HEALTH });
    const exported = new Set([...(await metrics.registry.metrics()).matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1]!));
    metrics.dispose();
    const exprs = dash.panels.flatMap((p) => (p.targets ?? []).map((t) => t.expr));
    for (const e of exprs) for (const m of e.matchAll(/\b((?:connector|nodejs|process)_[a-z0-9_]+)/g)) expect(exported.has(m[1]!.replace(/_(bucket|sum|count)$/, '')), m[1]).toBe(true);
    const all = exprs.join('\n');
    for (const needed of [
      'connector_quotes_processed_total',
      'histogram_quantile',
      'connector_quote_latency_seconds_bucket',
      'connector_connections',
      'connector_queue_depth_closed',
      'connector_duplicates_filtered_total',
      'connector_rest_backfills_total',
      'connector_relay_clients',
      'process_resident_memory_bytes',
    ])
      expect(all).toContain(needed);
  });
});

describe('test-side kustomize renderer', () => {
  it('fails loudly on kustomization features it does not implement', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'kc-kust-'));
    try {
      writeFileSync(path.join(dir, 'kustomization.yaml'), 'commonLabels:\n  a: b\n');
      expect(() => render(dir)).toThrow(/commonLabels is not supported/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('is checked against a non-trivial merge: env items are merged by name, not replaced', () => {
    const c = container('production');
    expect(c.env?.map((e) => e.name).sort()).toEqual(['CONNECTOR_RELAY_TOKEN', 'NODE_OPTIONS']);
    expect(isObj(c.env?.find((e) => e.name === 'CONNECTOR_RELAY_TOKEN')?.valueFrom)).toBe(true);
  });
});
