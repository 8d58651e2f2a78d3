/**
 * Child process for the crash test in qemu.test.ts: creates one machine and then idles, so
 * the parent can SIGKILL it at any point of `create` (not a test file itself).
 * Usage: create-child <uri> <imagePool> <spec JSON>
 */
import { connectLibvirt } from '../../../providers/libvirt/index.js';
import type { MachineSpec } from '../../../providers/machine.js';

const [uri, imagePool, specJson] = process.argv.slice(2);
if (!uri || !imagePool || !specJson) {
  process.stderr.write('usage: create-child <uri> <imagePool> <spec JSON>\n');
  process.exit(2);
}
const conn = connectLibvirt({ uri, imagePool });
await conn.machines().create(JSON.parse(specJson) as MachineSpec);
process.stdout.write('created\n');
setInterval(() => undefined, 60_000);
