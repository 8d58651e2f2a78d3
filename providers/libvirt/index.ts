/**
 * The libvirt provider: VMs as libvirt domains (through `@unraid/libvirt`), storage and
 * networks through a long-lived virsh shell per connection.
 *
 *   const conn = connectLibvirt({ uri: 'qemu:///system', imagePool: 'images' });
 *   const node = await conn.describe();          // capacity, version, machine count
 *   const machines = conn.machines();
 *   await machines.create(spec);                 // idempotent, keyed by spec.uid
 *   const obs = await machines.observe(spec);    // state, addresses, pid, upToDate
 *   if (!obs.upToDate) await machines.update(spec, obs);
 *   await machines.delete(spec);                 // domain, volumes, seed ISO
 *   await conn.close();
 */
export { connectLibvirt, closeLibvirtSessions, type LibvirtConnectOptions, type LibvirtNodeConnection } from './connection.js';
export { LibvirtMachines, findQemuPid } from './machines.js';
export { ensureOvsNetwork, removeOvsNetwork, observeOvsNetwork, ovsNetworkXml, type OvsNetworkSpec, type OvsNetworkObservation } from './networks.js';
export { libvirtNetworkName, vlanPortgroup, domainName, buildDomainXml, readOwnedDomain, STRATUS_XMLNS } from './domain-xml.js';
export { simNodeUri, simNodeXml, SIM_IMAGES, SIM_CAPACITY } from './sim.js';
export { validateSpec, LIMITS as LIBVIRT_LIMITS } from './validate.js';
export { seedFiles } from './cloud-init.js';
export { VirshShell, VirshError } from './virsh-shell.js';
