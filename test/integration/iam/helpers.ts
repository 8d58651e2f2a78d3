/**
 * Shared by the iam integration tests: HTTPS against an in-process API server as its admin
 * (the kubeconfig it wrote), as any client would send it, with optional impersonation
 * headers (the identity seam the legacy proxy uses), and the objects they create.
 */
import type { ApiServer } from '../../../apiserver/server.js';
import { kubeFetch, type KubeFetch } from '../../harness/kubefetch.js';

const fetchers = new Map<string, KubeFetch>();

/** Makes `call(server.url, …)` reach this server as its admin. */
export function useServer(server: ApiServer): ApiServer {
  fetchers.set(server.url, kubeFetch(server.kubeconfigPath));
  return server;
}
export interface Reply {
  status: number;
  body: Record<string, unknown>;
}

export interface As {
  user: string;
  groups?: string[];
}

export async function call(base: string, method: string, path: string, body?: unknown, as?: As, contentType = 'application/json'): Promise<Reply> {
  const headers: Record<string, string> = { accept: 'application/json' };
  if (body !== undefined) headers['content-type'] = contentType;
  const h = new Headers(headers);
  if (as) {
    h.set('impersonate-user', as.user);
    for (const g of as.groups ?? []) h.append('impersonate-group', g);
  }
  const adminFetch = fetchers.get(base);
  if (!adminFetch) throw new Error(`no server registered with useServer for ${base}`);
  const res = await adminFetch(base + path, { method, headers: h, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
  const text = await res.text();
  return { status: res.status, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
}

export const instancesPath = (ns: string): string => `/apis/compute.stratus.dev/v1alpha1/namespaces/${ns}/instances`;
export const quotasPath = (ns: string): string => `/apis/iam.stratus.dev/v1alpha1/namespaces/${ns}/quotas`;
export const groupsPath = '/apis/iam.stratus.dev/v1alpha1/groups';

export function instance(name: string, cpus = 1, memoryMiB = 128, disks: number[] = []): unknown {
  return {
    apiVersion: 'compute.stratus.dev/v1alpha1',
    kind: 'Instance',
    metadata: { name },
    spec: { provider: 'docker', image: 'busybox', cpus, memoryMiB, disks: disks.map((sizeGiB, i) => ({ name: `d${i}`, sizeGiB })) },
  };
}

export function quota(name: string, hard: Record<string, number>): unknown {
  return { apiVersion: 'iam.stratus.dev/v1alpha1', kind: 'Quota', metadata: { name }, spec: { hard } };
}

export async function ensureNamespace(base: string, name: string): Promise<void> {
  const r = await call(base, 'POST', '/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name } });
  if (r.status !== 201 && r.status !== 409) throw new Error(`namespace ${name}: ${r.status} ${JSON.stringify(r.body)}`);
}

export interface QuotaStatusView {
  used?: Record<string, number>;
  pending?: unknown[];
}

export async function quotaStatus(base: string, ns: string, name: string): Promise<QuotaStatusView> {
  const r = await call(base, 'GET', `${quotasPath(ns)}/${name}`);
  if (r.status !== 200) throw new Error(`quota ${ns}/${name}: ${r.status}`);
  return (r.body.status ?? {}) as QuotaStatusView;
}
