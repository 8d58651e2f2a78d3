/**
 * `stratus image`: base images for libvirt nodes.
 *
 *   stratus image build [--cache-dir DIR]
 *     builds (or finds in the content-addressed cache) the Debian 12 cloud image and prints
 *     its path on stdout; progress goes to stderr.
 *   stratus image import FILE --node N --name NAME [--replace] [--kubeconfig FILE]
 *     uploads a qcow2/raw image into ComputeNode N's image pool as volume NAME, the value
 *     Instances put in `spec.image`.
 */
import type { Command } from 'commander';
import type { ComputeNode } from '../crds/types.js';
import { KubeClient } from '../runtime/client.js';
import { Resources } from '../controllers/resources.js';
import { connectLibvirt } from '../providers/libvirt/index.js';
import { buildImage, defaultImageCacheDir, DEBIAN_12_RECIPE } from '../providers/libvirt/image-build.js';
import { importImage } from '../providers/libvirt/image-import.js';
import { DEFAULT_KUBECONFIG } from './token.js';

export function registerImage(program: Command): void {
  const image = program.command('image').description('base images for libvirt nodes (build, import)');
  image
    .command('build')
    .description('build the Debian 12 cloud image (cached by recipe hash) and print its path')
    .option('--cache-dir <dir>', 'where built images are kept', defaultImageCacheDir())
    .option('--verbose', 'print each build step on stderr')
    .action(async (raw: Record<string, unknown>) => {
      const started = Date.now();
      const result = await buildImage(DEBIAN_12_RECIPE, {
        cacheDir: String(raw.cacheDir),
        ...(raw.verbose ? { progress: (line: string) => process.stderr.write(`${line}\n`) } : {}),
      });
      process.stderr.write(result.built ? `built in ${Math.round((Date.now() - started) / 1000)} s\n` : 'cached (recipe unchanged)\n');
      process.stdout.write(`${result.path}\n`);
    });
  image
    .command('import')
    .description('upload a qcow2 or raw disk image into a ComputeNode\'s image pool')
    .argument('<file>', 'the image file (qcow2 or raw)')
    .requiredOption('--node <name>', 'the libvirt ComputeNode')
    .requiredOption('--name <name>', 'volume name; Instances refer to it in spec.image')
    .option('--replace', 'overwrite an existing volume of that name')
    .option('--kubeconfig <file>', 'kubeconfig of the API server', DEFAULT_KUBECONFIG)
    .action(async (file: string, raw: Record<string, unknown>) => {
      const client = KubeClient.fromFile(String(raw.kubeconfig));
      try {
        const nodeName = String(raw.node);
        const node = await client.resource<ComputeNode>(Resources.computeNodes).get(undefined, nodeName);
        if (!node) throw new Error(`ComputeNode "${nodeName}" does not exist`);
        const lv = node.spec.libvirt;
        if (node.spec.provider !== 'libvirt' || !lv) throw new Error(`ComputeNode "${nodeName}" is a ${node.spec.provider} node; images are imported into libvirt nodes`);
        const conn = connectLibvirt({ uri: lv.uri, imagePool: lv.imagePool ?? 'default' });
        try {
          const v = await importImage(conn.shell(), conn.imagePool, String(raw.name), file, { replace: Boolean(raw.replace) });
          process.stdout.write(`image ${v.name} imported into pool ${conn.imagePool} on ${nodeName} (${v.format}, ${Math.round(v.capacityBytes / 1024 ** 2)} MiB)\n`);
        } finally {
          await conn.close();
        }
      } finally {
        client.close();
      }
    });
}
