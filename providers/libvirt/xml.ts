/**
 * The little XML this provider needs: escaping for everything it writes, and a small
 * element-tree reader for what libvirt prints (`dumpxml`, `vol-dumpxml`, `net-dumpxml`).
 * libvirt's output is well-formed and has no DTD, so the reader handles elements,
 * attributes, text, comments, CDATA and the five predefined entities plus character
 * references — nothing else.
 */

/** Escapes text and attribute values (both quote kinds), so no value can open an element. */
export function escapeXml(value: string | number): string {
  return String(value)
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&apos;');
}

export interface XmlElement {
  /** Qualified name as written, e.g. `domain` or `stratus:instance`. */
  name: string;
  attrs: Record<string, string>;
  children: XmlElement[];
  /** Concatenated text directly inside this element. */
  text: string;
}

function decodeEntities(s: string): string {
  return s.replace(/&(#x[0-9a-fA-F]+|#[0-9]+|amp|lt|gt|quot|apos);/g, (_, e: string) => {
    if (e.startsWith('#x')) return String.fromCodePoint(parseInt(e.slice(2), 16));
    if (e.startsWith('#')) return String.fromCodePoint(parseInt(e.slice(1), 10));
    return { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" }[e] ?? '';
  });
}

/** Parses one XML document into its root element; throws on malformed input. */
export function parseXml(xml: string): XmlElement {
  const stack: XmlElement[] = [];
  let root: XmlElement | undefined;
  let i = 0;
  const fail = (why: string): never => {
    throw new Error(`malformed XML at offset ${i}: ${why}`);
  };
  while (i < xml.length) {
    const lt = xml.indexOf('<', i);
    const textEnd = lt < 0 ? xml.length : lt;
    if (textEnd > i) {
      const top = stack[stack.length - 1];
      if (top) top.text += decodeEntities(xml.slice(i, textEnd));
      else if (xml.slice(i, textEnd).trim()) fail('text outside the root element');
    }
    if (lt < 0) break;
    i = lt;
    if (xml.startsWith('<?', i)) {
      const end = xml.indexOf('?>', i);
      if (end < 0) fail('unterminated processing instruction');
      i = end + 2;
    } else if (xml.startsWith('<!--', i)) {
      const end = xml.indexOf('-->', i);
      if (end < 0) fail('unterminated comment');
      i = end + 3;
    } else if (xml.startsWith('<![CDATA[', i)) {
      const end = xml.indexOf(']]>', i);
      if (end < 0) fail('unterminated CDATA');
      const top = stack[stack.length - 1];
      if (top) top.text += xml.slice(i + 9, end);
      i = end + 3;
    } else if (xml.startsWith('</', i)) {
      const end = xml.indexOf('>', i);
      if (end < 0) fail('unterminated end tag');
      const name = xml.slice(i + 2, end).trim();
      const top = stack.pop();
      if (!top || top.name !== name) fail(`unexpected </${name}>`);
      i = end + 1;
    } else {
      const m = /^<([A-Za-z_][\w.:-]*)((?:\s+[A-Za-z_][\w.:-]*\s*=\s*(?:"[^"]*"|'[^']*'))*)\s*(\/?)>/.exec(xml.slice(i));
      if (!m) return fail('bad start tag');
      const [whole, name = '', attrText = '', selfClose] = m;
      const attrs: Record<string, string> = {};
      for (const a of attrText.matchAll(/([A-Za-z_][\w.:-]*)\s*=\s*(?:"([^"]*)"|'([^']*)')/g)) {
        attrs[a[1] ?? ''] = decodeEntities(a[2] ?? a[3] ?? '');
      }
      const el: XmlElement = { name, attrs, children: [], text: '' };
      const parent = stack[stack.length - 1];
      if (parent) parent.children.push(el);
      else if (root) fail('second root element');
      else root = el;
      if (!selfClose) stack.push(el);
      i += whole.length;
    }
  }
  if (stack.length) fail(`unclosed <${stack[stack.length - 1]?.name}>`);
  if (!root) return fail('no root element');
  return root;
}

/** The first descendant reached by a `/`-separated path of child names (`devices/disk`). */
export function child(el: XmlElement | undefined, path: string): XmlElement | undefined {
  let cur = el;
  for (const part of path.split('/')) {
    cur = cur?.children.find((c) => c.name === part);
    if (!cur) return undefined;
  }
  return cur;
}

/** All children of `el` named `name`. */
export function childrenNamed(el: XmlElement | undefined, name: string): XmlElement[] {
  return el ? el.children.filter((c) => c.name === name) : [];
}
