import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The repository root (the folder holding package.json), found from this file whether it
 * runs from `test/` under tsx or from `dist/test/` after `make build`.
 */
export function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'crds'))) return dir;
    const up = dirname(dir);
    if (up === dir) throw new Error('cannot find the stratus repository root above ' + fileURLToPath(import.meta.url));
    dir = up;
  }
}

/** `bin/stratus` — requires `make build` to have produced dist/. */
export function stratusBin(): string {
  return join(repoRoot(), 'bin', 'stratus');
}
