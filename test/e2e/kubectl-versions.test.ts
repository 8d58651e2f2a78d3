/**
 * Every kubectl minor the README names (1.27 … 1.33, the `kubectl.1.NN` binaries Google's
 * package installs beside `kubectl`) against one `bin/stratus serve` with its controllers and
 * the simulated node: discovery, client-side and server-side apply, wait on a condition,
 * merge patch, jsonpath, printer columns, explain, auth can-i, the `stratus` category and
 * delete. The full suite (kubectl-sqlite/etcd) runs with the default kubectl; this proves
 * the everyday verbs with each older and newer client.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { kubectlVersions, kubectlWith, startStratusServe, type StratusServe } from '../harness/apiserver.js';
import { removeDir, tempDir } from '../harness/process.js';

function instance(name: string, labels: Record<string, string> = {}): string {
  const l = Object.entries({ app: 'web', ...labels }).map(([k, v]) => `    ${k}: "${v}"`).join('\n');
  return `apiVersion: compute.stratus.dev/v1alpha1
kind: Instance
metadata:
  name: ${name}
  namespace: default
  labels:
${l}
spec:
  provider: libvirt
  image: debian-12
  cpus: 1
  memoryMiB: 512
  disks:
    - name: data
      sizeGiB: 1
`;
}

const versions = kubectlVersions();

describe('kubectl 1.27 … 1.33 against stratus serve', () => {
  let serve: StratusServe;

  before(async () => {
    serve = await startStratusServe({ controllers: true, args: ['--sim-node'] });
  });
  after(async () => {
    await serve?.stop();
  });

  it('the machine has every minor the README names', () => {
    const minors = versions.map((v) => v.minor);
    for (let m = 27; m <= 33; m++) assert.ok(minors.includes(`1.${m}`), `kubectl.1.${m} missing beside kubectl (found ${minors.join(', ')})`);
  });

  for (const { minor, bin } of versions) {
    it(`kubectl ${minor}: apply, wait, patch, server-side apply, explain, can-i, delete`, async () => {
      const cache = await tempDir(`kubectl-${minor}`);
      const name = `web-${minor.replace('.', '-')}`;
      const run = async (args: string[], stdin?: string): Promise<string> => {
        const r = await kubectlWith(bin, serve.kubeconfig, cache, args, stdin, 150_000);
        assert.equal(r.code, 0, `kubectl ${minor} ${args.join(' ')} failed (${r.code}): ${r.stderr}${r.stdout}`);
        return r.stdout;
      };
      try {
        const version = JSON.parse(await run(['version', '--client', '-o', 'json'])) as { clientVersion: { gitVersion: string } };
        assert.match(version.clientVersion.gitVersion, new RegExp(`^v${minor.replace('.', '\\.')}\\.`));

        assert.match(await run(['apply', '-f', '-'], instance(name)), new RegExp(`instance.compute.stratus.dev/${name} created`));
        assert.match(await run(['apply', '-f', '-'], instance(name)), /unchanged/);
        await run(['wait', '--for=condition=Ready', `instance/${name}`, '--timeout=120s']);

        const wide = await run(['get', 'instances', name, '-o', 'wide']);
        assert.match(wide.split('\n')[0] ?? '', /^NAME\s+.*STATE/);
        assert.match(wide, new RegExp(`^${name}\\s+.*running`, 'm'));

        assert.match(await run(['patch', 'instance', name, '--type', 'merge', '-p', '{"spec":{"powerState":"Stopped"}}']), /patched/);
        assert.equal(await run(['get', 'inst', name, '-o', 'jsonpath={.spec.powerState}']), 'Stopped');

        assert.match(await run(['apply', '--server-side', '--force-conflicts', '-f', '-'], instance(name, { tier: 'front' })), /serverside-applied/);
        assert.equal(await run(['get', 'inst', name, '-o', 'jsonpath={.metadata.labels.tier}']), 'front');

        assert.match(await run(['explain', 'instance.spec.powerState']), /powerState/);
        assert.equal((await run(['auth', 'can-i', 'delete', 'instances.compute.stratus.dev'])).trim(), 'yes');
        assert.match(await run(['get', 'stratus']), new RegExp(`instance.compute.stratus.dev/${name}\\b`));

        assert.match(await run(['delete', 'instance', name, '--timeout=120s']), /deleted/);
        const gone = await kubectlWith(bin, serve.kubeconfig, cache, ['get', 'instance', name]);
        assert.notEqual(gone.code, 0);
        assert.match(gone.stderr, /NotFound|not found/);
      } finally {
        await removeDir(cache);
      }
    });
  }
});
