/**
 * LDAP login as a `stratus serve` component: with `--ldap-url` and `--ldap-base-dn`, the API
 * server's address also answers `POST /login` (legacy/login.ts), which `stratus login`
 * calls. The endpoint creates Users, Groups and AccessTokens through the server's own
 * kubeconfig.
 */
import { readFileSync } from 'node:fs';
import { KubeClient } from '../runtime/client.js';
import { log } from '../runtime/log.js';
import { LdapDirectory } from '../legacy/ldap.js';
import { LOGIN_PATH, loginHandler } from '../legacy/login.js';
import type { ServeComponent } from './serve.js';

export const serveLogin: ServeComponent = async (server, options) => {
  const ldap = options.ldap;
  if (!ldap) return { close: async () => undefined };
  const bindPassword = ldap.bindPasswordFile ? readFileSync(ldap.bindPasswordFile, 'utf8').replace(/\r?\n$/, '') : undefined;
  const directory = new LdapDirectory({
    url: ldap.url,
    baseDN: ldap.baseDN,
    ...(ldap.userAttribute ? { userAttribute: ldap.userAttribute } : {}),
    ...(ldap.bindDN ? { bindDN: ldap.bindDN } : {}),
    ...(bindPassword !== undefined ? { bindPassword } : {}),
  });
  const client = KubeClient.fromFile(server.kubeconfigPath);
  server.openRoutes.set(LOGIN_PATH, loginHandler({ client, directory, userNamespace: ldap.userNamespace, tokenTtlMs: ldap.tokenTtlSeconds * 1000 }));
  log.info({ component: 'login', ldap: ldap.url, baseDN: ldap.baseDN }, 'LDAP login enabled');
  return {
    async close() {
      server.openRoutes.delete(LOGIN_PATH);
      client.close();
    },
  };
};
