/**
 * Admission: checks that run inside the registry after an object has been validated and
 * defaulted and before it is written, as kube-apiserver's validating admission plugins do.
 * A plugin refuses a request by throwing an `ApiError` (e.g. 403 `exceeded quota: …`); it
 * may write other objects first (a quota plugin charges usage with a compare-and-swap so
 * concurrent requests cannot both pass). Plugins run in registration order; none runs for a
 * request that validation already refused. Dry runs are admitted too (`dryRun: true`), so a
 * plugin with side effects must skip them.
 */
import type { UserInfo } from './auth/user.js';
import type { KubeObject, Resource } from './resources.js';

export type AdmissionOperation = 'CREATE' | 'UPDATE' | 'DELETE';

export interface AdmissionAttributes {
  operation: AdmissionOperation;
  resource: Resource;
  /** `status`, `scale`, … when the request addressed a subresource. */
  subresource?: string;
  namespace?: string;
  name: string;
  /** The object as it will be stored (CREATE, UPDATE). */
  object?: KubeObject;
  /** The object as it is stored now (UPDATE, DELETE). */
  oldObject?: KubeObject;
  /** Who asked; absent for the server's own writes (garbage collector, namespace controller). */
  user?: UserInfo;
  dryRun: boolean;
}

export interface AdmissionPlugin {
  readonly name: string;
  admit(attributes: AdmissionAttributes): Promise<void>;
}
