/**
 * `stratus serve` has one `/metrics`: the API server's series, the in-process controllers'
 * (`controller_runtime_*`, `workqueue_*`) and the providers' (`stratus_provider_*`), read
 * with kubectl and checked by Prometheus's own linter (`promtool check metrics`).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import type { Instance } from '../../crds/types.js';
import { KubeClient } from '../../runtime/client.js';
import { Resources } from '../../controllers/resources.js';
import { kubectl, startStratusServe, type StratusServe } from '../harness/apiserver.js';
import { requireBinary, waitFor } from '../harness/process.js';

/** Runs `promtool check metrics` on `text`; resolves to its exit code and output. */
function promtoolCheck(text: string): Promise<{ code: number; output: string }> {
  const bin = requireBinary('promtool');
  return new Promise((resolve, reject) => {
    const child = spawn(bin, ['check', 'metrics'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (b: Buffer) => (output += b.toString()));
    child.stderr.on('data', (b: Buffer) => (output += b.toString()));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code: code ?? -1, output }));
    child.stdin.end(text);
  });
}

describe('stratus serve: one /metrics for the API server, the controllers and the providers', () => {
  let serve: StratusServe;
  let client: KubeClient;

  before(async () => {
    serve = await startStratusServe({ controllers: true, args: ['--sim-node'] });
    client = KubeClient.fromFile(serve.kubeconfig);
  });

  after(async () => {
    client?.close();
    await serve?.stop();
  });

  it('serves every component’s series once, and promtool finds nothing to complain about', async () => {
    const instances = client.resource<Instance>(Resources.instances);
    await instances.create({
      apiVersion: 'compute.stratus.dev/v1alpha1',
      kind: 'Instance',
      metadata: { name: 'metrics-vm', namespace: 'default' },
      spec: { provider: 'libvirt', image: 'debian-12', cpus: 1, memoryMiB: 256, nodeName: 'sim' },
    });
    await waitFor('the Instance to run', async () => (await instances.get('default', 'metrics-vm'))?.status?.state === 'running', 60_000);

    const raw = await kubectl(serve.kubeconfig, join(serve.dataDir, 'kubectl-cache'), ['get', '--raw', '/metrics']);
    assert.equal(raw.code, 0, raw.stderr);
    const text = raw.stdout;
    // the API server's
    assert.match(text, /^apiserver_request_total\{/m);
    // the in-process controllers'
    assert.match(text, /^controller_runtime_reconcile_total\{controller="instance",result="requeue_after"\} [1-9]/m);
    assert.match(text, /^controller_runtime_reconcile_errors_total\{controller="computenode"\} \d+/m);
    assert.match(text, /^workqueue_depth\{name="instance"\} \d+/m);
    assert.match(text, /^workqueue_adds_total\{name="network"\} \d+/m);
    // the providers'
    assert.match(text, /^stratus_provider_requests_total\{provider="libvirt",operation="create",result="success"\} 1$/m);
    assert.match(text, /^stratus_provider_request_duration_seconds_count\{provider="libvirt",operation="observe"\} [1-9]/m);
    // process metrics once, not once per component
    assert.equal(text.match(/^# TYPE process_cpu_seconds_total /gm)?.length, 1);

    const lint = await promtoolCheck(text);
    assert.equal(lint.code, 0, lint.output);
    assert.equal(lint.output.trim(), '', 'promtool reports no problems');
  });
});
