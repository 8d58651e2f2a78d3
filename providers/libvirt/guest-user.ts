/**
 * The login user of a cloud image's guest. cloud-init installs the SSH keys it is given for
 * the image's *default user*, which each distribution names differently (root logins are
 * refused). stratus's own Debian image follows Debian's cloud images (`debian`).
 *
 * Contract: the annotation `compute.stratus.dev/ssh-user` on the Instance wins; otherwise the
 * user is derived from the image name's distribution prefix; unknown images get `root`.
 */
export const SSH_USER_ANNOTATION = 'compute.stratus.dev/ssh-user';

const BY_PREFIX: [RegExp, string][] = [
  [/^debian/i, 'debian'],
  [/^ubuntu/i, 'ubuntu'],
  [/^fedora/i, 'fedora'],
  [/^(centos|rocky|alma|rhel)/i, 'cloud-user'],
  [/^(opensuse|sles)/i, 'sles'],
  [/^arch/i, 'arch'],
  [/^alpine/i, 'alpine'],
];

export function guestLoginUser(image: string | undefined, annotations?: Record<string, string>): string {
  const explicit = annotations?.[SSH_USER_ANNOTATION];
  if (explicit) return explicit;
  const base = (image ?? '').split('/').pop() ?? '';
  return BY_PREFIX.find(([re]) => re.test(base))?.[1] ?? 'root';
}
