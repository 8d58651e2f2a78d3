/**
 * A live, sortable, filterable table of one kind: list+watch of the collection in the chosen
 * namespace (or all), filtered by a label selector the server applies and by a text filter
 * on the name; a column header sorts.
 */
import { html } from 'htm/preact';
import { useState } from 'preact/hooks';
import type { Session } from './main.js';
import { allows } from './access.js';
import { collectionPath, type Kind } from './kinds.js';
import { useLive, useRules } from './live.js';
import { ErrorBanner, StateBadge } from './widgets.js';

export function detailHref(kind: Kind, namespace: string | undefined, name: string | undefined): string {
  return `#/k/${kind.plural}/${encodeURIComponent(namespace || '_')}/${encodeURIComponent(name ?? '')}`;
}

export function ListPage({ session, kind }: { session: Session; kind: Kind }) {
  const [selector, setSelector] = useState('');
  const [applied, setApplied] = useState('');
  const [filter, setFilter] = useState('');
  const [sort, setSort] = useState<{ col: number; desc: boolean }>({ col: 0, desc: false });
  const rules = useRules(session.namespace || 'default');
  const path = collectionPath(kind, session.namespace) + (applied ? `?labelSelector=${encodeURIComponent(applied)}` : '');
  const live = useLive(path);
  const col = kind.columns[sort.col] ?? kind.columns[0]!;
  const rows = live.items
    .filter((o) => (o.metadata?.name ?? '').includes(filter))
    .sort((a, b) => {
      const x = col.value(a);
      const y = col.value(b);
      const n = x !== '' && y !== '' && !Number.isNaN(Number(x)) && !Number.isNaN(Number(y)) ? Number(x) - Number(y) : x.localeCompare(y);
      return sort.desc ? -n : n;
    });
  const canCreate = kind.namespaced && session.namespace !== '' && allows(rules, 'create', kind.group, kind.plural);
  return html`<section aria-labelledby="list-title">
    <div class="page-head">
      <h1 id="list-title">${kind.title}</h1>
      ${canCreate && kind.plural === 'instances' ? html`<a class="button" href="#/new/instances">Create Instance</a>` : null}
      ${canCreate ? html`<a class="button secondary" href=${`#/new/${kind.plural}/yaml`}>Create from YAML</a>` : null}
    </div>
    <form class="filters" onSubmit=${(e: Event) => { e.preventDefault(); setApplied(selector.trim()); }}>
      <label>Name contains <input name="filter" value=${filter} onInput=${(e: Event) => setFilter((e.target as HTMLInputElement).value)} /></label>
      <label>Label selector <input name="selector" placeholder="app=web,tier!=db" value=${selector} onInput=${(e: Event) => setSelector((e.target as HTMLInputElement).value)} /></label>
      <button type="submit" class="secondary">Apply</button>
    </form>
    <${ErrorBanner} error=${live.error} />
    <div class="table-wrap">
      <table class="list" data-kind=${kind.plural}>
        <thead><tr>${kind.columns.map(
          (c, i) => html`<th aria-sort=${sort.col === i ? (sort.desc ? 'descending' : 'ascending') : 'none'}>
            <button type="button" class="sort" onClick=${() => setSort({ col: i, desc: sort.col === i ? !sort.desc : false })}>${c.title}${sort.col === i ? (sort.desc ? ' ▼' : ' ▲') : ''}</button>
          </th>`,
        )}</tr></thead>
        <tbody>
          ${rows.map(
            (o) => html`<tr data-name=${o.metadata?.name}>
              ${kind.columns.map((c, i) =>
                i === 0
                  ? html`<td><a href=${detailHref(kind, o.metadata?.namespace, o.metadata?.name)}>${c.value(o)}</a></td>`
                  : c.title === 'State' || c.title === 'Phase'
                    ? html`<td data-col=${c.title}><${StateBadge} state=${c.value(o)} /></td>`
                    : html`<td data-col=${c.title}>${c.value(o)}</td>`,
              )}
            </tr>`,
          )}
        </tbody>
      </table>
      ${live.loaded && rows.length === 0 ? html`<p class="muted">No ${kind.title.toLowerCase()}${session.namespace ? ` in namespace ${session.namespace}` : ''}.</p>` : null}
    </div>
  </section>`;
}
