/**
 * InitiatorAdmission: records who created a Deployment (`apps.stratus.dev/initiator`, the
 * requester's user name) so the notification stage can mail the outcome to them — the corpus
 * document's "initial initer". The stamp is the server's: a client-supplied value is
 * replaced on create, and an update cannot change or remove it. The server's own writes
 * (no user) leave whatever is there.
 */
import type { AdmissionAttributes, AdmissionPlugin } from './admission.js';
import type { ObjectMeta } from './resources.js';

export const INITIATOR_ANNOTATION = 'apps.stratus.dev/initiator';

const STAMPED = new Set(['apps.stratus.dev/deployments']);

export class InitiatorAdmission implements AdmissionPlugin {
  readonly name = 'Initiator';

  async admit(a: AdmissionAttributes): Promise<void> {
    if (a.subresource || !a.object || !STAMPED.has(`${a.resource.group}/${a.resource.plural}`)) return;
    if (a.operation !== 'CREATE' && a.operation !== 'UPDATE') return;
    const meta = (a.object.metadata ??= {}) as ObjectMeta;
    const value = a.operation === 'CREATE' ? a.user?.username : (a.oldObject?.metadata as ObjectMeta | undefined)?.annotations?.[INITIATOR_ANNOTATION];
    if (a.operation === 'CREATE' && !a.user) return;
    const annotations = { ...(meta.annotations ?? {}) };
    if (value) annotations[INITIATOR_ANNOTATION] = value;
    else delete annotations[INITIATOR_ANNOTATION];
    if (Object.keys(annotations).length > 0) meta.annotations = annotations;
    else delete meta.annotations;
  }
}
