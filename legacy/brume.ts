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
 *
 * Arguments may also be nested as `{"command": ..., "args": {...}}`.
 */
import type { SSHKey } from '../crds/types.js';
import { isAlreadyExists } from '../runtime/client.js';
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
        if (cmd !== 'upload_ssh') throw badRequest(`unknown command ${JSON.stringify(cmd)}`);
        const args = argsOf(body);
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
              namespace: caller.namespace,
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
      },
    },
  ],
};
