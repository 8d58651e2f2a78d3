/**
 * `bin/stratus serve` as a process: the kubeconfig it writes, refusing plain HTTP off
 * loopback, and draining on SIGTERM (open watches end cleanly, exit code 0).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { parse } from 'yaml';
import { join } from 'node:path';
import { kubectl, probe, startStratusServe, type StratusServe } from '../../harness/apiserver.js';
import { stratusBin } from '../../harness/paths.js';
import { execFileP, removeDir, requireBinary, tempDir } from '../../harness/process.js';

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
      clusters: { name: string; cluster: { server: string; 'insecure-skip-tls-verify'?: boolean } }[];
      users: { user: { token?: string } }[];
    };
    assert.equal(config['current-context'], 'stratus');
    assert.equal(config.clusters[0]?.cluster.server, serve.url);
    assert.equal(config.clusters[0]?.cluster['insecure-skip-tls-verify'], true);
    assert.ok(config.users[0]?.user.token);
    const version = (await (await fetch(`${serve.url}/version`)).json()) as { major: string; minor: string; gitVersion: string };
    assert.deepEqual([version.major, version.minor], ['1', '32']);
    assert.match(serve.output(), /serving the Kubernetes API at http:\/\/127\.0\.0\.1:\d+/);
  });

  it('refuses a non-loopback address without TLS, with a clear message', async () => {
    const dir = await tempDir('serve-refuse');
    try {
      await assert.rejects(
        execFileP(process.execPath, [stratusBin(), 'serve', '--data-dir', dir, '--listen', '0.0.0.0:0', '--no-controllers']),
        (err: { code?: number; stderr?: string }) => {
          assert.equal(err.code, 1);
          assert.match(err.stderr ?? '', /refusing to serve the API without TLS on 0\.0\.0\.0:0.*--tls-cert-file/);
          return true;
        },
      );
    } finally {
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
    await fetch(`${serve.url}/api/v1/namespaces`);
    const text = await (await fetch(`${serve.url}/metrics`)).text();
    assert.match(text, /apiserver_request_total\{[^}]*verb="list"[^}]*resource="namespaces"[^}]*code="200"[^}]*\} [1-9]/);
    assert.match(text, /apiserver_request_duration_seconds_bucket\{/);
  });

  it('SIGTERM ends open watches cleanly and exits 0', async () => {
    const res = await fetch(`${serve.url}/api/v1/namespaces?watch=true&allowWatchBookmarks=true`);
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
    const ns = (await (await fetch(`${serve.url}/api/v1/namespaces/default`)).json()) as { metadata: { name: string } };
    assert.equal(ns.metadata.name, 'default');
  });
});
