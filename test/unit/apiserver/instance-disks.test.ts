/**
 * InstanceDiskAdmission: an Instance's data disks only grow; a lower sizeGiB is a 422 naming the field.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { InstanceDiskAdmission } from '../../../apiserver/instance-disks.js';
import { ApiError } from '../../../apiserver/errors.js';
import type { AdmissionAttributes } from '../../../apiserver/admission.js';
import type { KubeObject, Resource } from '../../../apiserver/resources.js';

const instances = { group: 'compute.stratus.dev', plural: 'instances', kind: 'Instance' } as Resource;
const vm = (...disks: [string, number][]): KubeObject => ({ apiVersion: 'compute.stratus.dev/v1alpha1', kind: 'Instance', metadata: { name: 'vm' }, spec: { disks: disks.map(([name, sizeGiB]) => ({ name, sizeGiB })) } });

const admit = (a: Partial<AdmissionAttributes>): Promise<void> =>
  new InstanceDiskAdmission().admit({ operation: 'UPDATE', resource: instances, name: 'vm', namespace: 'default', dryRun: false, ...a });

const cases: { name: string; old: KubeObject; next: KubeObject; refused?: { fields: string[]; message: RegExp } }[] = [
  { name: 'growing a disk', old: vm(['data', 5]), next: vm(['data', 10]) },
  { name: 'an unchanged size', old: vm(['data', 5]), next: vm(['data', 5]) },
  { name: 'adding and removing disks', old: vm(['data', 5]), next: vm(['logs', 1]) },
  { name: 'a renamed disk smaller than the old one (a new disk)', old: vm(['data', 5]), next: vm(['data2', 1]) },
  {
    name: 'shrinking a disk',
    old: vm(['root', 2], ['data', 10]),
    next: vm(['root', 2], ['data', 5]),
    refused: { fields: ['spec.disks[1].sizeGiB'], message: /^Instance\.compute\.stratus\.dev "vm" is invalid: spec\.disks\[1\]\.sizeGiB: Forbidden: disk data may not shrink from 10 to 5 GiB/ },
  },
  { name: 'shrinking two disks', old: vm(['a', 2], ['b', 3]), next: vm(['b', 1], ['a', 1]), refused: { fields: ['spec.disks[0].sizeGiB', 'spec.disks[1].sizeGiB'], message: /is invalid: \[/ } },
];

for (const c of cases) {
  test(`${c.refused ? 'refused' : 'admitted'}: ${c.name}`, async () => {
    const run = admit({ object: c.next, oldObject: c.old });
    if (!c.refused) return assert.doesNotReject(run);
    await assert.rejects(run, (e: unknown) => {
      assert.ok(e instanceof ApiError);
      assert.equal(e.code, 422);
      assert.match(e.message, c.refused!.message);
      assert.deepEqual(e.details?.causes?.map((x) => x.field), c.refused!.fields);
      return true;
    });
  });
}

test('creates, status writes and other kinds are not its business', async () => {
  await admit({ operation: 'CREATE', object: vm(['data', 1]) });
  await admit({ subresource: 'status', object: vm(['data', 1]), oldObject: vm(['data', 9]) });
  await admit({ resource: { group: 'apps.stratus.dev', plural: 'projects', kind: 'Project' } as Resource, object: vm(['data', 1]), oldObject: vm(['data', 9]) });
});
