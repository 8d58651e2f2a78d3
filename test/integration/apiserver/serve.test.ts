/**
 * `bin/stratus serve` as a process: the admin kubeconfig it writes (its CA, a client
 * certificate CN admin / O system:masters), HTTPS only, and draining on SIGTERM (open
 * watches end cleanly, exit code 0).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { get as httpGet } from 'node:http';
import { parse } from 'yaml';
import { join } from 'node:path';
import { kubectl, probe, startStratusServe, type StratusServe } from '../../harness/apiserver.js';
import { stratusBin } from '../../harness/paths.js';
import { execFileP, freePort, removeDir, requireBinary, startDaemon, tempDir, waitFor } from '../../harness/process.js';

describe('stratus serve', () => {
  let serve: StratusServe;
  before(async () => {
    serve = await startStratusServe();
  });
  after(async () => {
    await serve?.stop();
  });

  it('writes a kubeconfig with a stratus context that reaches the server', async () => {
    const config = parse(await readFile(serve.kubeconfig, 'utf8')) as {
      'current-context': string;
      clusters: { name: string; cluster: { server: string; 'insecure-skip-tls-verify'?: boolean; 'certificate-authority-data'?: string } }[];
      users: { user: { token?: string; 'client-certificate-data'?: string } }[];
    };
    assert.equal(config['current-context'], 'stratus');
    assert.equal(config.clusters[0]?.cluster.server, serve.url);
    assert.equal(config.clusters[0]?.cluster['insecure-skip-tls-verify'], undefined, 'the CA is pinned, not skipped');
    const ca = new X509Certificate(Buffer.from(config.clusters[0]?.cluster['certificate-authority-data'] ?? '', 'base64'));
    const admin = new X509Certificate(Buffer.from(config.users[0]?.user['client-certificate-data'] ?? '', 'base64'));
    assert.ok(admin.checkIssued(ca) && admin.verify(ca.publicKey), 'the admin certificate is signed by the CA');
    assert.equal(admin.subject, 'CN=admin\nO=system:masters');
    const version = (await (await serve.fetch(`${serve.url}/version`)).json()) as { major: string; minor: string; gitVersion: string };
    assert.deepEqual([version.major, version.minor], ['1', '32']);
    assert.match(serve.output(), /serving the Kubernetes API at https:\/\/127\.0\.0\.1:\d+/);
  });

  it('serves no plain HTTP, on loopback or any other address', async () => {
    const plainAnswer = (url: string): Promise<string> =>
      new Promise<string>((resolve) => {
        const req = httpGet(`${url.replace(/^https:/, 'http:')}/version`, (res) => {
          res.resume();
          resolve(`HTTP ${res.statusCode ?? 0}`);
        });
        req.on('error', (err) => resolve(`error: ${err.message}`));
      });
    assert.doesNotMatch(await plainAnswer(serve.url), /^HTTP 2/, 'loopback: a plain HTTP request is not served');
    const dir = await tempDir('serve-any');
    const port = await freePort();
    const d = startDaemon(process.execPath, [stratusBin(), 'serve', '--data-dir', dir, '--listen', `0.0.0.0:${port}`, '--no-controllers', '--legacy-listen', 'off']);
    try {
      await waitFor('serve on 0.0.0.0', () => /serving the Kubernetes API at https:/.test(d.output()), 30_000, 50);
      assert.equal(await probe(`https://127.0.0.1:${port}/healthz`), 200, 'HTTPS on every address');
      assert.doesNotMatch(await plainAnswer(`https://127.0.0.1:${port}`), /^HTTP 2/);
    } finally {
      await d.stop(10_000);
      await removeDir(dir);
    }
  });

  it('serves HTTPS with --tls-cert-file/--tls-private-key-file, and kubectl uses its kubeconfig', async () => {
    const dir = await tempDir('serve-tls');
    let tls: StratusServe | undefined;
    const cache = await tempDir('kubectl-cache');
    try {
      const certFile = join(dir, 'tls.crt');
      const keyFile = join(dir, 'tls.key');
      await execFileP(requireBinary('openssl'), [
        'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1',
        '-subj', '/CN=stratus-test', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost',
        '-keyout', keyFile, '-out', certFile,
      ]);
      tls = await startStratusServe({ tls: { certFile, keyFile } });
      assert.match(tls.url, /^https:/);
      assert.equal(await probe(`${tls.url}/healthz`), 200);
      const r = await kubectl(tls.kubeconfig, cache, ['get', 'namespaces', '-o', 'name']);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /namespace\/default/);
    } finally {
      await tls?.stop();
      await removeDir(dir);
      await removeDir(cache);
    }
  });

  it('serves /metrics with apiserver_request_total', async () => {
    await serve.fetch(`${serve.url}/api/v1/namespaces`);
    const text = await (await serve.fetch(`${serve.url}/metrics`)).text();
    assert.match(text, /apiserver_request_total\{[^}]*verb="list"[^}]*resource="namespaces"[^}]*code="200"[^}]*\} [1-9]/);
    assert.match(text, /apiserver_request_duration_seconds_bucket\{/);
  });

  it('SIGTERM ends open watches cleanly and exits 0', async () => {
    const res = await serve.fetch(`${serve.url}/api/v1/namespaces?watch=true&allowWatchBookmarks=true`);
    assert.equal(res.status, 200);
    const reader = res.body?.getReader();
    assert.ok(reader);
    const first = await reader.read();
    assert.match(new TextDecoder().decode(first.value), /"type":"ADDED"/);
    const drained = (async () => {
      for (;;) {
        const r = await reader.read();
        if (r.done) return 'ended';
      }
    })();
    const code = await serve.terminate();
    assert.equal(await drained, 'ended', 'the watch stream ended without an error');
    assert.equal(code, 0);
    // The same data dir serves again.
    await serve.restart();
    const ns = (await (await serve.fetch(`${serve.url}/api/v1/namespaces/default`)).json()) as { metadata: { name: string } };
    assert.equal(ns.metadata.name, 'default');
  });
});
