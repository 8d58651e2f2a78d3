/**
 * Creating objects: the Instance form (image, size, provider, node selector, SSH keys,
 * networks) and, for every kind, a YAML editor. Both POST to the collection as the user;
 * the server's validation, RBAC and quota answers are shown as they came.
 */
import { html } from 'htm/preact';
import { useState } from 'preact/hooks';
import { parse } from 'yaml';
import { request, ApiFailure, type KubeObject } from './api.js';
import { allows } from './access.js';
import type { Session } from './main.js';
import { collectionPath, kindOf, type Kind } from './kinds.js';
import { useLive, useRules } from './live.js';
import { detailHref } from './list.js';
import { ErrorBanner } from './widgets.js';

function NotAllowed({ session, kind }: { session: Session; kind: Kind }) {
  return html`<p class="error" role="alert">You (${session.identity.username}) may not create ${kind.title} in namespace ${session.namespace || '(none chosen)'}: the server will refuse it.</p>`;
}

/** `key=value` lines → an object; a line without `=` is an error naming it. */
function parseSelector(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split(/[\n,]/).map((l) => l.trim()).filter((l) => l !== '')) {
    const i = line.indexOf('=');
    if (i <= 0) throw new ApiFailure(400, `node selector "${line}": expected key=value`);
    out[line.slice(0, i).trim()] = line.slice(i + 1).trim();
  }
  return out;
}

export function InstanceForm({ session }: { session: Session }) {
  const kind = kindOf('Instance')!;
  const ns = session.namespace || 'default';
  const rules = useRules(ns);
  const keys = useLive(collectionPath(kindOf('SSHKey')!, ns));
  const networks = useLive(collectionPath(kindOf('Network')!, ns));
  const [error, setError] = useState<Error | null>(null);
  const [busy, setBusy] = useState(false);
  const submit = async (e: Event): Promise<void> => {
    e.preventDefault();
    const f = new FormData(e.target as HTMLFormElement);
    setError(null);
    setBusy(true);
    try {
      const name = String(f.get('name') ?? '').trim();
      const spec: Record<string, unknown> = { provider: String(f.get('provider')), image: String(f.get('image') ?? '').trim() };
      if (f.get('cpus')) spec.cpus = Number(f.get('cpus'));
      if (f.get('memoryMiB')) spec.memoryMiB = Number(f.get('memoryMiB'));
      const selector = parseSelector(String(f.get('nodeSelector') ?? ''));
      if (Object.keys(selector).length) spec.nodeSelector = selector;
      const sshKeys = f.getAll('sshKeys').map(String);
      if (sshKeys.length) spec.sshKeys = sshKeys;
      const nets = f.getAll('networks').map(String);
      if (nets.length) spec.networks = nets.map((n) => ({ name: n }));
      await request('POST', collectionPath(kind, ns), { apiVersion: 'compute.stratus.dev/v1alpha1', kind: 'Instance', metadata: { name, namespace: ns }, spec });
      location.hash = detailHref(kind, ns, name);
    } catch (err) {
      setError(err as Error);
    } finally {
      setBusy(false);
    }
  };
  return html`<section aria-labelledby="form-title">
    <h1 id="form-title">Create Instance <span class="muted">in ${ns}</span></h1>
    ${rules && !allows(rules, 'create', kind.group, kind.plural) ? html`<${NotAllowed} session=${session} kind=${kind} />` : null}
    <p><a href="#/new/instances/yaml">Write YAML instead</a></p>
    <form class="form" onSubmit=${submit}>
      <label>Name<input name="name" required pattern="[a-z0-9]([-a-z0-9]*[a-z0-9])?" maxlength="63" /></label>
      <label>Provider<select name="provider"><option value="libvirt">libvirt (VM)</option><option value="docker">docker (container)</option><option value="gce">gce (Google Compute Engine)</option></select></label>
      <label>Image<input name="image" required placeholder="debian-12" /></label>
      <div class="row">
        <label>CPUs<input name="cpus" type="number" min="1" value="1" /></label>
        <label>Memory (MiB)<input name="memoryMiB" type="number" min="16" value="512" /></label>
      </div>
      <label>Node selector <span class="muted">(key=value, one a line)</span><textarea name="nodeSelector" rows="2"></textarea></label>
      <fieldset><legend>SSH keys</legend>
        ${keys.items.length === 0 ? html`<span class="muted">none in ${ns}</span>` : keys.items.map((k) => html`<label class="check"><input type="checkbox" name="sshKeys" value=${k.metadata?.name} /> ${k.metadata?.name}</label>`)}
      </fieldset>
      <fieldset><legend>Networks</legend>
        ${networks.items.length === 0 ? html`<span class="muted">none in ${ns}</span>` : networks.items.map((n) => html`<label class="check"><input type="checkbox" name="networks" value=${n.metadata?.name} /> ${n.metadata?.name}</label>`)}
      </fieldset>
      <${ErrorBanner} error=${error} />
      <button type="submit" disabled=${busy}>Create</button>
    </form>
  </section>`;
}

export function YamlCreate({ session, kind }: { session: Session; kind: Kind }) {
  const ns = session.namespace || 'default';
  const rules = useRules(ns);
  const apiVersion = kind.group ? `${kind.group}/${kind.version}` : kind.version;
  const [text, setText] = useState(`apiVersion: ${apiVersion}\nkind: ${kind.kind}\nmetadata:\n  name: \n${kind.namespaced ? `  namespace: ${ns}\n` : ''}spec: {}\n`);
  const [error, setError] = useState<Error | null>(null);
  const submit = async (e: Event): Promise<void> => {
    e.preventDefault();
    setError(null);
    try {
      const obj = parse(text) as KubeObject;
      const created = await request<KubeObject>('POST', collectionPath(kind, obj.metadata?.namespace ?? ns), obj);
      location.hash = detailHref(kind, created.metadata?.namespace, created.metadata?.name);
    } catch (err) {
      setError(err instanceof Error && !(err instanceof ApiFailure) ? new ApiFailure(400, `not YAML: ${err.message}`) : (err as Error));
    }
  };
  return html`<section aria-labelledby="yaml-title">
    <h1 id="yaml-title">Create ${kind.kind} from YAML</h1>
    ${rules && !allows(rules, 'create', kind.group, kind.plural) ? html`<${NotAllowed} session=${session} kind=${kind} />` : null}
    <form class="yaml" onSubmit=${submit}>
      <label for="yaml-new">YAML</label>
      <textarea id="yaml-new" name="yaml" rows="18" spellcheck="false" value=${text} onInput=${(e: Event) => setText((e.target as HTMLTextAreaElement).value)}></textarea>
      <${ErrorBanner} error=${error} />
      <button type="submit">Create</button>
    </form>
  </section>`;
}
