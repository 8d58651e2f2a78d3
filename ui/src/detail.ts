/**
 * One object, live: its conditions, kind-specific panels (an Instance's power actions, a
 * Deployment's stages, a Quota's usage, an ElasticIP's move, a Project's push), Events,
 * owner and owned objects, and its YAML, which can be edited and applied (the server's
 * validation errors are shown where the YAML is). Actions the user may not do are not drawn.
 */
import { html } from 'htm/preact';
import { useState } from 'preact/hooks';
import { parse, stringify } from 'yaml';
import { request, ApiFailure, type KubeObject } from './api.js';
import { allows, type Rules } from './access.js';
import { collectionPath, conditions, eventsKind, kindOf, objectPath, type Kind } from './kinds.js';
import { useLive, useRules } from './live.js';
import { detailHref } from './list.js';
import { Conditions, ErrorBanner, StateBadge } from './widgets.js';
import { DeploymentStages } from './deployment.js';
import { QuotaBars } from './overview.js';

const MERGE = 'application/merge-patch+json';

function Actions({ kind, obj, rules }: { kind: Kind; obj: KubeObject; rules: Rules | undefined }) {
  const [error, setError] = useState<Error | null>(null);
  const [busy, setBusy] = useState(false);
  const ns = obj.metadata?.namespace ?? '';
  const name = obj.metadata?.name ?? '';
  const run = async (f: () => Promise<unknown>): Promise<void> => {
    setBusy(true);
    setError(null);
    try {
      await f();
    } catch (err) {
      setError(err as Error);
    } finally {
      setBusy(false);
    }
  };
  const canPatch = allows(rules, 'patch', kind.group, kind.plural);
  const canDelete = allows(rules, 'delete', kind.group, kind.plural);
  const power = obj.spec?.powerState === 'Stopped' ? 'Stopped' : 'Running';
  const patch = (body: unknown) => request('PATCH', objectPath(kind, ns, name), body, MERGE);
  return html`<div class="actions">
    ${kind.kind === 'Instance' && canPatch && power === 'Running' ? html`<button type="button" disabled=${busy} onClick=${() => run(() => patch({ spec: { powerState: 'Stopped' } }))}>Stop</button>` : null}
    ${kind.kind === 'Instance' && canPatch && power === 'Stopped' ? html`<button type="button" disabled=${busy} onClick=${() => run(() => patch({ spec: { powerState: 'Running' } }))}>Start</button>` : null}
    ${kind.kind === 'Instance' && canPatch && power === 'Running' ? html`<button type="button" disabled=${busy} onClick=${() => run(() => restart(kind, ns, name, patch))}>Restart</button>` : null}
    ${kind.kind === 'ElasticIP' && canPatch ? html`<${MoveElasticIP} obj=${obj} run=${run} patch=${patch} />` : null}
    ${kind.kind === 'Project' && allows(rules, 'create', 'apps.stratus.dev', 'deployments') ? html`<button type="button" disabled=${busy} onClick=${() => run(() => pushProject(obj))}>Push (deploy now)</button>` : null}
    ${canDelete ? html`<a class="button danger" href=${`${detailHref(kind, ns, name)}/delete`}>Delete</a>` : null}
    <${ErrorBanner} error=${error} />
  </div>`;
}

/**
 * Restart = stop, wait until the controller reports `stopped` (a graceful guest shutdown),
 * then start — the same two writes a user makes with kubectl, so the server sees nothing new.
 * Closing the page in between leaves the Instance stopped, as its spec then says.
 */
async function restart(kind: Kind, ns: string, name: string, patch: (b: unknown) => Promise<unknown>): Promise<void> {
  await patch({ spec: { powerState: 'Stopped' } });
  const deadline = Date.now() + 5 * 60_000;
  for (;;) {
    const o = await request<KubeObject>('GET', objectPath(kind, ns, name));
    const status = o.status as { state?: string } | undefined;
    if (status?.state === 'stopped' || status?.state === 'failed') break;
    if (Date.now() > deadline) throw new Error(`${name} did not stop within 5 minutes; it was not started again`);
    await new Promise((r) => setTimeout(r, 500));
  }
  await patch({ spec: { powerState: 'Running' } });
}

function MoveElasticIP({ obj, run, patch }: { obj: KubeObject; run: (f: () => Promise<unknown>) => Promise<void>; patch: (b: unknown) => Promise<unknown> }) {
  const instances = useLive(collectionPath(kindOf('Instance')!, obj.metadata?.namespace ?? ''));
  const current = String((obj.spec?.instanceRef as { name?: string } | undefined)?.name ?? '');
  const [target, setTarget] = useState(current);
  return html`<form class="inline" onSubmit=${(e: Event) => { e.preventDefault(); void run(() => patch({ spec: { instanceRef: target ? { name: target } : null } })); }}>
    <label>Route to <select name="instance" value=${target} onChange=${(e: Event) => setTarget((e.target as HTMLSelectElement).value)}>
      <option value="">(unbound)</option>
      ${instances.items.map((i) => html`<option value=${i.metadata?.name}>${i.metadata?.name}</option>`)}
    </select></label>
    <button type="submit">Move</button>
  </form>`;
}

/** As `stratus push PROJECT`: a Deployment of the Project's ref, owned by the Project. */
async function pushProject(project: KubeObject): Promise<unknown> {
  const name = project.metadata?.name ?? '';
  const source = (project.spec?.source ?? {}) as { git?: { ref?: string }; artifact?: string };
  const spec = source.git ? { ref: source.git.ref ?? 'main' } : { artifact: source.artifact };
  return request('POST', collectionPath(kindOf('Deployment')!, project.metadata?.namespace ?? ''), {
    apiVersion: 'apps.stratus.dev/v1alpha1',
    kind: 'Deployment',
    metadata: {
      name: `${name}-${Date.now().toString(36)}-push`.slice(0, 253),
      labels: { 'apps.stratus.dev/project': name },
      ownerReferences: [{ apiVersion: project.apiVersion, kind: 'Project', name, uid: project.metadata?.uid, controller: true, blockOwnerDeletion: true }],
    },
    spec: { project: name, ...spec },
  });
}

function YamlEditor({ kind, obj, canUpdate }: { kind: Kind; obj: KubeObject; canUpdate: boolean }) {
  const shown = { ...obj, metadata: { ...obj.metadata, managedFields: undefined } };
  const [text, setText] = useState<string | null>(null);
  const [error, setError] = useState<Error | null>(null);
  const [saved, setSaved] = useState(false);
  const apply = async (e: Event): Promise<void> => {
    e.preventDefault();
    setError(null);
    setSaved(false);
    let body: KubeObject;
    try {
      body = parse(text ?? '') as KubeObject;
    } catch (err) {
      setError(new ApiFailure(400, `not YAML: ${(err as Error).message}`));
      return;
    }
    try {
      await request('PUT', objectPath(kind, obj.metadata?.namespace ?? '', obj.metadata?.name ?? ''), body);
      setText(null);
      setSaved(true);
    } catch (err) {
      const stale = err instanceof ApiFailure && err.code === 409;
      setError(stale ? new ApiFailure(409, `${err.message} — it changed since you started editing: Revert shows the current version`) : (err as Error));
    }
  };
  const value = text ?? stringify(shown);
  return html`<form class="yaml" onSubmit=${apply}>
    <label for="yaml-text">YAML${text === null ? ' (live)' : ' (editing: live updates paused)'}</label>
    <textarea id="yaml-text" name="yaml" spellcheck="false" rows="20" readonly=${!canUpdate} value=${value} onInput=${(e: Event) => setText((e.target as HTMLTextAreaElement).value)}></textarea>
    <${ErrorBanner} error=${error} />
    ${saved ? html`<p class="ok" role="status">Applied.</p>` : null}
    ${canUpdate ? html`<div class="row"><button type="submit" disabled=${text === null}>Apply</button><button type="button" class="secondary" disabled=${text === null} onClick=${() => { setText(null); setError(null); }}>Revert</button></div>` : null}
  </form>`;
}

function Related({ obj }: { obj: KubeObject }) {
  const ns = obj.metadata?.namespace ?? '';
  const owners = obj.metadata?.ownerReferences ?? [];
  const uid = obj.metadata?.uid;
  const deployments = useLive(obj.kind === 'Project' ? collectionPath(kindOf('Deployment')!, ns) : null);
  const owned = deployments.items.filter((d) => (d.metadata?.ownerReferences ?? []).some((r) => r.uid === uid));
  if (owners.length === 0 && owned.length === 0) return null;
  return html`<section><h2>Related</h2><ul class="related">
    ${owners.map((r) => {
      const k = kindOf(r.kind);
      return html`<li>owned by ${r.kind} ${k ? html`<a href=${detailHref(k, ns, r.name)}>${r.name}</a>` : r.name}</li>`;
    })}
    ${owned.map((d) => html`<li>owns Deployment <a href=${detailHref(kindOf('Deployment')!, ns, d.metadata?.name)}>${d.metadata?.name}</a> <${StateBadge} state=${String(d.status?.phase ?? '')} /></li>`)}
  </ul></section>`;
}

function Events({ obj }: { obj: KubeObject }) {
  const ns = obj.metadata?.namespace ?? 'default';
  const live = useLive(collectionPath(eventsKind, ns));
  const mine = live.items
    .filter((e) => (e.involvedObject as { uid?: string; name?: string } | undefined)?.name === obj.metadata?.name && (e.involvedObject as { kind?: string }).kind === obj.kind)
    .sort((a, b) => String(b.lastTimestamp ?? b.metadata?.creationTimestamp).localeCompare(String(a.lastTimestamp ?? a.metadata?.creationTimestamp)));
  return html`<section><h2>Events</h2>
    ${live.error ? html`<${ErrorBanner} error=${live.error} />` : mine.length === 0 ? html`<p class="muted">No events.</p>` : html`<table class="events"><thead><tr><th>Type</th><th>Reason</th><th>Message</th><th>Count</th><th>Last</th></tr></thead><tbody>
      ${mine.map((e) => html`<tr class=${e.type === 'Warning' ? 'bad' : ''}><td>${String(e.type ?? '')}</td><td>${String(e.reason ?? '')}</td><td class="message">${String(e.message ?? '')}</td><td>${String(e.count ?? 1)}</td><td>${String(e.lastTimestamp ?? e.metadata?.creationTimestamp ?? '')}</td></tr>`)}
    </tbody></table>`}
  </section>`;
}

export function DetailPage({ kind, namespace, name }: { kind: Kind; namespace: string; name: string }) {
  const live = useLive(`${collectionPath(kind, namespace)}?fieldSelector=${encodeURIComponent(`metadata.name=${name}`)}`);
  const rules = useRules(namespace || 'default');
  const obj = live.items[0];
  const head = html`<p class="crumbs"><a href=${`#/k/${kind.plural}`}>${kind.title}</a> / ${namespace ? `${namespace} / ` : ''}${name}</p>`;
  if (!obj) {
    return html`<section>${head}<${ErrorBanner} error=${live.error} />${live.loaded ? html`<p role="status">${kind.kind} ${name} does not exist${namespace ? ` in namespace ${namespace}` : ''} (or was deleted).</p>` : html`<p class="muted">Loading…</p>`}</section>`;
  }
  const state = String(obj.status?.state ?? obj.status?.phase ?? '');
  const scheduled = conditions(obj).find((c) => c.type === 'Scheduled' && c.status === 'False');
  return html`<section aria-labelledby="detail-title">
    ${head}
    <div class="page-head"><h1 id="detail-title">${kind.kind} ${name}</h1><span data-testid="state"><${StateBadge} state=${state} /></span></div>
    ${scheduled ? html`<p class="error" role="status" data-testid="unschedulable">Not scheduled: ${scheduled.reason} — ${scheduled.message}</p>` : null}
    ${obj.status?.message ? html`<p class="muted">${String(obj.status.message)}</p>` : null}
    <${Actions} kind=${kind} obj=${obj} rules=${rules} />
    <${ErrorBanner} error=${live.error} />
    ${kind.kind === 'Deployment' ? html`<${DeploymentStages} deployment=${obj} />` : null}
    ${kind.kind === 'Quota' ? html`<${QuotaBars} quota=${obj} />` : null}
    <section><h2>Conditions</h2><${Conditions} conditions=${conditions(obj)} /></section>
    <${Events} obj=${obj} />
    <${Related} obj=${obj} />
    <section><h2>Spec and status</h2><${YamlEditor} key=${obj.metadata?.uid} kind=${kind} obj=${obj} canUpdate=${allows(rules, 'update', kind.group, kind.plural)} /></section>
  </section>`;
}

export function DeletePage({ kind, namespace, name }: { kind: Kind; namespace: string; name: string }) {
  const [error, setError] = useState<Error | null>(null);
  const [done, setDone] = useState(false);
  const confirm = async (): Promise<void> => {
    setError(null);
    try {
      await request('DELETE', objectPath(kind, namespace, name));
      setDone(true);
    } catch (err) {
      setError(err as Error);
    }
  };
  return html`<section aria-labelledby="delete-title">
    <h1 id="delete-title">Delete ${kind.kind} ${name}?</h1>
    ${done
      ? html`<p role="status">Deletion of ${kind.kind} ${name} requested. <a href=${`#/k/${kind.plural}`}>Back to ${kind.title}</a></p>`
      : html`<p>${kind.kind} <strong>${name}</strong>${namespace ? ` in namespace ${namespace}` : ''} and what it runs will be removed. This cannot be undone.</p>
        <div class="row"><button type="button" class="danger" onClick=${confirm}>Delete ${name}</button><a class="button secondary" href=${detailHref(kind, namespace, name)}>Cancel</a></div>`}
    <${ErrorBanner} error=${error} />
  </section>`;
}
