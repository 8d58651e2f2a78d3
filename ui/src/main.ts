/**
 * The console's shell: sign-in, the navigation, the namespace choice and the hash router
 * (`#/`, `#/k/PLURAL`, `#/k/PLURAL/NS/NAME`, `#/k/PLURAL/NS/NAME/delete`, `#/new/instances`,
 * `#/new/PLURAL/yaml`). Hash routes keep the server side to a handful of static files.
 */
import { render } from 'preact';
import { html } from 'htm/preact';
import { useEffect, useState } from 'preact/hooks';
import { forgetToken, saveToken, savedToken, whenUnauthorized, ApiFailure } from './api.js';
import { whoAmI, allows, canI, type Identity } from './access.js';
import { forgetRules, useRules } from './live.js';
import { kinds, kindByPlural } from './kinds.js';
import { ErrorBanner } from './widgets.js';
import { Overview } from './overview.js';
import { ListPage } from './list.js';
import { DetailPage, DeletePage } from './detail.js';
import { InstanceForm, YamlCreate } from './create.js';

export interface Session {
  identity: Identity;
  /** The namespace pages show; '' = all namespaces (for who may list across them). */
  namespace: string;
}

const NS_KEY = 'stratus.namespace';

function useHash(): string {
  const [hash, setHash] = useState(location.hash);
  useEffect(() => {
    const on = (): void => setHash(location.hash);
    window.addEventListener('hashchange', on);
    return () => window.removeEventListener('hashchange', on);
  }, []);
  return hash;
}

function SignIn({ onSignedIn, reason }: { onSignedIn: (s: Session) => void; reason: string }) {
  const [token, setToken] = useState('');
  const [namespace, setNamespace] = useState(sessionStorage.getItem(NS_KEY) ?? 'default');
  const [error, setError] = useState<Error | null>(reason ? new ApiFailure(0, reason) : null);
  const [busy, setBusy] = useState(false);
  const submit = async (e: Event): Promise<void> => {
    e.preventDefault();
    setBusy(true);
    saveToken(token.trim());
    try {
      const identity = await whoAmI();
      sessionStorage.setItem(NS_KEY, namespace.trim());
      forgetRules();
      onSignedIn({ identity, namespace: namespace.trim() });
    } catch (err) {
      forgetToken();
      setError(err instanceof ApiFailure && err.code === 401 ? new ApiFailure(401, 'the API server did not accept this token (unknown, expired or revoked)') : (err as Error));
    } finally {
      setBusy(false);
    }
  };
  return html`<main class="signin">
    <h1>stratus console</h1>
    <form onSubmit=${submit} aria-label="Sign in">
      <p>Sign in with an access token (<code>stratus token create</code>, <code>stratus user create --kubeconfig-out</code> or <code>stratus login</code> print one).</p>
      <label>Token<input name="token" type="password" autocomplete="off" required value=${token} onInput=${(e: Event) => setToken((e.target as HTMLInputElement).value)} autofocus /></label>
      <label>Namespace <span class="muted">(empty: all namespaces, if you may list them)</span><input name="namespace" value=${namespace} onInput=${(e: Event) => setNamespace((e.target as HTMLInputElement).value)} /></label>
      <${ErrorBanner} error=${error} />
      <button type="submit" disabled=${busy}>Sign in</button>
    </form>
  </main>`;
}

function Nav({ session, onNamespace, onSignOut }: { session: Session; onNamespace: (ns: string) => void; onSignOut: () => void }) {
  const rules = useRules(session.namespace || 'default');
  const [ns, setNs] = useState(session.namespace);
  // Cluster-scoped admin kinds (Users, Groups) are asked about cluster-wide: a RoleBinding in
  // the namespace shows their rules there without granting them.
  const [clusterWide, setClusterWide] = useState<Set<string>>(new Set());
  useEffect(() => {
    let live = true;
    const asks = kinds.filter((k) => k.adminOnly && !k.namespaced).map(async (k) => ((await canI('list', k.group, k.plural).catch(() => false)) ? k.plural : ''));
    void Promise.all(asks).then((allowed) => live && setClusterWide(new Set(allowed.filter((p) => p !== ''))));
    return () => {
      live = false;
    };
  }, [session.identity.username]);
  const visible = kinds.filter((k) => !k.adminOnly || (k.namespaced ? allows(rules, 'list', k.group, k.plural) : clusterWide.has(k.plural)));
  return html`<header class="top">
    <a class="skip" href="#main">Skip to content</a>
    <a class="brand" href="#/">stratus</a>
    <nav aria-label="Kinds">
      <ul>
        <li><a href="#/">Overview</a></li>
        ${visible.map((k) => html`<li><a href=${`#/k/${k.plural}`} data-kind=${k.plural}>${k.title}</a></li>`)}
      </ul>
    </nav>
    <form class="ns" onSubmit=${(e: Event) => { e.preventDefault(); onNamespace(ns.trim()); }}>
      <label>Namespace <input name="ns" value=${ns} placeholder="all" size="10" onInput=${(e: Event) => setNs((e.target as HTMLInputElement).value)} /></label>
    </form>
    <span class="who" title=${session.identity.groups.join(', ')}>${session.identity.username}</span>
    <button type="button" class="link" onClick=${onSignOut}>Sign out</button>
  </header>`;
}

function Route({ session, hash }: { session: Session; hash: string }) {
  const parts = hash.replace(/^#\/?/, '').split('/').filter((p) => p !== '').map(decodeURIComponent);
  if (parts.length === 0) return html`<${Overview} session=${session} />`;
  if (parts[0] === 'new' && parts[1] === 'instances' && parts.length === 2) return html`<${InstanceForm} session=${session} />`;
  if (parts[0] === 'new' && parts[2] === 'yaml') {
    const k = kindByPlural(parts[1] ?? '');
    if (k) return html`<${YamlCreate} session=${session} kind=${k} />`;
  }
  if (parts[0] === 'k') {
    const k = kindByPlural(parts[1] ?? '');
    if (k && parts.length === 2) return html`<${ListPage} session=${session} kind=${k} />`;
    if (k && parts.length === 4) return html`<${DetailPage} kind=${k} namespace=${parts[2] === '_' ? '' : parts[2]} name=${parts[3]} />`;
    if (k && parts.length === 5 && parts[4] === 'delete') return html`<${DeletePage} kind=${k} namespace=${parts[2] === '_' ? '' : parts[2]} name=${parts[3]} />`;
  }
  return html`<p>Nothing here. <a href="#/">Overview</a></p>`;
}

function App() {
  const hash = useHash();
  const [session, setSession] = useState<Session | null>(null);
  const [reason, setReason] = useState('');
  const [checking, setChecking] = useState(savedToken() !== null);
  useEffect(() => {
    whenUnauthorized(() => {
      forgetToken();
      setReason('your token is no longer accepted: sign in again');
      setSession(null);
    });
    if (savedToken() === null) return;
    whoAmI().then(
      (identity) => setSession({ identity, namespace: sessionStorage.getItem(NS_KEY) ?? 'default' }),
      () => forgetToken(),
    ).finally(() => setChecking(false));
  }, []);
  if (checking) return html`<p class="muted">Connecting…</p>`;
  if (!session) return html`<${SignIn} reason=${reason} onSignedIn=${(s: Session) => { setReason(''); setSession(s); }} />`;
  const signOut = (): void => {
    forgetToken();
    forgetRules();
    setSession(null);
  };
  const setNamespace = (namespace: string): void => {
    sessionStorage.setItem(NS_KEY, namespace);
    setSession({ ...session, namespace });
  };
  return html`<${Nav} session=${session} onNamespace=${setNamespace} onSignOut=${signOut} />
    <main id="main" tabindex="-1"><${Route} key=${session.namespace} session=${session} hash=${hash} /></main>`;
}

render(html`<${App} />`, document.getElementById('app')!);
