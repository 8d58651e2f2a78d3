/**
 * Preact hooks over the API: `useLive` keeps a list current through list+watch (a change
 * shows within the watch's latency, and the list comes back by itself after a server
 * restart); `useRules` asks, once per namespace, what the user may do there.
 */
import { useEffect, useState } from 'preact/hooks';
import { listWatch, type ApiFailure, type KubeObject } from './api.js';
import { rulesFor, type Rules } from './access.js';

export interface Live {
  items: KubeObject[];
  /** False until the first list answered. */
  loaded: boolean;
  error: ApiFailure | null;
}

export function useLive(path: string | null): Live {
  const [state, setState] = useState<Live>({ items: [], loaded: false, error: null });
  useEffect(() => {
    setState({ items: [], loaded: false, error: null });
    if (path === null) return undefined;
    return listWatch(
      path,
      (items) => setState((s) => ({ ...s, items, loaded: true })),
      (error) => setState((s) => ({ ...s, error })),
    );
  }, [path]);
  return state;
}

const rulesCache = new Map<string, Promise<Rules>>();

/** Forgets the answers (after signing in as someone else). */
export function forgetRules(): void {
  rulesCache.clear();
}

export function useRules(namespace: string): Rules | undefined {
  const [rules, setRules] = useState<Rules | undefined>(undefined);
  useEffect(() => {
    let live = true;
    let p = rulesCache.get(namespace);
    if (!p) {
      p = rulesFor(namespace);
      rulesCache.set(namespace, p);
      p.catch(() => rulesCache.delete(namespace));
    }
    p.then((r) => live && setRules(r), () => live && setRules({ namespace, rules: [] }));
    return () => {
      live = false;
    };
  }, [namespace]);
  return rules;
}
