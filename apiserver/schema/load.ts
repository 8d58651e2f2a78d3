import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import type { CustomResourceDefinition } from './types.js';

/**
 * Loads every CustomResourceDefinition in `dir/*.yaml` (and `.yml`), in file-name order, so the
 * same directory always yields the same list. Every YAML document of kind
 * CustomResourceDefinition counts; a file that does not parse throws with its name.
 */
export function loadCrdDir(dir: string): CustomResourceDefinition[] {
  const files = readdirSync(dir).filter((f) => /\.ya?ml$/.test(f)).sort();
  const crds: CustomResourceDefinition[] = [];
  for (const f of files) {
    const path = join(dir, f);
    for (const doc of parseAllDocuments(readFileSync(path, 'utf8'))) {
      if (doc.errors.length > 0) throw new Error(`${path}: ${doc.errors[0]?.message ?? 'invalid YAML'}`);
      const obj: unknown = doc.toJS();
      if (typeof obj === 'object' && obj !== null && (obj as { kind?: unknown }).kind === 'CustomResourceDefinition') {
        crds.push(obj as CustomResourceDefinition);
      }
    }
  }
  return crds;
}
