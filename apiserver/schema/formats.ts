/**
 * The string formats kube-apiserver checks in CRD schemas (kube-openapi's strfmt registry),
 * approximated closely enough that what Kubernetes accepts is accepted here too. Formats not
 * listed are ignored, as Kubernetes ignores them.
 */
import { isIPv4, isIPv6 } from 'node:net';

const rfc3339 = /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/;
const dateOnly = /^(\d{4})-(\d{2})-(\d{2})$/;
const hostnameLabel = /^[A-Za-z0-9]([-A-Za-z0-9]{0,61}[A-Za-z0-9])?$/;
const base64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const uuidAny = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;
const mac = /^[0-9A-Fa-f]{2}([:-])(?:[0-9A-Fa-f]{2}\1){4}[0-9A-Fa-f]{2}$|^[0-9A-Fa-f]{4}\.[0-9A-Fa-f]{4}\.[0-9A-Fa-f]{4}$/;
const goDuration = /^[-+]?((\d+(\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h|d|w))+$|^0$/;

function validDate(y: string, m: string, d: string): boolean {
  const month = Number(m);
  const day = Number(d);
  if (month < 1 || month > 12 || day < 1) return false;
  const days = new Date(Date.UTC(Number(y), month, 0)).getUTCDate();
  return day <= days;
}

function isDateTime(s: string): boolean {
  const m = rfc3339.exec(s);
  if (!m) return false;
  const [, y, mo, d, h, mi, sec] = m as unknown as [string, string, string, string, string, string, string];
  return validDate(y, mo, d) && Number(h) < 24 && Number(mi) < 60 && Number(sec) < 61;
}

function isCidr(s: string): boolean {
  const slash = s.indexOf('/');
  if (slash < 0) return false;
  const ip = s.slice(0, slash);
  const bits = s.slice(slash + 1);
  if (!/^\d{1,3}$/.test(bits)) return false;
  if (isIPv4(ip)) return Number(bits) <= 32;
  if (isIPv6(ip)) return Number(bits) <= 128;
  return false;
}

function isHostname(s: string): boolean {
  return s.length > 0 && s.length <= 253 && s.split('.').every((l) => hostnameLabel.test(l));
}

/** Format name → check. */
export const KUBE_FORMATS: Readonly<Record<string, (s: string) => boolean>> = {
  'date-time': isDateTime,
  datetime: isDateTime,
  date: (s) => {
    const m = dateOnly.exec(s);
    return m !== null && validDate(m[1] as string, m[2] as string, m[3] as string);
  },
  ipv4: (s) => isIPv4(s),
  ipv6: (s) => isIPv6(s),
  cidr: isCidr,
  mac: (s) => mac.test(s),
  hostname: isHostname,
  uri: (s) => /^([A-Za-z][A-Za-z0-9+.-]*:\S*|\/\S*)$/.test(s),
  email: (s) => /^[^\s@<>]+@[^\s@<>]+$/.test(s),
  uuid: (s) => uuidAny.test(s),
  uuid3: (s) => uuidAny.test(s) && s[14] === '3',
  uuid4: (s) => uuidAny.test(s) && s[14] === '4',
  uuid5: (s) => uuidAny.test(s) && s[14] === '5',
  byte: (s) => base64.test(s),
  bsonobjectid: (s) => /^[0-9a-f]{24}$/.test(s),
  duration: (s) => goDuration.test(s),
  password: () => true,
};
