/**
 * DNS for guests. Three reconcilers over the same pure `zoneRecords` (dnsrecords.ts):
 *
 * - `EmbeddedZonesReconciler`: the zones of the embedded server of `stratus serve
 *   --dns-listen` (its `--dns-zone` and every DNSZone with backend `embedded`), replaced
 *   whole after any change of an Instance, ElasticIP, Project or DNSZone.
 * - `DNSZoneReconciler` (key: a DNSZone): PowerDNS zones — only the RRsets stratus marked are
 *   written; re-read every `spec.powerdns.resyncSeconds` so a record deleted behind
 *   stratus's back returns; a finalizer removes stratus's RRsets when the DNSZone goes.
 *   Embedded DNSZones only get their status here.
 * - `DNSNamesReconciler`: `status.dnsNames` of Instances and Projects, the names they have in
 *   every zone, through the status subresource.
 */
import type { DNSZone, ElasticIP, Instance, Project } from '../crds/types.js';
import { objectKey, splitKey, type ResourceClient } from '../runtime/client.js';
import type { Informer } from '../runtime/informer.js';
import type { Manager } from '../runtime/manager.js';
import { Resources } from './resources.js';
import type { Reconciler, ReconcileContext, ReconcileResult } from '../runtime/controller.js';
import { reportStatus, updateStatus } from '../runtime/status.js';
import { kubeTime } from '../runtime/conditions.js';
import { ReconcileError, errorText } from '../runtime/errors.js';
import { hasFinalizer, isDeleting, reconcileWithFinalizer } from '../runtime/finalizers.js';
import type { EmbeddedDNSServer } from '../providers/dnsserver/server.js';
import { PowerDNSClient } from '../providers/pdns/client.js';
import type { SecretReader } from './connections.js';
import { instanceAddress, zoneRecords, type ZoneSettings } from './dnsrecords.js';

/** The one key other kinds' changes map to in the embedded-zones controller. */
export const EMBEDDED_ZONE_KEY = ':embedded';
export const DNS_FINALIZER = 'compute.stratus.dev/dns-records';
const DEFAULT_RESYNC_S = 30;

/** The embedded server and the zone `stratus serve --dns-zone` names. */
export interface EmbeddedDNS {
  server: EmbeddedDNSServer;
  zone: string;
  ttl: number;
}

export interface DNSDeps {
  dnsZones: ResourceClient<DNSZone>;
  dnsZoneCache: Informer<DNSZone>;
  instanceCache: Informer<Instance>;
  elasticIPCache: Informer<ElasticIP>;
  projectCache: Informer<Project>;
  readSecret: SecretReader;
  embedded?: EmbeddedDNS;
}

/** Every zone whose names count: the embedded one and each DNSZone not being deleted. */
export function activeZones(d: Pick<DNSDeps, 'dnsZoneCache' | 'embedded'>): ZoneSettings[] {
  const zones: ZoneSettings[] = d.embedded ? [{ zone: d.embedded.zone, ttl: d.embedded.ttl }] : [];
  for (const z of d.dnsZoneCache.list()) {
    if (isDeleting(z)) continue;
    if (z.spec.backend === 'embedded' && !d.embedded) continue;
    zones.push({ zone: z.spec.zone, ttl: z.spec.ttl ?? 60, ...(z.spec.namespaces ? { namespaces: z.spec.namespaces } : {}) });
  }
  return zones;
}

/**
 * Keeps every embedded zone (`--dns-zone` and each DNSZone with backend `embedded`) in the
 * embedded server. Whatever key it is given, it recomputes every embedded zone — but only
 * when something changed since the last run (`markDirty`, called from informer events), so
 * a burst of N changes, or the N keys enqueued at start, cost one recomputation.
 */
export class EmbeddedZonesReconciler implements Reconciler {
  private dirty = true;
  private served = new Set<string>();

  constructor(private readonly d: DNSDeps & { embedded: EmbeddedDNS }) {}

  markDirty(): void {
    this.dirty = true;
  }

  async reconcile(): Promise<ReconcileResult | void> {
    if (!this.dirty) return;
    this.dirty = false;
    const zones = new Map<string, ZoneSettings>();
    for (const z of this.d.dnsZoneCache.list()) {
      if (z.spec.backend === 'embedded' && !isDeleting(z)) zones.set(z.spec.zone.toLowerCase(), zoneSettings(z));
    }
    // --dns-zone wins over a DNSZone naming the same zone
    zones.set(this.d.embedded.zone.toLowerCase(), { zone: this.d.embedded.zone, ttl: this.d.embedded.ttl });
    const instances = this.d.instanceCache.list();
    const eips = this.d.elasticIPCache.list();
    const projects = this.d.projectCache.list();
    for (const [name, settings] of zones) this.d.embedded.server.setZone(name, zoneRecords(settings, instances, eips, projects).rrsets, settings.ttl);
    for (const name of this.served) if (!zones.has(name)) this.d.embedded.server.removeZone(name);
    this.served = new Set(zones.keys());
  }
}

function zoneSettings(z: DNSZone): ZoneSettings {
  return { zone: z.spec.zone, ttl: z.spec.ttl ?? 60, ...(z.spec.namespaces ? { namespaces: z.spec.namespaces } : {}) };
}

/**
 * DNSZone objects: PowerDNS zones are synced here (finalizer, drift re-read every
 * `resyncSeconds`); embedded ones only get their status (the records are served by
 * `EmbeddedZonesReconciler`), or `NoEmbeddedServer` where no server runs.
 */
export class DNSZoneReconciler implements Reconciler {
  constructor(private readonly d: DNSDeps) {}

  async reconcile(key: string, ctx: ReconcileContext): Promise<ReconcileResult | void> {
    const zone = this.d.dnsZoneCache.get(key);
    if (!zone) return;
    if (zone.spec.backend === 'embedded') return this.reportEmbedded(zone);
    return reconcileWithFinalizer(this.d.dnsZones, zone, DNS_FINALIZER, {
      apply: (z) => this.syncPowerDNS(z, ctx),
      cleanup: async (z) => {
        const client = await this.powerdns(z);
        const removed = await client.removeOwned(z.spec.zone, ctx.signal);
        ctx.log.info({ zone: z.spec.zone, removed }, 'removed the records stratus owned');
        return { done: true };
      },
    });
  }

  private records(settings: ZoneSettings): ReturnType<typeof zoneRecords> {
    return zoneRecords(settings, this.d.instanceCache.list(), this.d.elasticIPCache.list(), this.d.projectCache.list());
  }

  private async reportEmbedded(zone: DNSZone): Promise<void> {
    if (isDeleting(zone)) {
      // a zone that switched from powerdns may still carry our finalizer: nothing to clean there
      if (hasFinalizer(zone, DNS_FINALIZER)) await reconcileWithFinalizer(this.d.dnsZones, zone, DNS_FINALIZER, { apply: async () => undefined, cleanup: async () => ({ done: true }) });
      return;
    }
    if (!this.d.embedded) {
      await this.fail(zone, new ReconcileError('NoEmbeddedServer', 'backend "embedded" is served only by `stratus serve --dns-listen`; this controller runs no DNS server', false));
      return;
    }
    await this.succeed(zone, this.records(zoneSettings(zone)).rrsets.length, []);
  }

  private async powerdns(z: DNSZone): Promise<PowerDNSClient> {
    const p = z.spec.powerdns;
    if (!p) throw new ReconcileError('InvalidSpec', 'backend "powerdns" needs spec.powerdns.url', false);
    let apiKey = '';
    if (p.apiKeySecretRef) {
      const secret = await this.d.readSecret(p.apiKeySecretRef.namespace, p.apiKeySecretRef.name);
      const k = p.apiKeySecretRef.key ?? 'api-key';
      const v = secret[k];
      if (v === undefined) throw new ReconcileError('SecretKeyNotFound', `Secret "${p.apiKeySecretRef.namespace}/${p.apiKeySecretRef.name}" has no key "${k}"`);
      apiKey = v.trim();
    }
    return new PowerDNSClient({ url: p.url, apiKey, ...(p.serverId ? { serverId: p.serverId } : {}) });
  }

  private async syncPowerDNS(z: DNSZone, ctx: ReconcileContext): Promise<ReconcileResult> {
    const resyncMs = (z.spec.powerdns?.resyncSeconds ?? DEFAULT_RESYNC_S) * 1000;
    try {
      const client = await this.powerdns(z);
      const result = await client.syncOwned(z.spec.zone, this.records(zoneSettings(z)).rrsets, ctx.signal);
      if (result.written || result.deleted) ctx.log.info({ zone: z.spec.zone, written: result.written, deleted: result.deleted }, 'PowerDNS zone synced');
      await this.succeed(z, result.owned, result.conflicts);
      return { requeueAfterMs: resyncMs };
    } catch (err) {
      await this.fail(z, err);
      throw err;
    }
  }

  private async succeed(z: DNSZone, records: number, conflicts: string[]): Promise<void> {
    await reportStatus(
      this.d.dnsZones,
      z,
      [
        { type: 'Synced', status: 'True', reason: 'ReconcileSuccess', message: '' },
        conflicts.length
          ? { type: 'Ready', status: 'False', reason: 'RecordConflict', message: `names held by records stratus does not own: ${conflicts.slice(0, 10).join(', ')}` }
          : { type: 'Ready', status: 'True', reason: 'Available', message: '' },
      ],
      (st: NonNullable<DNSZone['status']>) => {
        st.records = records;
        st.conflicts = conflicts.slice(0, 64);
        // only PowerDNS zones are read back; stamping embedded ones would rewrite status on every change
        if (z.spec.backend === 'powerdns') st.lastSyncTime = kubeTime();
      },
    );
  }

  private async fail(z: DNSZone, err: unknown): Promise<void> {
    const reason = err instanceof ReconcileError ? err.reason : 'ReconcileError';
    await reportStatus(this.d.dnsZones, z, [
      { type: 'Synced', status: 'False', reason, message: errorText(err) },
      { type: 'Ready', status: 'False', reason, message: errorText(err) },
    ]).catch(() => undefined);
  }
}

export interface DNSNamesDeps extends Pick<DNSDeps, 'dnsZoneCache' | 'embedded' | 'instanceCache' | 'elasticIPCache' | 'projectCache'> {
  instances: ResourceClient<Instance>;
  projects: ResourceClient<Project>;
}

/**
 * Writes `status.dnsNames`. One class, two controllers: `kind: 'instance'` takes Instance
 * keys, `kind: 'project'` Project keys (each is its controller's primary kind, so start-up
 * enqueues them all).
 */
export class DNSNamesReconciler implements Reconciler {
  constructor(
    private readonly d: DNSNamesDeps,
    private readonly kind: 'instance' | 'project',
  ) {}

  /** Keys of the Projects whose guests include `inst`. */
  projectsOf(inst: Instance): string[] {
    return this.d.projectCache
      .list()
      .filter((p) => p.metadata?.namespace === inst.metadata?.namespace && (p.spec.guests ?? []).includes(inst.metadata?.name ?? ''))
      .map((p) => objectKey(p));
  }

  async reconcile(objKey: string): Promise<ReconcileResult | void> {
    const { namespace, name } = splitKey(objKey);
    const zones = activeZones(this.d);
    if (this.kind === 'instance') {
      const inst = this.d.instanceCache.get(objKey);
      if (!inst || isDeleting(inst)) return;
      const names = this.instanceNames(inst, zones);
      await updateStatus(this.d.instances, namespace, name, (fresh) => setNames(fresh, names));
    } else {
      const proj = this.d.projectCache.get(objKey);
      if (!proj || isDeleting(proj)) return;
      const names = this.projectNames(proj, zones);
      await updateStatus(this.d.projects, namespace, name, (fresh) => setNames(fresh, names));
    }
  }

  private instanceNames(inst: Instance, zones: ZoneSettings[]): string[] {
    const eips = this.d.elasticIPCache.list();
    if (!instanceAddress(inst, eips)) return [];
    const out: string[] = [];
    for (const z of zones) {
      if (z.namespaces && !z.namespaces.includes(inst.metadata?.namespace ?? '')) continue;
      out.push(...(zoneRecords(z, [inst], eips, []).instanceNames.get(objectKey(inst)) ?? []));
    }
    return [...new Set(out)];
  }

  private projectNames(proj: Project, zones: ZoneSettings[]): string[] {
    const ns = proj.metadata?.namespace;
    const guests = (proj.spec.guests ?? []).map((g) => this.d.instanceCache.get(`${ns}/${g}`)).filter((i): i is Instance => i !== undefined);
    const rivals = this.d.projectCache.list().filter((p) => p.metadata?.name === proj.metadata?.name);
    // rivals' guests decide whether an older rival holds the name
    const rivalGuests = rivals.flatMap((p) => (p.spec.guests ?? []).map((g) => this.d.instanceCache.get(`${p.metadata?.namespace}/${g}`))).filter((i): i is Instance => i !== undefined);
    const out: string[] = [];
    for (const z of zones) {
      out.push(...(zoneRecords(z, [...guests, ...rivalGuests], this.d.elasticIPCache.list(), rivals).projectNames.get(objectKey(proj)) ?? []));
    }
    return [...new Set(out)];
  }
}

function setNames<T extends { status?: { dnsNames?: string[] } }>(obj: T, names: string[]): void | false {
  if (!obj.status && !names.length) return false;
  const st = { ...(obj.status ?? {}) };
  if (names.length) st.dnsNames = names.slice(0, 64);
  else delete st.dnsNames;
  obj.status = st as T['status'];
}

export interface DNSControllerSettings {
  /** The embedded server `stratus serve --dns-listen` runs; absent in `stratus controller`. */
  embedded?: EmbeddedDNS;
}

/** Registers the DNS controllers (zones, embedded server, status.dnsNames) on `mgr`. */
export function registerDNSControllers(mgr: Manager, readSecret: SecretReader, settings: DNSControllerSettings = {}): void {
  const deps: DNSDeps = {
    dnsZones: mgr.resource<DNSZone>(Resources.dnsZones),
    dnsZoneCache: mgr.informer<DNSZone>(Resources.dnsZones),
    instanceCache: mgr.informer<Instance>(Resources.instances),
    elasticIPCache: mgr.informer<ElasticIP>(Resources.elasticIPs),
    projectCache: mgr.informer<Project>(Resources.projects),
    readSecret,
    ...(settings.embedded ? { embedded: settings.embedded } : {}),
  };
  const powerdnsKeys = (): string[] => deps.dnsZoneCache.list().filter((z) => z.spec.backend === 'powerdns').map((z) => objectKey(z));

  const zones = new DNSZoneReconciler(deps);
  mgr
    .addController({ name: 'dnszone', concurrency: 2 }, deps.dnsZoneCache, zones)
    .watches(deps.instanceCache, powerdnsKeys)
    .watches(deps.elasticIPCache, powerdnsKeys)
    .watches(deps.projectCache, powerdnsKeys);

  if (settings.embedded) {
    const embedded = new EmbeddedZonesReconciler({ ...deps, embedded: settings.embedded });
    const dirty = (): string[] => {
      embedded.markDirty();
      return [EMBEDDED_ZONE_KEY];
    };
    // the primary kind's own events reach the reconciler without a map function: mark here
    deps.instanceCache.on('add', () => embedded.markDirty());
    deps.instanceCache.on('update', () => embedded.markDirty());
    deps.instanceCache.on('delete', () => embedded.markDirty());
    mgr
      .addController({ name: 'dns-embedded', concurrency: 1 }, deps.instanceCache, embedded)
      .watches(deps.elasticIPCache, dirty)
      .watches(deps.projectCache, dirty)
      .watches(deps.dnsZoneCache, dirty);
  }

  const namesDeps: DNSNamesDeps = { ...deps, instances: mgr.resource<Instance>(Resources.instances), projects: mgr.resource<Project>(Resources.projects) };
  const instanceNames = new DNSNamesReconciler(namesDeps, 'instance');
  const instanceKeysOfEIP = (e: ElasticIP): string[] => {
    const names = [e.status?.boundTo, e.spec?.instanceRef?.name].filter((n): n is string => typeof n === 'string' && n !== '');
    return [...new Set(names)].map((n) => `${e.metadata?.namespace}/${n}`);
  };
  mgr
    .addController({ name: 'dns-names-instance', concurrency: 2 }, deps.instanceCache, instanceNames)
    .watches(deps.elasticIPCache, instanceKeysOfEIP)
    .watches(deps.dnsZoneCache, () => deps.instanceCache.keys());
  const projectNames = new DNSNamesReconciler(namesDeps, 'project');
  mgr
    .addController({ name: 'dns-names-project', concurrency: 1 }, deps.projectCache, projectNames)
    .watches(deps.instanceCache, (i) => projectNames.projectsOf(i))
    .watches(deps.elasticIPCache, (e) => instanceKeysOfEIP(e).flatMap((k) => {
      const i = deps.instanceCache.get(k);
      return i ? projectNames.projectsOf(i) : [];
    }))
    .watches(deps.dnsZoneCache, () => deps.projectCache.keys());
}
