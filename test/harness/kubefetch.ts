/**
 * `fetch` as a kubeconfig's user: the same call shape and `Response` as the global fetch,
 * over HTTPS with the kubeconfig's CA and client certificate (or bearer token). Node's
 * global fetch cannot take a client certificate without the undici package, so this goes
 * through `node:https` with one keep-alive agent per kubeconfig.
 */
import { readFileSync } from 'node:fs';
import { Agent, request } from 'node:https';
import type { IncomingHttpHeaders } from 'node:http';
import { Readable } from 'node:stream';
import { parse } from 'yaml';

export type KubeFetch = (url: string, init?: RequestInit) => Promise<Response>;

interface KubeconfigDoc {
  clusters?: { cluster: { server: string; 'certificate-authority-data'?: string } }[];
  users?: { user: { 'client-certificate-data'?: string; 'client-key-data'?: string; token?: string } }[];
}

const fromB64 = (s: string | undefined): string | undefined => (s ? Buffer.from(s, 'base64').toString('utf8') : undefined);

/** The credentials of a kubeconfig's first cluster and user. */
export function kubeconfigCredentials(path: string): { server: string; ca?: string; cert?: string; key?: string; token?: string } {
  const doc = parse(readFileSync(path, 'utf8')) as KubeconfigDoc;
  const cluster = doc.clusters?.[0]?.cluster;
  const user = doc.users?.[0]?.user ?? {};
  if (!cluster) throw new Error(`${path} has no cluster`);
  const out: { server: string; ca?: string; cert?: string; key?: string; token?: string } = { server: cluster.server };
  const ca = fromB64(cluster['certificate-authority-data']);
  const cert = fromB64(user['client-certificate-data']);
  const key = fromB64(user['client-key-data']);
  if (ca) out.ca = ca;
  if (cert) out.cert = cert;
  if (key) out.key = key;
  if (user.token) out.token = user.token;
  return out;
}

function headerPairs(h: IncomingHttpHeaders): [string, string][] {
  const out: [string, string][] = [];
  for (const [k, v] of Object.entries(h)) {
    if (v === undefined) continue;
    for (const one of Array.isArray(v) ? v : [v]) out.push([k, one]);
  }
  return out;
}

/** A fetch that authenticates as the kubeconfig's user (or, with `anonymous`, sends no credentials but still trusts its CA). */
export function kubeFetch(kubeconfig: string, opts: { anonymous?: boolean; token?: string } = {}): KubeFetch {
  const creds = kubeconfigCredentials(kubeconfig);
  const useCert = !opts.anonymous && opts.token === undefined;
  const agent = new Agent({
    keepAlive: true,
    maxSockets: 64,
    ...(creds.ca ? { ca: creds.ca } : {}),
    ...(useCert && creds.cert ? { cert: creds.cert } : {}),
    ...(useCert && creds.key ? { key: creds.key } : {}),
  });
  const bearer = opts.anonymous ? undefined : (opts.token ?? creds.token);
  return (url, init = {}) =>
    new Promise<Response>((resolve, reject) => {
      const headers: Record<string, string> = {};
      new Headers(init.headers).forEach((v, k) => (headers[k] = v));
      if (bearer && headers.authorization === undefined) headers.authorization = `Bearer ${bearer}`;
      let body: Buffer | undefined;
      if (typeof init.body === 'string') body = Buffer.from(init.body);
      else if (init.body instanceof Uint8Array) body = Buffer.from(init.body);
      else if (init.body !== undefined && init.body !== null) throw new Error('kubeFetch: only string and byte bodies are supported');
      if (body) headers['content-length'] = String(body.length);
      const req = request(url, { method: init.method ?? 'GET', headers, agent, ...(init.signal ? { signal: init.signal } : {}) }, (res) => {
        const status = res.statusCode ?? 0;
        const nullBody = status === 204 || status === 304 || (init.method ?? 'GET').toUpperCase() === 'HEAD';
        if (nullBody) res.resume();
        resolve(
          new Response(nullBody ? null : (Readable.toWeb(res) as ReadableStream<Uint8Array>), {
            status,
            statusText: res.statusMessage ?? '',
            headers: headerPairs(res.headers),
          }),
        );
      });
      req.on('error', reject);
      req.end(body);
    });
}
