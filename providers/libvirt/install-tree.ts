/**
 * Network install from an install tree (`libvirt.location` that is not an ISO), the way
 * virt-install's `--location` does it: find the installer kernel and initrd under the tree's
 * known layouts, fetch them, and boot them once with a command line that points the installer
 * back at the tree. The files are uploaded into the node's pool, so this works for remote
 * nodes too. When the installer reboots the guest, the domain (defined with
 * `on_reboot=destroy`) shuts off and the provider redefines it to boot from its disk.
 */
import { ReconcileError } from '../../runtime/errors.js';

export interface TreeLayout {
  name: string;
  kernel: string;
  initrd: string;
  /** Arguments the installer needs to find the tree. */
  cmdline(location: string): string;
}

/** Tried in order; the first whose kernel exists wins. */
export const TREE_LAYOUTS: readonly TreeLayout[] = [
  { name: 'redhat', kernel: 'images/pxeboot/vmlinuz', initrd: 'images/pxeboot/initrd.img', cmdline: (l) => `inst.repo=${l}` },
  // Debian and Ubuntu archives' installer trees (`…/dists/<release>/main/installer-amd64`,
  // the DataCentred agent's locations): netboot images under images/ (Debian; Ubuntu up to
  // 18.04) or legacy-images/ (Ubuntu 20.04; some Debian mirrors).
  ...(['debian', 'ubuntu'] as const).flatMap((distro) =>
    (['images', 'legacy-images'] as const).map(
      (dir): TreeLayout => ({
        name: `${distro}${dir === 'legacy-images' ? '-legacy' : ''}`,
        kernel: `current/${dir}/netboot/${distro}-installer/amd64/linux`,
        initrd: `current/${dir}/netboot/${distro}-installer/amd64/initrd.gz`,
        cmdline: () => '',
      }),
    ),
  ),
  { name: 'debian-media', kernel: 'install.amd/vmlinuz', initrd: 'install.amd/initrd.gz', cmdline: () => '' },
  { name: 'suse', kernel: 'boot/x86_64/loader/linux', initrd: 'boot/x86_64/loader/initrd', cmdline: (l) => `install=${l}` },
];

const MAX_BYTES = 1024 ** 3;

export interface Installer {
  layout: string;
  kernel: Buffer;
  initrd: Buffer;
  cmdline: string;
}

async function download(url: URL, timeoutMs: number): Promise<Buffer | undefined> {
  let res: Response;
  try {
    res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs), redirect: 'follow' });
  } catch (err) {
    throw new ReconcileError('InstallTreeUnreachable', `cannot fetch ${url.href}: ${(err as Error).message}`);
  }
  if (res.status === 404 || res.status === 403 || res.status === 410) {
    await res.body?.cancel();
    return undefined;
  }
  if (!res.ok) {
    await res.body?.cancel();
    throw new ReconcileError('InstallTreeUnreachable', `fetching ${url.href}: HTTP ${res.status}`);
  }
  if (Number(res.headers.get('content-length') ?? 0) > MAX_BYTES) {
    await res.body?.cancel();
    throw new ReconcileError('InvalidSpec', `libvirt.location: ${url.href} is larger than 1 GiB`, false);
  }
  return Buffer.from(await res.arrayBuffer());
}

/** Finds and fetches the installer of the tree at `location`. */
export async function fetchInstaller(location: URL, extraCmdline = '', timeoutMs = 300_000): Promise<Installer> {
  const base = new URL(location.href.endsWith('/') ? location.href : `${location.href}/`);
  for (const layout of TREE_LAYOUTS) {
    const kernel = await download(new URL(layout.kernel, base), timeoutMs);
    if (!kernel) continue;
    const initrd = await download(new URL(layout.initrd, base), timeoutMs);
    if (!initrd) throw new ReconcileError('InstallTreeNotFound', `${base.href} has ${layout.kernel} but no ${layout.initrd}`);
    const cmdline = [layout.cmdline(base.href), extraCmdline].filter(Boolean).join(' ');
    return { layout: layout.name, kernel, initrd, cmdline };
  }
  throw new ReconcileError(
    'InstallTreeNotFound',
    `no installer kernel under ${base.href} (tried ${TREE_LAYOUTS.map((l) => l.kernel).join(', ')})`,
    false,
  );
}
