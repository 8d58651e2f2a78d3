/**
 * Builds a Debian 12 cloud image (qcow2) from Debian packages only, the same kind of image a
 * distribution publishes on its cloud image page: an MBR disk with a boot loader
 * (SYSLINUX on a small FAT partition, holding the kernel and initrd) and an ext4 root
 * labelled `root` carrying systemd, cloud-init (NoCloud/ConfigDrive), openssh-server and
 * qemu-guest-agent. It boots without `<kernel>` in the domain, on BIOS (SeaBIOS), from a
 * virtio-scsi disk.
 *
 * Nothing is mounted and no loop device is used: the root file system is written with
 * `mkfs.ext4 -d` at the partition's offset, the FAT with `mkfs.fat --offset`, SYSLINUX with
 * its mtools installer and the files with `mcopy`. So it runs unprivileged apart from what
 * `mmdebstrap` itself needs (root mode here; it picks the mode).
 *
 * Content-addressed: the output lives at `<cacheDir>/debian-12-<hash>.qcow2`, `hash` being
 * the SHA-256 of the recipe (suite, packages, every file written, layout, kernel command
 * line). A recipe change gives a new path; an existing path is reused without a build. The
 * image is written under a temp name and renamed into place, so a concurrent or interrupted
 * build never leaves a half-written image at the final path.
 */
import { createHash } from 'node:crypto';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';

const execFileP = promisify(execFile);

export interface ImageRecipe {
  suite: string;
  mirror: string;
  packages: string[];
  /** Files written into the root file system after the packages are installed (path → content). */
  files: Record<string, string>;
  /** Paths (globs relative to /, shell-expanded) removed from the root so every VM makes its own. */
  remove: string[];
  /** dpkg never unpacks these (`path-exclude` globs): documentation, manuals, translations. */
  dpkgExclude: string[];
  /** Exceptions to `dpkgExclude` (`path-include` globs), e.g. the copyright files. */
  dpkgInclude: string[];
  bootMiB: number;
  rootMiB: number;
  /** The kernel command line SYSLINUX passes. */
  cmdline: string;
}

/** The Debian 12 cloud image stratus's tests and `make image` build. */
export const DEBIAN_12_RECIPE: ImageRecipe = {
  suite: 'bookworm',
  mirror: 'http://deb.debian.org/debian',
  packages: [
    // dbus: systemd-logind needs it, and logind is what turns the ACPI power button into a clean shutdown.
    'linux-image-cloud-amd64', 'systemd-sysv', 'udev', 'dbus', 'cloud-init', 'openssh-server', 'qemu-guest-agent',
    'ifupdown', 'isc-dhcp-client', 'iproute2', 'netbase', 'sudo', 'cloud-guest-utils', 'util-linux',
  ],
  files: {
    '/etc/fstab': 'LABEL=root / ext4 defaults,errors=remount-ro 0 1\n',
    // cloud-init writes the NIC's stanza under interfaces.d.
    '/etc/network/interfaces': 'auto lo\niface lo inet loopback\n\nsource /etc/network/interfaces.d/*\n',
    // Only the data sources a libvirt or OpenStack node offers: probing the rest costs a minute under TCG.
    '/etc/cloud/cloud.cfg.d/90-stratus-datasources.cfg': 'datasource_list: [NoCloud, ConfigDrive, None]\n',
    // C.UTF-8 is built into glibc: no `locales` package, and cloud-init has nothing to regenerate.
    // /etc/hosts carries the hostname cloud-init sets (sudo resolves it).
    '/etc/cloud/cloud.cfg.d/91-stratus-system.cfg': 'locale: C.UTF-8\nmanage_etc_hosts: true\n',
    '/etc/default/locale': 'LANG=C.UTF-8\n',
    // A persistent journal, so the previous boot's shutdown can be read after the next start.
    '/etc/systemd/journald.conf.d/90-stratus-persistent.conf': '[Journal]\nStorage=persistent\n',
    '/etc/hostname': 'localhost\n',
    '/etc/machine-id': '',
  },
  remove: ['/etc/ssh/ssh_host_*', '/var/lib/dbus/machine-id', '/var/lib/apt/lists/*', '/var/cache/apt/*.bin'],
  // A guest reads none of these; leaving them out makes the image and its build smaller.
  dpkgExclude: ['/usr/share/doc/*', '/usr/share/man/*', '/usr/share/info/*', '/usr/share/locale/*', '/usr/share/lintian/*', '/usr/share/bug/*'],
  dpkgInclude: ['/usr/share/doc/*/copyright'],
  bootMiB: 96,
  // About 420 MiB are used; cloud-init's growpart/resizefs grow the root to the Instance's disk at first boot.
  rootMiB: 1024,
  // scsi_mod.scan=sync: disks are found in address order, so sdb, sdc... follow the domain's disk order.
  cmdline: 'root=LABEL=root ro console=tty0 console=ttyS0,115200n8 scsi_mod.scan=sync',
};

export function recipeHash(recipe: ImageRecipe): string {
  return createHash('sha256').update(JSON.stringify(recipe)).digest('hex').slice(0, 16);
}

/** `$STRATUS_IMAGE_CACHE`, else `$XDG_CACHE_HOME/stratus/images`, else `~/.cache/stratus/images`. */
export function defaultImageCacheDir(): string {
  if (process.env.STRATUS_IMAGE_CACHE) return process.env.STRATUS_IMAGE_CACHE;
  return join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'stratus', 'images');
}

export function imagePath(recipe: ImageRecipe, cacheDir = defaultImageCacheDir()): string {
  return join(cacheDir, `debian-12-${recipeHash(recipe)}.qcow2`);
}

export interface BuildResult {
  path: string;
  /** False when the cached image was reused. */
  built: boolean;
}

const TOOLS = ['mmdebstrap', 'sfdisk', 'mkfs.fat', 'syslinux', 'mcopy', 'mkfs.ext4', 'qemu-img'];
const MBR = '/usr/lib/syslinux/mbr/mbr.bin';

async function run(cmd: string, args: string[], progress?: (line: string) => void): Promise<string> {
  progress?.(`$ ${cmd} ${args.join(' ')}`);
  try {
    const { stdout } = await execFileP(cmd, args, { maxBuffer: 64 * 1024 * 1024 });
    return stdout;
  } catch (err) {
    const e = err as { stderr?: string; code?: string | number; message: string };
    if (e.code === 'ENOENT') throw new Error(`${cmd} is not installed: run \`make deps-apt\` (APT_PACKAGES has it)`);
    throw new Error(`image build: ${cmd} failed: ${(e.stderr ?? '').trim().split('\n').slice(-5).join(' / ') || e.message}`);
  }
}

/** Returns the cached image for `recipe`, building it first when absent. */
export async function buildImage(
  recipe: ImageRecipe = DEBIAN_12_RECIPE,
  opts: { cacheDir?: string; progress?: (line: string) => void } = {},
): Promise<BuildResult> {
  const cacheDir = opts.cacheDir ?? defaultImageCacheDir();
  const out = imagePath(recipe, cacheDir);
  if (existsSync(out)) return { path: out, built: false };
  await mkdir(cacheDir, { recursive: true });
  const work = await mkdtemp(join(cacheDir, '.build-'));
  const progress = opts.progress;
  try {
    for (const t of TOOLS) await run('sh', ['-c', `command -v ${t}`]).catch(() => {
      throw new Error(`${t} is not installed: run \`make deps-apt\` (APT_PACKAGES has it)`);
    });
    if (!existsSync(MBR)) throw new Error(`${MBR} is missing: run \`make deps-apt\` (syslinux-common)`);
    const root = join(work, 'root');
    await run('mmdebstrap', [
      '--quiet', '--variant=minbase', `--include=${recipe.packages.join(',')}`,
      ...recipe.dpkgExclude.map((g) => `--dpkgopt=path-exclude=${g}`),
      ...recipe.dpkgInclude.map((g) => `--dpkgopt=path-include=${g}`),
      recipe.suite, root, recipe.mirror,
    ], progress);
    for (const [path, content] of Object.entries(recipe.files)) {
      await mkdir(dirname(join(root, path)), { recursive: true });
      await writeFile(join(root, path), content);
    }
    // Globs expand inside the root (relative paths after `cd`), so nothing outside it is touched.
    const relative = recipe.remove.map((p) => p.replace(/^\/+/, ''));
    await run('sh', ['-c', 'cd "$0" || exit 1; for p in "$@"; do rm -rf -- $p; done', root, ...relative]);
    const bootFiles = await readdir(join(root, 'boot'));
    const kernel = bootFiles.find((f) => f.startsWith('vmlinuz-'));
    const initrd = bootFiles.find((f) => f.startsWith('initrd.img-'));
    if (!kernel || !initrd) throw new Error(`image build: no kernel/initrd in ${join(root, 'boot')} (${bootFiles.join(', ')})`);

    const raw = join(work, 'disk.raw');
    const MiB = 1024 * 1024;
    const bootStart = 1; // MiB: the usual 1 MiB alignment, leaving room for the MBR
    const rootStart = bootStart + recipe.bootMiB;
    await writeFile(raw, '');
    await run('truncate', ['-s', `${rootStart + recipe.rootMiB}M`, raw]);
    const table = `label: dos\nstart=${bootStart * 2048}, size=${recipe.bootMiB * 2048}, type=6, bootable\nstart=${rootStart * 2048}, type=83\n`;
    await writeFile(join(work, 'table'), table);
    await run('sh', ['-c', `sfdisk -q "$1" < "$2"`, 'sfdisk', raw, join(work, 'table')], progress);
    await run('dd', [`if=${MBR}`, `of=${raw}`, 'bs=440', 'count=1', 'conv=notrunc', 'status=none']);
    await run('mkfs.fat', ['-F', '16', '-n', 'BOOT', `--offset=${bootStart * 2048}`, raw, String(recipe.bootMiB * 1024)], progress);
    await run('syslinux', ['-t', String(bootStart * MiB), '--install', raw], progress);
    const cfg = ['DEFAULT debian', 'PROMPT 0', 'TIMEOUT 0', 'SERIAL 0 115200', 'LABEL debian', '  KERNEL /vmlinuz', '  INITRD /initrd.img', `  APPEND ${recipe.cmdline}`, ''].join('\n');
    await writeFile(join(work, 'syslinux.cfg'), cfg);
    const fat = `${raw}@@${bootStart * MiB}`;
    await run('mcopy', ['-i', fat, join(work, 'syslinux.cfg'), '::/syslinux.cfg']);
    await run('mcopy', ['-i', fat, join(root, 'boot', kernel), '::/vmlinuz']);
    await run('mcopy', ['-i', fat, join(root, 'boot', initrd), '::/initrd.img']);
    await run('mkfs.ext4', ['-q', '-F', '-L', 'root', '-d', root, '-E', `offset=${rootStart * MiB}`, raw, `${recipe.rootMiB}M`], progress);
    const tmpOut = join(work, 'image.qcow2');
    await run('qemu-img', ['convert', '-f', 'raw', '-O', 'qcow2', raw, tmpOut], progress);
    await rename(tmpOut, out);
    return { path: out, built: true };
  } finally {
    await rm(work, { recursive: true, force: true }).catch(() => undefined);
  }
}
