import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parse as parseYaml } from 'yaml';
import type { MachineSpec } from '../../../providers/machine.js';
import { ReconcileError } from '../../../runtime/errors.js';
import {
  buildDomainXml,
  domainName,
  derivedMac,
  scsiDiskName,
  readOwnedDomain,
  libvirtNetworkName,
  type DomainPlan,
} from '../../../providers/libvirt/domain-xml.js';
import { escapeXml, parseXml, child, childrenNamed } from '../../../providers/libvirt/xml.js';
import { validateSpec } from '../../../providers/libvirt/validate.js';
import { seedFiles } from '../../../providers/libvirt/cloud-init.js';
import { quoteVirshArg } from '../../../providers/libvirt/virsh-shell.js';
import { parseDomIfAddr } from '../../../providers/libvirt/machines.js';
import { ovsNetworkXml } from '../../../providers/libvirt/networks.js';

const UID = '6f1c2a4e-8d0b-4f3a-9c55-0e7b2d9a1f10';

function spec(over: Partial<MachineSpec> = {}): MachineSpec {
  return {
    uid: UID,
    namespace: 'team-a',
    name: 'web',
    hostname: 'web',
    image: 'debian-12',
    cpus: 2,
    memoryMiB: 1024,
    disks: [
      { name: 'data', sizeGiB: 10 },
      { name: 'logs', sizeGiB: 1 },
    ],
    networks: [{ name: 'front', bridge: 'br-int', vlan: 100 }],
    sshAuthorizedKeys: ['ssh-ed25519 AAAAkey one@x'],
    env: {},
    ports: [],
    labels: {},
    powerState: 'Running',
    providerSpec: {},
    ...over,
  };
}

function plan(s: MachineSpec, over: Partial<DomainPlan> = {}): DomainPlan {
  return {
    type: 'qemu',
    name: domainName(s),
    boot: { path: '/pool/boot.qcow2', format: 'qcow2' },
    data: s.disks.map((d) => ({ path: `/pool/${d.name}.qcow2`, format: 'qcow2' as const })),
    seed: { path: '/pool/seed.iso', format: 'raw' },
    interfaces: s.networks.map((n, i) => ({ network: libvirtNetworkName(n.name), portgroup: `vlan-${n.vlan}`, mac: derivedMac(s.uid, i) })),
    settings: validateSpec(s),
    ...over,
  };
}

describe('domain XML', () => {
  it('puts disks on a virtio-scsi controller as sda, sdb, ... with the seed as a read-only cdrom', () => {
    const s = spec();
    const root = parseXml(buildDomainXml(s, plan(s)));
    assert.equal(root.attrs.type, 'qemu');
    assert.equal(child(root, 'uuid')?.text, UID);
    assert.equal(child(root, 'memory')?.text, '1024');
    assert.equal(child(root, 'memory')?.attrs.unit, 'MiB');
    assert.equal(child(root, 'vcpu')?.text, '2');
    const devices = child(root, 'devices');
    assert.deepEqual(
      childrenNamed(devices, 'controller').map((c) => [c.attrs.type, c.attrs.model]),
      [['scsi', 'virtio-scsi']],
    );
    assert.deepEqual(
      childrenNamed(devices, 'disk').map((d) => [d.attrs.device, child(d, 'target')?.attrs.dev, child(d, 'target')?.attrs.bus, child(d, 'source')?.attrs.file, !!child(d, 'readonly')]),
      [
        ['disk', 'sda', 'scsi', '/pool/boot.qcow2', false],
        ['disk', 'sdb', 'scsi', '/pool/data.qcow2', false],
        ['disk', 'sdc', 'scsi', '/pool/logs.qcow2', false],
        ['cdrom', 'sdd', 'scsi', '/pool/seed.iso', true],
      ],
    );
    const nic = childrenNamed(devices, 'interface')[0];
    assert.equal(nic?.attrs.type, 'network');
    assert.deepEqual(child(nic, 'source')?.attrs, { network: 'stratus-front', portgroup: 'vlan-100' });
    assert.equal(child(nic, 'virtualport')?.attrs.type, 'openvswitch');
  });

  it('boots an installer ISO from its URL as a network cdrom before the disk', () => {
    const s = spec({ image: undefined, disks: [], providerSpec: { location: 'https://mirror.example/isos/debian-12.iso?x=1', console: 'serial' } });
    const root = parseXml(buildDomainXml(s, plan(s, { boot: undefined, data: [] })));
    assert.deepEqual(
      childrenNamed(child(root, 'os'), 'boot').map((b) => b.attrs.dev),
      ['cdrom', 'hd'],
    );
    const cd = childrenNamed(child(root, 'devices'), 'disk').find((d) => d.attrs.type === 'network');
    assert.deepEqual(child(cd, 'source')?.attrs, { protocol: 'https', name: '/isos/debian-12.iso?x=1' });
    assert.deepEqual(child(cd, 'source/host')?.attrs, { name: 'mirror.example', port: '443' });
    assert.equal(child(cd, 'target')?.attrs.dev, 'sda');
    assert.equal(childrenNamed(child(root, 'devices'), 'serial').length, 1);
    assert.equal(childrenNamed(child(root, 'devices'), 'console').length, 1);
  });

  it('puts a machine without networks on the default network as a plain interface', () => {
    const s = spec({ networks: [] });
    const root = parseXml(buildDomainXml(s, plan(s, { interfaces: [{ network: 'default', mac: derivedMac(UID, 0) }] })));
    const nics = childrenNamed(child(root, 'devices'), 'interface');
    assert.equal(nics.length, 1);
    assert.deepEqual(child(nics[0], 'source')?.attrs, { network: 'default' });
    assert.equal(child(nics[0], 'virtualport'), undefined);
  });

  it('boots a fetched installer once (on_reboot destroy, install mark), with the machine type asked for', () => {
    const s = spec({ providerSpec: { location: 'http://mirror.example/fedora/os/', machine: 'q35', osVariant: 'fedora40' } });
    const xml = buildDomainXml(s, plan(s, { install: { kernel: '/pool/k', initrd: '/pool/i', cmdline: 'inst.repo=http://mirror.example/fedora/os/' } }));
    const root = parseXml(xml);
    assert.equal(child(root, 'os/type')?.attrs.machine, 'q35');
    assert.equal(child(root, 'os/kernel')?.text, '/pool/k');
    assert.equal(child(root, 'os/initrd')?.text, '/pool/i');
    assert.equal(child(root, 'on_reboot')?.text, 'destroy');
    assert.equal(readOwnedDomain(xml)?.installing, true);
    assert.equal(childrenNamed(child(root, 'devices'), 'disk').filter((d) => d.attrs.type === 'network').length, 0);
    const after = parseXml(buildDomainXml(s, plan(s)));
    assert.equal(child(after, 'os/kernel'), undefined);
    assert.equal(child(after, 'on_reboot')?.text, 'restart');
    assert.equal(readOwnedDomain(buildDomainXml(s, plan(s)))?.installing, false);
  });

  it('boots a kernel and initrd on the node when asked', () => {
    const s = spec({ providerSpec: { kernel: '/boot/vmlinuz', initrd: '/boot/initrd.img', cmdline: 'console=ttyS0 url=<x>' } });
    const os = child(parseXml(buildDomainXml(s, plan(s))), 'os');
    assert.equal(child(os, 'kernel')?.text, '/boot/vmlinuz');
    assert.equal(child(os, 'initrd')?.text, '/boot/initrd.img');
    assert.equal(child(os, 'cmdline')?.text, 'console=ttyS0 url=<x>');
  });

  it('escapes every value: names, namespaces, labels and paths cannot open elements', () => {
    const evil = `</name><evil a='1'/>"&`;
    const s = spec({ name: evil, namespace: evil, labels: { [evil]: evil } });
    const xml = buildDomainXml(s, plan(s, { boot: { path: `/pool/${evil}`, format: 'qcow2' } }));
    const root = parseXml(xml);
    const names = new Set<string>();
    const walk = (e: ReturnType<typeof parseXml>): void => {
      names.add(e.name);
      e.children.forEach(walk);
    };
    walk(root);
    assert.ok(!names.has('evil'));
    const owned = readOwnedDomain(xml);
    assert.equal(owned?.name, evil);
    assert.equal(owned?.namespace, evil);
    assert.deepEqual(owned?.labels, { [evil]: evil });
    assert.equal(child(root, 'title')?.text, `${evil}/${evil}`);
    assert.equal(childrenNamed(child(root, 'devices'), 'disk')[0] && child(childrenNamed(child(root, 'devices'), 'disk')[0], 'source')?.attrs.file, `/pool/${evil}`);
    assert.match(child(root, 'name')?.text ?? '', /^[A-Za-z0-9_.-]+$/);
  });

  it('derives libvirt-safe names, SCSI names and stable MACs', () => {
    assert.equal(domainName({ namespace: 'default', name: 'web', uid: UID }), 'default-web-6f1c2a4e');
    assert.equal(domainName({ namespace: 'a/b', name: '<x/>', uid: UID }), 'a-b-x--6f1c2a4e');
    assert.ok(domainName({ namespace: 'n'.repeat(300), name: 'm', uid: UID }).length <= 64);
    assert.deepEqual([0, 1, 25, 26, 27].map(scsiDiskName), ['sda', 'sdb', 'sdz', 'sdaa', 'sdab']);
    assert.equal(derivedMac(UID, 0), derivedMac(UID.toUpperCase(), 0));
    assert.notEqual(derivedMac(UID, 0), derivedMac(UID, 1));
    assert.match(derivedMac(UID, 3), /^52:54:00(:[0-9a-f]{2}){3}$/);
  });

  it('returns undefined for domains without stratus metadata', () => {
    assert.equal(readOwnedDomain("<domain type='kvm'><name>x</name><metadata><other xmlns='urn:x'/></metadata></domain>"), undefined);
  });
});

describe('spec validation', () => {
  const cases: [string, Partial<MachineSpec>, RegExp][] = [
    ['memory 0', { memoryMiB: 0 }, /^memoryMiB:/],
    ['fractional cpus', { cpus: 1.5 }, /^cpus:/],
    ['disk -1 GiB', { disks: [{ name: 'd', sizeGiB: -1 }] }, /^disks\[0\]\.sizeGiB:/],
    ['duplicate disks', { disks: [{ name: 'd', sizeGiB: 1 }, { name: 'd', sizeGiB: 1 }] }, /duplicate/],
    ['XML hostname', { hostname: '<x/>' }, /^hostname:/],
    ['10,000 networks', { networks: Array.from({ length: 10_000 }, (_, i) => ({ name: `n${i}`, bridge: 'br0', vlan: 1 })) }, /^networks: at most/],
    ['vlan 0', { networks: [{ name: 'n', bridge: 'br0', vlan: 0 }] }, /vlan/],
    ['bridge with a slash', { networks: [{ name: 'n', bridge: 'br/0', vlan: 1 }] }, /bridge/],
    ['bad address', { networks: [{ name: 'n', bridge: 'br0', vlan: 1, address: '10.0.0.300/24' }] }, /address/],
    ['multicast MAC', { networks: [{ name: 'n', bridge: 'br0', vlan: 1, mac: '01:00:5e:00:00:01' }] }, /unicast/],
    ['key with newline', { sshAuthorizedKeys: ['ssh-ed25519 AAA\nssh-rsa BBB'] }, /sshKeys\[0\]/],
    ['image path', { image: '../etc/passwd' }, /^image:/],
    ['not a uuid', { uid: 'abc' }, /uid/],
    ['ftp install tree', { providerSpec: { location: 'ftp://mirror.example/debian/' } }, /install tree must be an http/],
    ['kernel with location', { providerSpec: { location: 'http://m.example/t/', kernel: '/boot/vmlinuz' } }, /cannot be combined/],
    ['machine type', { providerSpec: { machine: 'q35;rm' } }, /libvirt\.machine/],
    ['console', { providerSpec: { console: 'vnc' } }, /console/],
    ['relative kernel', { providerSpec: { kernel: 'vmlinuz' } }, /kernel/],
  ];
  for (const [what, over, text] of cases) {
    it(`rejects ${what} as InvalidSpec (not retryable)`, () => {
      assert.throws(
        () => validateSpec(spec(over)),
        (err: unknown) => err instanceof ReconcileError && err.reason === 'InvalidSpec' && !err.retryable && text.test(err.message),
      );
    });
  }
  it('accepts a full valid spec', () => {
    const s = spec({ networks: [{ name: 'n', bridge: 'br0', vlan: 7, address: 'fd00::5/64', gateway: 'fd00::1', mac: '52:54:00:12:34:56' }] });
    assert.deepEqual(validateSpec(s), { console: false });
  });
});

describe('cloud-init seed', () => {
  it('writes instance-id = uid and the hostname into meta-data, keys into user-data', () => {
    const files = seedFiles(spec({ hostname: 'db' }));
    assert.deepEqual(parseYaml(files['meta-data']), { 'instance-id': UID, 'local-hostname': 'db' });
    assert.ok(files['user-data'].startsWith('#cloud-config\n'));
    assert.deepEqual(parseYaml(files['user-data']), { hostname: 'db', ssh_authorized_keys: ['ssh-ed25519 AAAAkey one@x'] });
  });

  it('merges a #cloud-config userData, keeping its keys and the user\'s own settings', () => {
    const files = seedFiles(spec({ userData: '#cloud-config\nhostname: custom\nssh_authorized_keys: [ssh-rsa USER]\npackages: [htop]\n' }));
    assert.deepEqual(parseYaml(files['user-data']), {
      hostname: 'custom',
      packages: ['htop'],
      ssh_authorized_keys: ['ssh-rsa USER', 'ssh-ed25519 AAAAkey one@x'],
    });
  });

  it('carries a script userData as its own MIME part beside stratus\'s cloud-config', () => {
    const script = '#!/bin/sh\necho hello\n';
    const ud = seedFiles(spec({ userData: script }))['user-data'];
    const boundary = /boundary="([^"]+)"/.exec(ud)?.[1] ?? '';
    assert.ok(boundary);
    const parts = ud.split(`--${boundary}`).slice(1, -1);
    assert.equal(parts.length, 2);
    const body = (p: string): string => Buffer.from(p.split('\n\n')[1] ?? '', 'base64').toString();
    assert.match(parts[0] ?? '', /Content-Type: text\/cloud-config/);
    assert.match(parts[1] ?? '', /Content-Type: text\/x-shellscript/);
    assert.equal(body(parts[1] ?? ''), script);
    assert.deepEqual(parseYaml(body(parts[0] ?? '')), { hostname: 'web', ssh_authorized_keys: ['ssh-ed25519 AAAAkey one@x'] });
  });

  it('rejects a #cloud-config userData that is not YAML', () => {
    assert.throws(() => seedFiles(spec({ userData: '#cloud-config\n: : [\n' })), (e: unknown) => e instanceof ReconcileError && e.reason === 'InvalidSpec');
  });

  it('describes static addresses and DHCP in network-config v2, matched by MAC', () => {
    const files = seedFiles(
      spec({
        networks: [
          { name: 'a', bridge: 'br0', vlan: 1, address: '10.0.0.5/24', gateway: '10.0.0.1' },
          { name: 'b', bridge: 'br0', vlan: 2, mac: '52:54:00:AA:BB:CC' },
        ],
      }),
    );
    assert.deepEqual(parseYaml(files['network-config'] ?? ''), {
      version: 2,
      ethernets: {
        eth0: { match: { macaddress: derivedMac(UID, 0) }, 'set-name': 'eth0', addresses: ['10.0.0.5/24'], routes: [{ to: '0.0.0.0/0', via: '10.0.0.1' }] },
        eth1: { match: { macaddress: '52:54:00:aa:bb:cc' }, 'set-name': 'eth1', dhcp4: true },
      },
    });
  });
});

describe('helpers', () => {
  it('escapeXml and parseXml round-trip hostile text', () => {
    const text = `<a b="c">'&amp;</a>`;
    const root = parseXml(`<r x="${escapeXml(text)}">${escapeXml(text)}<![CDATA[<raw>]]><!-- c --></r>`);
    assert.equal(root.attrs.x, text);
    assert.equal(root.text, `${text}<raw>`);
    assert.throws(() => parseXml('<a><b></a>'), /malformed/);
  });

  it('quotes virsh arguments so spaces, quotes and backslashes survive, and refuses newlines', () => {
    assert.equal(quoteVirshArg(`a b"c\\d`), `"a b\\"c\\\\d"`);
    assert.throws(() => quoteVirshArg('a\nquit'), /control character/);
  });

  it('parses domifaddr output', () => {
    const out = ' vnet0      52:54:00:12:34:56    ipv4         192.168.122.50/24\n -          -                    ipv6         fe80::1/64\n';
    assert.deepEqual(parseDomIfAddr(out), ['192.168.122.50', 'fe80::1']);
  });

  it('builds an OVS network with one tagged portgroup per VLAN', () => {
    const root = parseXml(ovsNetworkXml({ name: 'stratus-a', bridge: 'br-int', vlans: [20, 10] }, '11111111-2222-3333-4444-555555555555'));
    assert.equal(child(root, 'uuid')?.text, '11111111-2222-3333-4444-555555555555');
    assert.equal(child(root, 'forward')?.attrs.mode, 'bridge');
    assert.equal(child(root, 'bridge')?.attrs.name, 'br-int');
    assert.equal(child(root, 'virtualport')?.attrs.type, 'openvswitch');
    assert.deepEqual(
      childrenNamed(root, 'portgroup').map((p) => [p.attrs.name, child(p, 'vlan/tag')?.attrs.id]),
      [
        ['vlan-10', '10'],
        ['vlan-20', '20'],
      ],
    );
    assert.throws(() => ovsNetworkXml({ name: 'x', bridge: 'br0', vlans: [5000] }), /VLAN/);
  });
});
