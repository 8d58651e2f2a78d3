/**
 * Bridges and VLAN access ports on one Open vSwitch, through its OVSDB.
 *
 * Contract (what the Network controller can rely on):
 * - Every method is idempotent: calling it twice leaves one row and reports `unchanged`.
 * - Every change is a single OVSDB transaction, so a failure leaves the switch as it was.
 *   Rows are inserted together with the reference that keeps them alive (Bridge in
 *   `Open_vSwitch.bridges`, Port in `Bridge.ports`) — OVSDB garbage-collects unreferenced
 *   rows — and guarded by `wait` operations so a concurrent change fails the transaction
 *   instead of being overwritten.
 * - Every row stratus creates carries `external_ids:stratus-owner=<uid>` (and ports attached
 *   to a Network `stratus-network=<uid>`), so ownership and orphans can be read back.
 * - Rows stratus did not create (no `stratus-owner`) are never changed or removed; a port
 *   name already used by such a row is a `PortConflict`.
 * - By default a change returns only once ovs-vswitchd has applied it (like `ovs-vsctl`
 *   without `--no-wait`): `next_cfg` is bumped in the transaction and `cur_cfg` awaited.
 *
 *   Caveat: "applied" means vswitchd reconfigured; datapath flows it cached before the
 *   change are revalidated by its revalidator threads moments later, and until then an
 *   existing flow may still forward on the old VLAN (milliseconds in practice; tests use
 *   `revalidator/wait` through the harness's `settle()` before asserting on traffic).
 *
 * Errors are `ReconcileError`s whose reason the controller can put in `Synced=False`.
 */
import { ReconcileError } from '../../runtime/errors.js';
import {
  OvsdbConnectionError,
  OvsdbError,
  mapRecord,
  optionalInteger,
  ovsMap,
  ovsNamedUuid,
  ovsSet,
  ovsUuid,
  setAtoms,
  uuidOf,
  type OvsdbClient,
  type OvsdbOperation,
  type OvsdbRow,
} from './ovsdb.js';

export const OWNER_KEY = 'stratus-owner';
export const NETWORK_KEY = 'stratus-network';
const DB = 'Open_vSwitch';

export type EnsureResult = 'created' | 'updated' | 'unchanged';
export type RemoveBridgeResult = 'removed' | 'absent' | 'in-use' | 'not-owned';
/** `''` is a system device opened by name (e.g. the host end of a veth pair). */
export type InterfaceType = 'internal' | 'system' | '';

export interface ObservedInterface {
  uuid: string;
  name: string;
  type: string;
  /** OpenFlow port number once vswitchd opened the device; -1 when it failed. */
  ofport?: number;
  /** Why vswitchd could not open the device (e.g. `could not open network device x (No such device)`). */
  error?: string;
  externalIds: Record<string, string>;
}

export interface ObservedPort {
  uuid: string;
  name: string;
  bridge: string;
  tag?: number;
  vlanMode?: string;
  trunks: number[];
  ownerUid?: string;
  networkUid?: string;
  externalIds: Record<string, string>;
  interfaces: ObservedInterface[];
}

export interface ObservedBridge {
  uuid: string;
  name: string;
  datapathType: string;
  ownerUid?: string;
  externalIds: Record<string, string>;
  /** Every port, including the bridge's own internal port (named like the bridge). */
  ports: ObservedPort[];
}

export interface SwitchObservation {
  bridges: ObservedBridge[];
  /** False when the database has no `Open_vSwitch` row (a freshly created, empty database). */
  initialized: boolean;
  /** True when ovs-vswitchd has applied every committed change (`cur_cfg >= next_cfg`). */
  applied: boolean;
}

export interface EnsureBridgeSpec {
  name: string;
  /** `netdev` for the userspace datapath (tests), `''`/`system` for the kernel one. */
  datapathType?: string;
  ownerUid: string;
  /** More `external_ids` to set (`stratus-owner` is always set). */
  externalIds?: Record<string, string>;
}

export interface AccessPortSpec {
  bridge: string;
  port: string;
  /** 1–4094. */
  vlan: number;
  ownerUid: string;
  /** The Network the port puts its device on; `retagNetwork` finds ports by it. */
  networkUid?: string;
  interfaceType?: InterfaceType;
  externalIds?: Record<string, string>;
}

export interface OvsSwitchOptions {
  /** Wait until ovs-vswitchd applied each change (default true). */
  waitForVswitchd?: boolean;
  /** How long to wait for that, in ms (default 10 s). */
  applyTimeoutMs?: number;
}

const IFNAME = /^[A-Za-z0-9_.-]{1,15}$/;

function checkName(kind: string, name: string): void {
  if (!IFNAME.test(name)) {
    throw new ReconcileError('InvalidName', `${kind} name ${JSON.stringify(name)} must be 1-15 characters of [A-Za-z0-9_.-]`, false);
  }
}

function checkVlan(vlan: number): void {
  if (!Number.isInteger(vlan) || vlan < 1 || vlan > 4094) {
    throw new ReconcileError('InvalidVLAN', `VLAN ${vlan} is outside 1-4094`, false);
  }
}

/** Wraps client errors with a short constant context and a reason for `Synced=False`. */
function providerError(context: string, err: unknown): Error {
  if (err instanceof ReconcileError) return err;
  const msg = `${context}: ${err instanceof Error ? err.message : String(err)}`;
  if (err instanceof OvsdbError) return new ReconcileError('OvsdbTransactionFailed', msg);
  if (err instanceof OvsdbConnectionError) return new ReconcileError('OvsdbUnreachable', msg);
  return new ReconcileError('OvsdbFailed', msg);
}

function sameRecord(a: Record<string, string>, b: Record<string, string>): boolean {
  const ka = Object.keys(a);
  return ka.length === Object.keys(b).length && ka.every((k) => b[k] === a[k]);
}

const bridgeWhere = (uuid: string): OvsdbOperation & { op: 'wait' } => ({
  op: 'wait',
  table: 'Bridge',
  where: [['_uuid', '==', ovsUuid(uuid)]],
  columns: ['_uuid'],
  until: '==',
  rows: [{ _uuid: ovsUuid(uuid) }],
  timeout: 0,
});

export class OvsSwitch {
  private readonly waitForVswitchd: boolean;
  private readonly applyTimeoutMs: number;

  constructor(
    private readonly client: OvsdbClient,
    options: OvsSwitchOptions = {},
  ) {
    this.waitForVswitchd = options.waitForVswitchd ?? true;
    this.applyTimeoutMs = options.applyTimeoutMs ?? 10_000;
  }

  /** Bridges, ports, tags and interface states, read in one transaction. */
  async observe(): Promise<SwitchObservation> {
    try {
      return await this.read();
    } catch (err) {
      throw providerError('cannot observe Open vSwitch', err);
    }
  }

  async observeBridge(name: string): Promise<ObservedBridge | undefined> {
    return (await this.observe()).bridges.find((b) => b.name === name);
  }

  /** Creates the bridge (with its internal port) if absent; fixes `datapath_type` on a stratus-owned one. */
  async ensureBridge(spec: EnsureBridgeSpec): Promise<EnsureResult> {
    checkName('bridge', spec.name);
    const datapathType = spec.datapathType ?? '';
    const externalIds = { ...spec.externalIds, [OWNER_KEY]: spec.ownerUid };
    try {
      const obs = await this.read();
      const existing = obs.bridges.find((b) => b.name === spec.name);
      if (existing) {
        // A bridge an administrator made is used as it is; a stratus one is kept as specified.
        if (existing.ownerUid === undefined || existing.datapathType === datapathType) return 'unchanged';
        await this.commit([
          bridgeWhere(existing.uuid),
          { op: 'update', table: 'Bridge', where: [['_uuid', '==', ovsUuid(existing.uuid)]], row: { datapath_type: datapathType } },
        ]);
        return 'updated';
      }
      const ops: OvsdbOperation[] = [
        { op: 'insert', table: 'Interface', row: { name: spec.name, type: 'internal', external_ids: ovsMap(externalIds) }, 'uuid-name': 'iface' },
        { op: 'insert', table: 'Port', row: { name: spec.name, interfaces: ovsNamedUuid('iface'), external_ids: ovsMap(externalIds) }, 'uuid-name': 'port' },
        {
          op: 'insert',
          table: 'Bridge',
          row: { name: spec.name, ports: ovsNamedUuid('port'), datapath_type: datapathType, external_ids: ovsMap(externalIds) },
          'uuid-name': 'bridge',
        },
      ];
      if (obs.initialized) {
        ops.push({ op: 'mutate', table: 'Open_vSwitch', where: [], mutations: [['bridges', 'insert', ovsSet([ovsNamedUuid('bridge')])]] });
      } else {
        // An empty database (ovsdb recreated): create the root row as `ovs-vsctl init` would.
        ops.push({ op: 'insert', table: 'Open_vSwitch', row: { bridges: ovsSet([ovsNamedUuid('bridge')]) } });
      }
      await this.commit(ops);
      return 'created';
    } catch (err) {
      throw providerError(`cannot ensure bridge ${spec.name}`, err);
    }
  }

  /**
   * Removes a bridge and all its ports. Leaves it (and says why) when it is not stratus's
   * (or, with `ownerUid`, not that owner's), or when it still has ports other than its own
   * internal one, unless `force`.
   */
  async removeBridge(name: string, opts: { ownerUid?: string; force?: boolean } = {}): Promise<RemoveBridgeResult> {
    try {
      const obs = await this.read();
      const br = obs.bridges.find((b) => b.name === name);
      if (!br) return 'absent';
      if (br.ownerUid === undefined || (opts.ownerUid !== undefined && br.ownerUid !== opts.ownerUid)) return 'not-owned';
      if (!opts.force && br.ports.some((p) => p.name !== name)) return 'in-use';
      await this.commit([
        bridgeWhere(br.uuid),
        { op: 'mutate', table: 'Open_vSwitch', where: [], mutations: [['bridges', 'delete', ovsSet([ovsUuid(br.uuid)])]] },
      ]);
      return 'removed';
    } catch (err) {
      throw providerError(`cannot remove bridge ${name}`, err);
    }
  }

  /** Ensures `port` is an access port of `bridge` on `vlan`, with its interface and owner. */
  async ensureAccessPort(spec: AccessPortSpec): Promise<EnsureResult> {
    checkName('port', spec.port);
    checkVlan(spec.vlan);
    const type = spec.interfaceType ?? '';
    const externalIds: Record<string, string> = {
      ...spec.externalIds,
      [OWNER_KEY]: spec.ownerUid,
      ...(spec.networkUid ? { [NETWORK_KEY]: spec.networkUid } : {}),
    };
    try {
      const obs = await this.read();
      const br = obs.bridges.find((b) => b.name === spec.bridge);
      if (!br) throw new ReconcileError('BridgeNotFound', `bridge ${spec.bridge} does not exist`);
      const existing = obs.bridges.flatMap((b) => b.ports).find((p) => p.name === spec.port);
      if (existing) {
        if (existing.ownerUid !== spec.ownerUid) {
          const who = existing.ownerUid ? `stratus object ${existing.ownerUid}` : 'nobody in stratus (created outside stratus)';
          throw new ReconcileError('PortConflict', `port ${spec.port} already exists on bridge ${existing.bridge}, owned by ${who}`, false);
        }
        if (existing.bridge !== spec.bridge) {
          throw new ReconcileError('PortConflict', `port ${spec.port} is on bridge ${existing.bridge}, not ${spec.bridge}`, false);
        }
        const ops: OvsdbOperation[] = [];
        const portRow: OvsdbRow = {};
        if (existing.tag !== spec.vlan) portRow.tag = spec.vlan;
        if (existing.vlanMode !== 'access') portRow.vlan_mode = 'access';
        if (existing.trunks.length > 0) portRow.trunks = ovsSet([]);
        if (!sameRecord(existing.externalIds, externalIds)) portRow.external_ids = ovsMap(externalIds);
        if (Object.keys(portRow).length > 0) {
          ops.push({ op: 'update', table: 'Port', where: [['_uuid', '==', ovsUuid(existing.uuid)]], row: portRow });
        }
        for (const iface of existing.interfaces) {
          const wantType = type === 'system' ? '' : type;
          const haveType = iface.type === 'system' ? '' : iface.type;
          if (haveType !== wantType) {
            ops.push({ op: 'update', table: 'Interface', where: [['_uuid', '==', ovsUuid(iface.uuid)]], row: { type } });
          }
        }
        if (ops.length === 0) return 'unchanged';
        await this.commit(ops);
        return 'updated';
      }
      await this.commit([
        bridgeWhere(br.uuid),
        { op: 'insert', table: 'Interface', row: { name: spec.port, type, external_ids: ovsMap(externalIds) }, 'uuid-name': 'iface' },
        {
          op: 'insert',
          table: 'Port',
          row: {
            name: spec.port,
            interfaces: ovsNamedUuid('iface'),
            tag: spec.vlan,
            vlan_mode: 'access',
            external_ids: ovsMap(externalIds),
          },
          'uuid-name': 'port',
        },
        {
          op: 'mutate',
          table: 'Bridge',
          where: [['_uuid', '==', ovsUuid(br.uuid)]],
          mutations: [['ports', 'insert', ovsSet([ovsNamedUuid('port')])]],
        },
      ]);
      return 'created';
    } catch (err) {
      throw providerError(`cannot ensure port ${spec.port} on bridge ${spec.bridge}`, err);
    }
  }

  /** Sets the VLAN of one port; `PortNotFound` when it does not exist. */
  async setPortTag(port: string, vlan: number): Promise<EnsureResult> {
    checkVlan(vlan);
    try {
      const obs = await this.read();
      const p = obs.bridges.flatMap((b) => b.ports).find((x) => x.name === port);
      if (!p) throw new ReconcileError('PortNotFound', `port ${port} does not exist`);
      if (p.tag === vlan) return 'unchanged';
      await this.commit([{ op: 'update', table: 'Port', where: [['_uuid', '==', ovsUuid(p.uuid)]], row: { tag: vlan } }]);
      return 'updated';
    } catch (err) {
      throw providerError(`cannot retag port ${port}`, err);
    }
  }

  /** Moves every port attached to the Network `networkUid` to `vlan`, in one transaction; returns how many changed. */
  async retagNetwork(networkUid: string, vlan: number): Promise<number> {
    checkVlan(vlan);
    try {
      const [res] = await this.commit([
        {
          op: 'update',
          table: 'Port',
          where: [
            ['external_ids', 'includes', ovsMap({ [NETWORK_KEY]: networkUid })],
            ['tag', '!=', vlan],
          ],
          row: { tag: vlan },
        },
      ]);
      return res?.count ?? 0;
    } catch (err) {
      throw providerError(`cannot retag the ports of network ${networkUid}`, err);
    }
  }

  /** Removes a port (and its interface) from whatever bridge holds it; false when absent. */
  async removePort(port: string): Promise<boolean> {
    try {
      const obs = await this.read();
      for (const br of obs.bridges) {
        const p = br.ports.find((x) => x.name === port);
        if (!p) continue;
        await this.commit([
          {
            op: 'mutate',
            table: 'Bridge',
            where: [['_uuid', '==', ovsUuid(br.uuid)]],
            mutations: [['ports', 'delete', ovsSet([ovsUuid(p.uuid)])]],
          },
        ]);
        return true;
      }
      return false;
    } catch (err) {
      throw providerError(`cannot remove port ${port}`, err);
    }
  }

  /** Removes every port whose `stratus-owner` is `ownerUid`, in one transaction; returns their names. */
  async removePortsOwnedBy(ownerUid: string): Promise<string[]> {
    try {
      const obs = await this.read();
      const ops: OvsdbOperation[] = [];
      const removed: string[] = [];
      for (const br of obs.bridges) {
        const owned = br.ports.filter((p) => p.ownerUid === ownerUid && p.name !== br.name);
        if (owned.length === 0) continue;
        removed.push(...owned.map((p) => p.name));
        ops.push({
          op: 'mutate',
          table: 'Bridge',
          where: [['_uuid', '==', ovsUuid(br.uuid)]],
          mutations: [['ports', 'delete', ovsSet(owned.map((p) => ovsUuid(p.uuid)))]],
        });
      }
      if (ops.length > 0) await this.commit(ops);
      return removed;
    } catch (err) {
      throw providerError(`cannot remove the ports of ${ownerUid}`, err);
    }
  }

  /** Ports (not bridges' internal ports) that `ownerUid` owns. */
  async listOwnedPorts(ownerUid: string): Promise<ObservedPort[]> {
    const obs = await this.observe();
    return obs.bridges.flatMap((b) => b.ports.filter((p) => p.ownerUid === ownerUid && p.name !== b.name));
  }

  /** Ports of a Network (by `stratus-network`). */
  async listNetworkPorts(networkUid: string): Promise<ObservedPort[]> {
    const obs = await this.observe();
    return obs.bridges.flatMap((b) => b.ports.filter((p) => p.networkUid === networkUid));
  }

  /** Stratus-made bridges and ports whose owner is not among `knownUids` (for garbage collection). */
  async listOrphans(knownUids: Iterable<string>): Promise<{ bridges: ObservedBridge[]; ports: ObservedPort[] }> {
    const known = new Set(knownUids);
    const obs = await this.observe();
    const orphan = (uid: string | undefined): boolean => uid !== undefined && !known.has(uid);
    return {
      bridges: obs.bridges.filter((b) => orphan(b.ownerUid)),
      ports: obs.bridges.flatMap((b) => b.ports.filter((p) => p.name !== b.name && orphan(p.ownerUid))),
    };
  }

  // -------------------------------------------------------------------------------------

  private async read(): Promise<SwitchObservation> {
    const [root, bridges, ports, ifaces] = await this.client.transact(DB, [
      { op: 'select', table: 'Open_vSwitch', where: [], columns: ['cur_cfg', 'next_cfg'] },
      { op: 'select', table: 'Bridge', where: [], columns: ['_uuid', 'name', 'datapath_type', 'external_ids', 'ports'] },
      { op: 'select', table: 'Port', where: [], columns: ['_uuid', 'name', 'tag', 'vlan_mode', 'trunks', 'interfaces', 'external_ids'] },
      { op: 'select', table: 'Interface', where: [], columns: ['_uuid', 'name', 'type', 'ofport', 'error', 'external_ids'] },
    ]);
    const ifaceByUuid = new Map<string, ObservedInterface>();
    for (const r of ifaces?.rows ?? []) {
      const error = setAtoms(r.error)[0];
      ifaceByUuid.set(uuidOf(r._uuid), {
        uuid: uuidOf(r._uuid),
        name: String(r.name),
        type: String(r.type),
        ofport: optionalInteger(r.ofport),
        ...(typeof error === 'string' ? { error } : {}),
        externalIds: mapRecord(r.external_ids),
      });
    }
    const portRows = new Map<string, OvsdbRow>();
    for (const r of ports?.rows ?? []) portRows.set(uuidOf(r._uuid), r);
    const observed: ObservedBridge[] = [];
    for (const b of bridges?.rows ?? []) {
      const name = String(b.name);
      const bridgeIds = mapRecord(b.external_ids);
      const bridgePorts: ObservedPort[] = [];
      for (const ref of setAtoms(b.ports)) {
        const p = portRows.get(uuidOf(ref));
        if (!p) continue;
        const ids = mapRecord(p.external_ids);
        bridgePorts.push({
          uuid: uuidOf(p._uuid),
          name: String(p.name),
          bridge: name,
          tag: optionalInteger(p.tag),
          vlanMode: setAtoms(p.vlan_mode).map(String)[0],
          trunks: setAtoms(p.trunks).filter((t): t is number => typeof t === 'number'),
          ownerUid: ids[OWNER_KEY],
          networkUid: ids[NETWORK_KEY],
          externalIds: ids,
          interfaces: setAtoms(p.interfaces)
            .map((i) => ifaceByUuid.get(uuidOf(i)))
            .filter((i): i is ObservedInterface => i !== undefined),
        });
      }
      bridgePorts.sort((x, y) => x.name.localeCompare(y.name));
      observed.push({
        uuid: uuidOf(b._uuid),
        name,
        datapathType: String(b.datapath_type),
        ownerUid: bridgeIds[OWNER_KEY],
        externalIds: bridgeIds,
        ports: bridgePorts,
      });
    }
    observed.sort((x, y) => x.name.localeCompare(y.name));
    const rootRow = root?.rows?.[0];
    return {
      bridges: observed,
      initialized: rootRow !== undefined,
      applied: rootRow !== undefined && Number(rootRow.cur_cfg) >= Number(rootRow.next_cfg),
    };
  }

  /** Runs `ops` as one transaction; with `waitForVswitchd`, also bumps `next_cfg` and awaits `cur_cfg`. */
  private async commit(ops: OvsdbOperation[]): Promise<Awaited<ReturnType<OvsdbClient['transact']>>> {
    if (!this.waitForVswitchd) return this.client.transact(DB, ops);
    const all: OvsdbOperation[] = [
      ...ops,
      { op: 'mutate', table: 'Open_vSwitch', where: [], mutations: [['next_cfg', '+=', 1]] },
      { op: 'select', table: 'Open_vSwitch', where: [], columns: ['next_cfg'] },
    ];
    const results = await this.client.transact(DB, all);
    const target = Number(results[results.length - 1]?.rows?.[0]?.next_cfg);
    const deadline = Date.now() + this.applyTimeoutMs;
    for (;;) {
      const [r] = await this.client.transact(DB, [{ op: 'select', table: 'Open_vSwitch', where: [], columns: ['cur_cfg'] }]);
      const cur = Number(r?.rows?.[0]?.cur_cfg);
      if (!(cur < target)) break;
      if (Date.now() > deadline) {
        throw new ReconcileError(
          'VswitchdNotApplying',
          `ovs-vswitchd has not applied configuration ${target} after ${this.applyTimeoutMs} ms (at ${cur}); the change is committed`,
        );
      }
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    return results.slice(0, ops.length);
  }
}
