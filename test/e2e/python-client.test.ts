/**
 * The official Kubernetes Python client (Debian's python3-kubernetes, run with
 * /usr/bin/python3) against `bin/stratus serve`, beside kubectl and client-node: dynamic-client
 * CRUD on an Instance and a ConfigMap, a watch (the client sends `?watch=True`), server-side
 * apply with a field manager, and 4xx errors as ApiException carrying the Status body. The
 * script (test/e2e/python/dynamic_client.py) reports what it saw; this file asserts on it.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { startStratusServe, type StratusServe } from '../harness/apiserver.js';
import { repoRoot } from '../harness/paths.js';
import { removeDir, requireBinary, tempDir } from '../harness/process.js';

interface StatusSeen {
  http: number;
  kind: string;
  reason: string;
  code: number;
  message: string;
  causes: string[];
  isApiException: boolean;
}

interface Report {
  configmap: { created: string; got: string; replaced: string; patched: Record<string, string>; listed: string[] };
  staleReplace: StatusSeen;
  watch: { events: { type: string; data: Record<string, string> | null }[]; error: string[]; finished: boolean };
  instance: { createdGeneration: number; patchedCpus: number; patchedGeneration: number; replacedMemory: number; listed: string[] };
  getDeleted: StatusSeen;
  apply: {
    firstGeneration: number;
    secondCpus: number;
    secondGeneration: number;
    managers: [string, string][];
    forcedCpus: number;
    forcedManagers: [string, string][];
  };
  applyConflict: StatusSeen;
  notFound: StatusSeen;
  invalid: StatusSeen;
}

function runPython(script: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile('/usr/bin/python3', [script, ...args], { timeout: 120_000, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

describe('the official Python client against stratus serve', () => {
  let serve: StratusServe | undefined;
  let work = '';
  let report: Report;

  before(async () => {
    requireBinary('python3');
    const probe = await runPython('-c', ['import kubernetes.dynamic']).catch(() => ({ code: 1, stdout: '', stderr: '' }));
    if (probe.code !== 0) throw new Error('python3-kubernetes is not installed: run `make deps-apt`');
    work = await tempDir('python-client');
    serve = await startStratusServe();
    const r = await runPython(join(repoRoot(), 'test', 'e2e', 'python', 'dynamic_client.py'), [serve.kubeconfig, work]);
    const last = r.stdout.trim().split('\n').pop() ?? '';
    if (r.code !== 0 || !last.startsWith('{')) {
      throw new Error(`the Python client script failed (exit ${r.code}):\n${r.stderr}\n${r.stdout}\nserver output:\n${serve.output()}`);
    }
    report = JSON.parse(last) as Report;
  });
  after(async () => {
    await serve?.stop();
    if (work) await removeDir(work);
  });

  it('creates, reads, replaces, patches, lists and deletes a ConfigMap', () => {
    assert.deepEqual(report.configmap, { created: '1', got: '1', replaced: '2', patched: { a: '2', b: '3' }, listed: ['py-cm'] });
  });

  it('a replace with a stale resourceVersion is an ApiException carrying a 409 Conflict Status', () => {
    assert.equal(report.staleReplace.isApiException, true);
    assert.equal(report.staleReplace.http, 409);
    assert.equal(report.staleReplace.kind, 'Status');
    assert.equal(report.staleReplace.reason, 'Conflict');
  });

  it('its watch (?watch=True) sees ADDED, MODIFIED and DELETED in order', () => {
    assert.deepEqual(report.watch.error, []);
    assert.equal(report.watch.finished, true);
    assert.deepEqual(
      report.watch.events.map((e) => e.type),
      ['ADDED', 'MODIFIED', 'MODIFIED', 'DELETED'],
    );
    assert.deepEqual(report.watch.events[2]?.data, { a: '2', b: '3' });
  });

  it('creates, patches, replaces, lists and deletes an Instance (a stratus CRD)', () => {
    assert.deepEqual(report.instance, { createdGeneration: 1, patchedCpus: 2, patchedGeneration: 2, replacedMemory: 256, listed: ['py-vm'] });
    assert.equal(report.getDeleted.http, 404);
  });

  it('server-side apply records the field manager, refuses a conflicting manager with 409 and takes over with force', () => {
    assert.equal(report.apply.firstGeneration, 1);
    assert.equal(report.apply.secondCpus, 3);
    assert.equal(report.apply.secondGeneration, 2);
    assert.deepEqual(report.apply.managers, [['python-e2e', 'Apply']]);
    assert.equal(report.applyConflict.http, 409);
    assert.equal(report.applyConflict.reason, 'Conflict');
    assert.ok(report.applyConflict.causes.includes('.spec.cpus'), JSON.stringify(report.applyConflict));
    assert.equal(report.apply.forcedCpus, 4);
    assert.deepEqual(report.apply.forcedManagers, [
      ['python-e2e', 'Apply'],
      ['someone-else', 'Apply'],
    ]);
  });

  it('4xx errors are ApiExceptions with the Kubernetes Status body', () => {
    assert.deepEqual(
      { ...report.notFound, message: undefined },
      { http: 404, kind: 'Status', reason: 'NotFound', code: 404, message: undefined, causes: [], isApiException: true },
    );
    assert.match(report.notFound.message, /instances\.compute\.stratus\.dev "does-not-exist" not found/);
    assert.equal(report.invalid.isApiException, true);
    assert.equal(report.invalid.http, 422);
    assert.equal(report.invalid.reason, 'Invalid');
    assert.ok(report.invalid.causes.includes('spec.cpus'), JSON.stringify(report.invalid));
  });
});
