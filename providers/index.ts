/**
 * The providers this build of stratus offers: one registration line each. Adding a provider
 * is a folder `providers/<name>/` exporting a `ProviderDescriptor` and one line here
 * (see providers/README.md).
 */
import { ProviderRegistry } from './registry.js';
import { libvirtProvider } from './libvirt/provider.js';
import { dockerProvider } from './docker/provider.js';
import { gceProvider } from './gce/provider.js';
import { ovsSwitchProvider } from './ovs/provider.js';

/** A fresh registry of the built-in providers (the switch sessions it holds are its own). */
export function builtinProviders(): ProviderRegistry {
  return new ProviderRegistry()
    .register(libvirtProvider)
    .register(dockerProvider)
    .register(gceProvider)
    .registerSwitch(ovsSwitchProvider());
}

/** The names of the built-in providers offering machines, without opening anything. */
export const MACHINE_PROVIDERS: readonly string[] = [libvirtProvider, dockerProvider, gceProvider].filter((p) => p.capabilities.machines).map((p) => p.name);
