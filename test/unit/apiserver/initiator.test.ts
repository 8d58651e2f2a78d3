/**
 * InitiatorAdmission: the API server, not the client, says who created a Deployment.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { InitiatorAdmission, INITIATOR_ANNOTATION } from '../../../apiserver/initiator.js';
import type { AdmissionAttributes } from '../../../apiserver/admission.js';
import type { KubeObject, Resource } from '../../../apiserver/resources.js';

const deployments = { group: 'apps.stratus.dev', plural: 'deployments' } as Resource;
const configmaps = { group: '', plural: 'configmaps' } as Resource;
const alice = { username: 'alice', groups: ['system:authenticated'] };
const obj = (annotations?: Record<string, string>): KubeObject => ({ apiVersion: 'apps.stratus.dev/v1alpha1', kind: 'Deployment', metadata: { name: 'd', ...(annotations ? { annotations } : {}) } });
const initiator = (o: KubeObject): string | undefined => o.metadata?.annotations?.[INITIATOR_ANNOTATION];

async function admit(a: Partial<AdmissionAttributes> & Pick<AdmissionAttributes, 'operation' | 'object'>): Promise<KubeObject> {
  await new InitiatorAdmission().admit({ resource: deployments, name: 'd', namespace: 'default', dryRun: false, ...a });
  return a.object!;
}

test('a created Deployment is stamped with the requester, replacing a client-supplied initiator', async () => {
  assert.equal(initiator(await admit({ operation: 'CREATE', object: obj(), user: alice })), 'alice');
  const forged = await admit({ operation: 'CREATE', object: obj({ [INITIATOR_ANNOTATION]: 'mallory', keep: 'me' }), user: alice });
  assert.equal(initiator(forged), 'alice');
  assert.equal(forged.metadata?.annotations?.keep, 'me');
});

test('an update keeps the stored initiator: it can be neither changed nor removed', async () => {
  const oldObject = obj({ [INITIATOR_ANNOTATION]: 'alice' });
  assert.equal(initiator(await admit({ operation: 'UPDATE', object: obj({ [INITIATOR_ANNOTATION]: 'mallory' }), oldObject, user: { username: 'mallory', groups: [] } })), 'alice');
  assert.equal(initiator(await admit({ operation: 'UPDATE', object: obj(), oldObject, user: alice })), 'alice');
});

test('other kinds and subresources are left alone', async () => {
  const cm = obj();
  await new InitiatorAdmission().admit({ operation: 'CREATE', resource: configmaps, name: 'c', dryRun: false, object: cm, user: alice });
  assert.equal(initiator(cm), undefined);
  assert.equal(initiator(await admit({ operation: 'UPDATE', subresource: 'status', object: obj(), oldObject: obj({ [INITIATOR_ANNOTATION]: 'alice' }), user: alice })), undefined);
});
