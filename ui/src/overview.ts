/**
 * The first page: nodes with capacity and allocation bars, Instances by state, recent
 * Warning events, Deployments in progress, and quota usage per namespace. Each panel is a
 * live list; a panel the user may not read says so instead of failing the page.
 */
import { html } from 'htm/preact';
import type { KubeObject } from './api.js';
import type { Session } from './main.js';
import { collectionPath, eventsKind, kindOf } from './kinds.js';
import { useLive } from './live.js';
import { detailHref } from './list.js';
import { Bar, ErrorBanner, StateBadge } from './widgets.js';

const num = (v: unknown): number => (typeof v === 'number' ? v : Number(v ?? 0) || 0);

export function QuotaBars({ quota }: { quota: KubeObject }) {
  const hard = (quota.spec?.hard ?? {}) as Record<string, number>;
  const used = (quota.status?.used ?? {}) as Record<string, number>;
  const units: Record<string, string> = { memoryMiB: ' MiB', diskGiB: ' GiB' };
  return html`<div class="quota" data-quota=${quota.metadata?.name}>
    ${Object.keys(hard).map((k) => html`<${Bar} label=${`${quota.metadata?.namespace}/${quota.metadata?.name}: ${k}`} used=${num(used[k])} total=${num(hard[k])} unit=${units[k] ?? ''} />`)}
  </div>`;
}

function Panel({ title, error, children }: { title: string; error: Error | null; children: unknown }) {
  return html`<section class="panel" aria-label=${title}><h2>${title}</h2>${error && (error as { code?: number }).code === 403 ? html`<p class="muted">You may not see these.</p>` : html`<${ErrorBanner} error=${error} />${children}`}</section>`;
}

export function Overview({ session }: { session: Session }) {
  const nodeKind = kindOf('ComputeNode')!;
  const instKind = kindOf('Instance')!;
  const depKind = kindOf('Deployment')!;
  const nodes = useLive(collectionPath(nodeKind));
  const instances = useLive(collectionPath(instKind, session.namespace));
  const events = useLive(collectionPath(eventsKind, session.namespace));
  const deployments = useLive(collectionPath(depKind, session.namespace));
  const quotas = useLive(collectionPath(kindOf('Quota')!, session.namespace));
  const byState = new Map<string, number>();
  for (const i of instances.items) {
    const s = String(i.status?.state ?? 'pending');
    byState.set(s, (byState.get(s) ?? 0) + 1);
  }
  const warnings = events.items
    .filter((e) => e.type === 'Warning')
    .sort((a, b) => String(b.lastTimestamp ?? '').localeCompare(String(a.lastTimestamp ?? '')))
    .slice(0, 10);
  const inProgress = deployments.items.filter((d) => ['Pending', 'Running'].includes(String(d.status?.phase ?? 'Pending')));
  return html`<div class="overview">
    <h1>Overview${session.namespace ? html` <span class="muted">namespace ${session.namespace}</span>` : ''}</h1>
    <div class="grid">
      <${Panel} title="Compute nodes" error=${nodes.error}>
        ${nodes.items.map((n) => html`<div class="node" data-node=${n.metadata?.name}>
          <h3><a href=${detailHref(nodeKind, '', n.metadata?.name)}>${n.metadata?.name}</a> <span class="muted">${String(n.spec?.provider ?? '')}</span></h3>
          <${Bar} label="CPUs" used=${num((n.status?.allocated as Record<string, unknown> | undefined)?.cpus)} total=${num((n.status?.allocatable as Record<string, unknown> | undefined)?.cpus)} />
          <${Bar} label="Memory" used=${num((n.status?.allocated as Record<string, unknown> | undefined)?.memoryMiB)} total=${num((n.status?.allocatable as Record<string, unknown> | undefined)?.memoryMiB)} unit=" MiB" />
        </div>`)}
        ${nodes.loaded && nodes.items.length === 0 ? html`<p class="muted">No compute nodes.</p>` : null}
      <//>
      <${Panel} title="Instances by state" error=${instances.error}>
        <ul class="counts">${[...byState.entries()].sort().map(([s, n]) => html`<li data-state=${s}><${StateBadge} state=${s} /> <strong>${n}</strong></li>`)}</ul>
        ${instances.loaded && instances.items.length === 0 ? html`<p class="muted">No Instances.</p>` : null}
        <p><a href="#/k/instances">All Instances</a></p>
      <//>
      <${Panel} title="Deployments in progress" error=${deployments.error}>
        ${inProgress.length === 0 ? html`<p class="muted">None.</p>` : html`<ul>${inProgress.map((d) => html`<li><a href=${detailHref(depKind, d.metadata?.namespace, d.metadata?.name)}>${d.metadata?.name}</a> <${StateBadge} state=${String(d.status?.phase ?? 'Pending')} /></li>`)}</ul>`}
      <//>
      <${Panel} title="Recent warnings" error=${events.error}>
        ${warnings.length === 0 ? html`<p class="muted">None.</p>` : html`<ul class="warnings">${warnings.map((e) => html`<li><strong>${String(e.reason ?? '')}</strong> ${String((e.involvedObject as { kind?: string })?.kind ?? '')} ${String((e.involvedObject as { name?: string })?.name ?? '')}: ${String(e.message ?? '')}</li>`)}</ul>`}
      <//>
      <${Panel} title="Quota usage" error=${quotas.error}>
        ${quotas.items.map((q) => html`<${QuotaBars} quota=${q} />`)}
        ${quotas.loaded && quotas.items.length === 0 ? html`<p class="muted">No quotas.</p>` : null}
      <//>
    </div>
  </div>`;
}
