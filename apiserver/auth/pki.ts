/**
 * The server's own certificate authority, kept in `DATA_DIR/pki/`: created on first start,
 * reused on every later one. It signs the serving certificate (SANs: the listen address,
 * `localhost`, `127.0.0.1`) and client certificates, whose CN is the user name and whose Os
 * are the groups, as in kube-apiserver. Certificates are made by `openssl` (no ASN.1 here);
 * keys are ECDSA P-256 and never leave the data dir except in kubeconfigs written `0600`.
 */
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { isIP } from 'node:net';
import { join } from 'node:path';

export interface KeyPair {
  cert: string;
  key: string;
}

export interface Pki {
  dir: string;
  /** The CA certificate (PEM): what clients trust and what signs client certificates. */
  caCert: string;
  caCertFile: string;
  caKeyFile: string;
  serving: KeyPair;
}

const CA_DAYS = 3650;
const LEAF_DAYS = 825;

function openssl(args: string[]): void {
  try {
    execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (err) {
    const stderr = (err as { stderr?: Buffer }).stderr?.toString().trim();
    throw new Error(`openssl ${args[0]} failed: ${stderr || (err instanceof Error ? err.message : String(err))}`);
  }
}

/** `/CN=x/O=a/O=b`, with openssl's escaping of `/` and `\` in values. */
function subject(cn: string, orgs: string[]): string {
  const esc = (v: string): string => v.replace(/[\\/]/g, (c) => `\\${c}`);
  return `/CN=${esc(cn)}${orgs.map((o) => `/O=${esc(o)}`).join('')}`;
}

/** Issues a leaf certificate signed by the CA into `base.crt`/`base.key` and returns both PEMs. */
function issue(pki: { caCertFile: string; caKeyFile: string }, base: string, cn: string, orgs: string[], extensions: string[]): KeyPair {
  const tmpKey = `${base}.key.tmp`;
  const tmpCrt = `${base}.crt.tmp`;
  try {
    openssl([
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
      '-keyout', tmpKey, '-out', tmpCrt, '-days', String(LEAF_DAYS), '-subj', subject(cn, orgs),
      '-CA', pki.caCertFile, '-CAkey', pki.caKeyFile,
      '-addext', 'basicConstraints=critical,CA:FALSE', '-addext', 'keyUsage=critical,digitalSignature,keyEncipherment',
      ...extensions.flatMap((e) => ['-addext', e]),
    ]);
    renameSync(tmpKey, `${base}.key`);
    renameSync(tmpCrt, `${base}.crt`);
  } finally {
    rmSync(tmpKey, { force: true });
    rmSync(tmpCrt, { force: true });
  }
  return { cert: readFileSync(`${base}.crt`, 'utf8'), key: readFileSync(`${base}.key`, 'utf8') };
}

function sanOf(host: string): string {
  return isIP(host) ? `IP:${host}` : `DNS:${host}`;
}

/** True when the certificate is signed by the CA, still valid for a day, and names every host. */
function stillGood(certPem: string, ca: X509Certificate, hosts: string[]): boolean {
  try {
    const c = new X509Certificate(certPem);
    if (!c.checkIssued(ca) || !c.verify(ca.publicKey)) return false;
    if (Date.parse(c.validTo) < Date.now() + 86_400_000) return false;
    return hosts.every((h) => (isIP(h) ? c.checkIP(h) !== undefined : c.checkHost(h) !== undefined));
  } catch {
    return false;
  }
}

/**
 * The CA and serving certificate of `dataDir`, created when missing. A serving certificate
 * that no longer names `host` (the server moved to another address) is reissued; the CA is
 * never replaced, so kubeconfigs handed out earlier keep working.
 */
export function ensurePki(dataDir: string, host: string): Pki {
  const dir = join(dataDir, 'pki');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const caCertFile = join(dir, 'ca.crt');
  const caKeyFile = join(dir, 'ca.key');
  if (!existsSync(caCertFile) || !existsSync(caKeyFile)) {
    const tmpKey = `${caKeyFile}.tmp`;
    const tmpCrt = `${caCertFile}.tmp`;
    openssl([
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
      '-keyout', tmpKey, '-out', tmpCrt, '-days', String(CA_DAYS), '-subj', '/CN=stratus-ca',
      '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
    ]);
    renameSync(tmpKey, caKeyFile);
    renameSync(tmpCrt, caCertFile);
  }
  const caCert = readFileSync(caCertFile, 'utf8');
  const ca = new X509Certificate(caCert);
  const hosts = [...new Set(['localhost', '127.0.0.1', ...(host === '0.0.0.0' || host === '::' ? [] : [host])])];
  const base = join(dir, 'serving');
  let serving: KeyPair | undefined;
  if (existsSync(`${base}.crt`) && existsSync(`${base}.key`)) {
    const cert = readFileSync(`${base}.crt`, 'utf8');
    if (stillGood(cert, ca, hosts)) serving = { cert, key: readFileSync(`${base}.key`, 'utf8') };
  }
  serving ??= issue({ caCertFile, caKeyFile }, base, 'stratus-apiserver', [], [
    'extendedKeyUsage=serverAuth',
    `subjectAltName=${hosts.map(sanOf).join(',')}`,
  ]);
  return { dir, caCert, caCertFile, caKeyFile, serving };
}

/**
 * A client certificate for `user` in `groups`, kept as `pki/<file>.crt|.key` and reused
 * while it still carries the same identity and is valid.
 */
export function clientCertificate(pki: Pki, file: string, user: string, groups: string[]): KeyPair {
  if (!/^[a-z0-9][a-z0-9.-]*$/.test(file)) throw new Error(`invalid certificate file name ${JSON.stringify(file)}`);
  const base = join(pki.dir, file);
  if (existsSync(`${base}.crt`) && existsSync(`${base}.key`)) {
    const cert = readFileSync(`${base}.crt`, 'utf8');
    const identity = certificateIdentity(new X509Certificate(cert));
    if (stillGood(cert, new X509Certificate(pki.caCert), []) && identity.user === user && identity.groups.join('\n') === groups.join('\n')) {
      return { cert, key: readFileSync(`${base}.key`, 'utf8') };
    }
  }
  return issue(pki, base, user, groups, ['extendedKeyUsage=clientAuth']);
}

/** CN and Os of a certificate's subject (Node prints the subject one `K=V` per line). */
export function certificateIdentity(cert: X509Certificate): { user: string; groups: string[] } {
  let user = '';
  const groups: string[] = [];
  for (const line of cert.subject.split('\n')) {
    const i = line.indexOf('=');
    if (i < 0) continue;
    const k = line.slice(0, i);
    const v = line.slice(i + 1);
    if (k === 'CN') user = v;
    else if (k === 'O') groups.push(v);
  }
  return { user, groups };
}
