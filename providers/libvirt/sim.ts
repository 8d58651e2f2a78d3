/**
 * The `sim` node: libvirt's test driver loaded from a node description stratus writes, so
 * `make run` and the README quick start reach `running` on any machine without a hypervisor.
 * The node has 8 CPUs, 16 GiB, an image pool `default` holding a few named base images and
 * a NAT network `default` (machines without networks join it and get a 192.168.122.x address).
 * Its state lives in the process that opens it (see `connectLibvirt`).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { escapeXml } from './xml.js';

/** Base images of the sim node's `default` pool (volume `<name>.qcow2`, referred to as `<name>`). */
export const SIM_IMAGES: readonly { name: string; sizeGiB: number }[] = [
  { name: 'debian-12', sizeGiB: 2 },
  { name: 'ubuntu-24.04', sizeGiB: 3 },
  { name: 'alpine-3.20', sizeGiB: 1 },
  { name: 'fedora-40', sizeGiB: 5 },
];

export const SIM_CAPACITY = { cpus: 8, memoryMiB: 16 * 1024 } as const;

export function simNodeXml(poolPath = '/var/lib/stratus/sim/images'): string {
  const volumes = SIM_IMAGES.map(
    (img) =>
      `    <volume type='file'>\n      <name>${escapeXml(img.name)}.qcow2</name>\n` +
      `      <capacity unit='GiB'>${img.sizeGiB}</capacity>\n      <allocation unit='MiB'>300</allocation>\n` +
      `      <target>\n        <path>${escapeXml(`${poolPath}/${img.name}.qcow2`)}</path>\n        <format type='qcow2'/>\n      </target>\n    </volume>\n`,
  ).join('');
  return (
    `<node>\n` +
    `  <cpu>\n    <mhz>2400</mhz>\n    <model>x86_64</model>\n    <nodes>1</nodes>\n    <sockets>1</sockets>\n` +
    `    <cores>${SIM_CAPACITY.cpus}</cores>\n    <threads>1</threads>\n    <active>${SIM_CAPACITY.cpus}</active>\n  </cpu>\n` +
    `  <memory>${SIM_CAPACITY.memoryMiB * 1024}</memory>\n` +
    `  <pool type='dir'>\n    <name>default</name>\n    <uuid>5d1f9d38-3c51-4b5e-9a6b-7f8d5e0c1a01</uuid>\n` +
    // The test driver sizes every pool at 100 GiB whatever this says; volumes are thin.
    `    <capacity unit='GiB'>100</capacity>\n    <allocation unit='GiB'>2</allocation>\n    <available unit='GiB'>98</available>\n` +
    `    <target>\n      <path>${escapeXml(poolPath)}</path>\n    </target>\n${volumes}  </pool>\n` +
    `  <network>\n    <name>default</name>\n    <uuid>5d1f9d38-3c51-4b5e-9a6b-7f8d5e0c1a02</uuid>\n` +
    `    <forward mode='nat'/>\n    <bridge name='virbr0'/>\n` +
    `    <ip address='192.168.122.1' netmask='255.255.255.0'>\n      <dhcp>\n` +
    `        <range start='192.168.122.2' end='192.168.122.254'/>\n      </dhcp>\n    </ip>\n  </network>\n` +
    `</node>\n`
  );
}

/** Writes `<dataDir>/sim-node.xml` and returns the `test:///` URI that loads it. */
export function simNodeUri(dataDir: string): string {
  const dir = resolve(dataDir);
  mkdirSync(dir, { recursive: true });
  const file = join(dir, 'sim-node.xml');
  writeFileSync(file, simNodeXml());
  return `test://${file}`;
}
