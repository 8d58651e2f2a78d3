import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  ApplyError,
  applyConflictStatus,
  listTypesFromSchema,
  managerFromUserAgent,
  recordUpdate,
  serverSideApply,
  type ApplyConflict,
  type KubeObject,
  type ManagedFieldsEntry,
  validateFieldManager,
} from '../../../apiserver/apply/index.js';

const apiVersion = 'compute.stratus.dev/v1alpha1';
const T0 = '2026-01-01T00:00:00Z';
const T1 = '2026-01-01T00:01:00Z';
const T2 = '2026-01-01T00:02:00Z';
const T3 = '2026-01-01T00:03:00Z';

const schema = {
  type: 'object',
  properties: {
    spec: {
      type: 'object',
      properties: {
        cpus: { type: 'integer' },
        memoryMiB: { type: 'integer' },
        image: { type: 'string' },
        disks: {
          type: 'array',
          'x-kubernetes-list-type': 'map',
          'x-kubernetes-list-map-keys': ['name'],
          items: { type: 'object', properties: { name: { type: 'string' }, sizeGiB: { type: 'integer' } } },
        },
        sshKeys: { type: 'array', 'x-kubernetes-list-type': 'set', items: { type: 'string' } },
        ports: { type: 'array', items: { type: 'integer' } },
        placement: { type: 'object', 'x-kubernetes-map-type': 'atomic', additionalProperties: { type: 'string' } },
        env: { type: 'object', additionalProperties: { type: 'string' } },
      },
    },
    status: { type: 'object', properties: { state: { type: 'string' } } },
  },
};
const listTypes = listTypesFromSchema(schema);

/** An applied configuration (or a client's object) of Instance "web". */
function cfg(spec: Record<string, unknown>, extra: Record<string, unknown> = {}): KubeObject {
  return { apiVersion, kind: 'Instance', metadata: { name: 'web', namespace: 'default' }, spec, ...extra };
}

/** The stored object a create would produce: server-set metadata added. */
function stored(obj: KubeObject): KubeObject {
  const o = structuredClone(obj);
  o.metadata = { ...o.metadata, uid: 'uid-1', resourceVersion: '1', generation: 1, creationTimestamp: T0 };
  return o;
}

function apply(live: KubeObject | undefined, applied: KubeObject, manager: string, extra: { force?: boolean; time?: string; subresource?: string } = {}) {
  return serverSideApply(live, applied, { manager, force: extra.force ?? false, time: extra.time ?? T1, listTypes, subresource: extra.subresource });
}

function applied(live: KubeObject | undefined, config: KubeObject, manager: string, extra: { force?: boolean; time?: string; subresource?: string } = {}): KubeObject {
  const r = apply(live, config, manager, extra);
  if ('conflicts' in r) assert.fail(`unexpected conflicts: ${JSON.stringify(r.conflicts)}`);
  return r.object;
}

function conflictsOf(live: KubeObject, config: KubeObject, manager: string, extra: { force?: boolean; subresource?: string } = {}): { manager: string; field: string }[] {
  const r = apply(live, config, manager, extra);
  if (!('conflicts' in r)) assert.fail('expected conflicts');
  return r.conflicts.map((c) => ({ manager: c.manager, field: c.field }));
}

function created(obj: KubeObject, manager: string, time = T0): KubeObject {
  const o = stored(obj);
  recordUpdate(undefined, o, { manager, operation: 'Update', time, listTypes });
  return o;
}

function updated(old: KubeObject, mutate: (o: KubeObject) => void, manager: string, time = T2, subresource?: string): KubeObject {
  const o = structuredClone(old);
  mutate(o);
  recordUpdate(old, o, { manager, operation: 'Update', time, listTypes, subresource });
  return o;
}

function entries(o: KubeObject): ManagedFieldsEntry[] {
  return o.metadata?.managedFields ?? [];
}

function entry(o: KubeObject, manager: string, operation: 'Apply' | 'Update' = 'Apply', subresource?: string): ManagedFieldsEntry {
  const e = entries(o).find((x) => x.manager === manager && x.operation === operation && x.subresource === subresource);
  if (!e) assert.fail(`no ${operation} entry for ${manager}${subresource ? `/${subresource}` : ''}: ${JSON.stringify(entries(o))}`);
  return e;
}

const spec = (o: KubeObject): Record<string, unknown> => o.spec as Record<string, unknown>;

/** A spec `depth` maps deep ({a: {a: ... 1}}); with the object and spec around it, depth + 2 levels. */
function nested(depth: number): Record<string, unknown> {
  let v: unknown = 1;
  for (let i = 0; i < depth; i++) v = { a: v };
  return v as Record<string, unknown>;
}

describe('managedFields after create and update', () => {
  it('a create records an Update entry owning every field set, in FieldsV1', () => {
    const o = created(cfg({ cpus: 2, disks: [{ name: 'root', sizeGiB: 10 }], sshKeys: ['a'] }, { metadata: { name: 'web', namespace: 'default', labels: { app: 'web' } } }), 'kubectl-client-side-apply');
    assert.deepEqual(entries(o), [
      {
        manager: 'kubectl-client-side-apply',
        operation: 'Update',
        apiVersion,
        time: T0,
        fieldsType: 'FieldsV1',
        fieldsV1: {
          'f:metadata': { 'f:labels': { '.': {}, 'f:app': {} } },
          'f:spec': {
            '.': {},
            'f:cpus': {},
            'f:disks': { '.': {}, 'k:{"name":"root"}': { '.': {}, 'f:name': {}, 'f:sizeGiB': {} } },
            'f:sshKeys': { '.': {}, 'v:"a"': {} },
          },
        },
      },
    ]);
  });

  it('apiVersion, kind and server-set metadata are never owned', () => {
    const o = created(cfg({ cpus: 2 }), 'creator');
    const f = entry(o, 'creator', 'Update').fieldsV1 as Record<string, unknown>;
    assert.deepEqual(Object.keys(f), ['f:spec']);
  });

  it('an update takes the fields it changes from their previous owner', () => {
    const o = created(cfg({ cpus: 2, image: 'debian' }), 'creator');
    const u = updated(o, (x) => (spec(x).cpus = 4), 'scaler');
    assert.deepEqual(entry(u, 'scaler', 'Update').fieldsV1, { 'f:spec': { 'f:cpus': {} } });
    assert.deepEqual(entry(u, 'creator', 'Update').fieldsV1, { 'f:spec': { '.': {}, 'f:image': {} } });
    assert.equal(entry(u, 'scaler', 'Update').time, T2);
  });

  it('an update that changes nothing records nothing', () => {
    const o = created(cfg({ cpus: 2 }), 'creator');
    const u = updated(o, (x) => ((x.metadata as Record<string, unknown>).resourceVersion = '2'), 'someone');
    assert.deepEqual(entries(u), entries(o));
  });

  it('a removed field leaves its owner', () => {
    const o = created(cfg({ cpus: 2, image: 'debian' }), 'creator');
    const u = updated(o, (x) => delete spec(x).image, 'editor');
    assert.deepEqual(entry(u, 'creator', 'Update').fieldsV1, { 'f:spec': { '.': {}, 'f:cpus': {} } });
    assert.equal(entries(u).length, 1, 'the editor changed nothing it could own');
  });

  it('two updates by one manager make one entry with the union and the latest time', () => {
    const o = created(cfg({ cpus: 2 }), 'creator');
    const u1 = updated(o, (x) => (spec(x).cpus = 3), 'editor', T1);
    const u2 = updated(u1, (x) => (spec(x).image = 'alpine'), 'editor', T2);
    const e = entries(u2).filter((x) => x.manager === 'editor');
    assert.equal(e.length, 1);
    assert.deepEqual(e[0].fieldsV1, { 'f:spec': { 'f:cpus': {}, 'f:image': {} } });
    assert.equal(e[0].time, T2);
  });

  it('an update to the status subresource owns status only, in its own entry', () => {
    const o = created(cfg({ cpus: 2 }), 'creator');
    const u = updated(o, (x) => (x.status = { state: 'running' }), 'controller', T2, 'status');
    assert.deepEqual(entry(u, 'controller', 'Update', 'status').fieldsV1, { 'f:status': { '.': {}, 'f:state': {} } });
    assert.equal(entry(u, 'controller', 'Update', 'status').subresource, 'status');
  });

  it('status changes sent to the main resource are not owned', () => {
    const o = created(cfg({ cpus: 2 }), 'creator');
    const u = updated(o, (x) => (x.status = { state: 'running' }), 'client');
    assert.equal(entries(u).find((e) => e.manager === 'client'), undefined);
  });

  it('managedFields a client sends are honoured (how kubectl migrates ownership)', () => {
    const o = created(cfg({ cpus: 2 }), 'kubectl-client-side-apply');
    const sent: ManagedFieldsEntry[] = [
      { manager: 'kubectl', operation: 'Apply', apiVersion, time: T1, fieldsType: 'FieldsV1', fieldsV1: { 'f:spec': { 'f:cpus': {} } } },
    ];
    const u = updated(o, (x) => ((x.metadata as Record<string, unknown>).managedFields = sent), 'kubectl');
    assert.deepEqual(entries(u), sent);
  });

  it('managedFields: [] clears them; malformed ones fall back to the stored ones', () => {
    const o = created(cfg({ cpus: 2 }), 'creator');
    const cleared = updated(o, (x) => ((x.metadata as Record<string, unknown>).managedFields = []), 'client');
    assert.equal(cleared.metadata?.managedFields, undefined);
    const kept = updated(o, (x) => ((x.metadata as Record<string, unknown>).managedFields = [{ operation: 'Bogus' }]), 'client');
    assert.deepEqual(entries(kept), entries(o));
  });

  it('an object nested far too deep is a 400, never a stack overflow', () => {
    let deep: Record<string, unknown> = {};
    for (let i = 0; i < 50000; i++) deep = { a: deep };
    const o: KubeObject = { apiVersion, kind: 'Instance', metadata: { name: 'web' }, spec: deep };
    assert.throws(() => recordUpdate(undefined, o, { manager: 'm', operation: 'Update', time: T0 }), ApplyError);
    assert.throws(() => recordUpdate(created(cfg({ cpus: 1 }), 'creator'), o, { manager: 'm', operation: 'Update', time: T0 }), ApplyError);
    assert.throws(() => serverSideApply(undefined, o, { manager: 'm', force: false, time: T0 }), ApplyError);
  });

  it('absurdly deep managedFields from a client are ignored like malformed ones', () => {
    const o = created(cfg({ cpus: 2 }), 'creator');
    let deep: Record<string, unknown> = {};
    for (let i = 0; i < 20000; i++) deep = { 'f:a': deep };
    const sent = [{ manager: 'x', operation: 'Update', apiVersion, time: T1, fieldsType: 'FieldsV1', fieldsV1: deep }];
    const kept = updated(o, (x) => ((x.metadata as Record<string, unknown>).managedFields = sent), 'client');
    assert.deepEqual(entries(kept), entries(o));
  });

  it('more than ten Update managers are folded into ancient-changes, oldest first', () => {
    let o = created(cfg({ cpus: 0 }), 'm00', '2026-01-01T00:00:00Z');
    for (let i = 1; i <= 11; i++) {
      const name = `m${String(i).padStart(2, '0')}`;
      o = updated(o, (x) => (spec(x)[`f${i}`] = i), name, `2026-01-01T00:${String(i).padStart(2, '0')}:00Z`);
    }
    const managers = entries(o).map((e) => e.manager);
    assert.equal(managers.length, 10);
    assert.equal(managers[0], 'ancient-changes');
    assert.ok(!managers.includes('m00') && !managers.includes('m01') && !managers.includes('m02'), 'the three oldest were folded');
    assert.deepEqual((entry(o, 'ancient-changes', 'Update').fieldsV1 as Record<string, Record<string, unknown>>)['f:spec']['f:f1'], {});
  });
});

describe('server-side apply', () => {
  it('creating by apply records an Apply entry; struct fields are not members themselves', () => {
    const o = applied(undefined, cfg({ cpus: 2, disks: [{ name: 'root', sizeGiB: 10 }] }), 'kubectl');
    assert.deepEqual(spec(o), { cpus: 2, disks: [{ name: 'root', sizeGiB: 10 }] });
    assert.deepEqual(entries(o), [
      {
        manager: 'kubectl',
        operation: 'Apply',
        apiVersion,
        time: T1,
        fieldsType: 'FieldsV1',
        fieldsV1: { 'f:spec': { 'f:cpus': {}, 'f:disks': { 'k:{"name":"root"}': { '.': {}, 'f:name': {}, 'f:sizeGiB': {} } } } },
      },
    ]);
  });

  it('re-applying an unchanged configuration changes nothing, not even the time', () => {
    const first = stored(applied(undefined, cfg({ cpus: 2 }), 'kubectl', { time: T1 }));
    const again = applied(first, cfg({ cpus: 2 }), 'kubectl', { time: T3 });
    assert.deepEqual(again, first);
  });

  it('applying a changed value updates it and the entry time', () => {
    const first = stored(applied(undefined, cfg({ cpus: 2 }), 'kubectl', { time: T1 }));
    const next = applied(first, cfg({ cpus: 4 }), 'kubectl', { time: T3 });
    assert.equal(spec(next).cpus, 4);
    assert.equal(entry(next, 'kubectl').time, T3);
  });

  it('fields set by others are kept when they are not in the configuration', () => {
    const o = created(cfg({ cpus: 2, image: 'debian' }), 'creator');
    const next = applied(o, cfg({ memoryMiB: 512 }), 'applier');
    assert.deepEqual(spec(next), { cpus: 2, image: 'debian', memoryMiB: 512 });
  });

  describe('conflicts between managers', () => {
    const base = () => stored(applied(undefined, cfg({ cpus: 2, image: 'debian' }), 'alice'));
    const cases: { name: string; config: KubeObject; want: { manager: string; field: string }[] }[] = [
      { name: 'changing a field another applier owns conflicts', config: cfg({ cpus: 4 }), want: [{ manager: 'alice', field: '.spec.cpus' }] },
      {
        name: 'every conflicting field is reported',
        config: cfg({ cpus: 4, image: 'alpine' }),
        want: [
          { manager: 'alice', field: '.spec.cpus' },
          { manager: 'alice', field: '.spec.image' },
        ],
      },
      { name: 'applying the same value is no conflict', config: cfg({ cpus: 2 }), want: [] },
      { name: 'a field nobody owns is no conflict', config: cfg({ memoryMiB: 1 }), want: [] },
    ];
    for (const c of cases) {
      it(c.name, () => {
        const r = apply(base(), c.config, 'bob');
        assert.deepEqual('conflicts' in r ? r.conflicts.map((x) => ({ manager: x.manager, field: x.field })) : [], c.want);
      });
    }

    it('changing a field an updater owns conflicts with it, naming its apiVersion', () => {
      const o = created(cfg({ cpus: 2 }), 'kubectl-client-side-apply');
      const r = apply(o, cfg({ cpus: 4 }), 'kubectl-other');
      assert.ok('conflicts' in r, 'a conflict');
      assert.deepEqual(r.conflicts, [{ manager: 'kubectl-client-side-apply', field: '.spec.cpus', operation: 'Update', apiVersion }]);
      assert.equal(applyConflictStatus(r.conflicts).message, `Apply failed with 1 conflict: conflict with "kubectl-client-side-apply" using ${apiVersion}: .spec.cpus`);
    });

    it('a shared field stays owned by both appliers', () => {
      const o = applied(base(), cfg({ cpus: 2 }), 'bob');
      assert.deepEqual(entry(o, 'alice').fieldsV1, { 'f:spec': { 'f:cpus': {}, 'f:image': {} } });
      assert.deepEqual(entry(o, 'bob').fieldsV1, { 'f:spec': { 'f:cpus': {} } });
    });

    it('force takes the field over: the value changes and the old owner loses it', () => {
      const o = applied(base(), cfg({ cpus: 4 }), 'bob', { force: true });
      assert.equal(spec(o).cpus, 4);
      assert.deepEqual(entry(o, 'alice').fieldsV1, { 'f:spec': { 'f:image': {} } });
      assert.deepEqual(entry(o, 'bob').fieldsV1, { 'f:spec': { 'f:cpus': {} } });
    });

    it('after a forced take-over the old owner conflicts in turn', () => {
      const o = stored(applied(base(), cfg({ cpus: 4 }), 'bob', { force: true }));
      assert.deepEqual(conflictsOf(o, cfg({ cpus: 2, image: 'debian' }), 'alice'), [{ manager: 'bob', field: '.spec.cpus' }]);
    });
  });

  describe('fields a manager stops applying', () => {
    it('are removed when nobody else owns them', () => {
      const o = stored(applied(undefined, cfg({ cpus: 2, memoryMiB: 512 }), 'alice'));
      const next = applied(o, cfg({ cpus: 2 }), 'alice');
      assert.deepEqual(spec(next), { cpus: 2 });
      assert.deepEqual(entry(next, 'alice').fieldsV1, { 'f:spec': { 'f:cpus': {} } });
    });

    it('are kept when another applier also applies them', () => {
      let o = stored(applied(undefined, cfg({ cpus: 2, memoryMiB: 512 }), 'alice'));
      o = applied(o, cfg({ memoryMiB: 512 }), 'bob');
      const next = applied(o, cfg({ cpus: 2 }), 'alice');
      assert.deepEqual(spec(next), { cpus: 2, memoryMiB: 512 });
    });

    it('are kept when an updater also owns them', () => {
      let o = created(cfg({ memoryMiB: 512 }), 'creator');
      o = applied(o, cfg({ cpus: 2, memoryMiB: 512 }), 'alice');
      const next = applied(o, cfg({ cpus: 2 }), 'alice');
      assert.equal(spec(next).memoryMiB, 512);
    });

    it('the last label going removes labels but keeps server-set metadata', () => {
      const o = stored(applied(undefined, cfg({ cpus: 2 }, { metadata: { name: 'web', namespace: 'default', labels: { app: 'web' } } }), 'alice'));
      const next = applied(o, cfg({ cpus: 2 }), 'alice');
      const { managedFields: _mf, ...md } = next.metadata ?? {};
      assert.deepEqual(md, { name: 'web', namespace: 'default', uid: 'uid-1', resourceVersion: '1', generation: 1, creationTimestamp: T0 });
    });

    it('fields named like Object.prototype members are plain data', () => {
      const o = stored(applied(undefined, cfg({ env: { constructor: 'x', toString: 'y' } }), 'alice'));
      const next = applied(o, cfg({ env: { constructor: 'x', ['__proto__']: 'z' } }), 'alice');
      assert.deepEqual(Object.entries(spec(next).env as object), [
        ['constructor', 'x'],
        ['__proto__', 'z'],
      ]);
    });

    it('empty parents they leave behind go too', () => {
      const o = stored(applied(undefined, cfg({ cpus: 2, env: { A: '1' } }), 'alice'));
      const next = applied(o, cfg({ cpus: 2 }), 'alice');
      assert.deepEqual(spec(next), { cpus: 2 });
    });

    it('fields set by an updater after the apply are not touched', () => {
      let o = stored(applied(undefined, cfg({ cpus: 2 }), 'alice'));
      o = updated(o, (x) => (spec(x).image = 'debian'), 'editor');
      const next = applied(o, cfg({ cpus: 3 }), 'alice');
      assert.deepEqual(spec(next), { cpus: 3, image: 'debian' });
    });
  });

  describe('lists', () => {
    it('map-lists merge by key: each applier owns its items', () => {
      let o = stored(applied(undefined, cfg({ disks: [{ name: 'root', sizeGiB: 10 }] }), 'alice'));
      o = applied(o, cfg({ disks: [{ name: 'data', sizeGiB: 100 }] }), 'bob');
      assert.deepEqual(spec(o).disks, [
        { name: 'root', sizeGiB: 10 },
        { name: 'data', sizeGiB: 100 },
      ]);
      assert.deepEqual(entry(o, 'bob').fieldsV1, {
        'f:spec': { 'f:disks': { 'k:{"name":"data"}': { '.': {}, 'f:name': {}, 'f:sizeGiB': {} } } },
      });
      const resized = applied(o, cfg({ disks: [{ name: 'root', sizeGiB: 20 }] }), 'alice');
      assert.deepEqual(spec(resized).disks, [
        { name: 'root', sizeGiB: 20 },
        { name: 'data', sizeGiB: 100 },
      ]);
      const dropped = applied(o, cfg({}), 'alice');
      assert.deepEqual(spec(dropped).disks, [{ name: 'data', sizeGiB: 100 }]);
    });

    it('a field of another applier’s map-list item conflicts by key', () => {
      const o = stored(applied(undefined, cfg({ disks: [{ name: 'root', sizeGiB: 10 }] }), 'alice'));
      assert.deepEqual(conflictsOf(o, cfg({ disks: [{ name: 'root', sizeGiB: 30 }] }), 'bob'), [
        { manager: 'alice', field: '.spec.disks[name="root"].sizeGiB' },
      ]);
    });

    it('a map-list item keeps the fields others set in it', () => {
      let o = stored(applied(undefined, cfg({ disks: [{ name: 'root' }] }), 'alice'));
      o = applied(o, cfg({ disks: [{ name: 'root', sizeGiB: 5 }] }), 'bob');
      const next = applied(o, cfg({ disks: [{ name: 'root' }], cpus: 1 }), 'alice');
      assert.deepEqual(spec(next).disks, [{ name: 'root', sizeGiB: 5 }]);
    });

    it('set-lists merge by value and each applier owns its values', () => {
      let o = stored(applied(undefined, cfg({ sshKeys: ['a', 'b'] }), 'alice'));
      o = applied(o, cfg({ sshKeys: ['c'] }), 'bob');
      assert.deepEqual(spec(o).sshKeys, ['a', 'b', 'c']);
      assert.deepEqual(entry(o, 'bob').fieldsV1, { 'f:spec': { 'f:sshKeys': { 'v:"c"': {} } } });
      const next = applied(o, cfg({ sshKeys: ['a'] }), 'alice');
      assert.deepEqual(spec(next).sshKeys, ['a', 'c']);
    });

    it('atomic lists are replaced whole and owned whole', () => {
      const o = stored(applied(undefined, cfg({ ports: [80, 443] }), 'alice'));
      assert.deepEqual(entry(o, 'alice').fieldsV1, { 'f:spec': { 'f:ports': {} } });
      assert.deepEqual(conflictsOf(o, cfg({ ports: [8080] }), 'bob'), [{ manager: 'alice', field: '.spec.ports' }]);
      assert.deepEqual(spec(applied(o, cfg({ ports: [8080] }), 'bob', { force: true })).ports, [8080]);
    });

    it('atomic maps are replaced whole', () => {
      const o = stored(applied(undefined, cfg({ placement: { zone: 'a', rack: '1' } }), 'alice'));
      const next = applied(o, cfg({ placement: { zone: 'b' } }), 'alice');
      assert.deepEqual(spec(next).placement, { zone: 'b' });
      assert.deepEqual(entry(next, 'alice').fieldsV1, { 'f:spec': { 'f:placement': {} } });
    });

    it('metadata.finalizers is a set even though CRD schemas do not say so', () => {
      let o = stored(applied(undefined, cfg({}, { metadata: { name: 'web', namespace: 'default', finalizers: ['a'] } }), 'alice'));
      o = applied(o, cfg({}, { metadata: { name: 'web', namespace: 'default', finalizers: ['b'] } }), 'bob');
      assert.deepEqual(o.metadata?.finalizers, ['a', 'b']);
    });
  });

  describe('status is owned apart from the rest', () => {
    it('status in an apply to the main resource is ignored', () => {
      const o = stored(applied(undefined, cfg({ cpus: 2 }), 'alice'));
      const next = applied(o, cfg({ cpus: 2 }, { status: { state: 'hacked' } }), 'alice');
      assert.equal(next.status, undefined);
      assert.deepEqual(next, o);
    });

    it('an apply to the status subresource changes status only, in an entry of its own', () => {
      const o = stored(applied(undefined, cfg({ cpus: 2 }), 'alice'));
      const next = applied(o, cfg({ cpus: 99 }, { status: { state: 'running' } }), 'controller', { subresource: 'status' });
      assert.equal(spec(next).cpus, 2);
      assert.deepEqual(next.status, { state: 'running' });
      assert.deepEqual(entry(next, 'controller', 'Apply', 'status').fieldsV1, { 'f:status': { 'f:state': {} } });
      assert.deepEqual(entry(next, 'alice').fieldsV1, { 'f:spec': { 'f:cpus': {} } });
    });
  });

  describe('objects without managedFields and kubectl’s client-side apply history', () => {
    it('the first apply credits existing fields to before-first-apply', () => {
      const o = stored(cfg({ cpus: 2 }));
      assert.deepEqual(conflictsOf(o, cfg({ cpus: 4 }), 'alice'), [{ manager: 'before-first-apply', field: '.spec.cpus' }]);
      const ok = applied(o, cfg({ memoryMiB: 1 }), 'alice');
      assert.deepEqual(entry(ok, 'before-first-apply', 'Update').fieldsV1, { 'f:spec': { '.': {}, 'f:cpus': {} } });
    });

    it('kubectl may take fields its last-applied-configuration says it set, and keeps the annotation in sync', () => {
      const last = (spec: Record<string, unknown>) => `${JSON.stringify({ apiVersion, kind: 'Instance', metadata: { name: 'web', namespace: 'default' }, spec })}\n`;
      const withAnnotation = (s: Record<string, unknown>) =>
        cfg(s, { metadata: { name: 'web', namespace: 'default', annotations: { 'kubectl.kubernetes.io/last-applied-configuration': last(s) } } });
      let o = created(withAnnotation({ cpus: 2 }), 'kubectl-client-side-apply');
      o = updated(o, (x) => (spec(x).image = 'debian'), 'editor');
      // image is not in last-applied: still a conflict.
      assert.deepEqual(conflictsOf(o, cfg({ cpus: 4, image: 'alpine' }), 'kubectl'), [{ manager: 'editor', field: '.spec.image' }]);
      const next = applied(o, cfg({ cpus: 4 }), 'kubectl');
      assert.equal(spec(next).cpus, 4);
      const annotations = (next.metadata as Record<string, Record<string, string>>).annotations;
      assert.equal(annotations['kubectl.kubernetes.io/last-applied-configuration'], last({ cpus: 4 }));
      // Another manager name gets no such allowance.
      assert.deepEqual(conflictsOf(o, cfg({ cpus: 4 }), 'other'), [{ manager: 'kubectl-client-side-apply', field: '.spec.cpus' }]);
    });
  });

  describe('bad configurations are 400s', () => {
    const cases: { name: string; config: KubeObject; want: RegExp }[] = [
      {
        name: 'managedFields in the configuration',
        config: cfg({}, { metadata: { name: 'web', managedFields: [] } }),
        want: /^metadata\.managedFields must be nil$/,
      },
      {
        name: 'duplicate keys in a map-list',
        config: cfg({ disks: [{ name: 'a' }, { name: 'a' }] }),
        want: /^\.spec\.disks: duplicate entries for key \[name="a"\]$/,
      },
      {
        name: 'a map-list item without its key',
        config: cfg({ disks: [{ sizeGiB: 1 }] }),
        want: /^\.spec\.disks: element 0: associative list with keys has an element that omits key field "name"/,
      },
      { name: 'duplicate values in a set', config: cfg({ sshKeys: ['a', 'a'] }), want: /duplicate entries for key \[="a"\]/ },
      { name: 'an object nested too deep', config: cfg(nested(1000)), want: /^the object is nested more than 1000 levels deep$/ },
    ];
    for (const c of cases) {
      it(c.name, () => {
        assert.throws(() => apply(undefined, c.config, 'alice'), (e: unknown) => e instanceof ApplyError && c.want.test(e.message));
      });
    }
    it('an update of an object nested too deep is refused too, one just within the limit is not', () => {
      assert.throws(() => created(cfg(nested(1000)), 'creator'), ApplyError);
      const o = created(cfg(nested(997)), 'creator');
      assert.equal(entries(o).length, 1);
      assert.equal(entries(applied(o, cfg(nested(997)), 'alice')).length, 2);
    });
  });
});

describe('applyConflictStatus', () => {
  it('groups several conflicts by manager like kube-apiserver', () => {
    const conflicts: ApplyConflict[] = [
      { manager: 'bob', field: '.spec.cpus', operation: 'Apply', apiVersion },
      { manager: 'alice', field: '.spec.image', operation: 'Update', apiVersion },
      { manager: 'ctl', field: '.status.state', operation: 'Apply', apiVersion, subresource: 'status' },
    ];
    const s = applyConflictStatus(conflicts);
    assert.equal(
      s.message,
      `Apply failed with 3 conflicts: conflicts with "alice" using ${apiVersion}:\n- .spec.image\nconflicts with "bob":\n- .spec.cpus\nconflicts with "ctl" with subresource "status":\n- .status.state`,
    );
    assert.deepEqual(s.causes[0], { reason: 'FieldManagerConflict', message: 'conflict with "bob"', field: '.spec.cpus' });
  });
});

describe('listTypesFromSchema', () => {
  const cases: { name: string; path: string[]; want: ReturnType<typeof listTypes> }[] = [
    { name: 'a map-list with its keys', path: ['spec', 'disks'], want: { type: 'map', keys: ['name'] } },
    { name: 'a set-list', path: ['spec', 'sshKeys'], want: { type: 'set' } },
    { name: 'a list without a type (atomic by default)', path: ['spec', 'ports'], want: undefined },
    { name: 'an atomic map', path: ['spec', 'placement'], want: { type: 'atomic' } },
    { name: 'a path the schema does not describe', path: ['spec', 'nope', 'x'], want: undefined },
  ];
  for (const c of cases) {
    it(c.name, () => assert.deepEqual(listTypes(c.path), c.want));
  }
  it('descends through list items and additionalProperties', () => {
    const r = listTypesFromSchema({
      properties: {
        a: {
          type: 'array',
          items: { properties: { b: { type: 'object', additionalProperties: { type: 'array', 'x-kubernetes-list-type': 'set' } } } },
        },
      },
    });
    assert.deepEqual(r(['a', '[]', 'b', 'anything']), { type: 'set' });
  });
});

describe('field manager names', () => {
  const fromUa: [string | undefined, string][] = [
    ['kubectl/v1.32.4 (linux/amd64) kubernetes/59526cd', 'kubectl'],
    ['node-fetch', 'node-fetch'],
    ['bad\u0007name/1', 'badname'],
    [undefined, ''],
    ['x'.repeat(200), 'x'.repeat(128)],
  ];
  for (const [ua, want] of fromUa) {
    it(`the manager of User-Agent ${JSON.stringify(ua)?.slice(0, 40)} is ${JSON.stringify(want.slice(0, 20))}`, () => {
      assert.equal(managerFromUserAgent(ua), want);
    });
  }
  const validation: [string, string | undefined][] = [
    ['kubectl-client-side-apply', undefined],
    ['with space', undefined],
    ['x'.repeat(129), 'fieldManager: Too long: may not be more than 128 bytes'],
    ['a\tb', 'fieldManager: Invalid value: "a\\tb": invalid character U+0009 (at position 1)'],
  ];
  for (const [name, want] of validation) {
    it(`validateFieldManager(${JSON.stringify(name).slice(0, 30)})`, () => assert.equal(validateFieldManager(name), want));
  }
});
