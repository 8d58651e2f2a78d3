/**
 * Brume: one endpoint, `POST /brume`, a JSON body `{"command": "<name>", ...arguments}`
 * signed with `x-username` and `x-signature` (see `users.ts` for the signature). Every
 * answer is `{"output": <bool>, "message": "<text>"}`: 200 when the command ran (`output`
 * says whether it succeeded, `message` why not), 400 for a malformed request, 401 for a
 * missing or wrong signature, 413 for a body over the limit.
 *
 *   upload_ssh {keyname, content}   → an SSHKey (`spec.keyName` = keyname, `spec.publicKey`
 *                                     = content) in the user's namespace; a key name taken
 *                                     already by any user of this server → 200
 *                                     `{output: false, message: "... exists"}`
 *   allocate_ip {pool?, address?}   → an ElasticIP in the user's namespace; answers once the
 *                                     controller has allocated it (up to 10 s):
 *                                     `{output: true, message, address}`, or `output: false`
 *                                     with the reason (pool exhausted, address in use)
 *   associate_ip {address, instance} → routes the address to the user's Instance (moves it
 *                                     when associated already); the NAT follows asynchronously
 *   disassociate_ip {address}       → unbinds it (it stays allocated)
 *   release_ip {address}            → deletes the ElasticIP, returning the address to its pool
 *   list_ips {}                     → `{output: true, message, ips: [{address, instance, pool, state}]}`
 *
 * An address the user does not hold is `{output: false, message: "... is not one of your
 * elastic IPs"}`. Arguments may also be nested as `{"command": ..., "args": {...}}`.
 */
import { randomBytes } from 'node:crypto';
import { isIPv4 } from 'node:net';
import type { ElasticIP, Instance, SSHKey } from '../crds/types.js';
import { isAlreadyExists, type KubeClient } from '../runtime/client.js';
import { sleep } from '../runtime/basics.js';
import { Resources } from '../controllers/resources.js';
import { badRequest, field, parseJsonObject, type Dialect, type JsonObject } from './http.js';
import { LEGACY_API_LABEL, LEGACY_NAME_ANNOTATION, objectName } from './names.js';
import type { LegacyApi } from './api.js';

export const brumeDialect: Dialect = {
  name: 'brume',
  errorBody: (err) => ({ output: false, message: err.status === 401 ? 'authentication failed' : err.message }),
};

const KEY_NAME = /^[A-Za-z0-9][-A-Za-z0-9_.@]*$/;
const PUBLIC_KEY = /^(ssh-(rsa|dss|ed25519)|ecdsa-sha2-nistp(256|384|521)|sk-(ssh-ed25519|ecdsa-sha2-nistp256)@openssh\.com) [A-Za-z0-9+/]+={0,3}( [^\r\n]*)?\s*$/;

function argsOf(body: JsonObject): JsonObject {
  const nested = body.args;
  if (nested === undefined || nested === null) return body;
  if (typeof nested !== 'object' || Array.isArray(nested)) throw badRequest('args must be an object');
  return nested as JsonObject;
}

export const brumeApi: LegacyApi = {
  dialect: brumeDialect,
  prefixes: ['/brume'],
  routes: [
    {
      method: 'POST',
      pattern: '/brume',
      auth: 'signature',
      async handler(r, caller, client, proxy) {
        const body = parseJsonObject(await r.body());
        const cmd = field.string(body, 'command', { required: true, max: 64 })!;
        const args = argsOf(body);
        if (cmd === 'upload_ssh') return uploadSsh(args, caller.namespace, client, proxy);
        const eipCommand = Object.hasOwn(ELASTIC_IP_COMMANDS, cmd) ? ELASTIC_IP_COMMANDS[cmd] : undefined;
        if (!eipCommand) throw badRequest(`unknown command ${JSON.stringify(cmd)}`);
        return eipCommand(args, caller.namespace, client);
      },
    },
  ],
};

type Answer = { status: number; json: JsonObject };

async function uploadSsh(args: JsonObject, namespace: string, client: KubeClient, proxy: KubeClient): Promise<Answer> {
  const keyname = field.string(args, 'keyname', { required: true, max: 255 })!;
  if (!KEY_NAME.test(keyname)) throw badRequest('keyname must start with a letter or digit and hold only letters, digits, -_.@');
  const content = field.string(args, 'content', { required: true, max: 16384 })!;
  if (!PUBLIC_KEY.test(content)) throw badRequest('content is not an OpenSSH public key ("TYPE BASE64 [comment]")');
  const keys = client.resource<SSHKey>(Resources.sshKeys);
  // "must be unique to the server": every namespace (every Brume user) is checked, with
  // the proxy's own identity, since a tenant may not list other tenants' keys.
  const taken = (await proxy.resource<SSHKey>(Resources.sshKeys).list()).some((k) => k.spec?.keyName === keyname);
  const exists = { status: 200, json: { output: false, message: `an SSH key named ${keyname} exists already` } };
  if (taken) return exists;
  try {
    await keys.create({
      apiVersion: 'compute.stratus.dev/v1alpha1',
      kind: 'SSHKey',
      // One object name per key name, so two racing uploads cannot both succeed.
      metadata: {
        name: objectName(keyname),
        namespace,
        labels: { [LEGACY_API_LABEL]: 'brume' },
        annotations: { [LEGACY_NAME_ANNOTATION]: keyname },
      },
      spec: { keyName: keyname, publicKey: content.trim() },
    });
  } catch (err) {
    if (isAlreadyExists(err)) return exists;
    throw err;
  }
  return { status: 200, json: { output: true, message: `SSH key ${keyname} uploaded` } };
}


const ok = (message: string, extra: JsonObject = {}): Answer => ({ status: 200, json: { output: true, message, ...extra } });
const refused = (message: string): Answer => ({ status: 200, json: { output: false, message } });

/** How long `allocate_ip` waits for the controller's allocation before answering. */
const ALLOCATE_WAIT_MS = 10_000;

function addressArg(args: JsonObject, key = 'address', required = true): string | undefined {
  const a = field.string(args, key, { required, max: 15 });
  if (a !== undefined && !isIPv4(a)) throw badRequest(`${key} must be an IPv4 address`);
  return a;
}

/** The caller's ElasticIP holding `address`, or the refusal to answer with. */
async function heldBy(client: KubeClient, namespace: string, address: string): Promise<ElasticIP | Answer> {
  const mine = (await client.resource<ElasticIP>(Resources.elasticIPs).list(namespace)).find((e) => (e.status?.address ?? e.spec?.address) === address);
  return mine ?? refused(`${address} is not one of your elastic IPs`);
}

const isAnswer = (x: ElasticIP | Answer): x is Answer => 'json' in x;

const ELASTIC_IP_COMMANDS: Record<string, (args: JsonObject, namespace: string, client: KubeClient) => Promise<Answer>> = {
  async allocate_ip(args, namespace, client) {
    const pool = field.string(args, 'pool', { max: 253 });
    const address = addressArg(args, 'address', false);
    const eips = client.resource<ElasticIP>(Resources.elasticIPs);
    const created = await eips.create({
      apiVersion: 'compute.stratus.dev/v1alpha1',
      kind: 'ElasticIP',
      metadata: { name: `eip-${randomBytes(4).toString('hex')}`, namespace, labels: { [LEGACY_API_LABEL]: 'brume' } },
      spec: { ...(pool ? { poolRef: { name: pool } } : {}), ...(address ? { address } : {}) },
    });
    const name = created.metadata?.name ?? '';
    const deadline = Date.now() + ALLOCATE_WAIT_MS;
    for (;;) {
      const e = await eips.get(namespace, name);
      const synced = e?.status?.conditions?.find((c) => c.type === 'Synced');
      if (e?.status?.address) return ok(`elastic IP ${e.status.address} allocated`, { address: e.status.address });
      // A refusal the caller can act on: give the address request back rather than leave it waiting.
      if (synced?.status === 'False' && ['AddressInUse', 'AddressNotInPool', 'PoolNotFound', 'NoAddressPool'].includes(synced.reason ?? '')) {
        await eips.delete(namespace, name).catch(() => undefined);
        return refused(synced.message ?? synced.reason ?? 'allocation refused');
      }
      if (Date.now() > deadline) {
        await eips.delete(namespace, name).catch(() => undefined);
        return refused(`no address allocated within ${ALLOCATE_WAIT_MS / 1000} s${synced?.message ? `: ${synced.message}` : ''}`);
      }
      await sleep(200);
    }
  },
  async associate_ip(args, namespace, client) {
    const address = addressArg(args)!;
    const instance = field.string(args, 'instance', { required: true, max: 63 })!;
    const eip = await heldBy(client, namespace, address);
    if (isAnswer(eip)) return eip;
    if (!(await client.resource<Instance>(Resources.instances).get(namespace, instance))) return refused(`no instance named ${instance}`);
    await client.resource<ElasticIP>(Resources.elasticIPs).mergePatch(namespace, eip.metadata?.name ?? '', { spec: { instanceRef: { name: instance } } });
    return ok(`elastic IP ${address} associated with ${instance}`);
  },
  async disassociate_ip(args, namespace, client) {
    const address = addressArg(args)!;
    const eip = await heldBy(client, namespace, address);
    if (isAnswer(eip)) return eip;
    await client.resource<ElasticIP>(Resources.elasticIPs).mergePatch(namespace, eip.metadata?.name ?? '', { spec: { instanceRef: null } });
    return ok(`elastic IP ${address} disassociated`);
  },
  async release_ip(args, namespace, client) {
    const address = addressArg(args)!;
    const eip = await heldBy(client, namespace, address);
    if (isAnswer(eip)) return eip;
    await client.resource<ElasticIP>(Resources.elasticIPs).delete(namespace, eip.metadata?.name ?? '');
    return ok(`elastic IP ${address} released`);
  },
  async list_ips(_args, namespace, client) {
    const list = await client.resource<ElasticIP>(Resources.elasticIPs).list(namespace);
    const ips = list
      .filter((e) => e.status?.address)
      .map((e) => ({
        address: e.status?.address ?? '',
        instance: e.status?.boundTo ?? null,
        pool: e.status?.pool ?? null,
        state: e.status?.boundTo ? 'associated' : 'allocated',
      }));
    return ok(`${ips.length} elastic IP(s)`, { ips });
  },
};
