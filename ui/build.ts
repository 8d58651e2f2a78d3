/**
 * Bundles the console (`make build`): ui/src/main.ts with Preact, htm and yaml into one ES
 * module, plus index.html and console.css, into dist/ui/ — the files `stratus serve` serves
 * at /ui/. Nothing is fetched at run time.
 */
import { build } from 'esbuild';
import { copyFileSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const out = join(here, '..', 'dist', 'ui');
mkdirSync(out, { recursive: true });
await build({
  entryPoints: [join(here, 'src', 'main.ts')],
  bundle: true,
  format: 'esm',
  target: 'es2022',
  minify: true,
  sourcemap: true,
  legalComments: 'linked',
  outfile: join(out, 'console.js'),
  logLevel: 'warning',
});
for (const f of ['index.html', 'console.css']) copyFileSync(join(here, f), join(out, f));
process.stdout.write(`built the console into ${out}\n`);
