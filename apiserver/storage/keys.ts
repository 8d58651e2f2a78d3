/**
 * Key-range helpers shared by the backends: a prefix is turned into the half-open range
 * `[prefix, prefixEnd(prefix))` so range scans can use an index.
 */

/**
 * The smallest string greater than every string that starts with `prefix` (compared by
 * code point, which is the UTF-8 byte order SQLite and etcd use), or `undefined` when there
 * is none (empty prefix, or a prefix of only U+10FFFF).
 */
export function prefixEnd(prefix: string): string | undefined {
  const cps = Array.from(prefix, (c) => c.codePointAt(0) ?? 0);
  while (cps.length > 0) {
    let last = cps.pop() ?? 0;
    if (last >= 0x10ffff) continue;
    last += 1;
    if (last >= 0xd800 && last <= 0xdfff) last = 0xe000;
    cps.push(last);
    return String.fromCodePoint(...cps);
  }
  return undefined;
}

/** True when `key` lies in the range a prefix stands for. */
export function hasPrefix(key: string, prefix: string): boolean {
  return key.startsWith(prefix);
}
