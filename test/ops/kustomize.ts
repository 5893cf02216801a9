/**
 * A test-side renderer for exactly the kustomize features k8s/ uses, so the manifests can be
 * rendered and checked where no kustomize/kubectl binary exists (CI). Where `kubectl kustomize`
 * is available, k8s.test.ts checks this renderer's output against it.
 *
 * Supported: resources (files, directories with a kustomization), namespace, labels (pairs,
 * includeSelectors: false, includeTemplates), configMapGenerator (literals; behavior create/merge;
 * content-hash name suffix with name references rewritten), images (newName/newTag), patches
 * (strategic-merge patch files, targeted by kind + name; `$patch: delete` at a patch's top). Anything else in a kustomization fails
 * loudly instead of rendering something kustomize would not.
 */
import { createHash } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { parse, parseAllDocuments } from 'yaml';

export type Obj = Record<string, unknown>;
export interface Resource extends Obj {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> } & Obj;
}

const SUPPORTED = new Set(['apiVersion', 'kind', 'namespace', 'resources', 'labels', 'configMapGenerator', 'images', 'patches']);
const WORKLOADS = new Set(['Deployment', 'StatefulSet', 'DaemonSet', 'ReplicaSet', 'Job']);

interface Generated {
  /** Name before the hash suffix. */
  baseName: string;
}

const generated = new WeakMap<Resource, Generated>();

export function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function asArray(v: unknown): unknown[] {
  return Array.isArray(v) ? v : [];
}

export function readYamlDocs(file: string): Resource[] {
  return parseAllDocuments(readFileSync(file, 'utf8'))
    .map((d) => d.toJS() as unknown)
    .filter((d): d is Resource => isObj(d));
}

/** Render a kustomization directory (top level: hash suffixes applied and references fixed). */
export function render(dir: string): Resource[] {
  const resources = build(dir);
  // Name suffix hashes are computed once, at the top, from the final data (kustomize does the same).
  const renames = new Map<string, string>();
  for (const r of resources) {
    const g = generated.get(r);
    if (g === undefined) continue;
    const name = `${g.baseName}-${configMapHash(g.baseName, (r.data ?? {}) as Record<string, string>)}`;
    renames.set(g.baseName, name);
    r.metadata.name = name;
  }
  for (const r of resources) if (WORKLOADS.has(r.kind)) rewriteConfigMapRefs(podSpecOf(r), renames);
  return resources;
}

function build(dir: string): Resource[] {
  const k = parse(readFileSync(path.join(dir, 'kustomization.yaml'), 'utf8')) as Obj;
  for (const key of Object.keys(k)) if (!SUPPORTED.has(key)) throw new Error(`${dir}: kustomization field ${key} is not supported by the test renderer`);

  let out: Resource[] = [];
  for (const entry of asArray(k.resources)) {
    const p = path.join(dir, String(entry));
    out = [...out, ...(statSync(p).isDirectory() ? build(p) : readYamlDocs(p))];
  }

  for (const gen of asArray(k.configMapGenerator)) {
    if (!isObj(gen)) throw new Error('configMapGenerator entry must be a map');
    const name = String(gen.name);
    const data: Record<string, string> = {};
    for (const lit of asArray(gen.literals)) {
      const s = String(lit);
      const eq = s.indexOf('=');
      data[s.slice(0, eq)] = s.slice(eq + 1);
    }
    const behavior = typeof gen.behavior === 'string' ? gen.behavior : 'create';
    const existing = out.find((r) => r.kind === 'ConfigMap' && generated.get(r)?.baseName === name);
    if (behavior === 'merge' || behavior === 'replace') {
      if (existing === undefined) throw new Error(`${dir}: configMapGenerator ${name} has behavior ${behavior} but no base generator`);
      existing.data = behavior === 'merge' ? { ...(existing.data as Obj), ...data } : data;
    } else {
      if (existing !== undefined) throw new Error(`${dir}: configMapGenerator ${name} already exists`);
      const cm: Resource = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name }, data };
      generated.set(cm, { baseName: name });
      out.push(cm);
    }
  }

  for (const p of asArray(k.patches)) {
    if (!isObj(p) || typeof p.path !== 'string' || p.target !== undefined) throw new Error(`${dir}: only patches with a path to a strategic-merge patch are supported`);
    for (const patch of readYamlDocs(path.join(dir, p.path))) {
      const target = out.find((r) => r.kind === patch.kind && r.metadata.name === patch.metadata.name);
      if (target === undefined) throw new Error(`${dir}: patch ${p.path} matches no resource`);
      // `$patch: delete` at the top of a patch removes the resource (kustomize's strategic-merge directive).
      if (patch.$patch === 'delete') {
        if (Object.keys(patch).some((key) => !['$patch', 'apiVersion', 'kind', 'metadata'].includes(key))) throw new Error(`${dir}: a $patch: delete patch names its target only`);
        out = out.filter((r) => r !== target);
        continue;
      }
      const merged = strategicMerge(target, patch) as Resource;
      out = out.map((r) => (r === target ? withGenerated(target, merged) : r));
    }
  }

  if (typeof k.namespace === 'string') for (const r of out) r.metadata.namespace = k.namespace;

  for (const l of asArray(k.labels)) {
    if (!isObj(l) || !isObj(l.pairs)) throw new Error('labels entry must have pairs');
    if (l.includeSelectors === true) throw new Error('labels.includeSelectors: true is not supported (and should not be used)');
    const pairs = l.pairs as Record<string, string>;
    for (const r of out) {
      r.metadata.labels = { ...(r.metadata.labels ?? {}), ...pairs };
      if (l.includeTemplates === true && WORKLOADS.has(r.kind)) {
        const tmpl = (r.spec as Obj).template as Obj;
        const meta = (tmpl.metadata ?? {}) as Obj;
        meta.labels = { ...((meta.labels ?? {}) as Obj), ...pairs };
        tmpl.metadata = meta;
      }
    }
  }

  for (const img of asArray(k.images)) {
    if (!isObj(img)) continue;
    for (const r of out) {
      if (!WORKLOADS.has(r.kind)) continue;
      const spec = podSpecOf(r);
      for (const c of [...asArray(spec.containers), ...asArray(spec.initContainers)]) {
        if (!isObj(c) || typeof c.image !== 'string') continue;
        const { name, tag } = splitImage(c.image);
        if (name !== img.name) continue;
        c.image = `${typeof img.newName === 'string' ? img.newName : name}${typeof img.newTag === 'string' ? `:${img.newTag}` : tag}`;
      }
    }
  }
  return out;
}

function withGenerated(from: Resource, to: Resource): Resource {
  const g = generated.get(from);
  if (g !== undefined) generated.set(to, g);
  return to;
}

function splitImage(image: string): { name: string; tag: string } {
  const at = image.indexOf('@');
  if (at >= 0) return { name: image.slice(0, at), tag: image.slice(at) };
  const colon = image.lastIndexOf(':');
  return colon > image.lastIndexOf('/') ? { name: image.slice(0, colon), tag: image.slice(colon) } : { name: image, tag: '' };
}

export function podSpecOf(r: Resource): Obj {
  return ((r.spec as Obj).template as Obj).spec as Obj;
}

function rewriteConfigMapRefs(spec: Obj, renames: Map<string, string>): void {
  const rename = (o: unknown): void => {
    if (isObj(o) && typeof o.name === 'string') o.name = renames.get(o.name) ?? o.name;
  };
  for (const c of [...asArray(spec.containers), ...asArray(spec.initContainers)]) {
    if (!isObj(c)) continue;
    for (const ef of asArray(c.envFrom)) if (isObj(ef)) rename(ef.configMapRef);
    for (const e of asArray(c.env)) if (isObj(e) && isObj(e.valueFrom)) rename(e.valueFrom.configMapKeyRef);
  }
  for (const v of asArray(spec.volumes)) if (isObj(v)) rename(v.configMap);
}

/** Strategic merge patch with the merge keys of the fields we patch; other lists are replaced. */
const MERGE_KEYS: Record<string, string> = {
  containers: 'name',
  initContainers: 'name',
  env: 'name',
  volumes: 'name',
  volumeMounts: 'name',
};

export function strategicMerge(base: unknown, patch: unknown, field = ''): unknown {
  if (isObj(base) && isObj(patch)) {
    const out: Obj = { ...base };
    for (const [k, v] of Object.entries(patch)) {
      if (k.startsWith('$')) throw new Error(`patch directive ${k} is not supported`);
      out[k] = k in base ? strategicMerge(base[k], v, k) : v;
    }
    return out;
  }
  const key = MERGE_KEYS[field];
  if (Array.isArray(base) && Array.isArray(patch) && key !== undefined) {
    const baseItems: unknown[] = base;
    const patchItems: unknown[] = patch;
    // kustomize (kyaml merge2) emits the patch's items first, merged with their base
    // counterparts, then the base items the patch does not mention.
    const same = (a: unknown, b: unknown): boolean => isObj(a) && isObj(b) && a[key] === b[key];
    const merged = patchItems.map((item) => {
      const match = baseItems.find((b) => same(b, item));
      return match === undefined ? item : strategicMerge(match, item);
    });
    return [...merged, ...baseItems.filter((b) => !patchItems.some((item) => same(b, item)))];
  }
  return patch;
}

/**
 * kustomize's ConfigMap name hash (sigs.k8s.io/kustomize/api/hasher): sha256 of the JSON
 * encoding of {data, kind, name} (Go's encoding/json: sorted keys, HTML-escaped), first 10 hex
 * characters with 0,1,3,a,e replaced by g,h,k,m,t so the suffix never looks like a number or word.
 * `name` is always "" in kustomize 5: its hasher looks up the single key "metadata/name", which
 * does not exist, so only the data decides the suffix. The parameter keeps the call sites honest.
 */
export function configMapHash(_name: string, data: Record<string, string>): string {
  const name = '';
  const sorted = Object.fromEntries(Object.entries(data).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  const json = JSON.stringify({ data: sorted, kind: 'ConfigMap', name }).replace(/[<>&]/g, (c) => `\\u00${c.charCodeAt(0).toString(16)}`);
  const hex = createHash('sha256').update(json).digest('hex');
  const map: Record<string, string> = { '0': 'g', '1': 'h', '3': 'k', a: 'm', e: 't' };
  return hex
    .slice(0, 10)
    .split('')
    .map((c) => map[c] ?? c)
    .join(''); // hex digits only: splitting by code unit is exact
}
