/**
 * Brume users and request signatures.
 *
 * A Brume request carries `x-username: NAME` and `x-signature: HEX`, where
 *
 *     HEX = lowercase or uppercase hex of HMAC-SHA256(key = the user's secret as its UTF-8
 *           bytes, message = the raw request body bytes exactly as sent)
 *
 * e.g. `printf '%s' "$BODY" | openssl dgst -sha256 -hmac "$SECRET" -hex`. The secret is
 * printed once by `stratus user create NAME`. An HMAC check needs the secret itself, so it
 * lives in a Secret (`user-NAME-signing`, key `secret`, in `stratus-system` — out of reach of
 * tenants, who hold rights only in their own namespaces) that the `User`'s `spec.secretRef`
 * names and that the User owns (deleting the User deletes it); the User object itself holds
 * no secret.
 *
 * Users are cluster-scoped (see apiserver/auth/membership.ts for the model): the user name
 * is global, and `spec.namespace` says where the user's legacy objects live. Group
 * membership is written on the Groups (`addGroupMember`), never on the User.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Group, User } from '../crds/types.js';
import { CoreResources, isAlreadyExists, isConflict, type KubeClient, type KubeObject } from '../runtime/client.js';
import { Resources } from '../controllers/resources.js';
import { isDnsLabel } from './names.js';
import { ensureNamespace } from './namespaces.js';

interface SecretObject extends KubeObject {
  type?: string;
  data?: Record<string, string>;
}

export const SIGNING_KEY = 'secret';

/** Where signing Secrets live (the controllers' namespace in Kubernetes mode, too). */
export const SYSTEM_NAMESPACE = 'stratus-system';

export function signingSecretName(user: string): string {
  return `user-${user}-signing`;
}

/** Hex HMAC-SHA256 of `body` with `secret`: what a Brume client puts in `x-signature`. */
export function signBody(secret: string, body: Buffer | string): string {
  return createHmac('sha256', secret).update(body).digest('hex');
}

export class UserExistsError extends Error {
  override readonly name = 'UserExistsError';
}

export interface CreateUserOptions {
  /** Where the user's legacy objects live (`spec.namespace`). */
  namespace: string;
  /** Groups to add the user to (created when missing). */
  groups?: readonly string[];
}

/**
 * Creates the cluster-scoped User `name` with a fresh signing secret, adds it to `groups`,
 * and returns the secret. A name taken already is `UserExistsError` and changes nothing.
 */
export async function createUser(client: KubeClient, name: string, opts: CreateUserOptions): Promise<{ secret: string; user: User }> {
  if (!isDnsLabel(name)) throw new Error(`user name ${JSON.stringify(name)} must be a DNS-1123 label (a-z, 0-9, '-', at most 63)`);
  for (const g of opts.groups ?? []) {
    if (!isDnsLabel(g)) throw new Error(`group name ${JSON.stringify(g)} must be a DNS-1123 label (a-z, 0-9, '-', at most 63)`);
  }
  const users = client.resource<User>(Resources.users);
  const secrets = client.resource<SecretObject>(CoreResources.secrets);
  const secretName = signingSecretName(name);
  await ensureNamespace(client, SYSTEM_NAMESPACE);
  let user: User;
  try {
    user = await users.create({
      apiVersion: 'iam.stratus.dev/v1alpha1',
      kind: 'User',
      metadata: { name },
      spec: { namespace: opts.namespace, secretRef: { namespace: SYSTEM_NAMESPACE, name: secretName, key: SIGNING_KEY } },
    });
  } catch (err) {
    if (isAlreadyExists(err)) throw new UserExistsError(`user ${name} already exists`);
    throw err;
  }
  const secret = randomBytes(32).toString('hex');
  const obj: SecretObject = {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: {
      name: secretName,
      namespace: SYSTEM_NAMESPACE,
      ownerReferences: [{ apiVersion: 'iam.stratus.dev/v1alpha1', kind: 'User', name, uid: user.metadata!.uid!, blockOwnerDeletion: true }],
    },
    type: 'Opaque',
    data: { [SIGNING_KEY]: Buffer.from(secret).toString('base64') },
  };
  try {
    await secrets.create(obj);
  } catch (err) {
    if (!isAlreadyExists(err)) {
      await users.delete(undefined, name).catch(() => undefined);
      throw err;
    }
    // A leftover of an earlier user of this name: take it over.
    await secrets.replace(obj);
  }
  for (const g of opts.groups ?? []) await addGroupMember(client, g, name);
  return { secret, user };
}

/**
 * Adds `user` to Group `group`'s `spec.members` (creating the Group when missing), with a
 * resourceVersion precondition so concurrent edits of the member list never lose one.
 */
export async function addGroupMember(client: KubeClient, group: string, user: string, labels?: Record<string, string>): Promise<void> {
  await editGroupMembers(client, group, (members) => (members.includes(user) ? undefined : [...members, user]), labels);
}

/** Removes `user` from Group `group`'s members; a missing Group or member is no change. */
export async function removeGroupMember(client: KubeClient, group: string, user: string): Promise<void> {
  await editGroupMembers(client, group, (members) => (members.includes(user) ? members.filter((m) => m !== user) : undefined), undefined, false);
}

async function editGroupMembers(
  client: KubeClient,
  name: string,
  edit: (members: string[]) => string[] | undefined,
  labels: Record<string, string> | undefined,
  create = true,
): Promise<void> {
  const groups = client.resource<Group>(Resources.groups);
  for (let attempt = 0; attempt < 20; attempt++) {
    const current = await groups.get(undefined, name);
    if (!current) {
      if (!create) return;
      const members = edit([]);
      try {
        await groups.create({
          apiVersion: 'iam.stratus.dev/v1alpha1',
          kind: 'Group',
          metadata: { name, ...(labels ? { labels } : {}) },
          spec: { members: members ?? [] },
        });
        return;
      } catch (err) {
        if (isAlreadyExists(err)) continue;
        throw err;
      }
    }
    const members = edit([...(current.spec?.members ?? [])]);
    if (!members) return;
    try {
      await groups.replace({ ...current, spec: { ...(current.spec ?? {}), members } });
      return;
    } catch (err) {
      if (!isConflict(err)) throw err;
    }
  }
  throw new Error(`could not update the members of group ${name}: too many concurrent changes`);
}

/** Verifies Brume's `x-username` / `x-signature`. */
export class SignatureVerifier {
  private readonly dummyKey = randomBytes(32).toString('hex');

  constructor(private readonly client: KubeClient) {}

  /**
   * The user and its namespace (`spec.namespace`) when `signature` is the HMAC of `body`
   * under the user's secret; `undefined` for any failure (unknown or disabled user, no
   * secret, bad signature), after the same HMAC work. Rejects only when the Kubernetes API
   * cannot answer.
   */
  async verify(username: string | undefined, signature: string | undefined, body: Buffer): Promise<{ namespace: string; user: string } | undefined> {
    const sig = /^[0-9a-fA-F]{64}$/.test(signature ?? '') ? Buffer.from(signature!, 'hex') : undefined;
    if (!username || !isDnsLabel(username) || !sig) return undefined;
    const u = await this.client.resource<User>(Resources.users).get(undefined, username);
    const ref = u?.spec?.secretRef;
    const secret = ref?.name ? await this.secretOf(ref.namespace ?? SYSTEM_NAMESPACE, ref.name, ref.key ?? SIGNING_KEY) : undefined;
    const expected = Buffer.from(signBody(secret ?? this.dummyKey, body), 'hex');
    const good = timingSafeEqual(expected, sig);
    if (!u || secret === undefined || !good || u.spec.disabled === true) return undefined;
    return { namespace: u.spec.namespace ?? 'default', user: username };
  }

  private async secretOf(namespace: string, name: string, key: string): Promise<string | undefined> {
    const s = await this.client.resource<SecretObject>(CoreResources.secrets).get(namespace, name);
    const v = s?.data?.[key];
    return v === undefined ? undefined : Buffer.from(v, 'base64').toString('utf8');
  }
}

/**
 * Writes `User.status.lastLoginTime` when a user's signed request is accepted — at most once
 * a minute per user, and never on the request's path (the write is not awaited; a failure
 * only means the time is older than it could be).
 */
export class LoginRecorder {
  private readonly last = new Map<string, number>();

  constructor(
    private readonly client: KubeClient,
    private readonly intervalMs = 60_000,
    private readonly onError: (err: unknown) => void = () => undefined,
  ) {}

  record(user: string, now = Date.now()): void {
    const prev = this.last.get(user);
    if (prev !== undefined && now - prev < this.intervalMs) return;
    if (this.last.size >= 10_000) this.last.delete(this.last.keys().next().value!);
    this.last.set(user, now);
    const time = new Date(now).toISOString().replace(/\.\d{3}Z$/, 'Z');
    this.client
      .resource<User>(Resources.users)
      .mergePatchStatus(undefined, user, { status: { lastLoginTime: time } })
      .catch(this.onError);
  }
}
