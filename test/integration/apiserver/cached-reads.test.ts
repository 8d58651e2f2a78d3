/**
 * GET and LIST from the watch cache keep kube's resourceVersion rules, on both backends
 * (SQLite delivers changes synchronously; etcd's watch lags its writes, which is where a
 * cache can go stale):
 * - a consistent read (`resourceVersion` unset) right after a write sees it — also when the
 *   last write was to another resource;
 * - a LIST at resourceVersion X never returns state older than X;
 * - `resourceVersion=0` answers from whatever the cache holds;
 * - a limited LIST's pages (first from the cache, the rest from the store) form one revision's
 *   state even when writes land between pages;
 * - `resourceVersionMatch=Exact` reads that past revision;
 * - a resourceVersion ahead of the store is a 504 "Too large resource version".
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { startApiServer, type ApiServer } from '../../../apiserver/server.js';
import { kubeFetch, type KubeFetch } from '../../harness/kubefetch.js';
import { startEtcd, type EtcdInstance } from '../../harness/etcd.js';
import { repoRoot } from '../../harness/paths.js';
import { removeDir, tempDir } from '../../harness/process.js';

type Obj = Record<string, unknown> & { metadata: Record<string, string> };
type List = { metadata: { resourceVersion: string; continue?: string; remainingItemCount?: number }; items: Obj[] };

const cms = '/api/v1/namespaces/default/configmaps';
const secrets = '/api/v1/namespaces/default/secrets';

for (const backend of ['sqlite', 'etcd'] as const) {
  describe(`reads from the watch cache (${backend})`, () => {
    let dir: string;
    let etcd: EtcdInstance | undefined;
    let server: ApiServer;
    /** As the admin of the kubeconfig the server wrote. */
    let adminFetch: KubeFetch;
    const send = async (method: string, path: string, body?: unknown, type = 'application/json'): Promise<{ status: number; body: Obj & List }> => {
      const res = await adminFetch(server.url + path, { method, headers: { 'content-type': type }, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
      const text = await res.text();
      return { status: res.status, body: (text ? JSON.parse(text) : {}) as Obj & List };
    };
    const rvOf = (o: { metadata: { resourceVersion?: string } }): number => Number(o.metadata.resourceVersion);

    before(async () => {
      dir = await tempDir(`cached-reads-${backend}`);
      if (backend === 'etcd') etcd = await startEtcd();
      server = await startApiServer({
        dataDir: dir,
        listen: '127.0.0.1:0',
        crdDir: join(repoRoot(), 'crds'),
        ...(etcd ? { etcdServers: [etcd.endpoint] } : {}),
      });
      adminFetch = kubeFetch(server.kubeconfigPath);
    });
    after(async () => {
      await server?.close();
      await etcd?.stop();
      await removeDir(dir);
    });

    it('a consistent GET and LIST right after a write see it, also after a write to another resource', async () => {
      for (let i = 0; i < 30; i++) {
        const name = `fresh-${i}`;
        const created = await send('POST', cms, { metadata: { name }, data: { n: String(i) } });
        assert.equal(created.status, 201);
        const got = await send('GET', `${cms}/${name}`);
        assert.equal(got.status, 200, `GET ${name} right after its create`);
        assert.equal(got.body.metadata.resourceVersion, created.body.metadata.resourceVersion);
        const patched = await send('PATCH', `${cms}/${name}`, { data: { n: `${i}-b` } }, 'application/merge-patch+json');
        // the newest write is to another resource: the configmap cache must still count as current
        await send('POST', secrets, { metadata: { name: `other-${i}` } });
        const list = await send('GET', cms);
        const seen = list.body.items.find((o) => o.metadata.name === name);
        assert.ok(seen, `LIST right after the create of ${name}`);
        assert.deepEqual(seen.data, { n: `${i}-b` });
        assert.equal(seen.metadata.resourceVersion, patched.body.metadata.resourceVersion);
        assert.ok(rvOf(list.body) >= rvOf(patched.body));
      }
    });

    it('a LIST at resourceVersion X never returns anything older than X', async () => {
      await send('POST', cms, { metadata: { name: 'aged' }, data: { v: '1' } });
      for (let i = 2; i <= 20; i++) {
        const w = await send('PATCH', `${cms}/aged`, { data: { v: String(i) } }, 'application/merge-patch+json');
        const x = rvOf(w.body);
        for (const q of [`resourceVersion=${x}`, `resourceVersion=${x}&resourceVersionMatch=NotOlderThan`]) {
          const list = await send('GET', `${cms}?${q}`);
          assert.equal(list.status, 200);
          assert.ok(rvOf(list.body) >= x, `list rv ${list.body.metadata.resourceVersion} >= ${x}`);
          const aged = list.body.items.find((o) => o.metadata.name === 'aged');
          assert.ok(aged && rvOf(aged) >= x && (aged.data as Record<string, string> | undefined)?.v === String(i), `${q}: ${JSON.stringify(aged?.metadata)}`);
          for (const o of list.body.items) assert.ok(rvOf(o) <= rvOf(list.body), 'no item newer than the list');
        }
        const got = await send('GET', `${cms}/aged?resourceVersion=${x}`);
        assert.ok(rvOf(got.body) >= x);
      }
    });

    it('resourceVersion=0 answers from the cache', async () => {
      const list = await send('GET', `${cms}?resourceVersion=0`);
      assert.equal(list.status, 200);
      assert.ok(list.body.items.length > 0);
      const got = await send('GET', `${cms}/aged?resourceVersion=0`);
      assert.equal(got.status, 200);
    });

    it('the pages of a limited LIST are one revision, even with writes between pages', async () => {
      const all = (await send('GET', cms)).body.items.map((o) => o.metadata.name).sort();
      const names: string[] = [];
      let path = `${cms}?limit=7`;
      let rv: string | undefined;
      for (let page = 0; ; page++) {
        const r = await send('GET', path);
        assert.equal(r.status, 200);
        rv ??= r.body.metadata.resourceVersion;
        names.push(...r.body.items.map((o) => o.metadata.name));
        for (const o of r.body.items) assert.ok(rvOf(o) <= Number(rv));
        // writes between pages: a new object and a changed one must not show up
        await send('POST', cms, { metadata: { name: `zz-between-${page}` } });
        if (!r.body.metadata.continue) break;
        if (page === 0) assert.equal(r.body.metadata.remainingItemCount, all.length - 7);
        path = `${cms}?limit=7&continue=${encodeURIComponent(r.body.metadata.continue)}`;
      }
      assert.deepEqual(names, all);
    });

    it('resourceVersionMatch=Exact reads that past revision', async () => {
      const first = await send('POST', cms, { metadata: { name: 'past' }, data: { v: 'old' } });
      await send('PATCH', `${cms}/past`, { data: { v: 'new' } }, 'application/merge-patch+json');
      const list = await send('GET', `${cms}?resourceVersion=${first.body.metadata.resourceVersion}&resourceVersionMatch=Exact`);
      assert.equal(list.status, 200);
      assert.equal(list.body.metadata.resourceVersion, first.body.metadata.resourceVersion);
      assert.deepEqual(list.body.items.find((o) => o.metadata.name === 'past')?.data, { v: 'old' });
    });

    it('a resourceVersion ahead of the store is a 504 Too large resource version', async () => {
      const r = await send('GET', `${cms}?resourceVersion=999999999`);
      assert.equal(r.status, 504);
      assert.equal(r.body.kind, 'Status');
      assert.equal(r.body.reason, 'Timeout');
      assert.match(String(r.body.message), /Too large resource version/);
    });
  });
}
