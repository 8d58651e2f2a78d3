/**
 * A private OpenLDAP `slapd` for tests: its own config (built with `slapadd -n0` from a
 * generated cn=config LDIF — never the system instance's), an mdb database under a temp dir
 * loaded with `slapadd -n1`, listening on a free loopback port. Users get `userPassword`s
 * hashed by `slappasswd`; groups are `groupOfNames` (member = user DN) and `posixGroup`
 * (memberUid).
 */
import { writeFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { execFileP, freePort, removeDir, requireBinary, startDaemon, tempDir, waitFor, type Daemon } from './process.js';

export interface LdapUser {
  uid: string;
  password: string;
}

export interface LdapGroup {
  cn: string;
  /** uids of the members. */
  members: string[];
  /** `posixGroup` with memberUid instead of `groupOfNames` with member DNs. */
  posix?: boolean;
}

export interface Slapd {
  url: string;
  baseDN: string;
  pid: number;
  stop(): Promise<void>;
}

export const LDAP_BASE_DN = 'dc=example,dc=org';

export async function startSlapd(users: LdapUser[], groups: LdapGroup[]): Promise<Slapd> {
  const slapd = requireBinary('slapd');
  const slapadd = requireBinary('slapadd');
  const slappasswd = requireBinary('slappasswd');
  const root = await tempDir('slapd');
  const configDir = join(root, 'slapd.d');
  const dbDir = join(root, 'db');
  await mkdir(configDir, { recursive: true });
  await mkdir(dbDir, { recursive: true });
  const schemas = ['core', 'cosine', 'nis', 'inetorgperson'].map((s) => `include: file:///etc/ldap/schema/${s}.ldif`).join('\n\n');
  const adminPw = (await execFileP(slappasswd, ['-s', 'admin-secret'])).stdout.trim();
  const config = `dn: cn=config
objectClass: olcGlobal
cn: config
olcPidFile: ${join(root, 'slapd.pid')}

dn: cn=module{0},cn=config
objectClass: olcModuleList
cn: module{0}
olcModulePath: /usr/lib/ldap
olcModuleLoad: back_mdb

dn: cn=schema,cn=config
objectClass: olcSchemaConfig
cn: schema

${schemas}

dn: olcDatabase={-1}frontend,cn=config
objectClass: olcDatabaseConfig
objectClass: olcFrontendConfig
olcDatabase: {-1}frontend
olcAccess: {0}to attrs=userPassword by anonymous auth by * none
olcAccess: {1}to * by * read

dn: olcDatabase={0}config,cn=config
objectClass: olcDatabaseConfig
olcDatabase: {0}config
olcAccess: {0}to * by * none

dn: olcDatabase={1}mdb,cn=config
objectClass: olcDatabaseConfig
objectClass: olcMdbConfig
olcDatabase: {1}mdb
olcDbDirectory: ${dbDir}
olcSuffix: ${LDAP_BASE_DN}
olcRootDN: cn=admin,${LDAP_BASE_DN}
olcRootPW: ${adminPw}
olcDbMaxSize: 67108864
olcDbIndex: objectClass eq
olcDbIndex: uid eq
olcDbIndex: member eq
olcDbIndex: memberUid eq
`;
  await writeFile(join(root, 'config.ldif'), config);
  const entries: string[] = [
    `dn: ${LDAP_BASE_DN}\nobjectClass: dcObject\nobjectClass: organization\ndc: example\no: Example`,
    `dn: ou=people,${LDAP_BASE_DN}\nobjectClass: organizationalUnit\nou: people`,
    `dn: ou=groups,${LDAP_BASE_DN}\nobjectClass: organizationalUnit\nou: groups`,
  ];
  const dnOf = (uid: string): string => `uid=${uid},ou=people,${LDAP_BASE_DN}`;
  let gid = 5000;
  for (const u of users) {
    const hash = (await execFileP(slappasswd, ['-s', u.password])).stdout.trim();
    entries.push(`dn: ${dnOf(u.uid)}\nobjectClass: inetOrgPerson\nuid: ${u.uid}\ncn: ${u.uid}\nsn: ${u.uid}\nuserPassword: ${hash}`);
  }
  for (const g of groups) {
    if (g.posix) {
      entries.push(`dn: cn=${g.cn},ou=groups,${LDAP_BASE_DN}\nobjectClass: posixGroup\ncn: ${g.cn}\ngidNumber: ${gid++}\n${g.members.map((m) => `memberUid: ${m}`).join('\n')}`);
    } else {
      entries.push(`dn: cn=${g.cn},ou=groups,${LDAP_BASE_DN}\nobjectClass: groupOfNames\ncn: ${g.cn}\n${g.members.map((m) => `member: ${dnOf(m)}`).join('\n')}`);
    }
  }
  await writeFile(join(root, 'data.ldif'), entries.join('\n\n') + '\n');
  try {
    await execFileP(slapadd, ['-n0', '-F', configDir, '-l', join(root, 'config.ldif')]);
    await execFileP(slapadd, ['-n1', '-F', configDir, '-l', join(root, 'data.ldif')]);
  } catch (err) {
    await removeDir(root);
    throw err;
  }
  const port = await freePort();
  const url = `ldap://127.0.0.1:${port}`;
  // -d keeps slapd in the foreground (so its PID is ours to stop); 0 logs nothing extra.
  const daemon: Daemon = startDaemon(slapd, ['-h', `${url}/`, '-F', configDir, '-d', '0']);
  try {
    await waitFor(`slapd on ${url}`, async () => {
      if (daemon.child.exitCode !== null) throw new Error(`slapd exited:\n${daemon.output()}`);
      await execFileP(requireBinary('ldapsearch'), ['-x', '-H', url, '-b', LDAP_BASE_DN, '-s', 'base', 'dn']);
      return true;
    }, 15_000);
  } catch (err) {
    await daemon.stop();
    await removeDir(root);
    throw err;
  }
  return {
    url,
    baseDN: LDAP_BASE_DN,
    pid: daemon.child.pid ?? 0,
    async stop() {
      await daemon.stop();
      await removeDir(root);
    },
  };
}
