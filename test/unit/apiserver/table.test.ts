import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { humanDuration, toTable, toTableRowForWatch, type PrinterColumn } from '../../../apiserver/table.js';

const now = new Date('2026-01-10T12:00:00Z');

const columns: PrinterColumn[] = [
  { name: 'State', type: 'string', jsonPath: '.status.state' },
  { name: 'CPUs', type: 'integer', jsonPath: '.spec.cpus' },
  { name: 'Load', type: 'number', jsonPath: '.status.load', priority: 1 },
  { name: 'Ready', type: 'boolean', jsonPath: '.status.ready' },
  { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp', description: 'How old it is' },
];

function instance(name: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    apiVersion: 'compute.stratus.dev/v1alpha1',
    kind: 'Instance',
    metadata: { name, namespace: 'default', resourceVersion: '42', creationTimestamp: '2026-01-10T11:55:00Z', labels: { a: 'b' } },
    spec: { cpus: 2 },
    status: { state: 'running', load: 0.5, ready: true },
    ...extra,
  };
}

describe('Table column definitions', () => {
  it('start with Name, then the CRD columns with type, format, description and priority', () => {
    const t = toTable(columns, [], { now });
    assert.deepEqual(
      t.columnDefinitions.map((c) => [c.name, c.type, c.format, c.priority]),
      [
        ['Name', 'string', 'name', 0],
        ['State', 'string', '', 0],
        ['CPUs', 'integer', '', 0],
        ['Load', 'number', '', 1],
        ['Ready', 'boolean', '', 0],
        ['Age', 'date', '', 0],
      ],
    );
    assert.match(t.columnDefinitions[0].description, /^Name must be unique within a namespace/);
    assert.equal(t.columnDefinitions[1].description, 'Custom resource definition column (in JSONPath format): .status.state');
    assert.equal(t.columnDefinitions[5].description, 'How old it is');
  });
  it('a CRD without columns gets Name and Age from .metadata.creationTimestamp', () => {
    const t = toTable([], [instance('a')], { now });
    assert.deepEqual(
      t.columnDefinitions.map((c) => [c.name, c.type]),
      [
        ['Name', 'string'],
        ['Age', 'date'],
      ],
    );
    assert.match(t.columnDefinitions[1].description, /^CreationTimestamp is a timestamp/);
    assert.deepEqual(t.rows[0].cells, ['a', '5m']);
  });
});

describe('Table cells are typed per column', () => {
  const cases: { name: string; column: PrinterColumn; obj: Record<string, unknown>; want: unknown }[] = [
    { name: 'string', column: { name: 'S', type: 'string', jsonPath: '.status.state' }, obj: instance('a'), want: 'running' },
    { name: 'string of a number prints it', column: { name: 'S', type: 'string', jsonPath: '.spec.cpus' }, obj: instance('a'), want: '2' },
    {
      name: 'string of a small float prints Go %v',
      column: { name: 'S', type: 'string', jsonPath: '.x' },
      obj: { x: 1.5e-7 },
      want: '1.5e-07',
    },
    {
      name: 'string of a map prints compact JSON with sorted keys',
      column: { name: 'S', type: 'string', jsonPath: '.metadata.labels' },
      obj: { metadata: { labels: { z: '1', a: '<2>' } } },
      want: '{"a":"\\u003c2\\u003e","z":"1"}',
    },
    { name: 'string of a boolean', column: { name: 'S', type: 'string', jsonPath: '.status.ready' }, obj: instance('a'), want: 'true' },
    { name: 'integer', column: { name: 'I', type: 'integer', jsonPath: '.spec.cpus' }, obj: instance('a'), want: 2 },
    { name: 'integer truncates a float', column: { name: 'I', type: 'integer', jsonPath: '.x' }, obj: { x: 2.9 }, want: 2 },
    { name: 'integer of a string is null', column: { name: 'I', type: 'integer', jsonPath: '.x' }, obj: { x: '2' }, want: null },
    { name: 'number', column: { name: 'N', type: 'number', jsonPath: '.status.load' }, obj: instance('a'), want: 0.5 },
    { name: 'boolean', column: { name: 'B', type: 'boolean', jsonPath: '.status.ready' }, obj: instance('a'), want: true },
    { name: 'boolean of a string is null', column: { name: 'B', type: 'boolean', jsonPath: '.x' }, obj: { x: 'true' }, want: null },
    { name: 'date is an age', column: { name: 'D', type: 'date', jsonPath: '.t' }, obj: { t: '2026-01-10T07:30:00Z' }, want: '4h30m' },
    { name: 'date with fractional seconds', column: { name: 'D', type: 'date', jsonPath: '.t' }, obj: { t: '2026-01-10T11:59:30.5Z' }, want: '29s' },
    { name: 'an unparseable date is <invalid>', column: { name: 'D', type: 'date', jsonPath: '.t' }, obj: { t: 'yesterday' }, want: '<invalid>' },
    { name: 'an empty date is <unknown>', column: { name: 'D', type: 'date', jsonPath: '.t' }, obj: { t: '' }, want: '<unknown>' },
    { name: 'a missing value is null', column: { name: 'S', type: 'string', jsonPath: '.status.gone' }, obj: instance('a'), want: null },
    { name: 'a null value is null', column: { name: 'S', type: 'string', jsonPath: '.x' }, obj: { x: null }, want: null },
    {
      name: 'only the first of several values is shown',
      column: { name: 'S', type: 'string', jsonPath: '.items[*]' },
      obj: { items: ['first', 'second'] },
      want: 'first',
    },
    {
      name: 'a filter column',
      column: { name: 'Ready', type: 'string', jsonPath: '.status.conditions[?(@.type=="Ready")].status' },
      obj: { status: { conditions: [{ type: 'Synced', status: 'True' }, { type: 'Ready', status: 'False' }] } },
      want: 'False',
    },
    { name: 'an unknown column type is null', column: { name: 'X', type: 'object', jsonPath: '.spec' }, obj: instance('a'), want: null },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const t = toTable([c.column], [c.obj], { now });
      assert.deepEqual(t.rows[0].cells[1], c.want);
    });
  }
  it('the Name cell is metadata.name', () => {
    assert.deepEqual(toTable(columns, [instance('web-1')], { now }).rows[0].cells, ['web-1', 'running', 2, 0.5, true, '5m']);
  });
});

describe('Table rows carry the object per includeObject', () => {
  it('Metadata (the default) is a PartialObjectMetadata', () => {
    const t = toTable(columns, [instance('a')], { now });
    assert.deepEqual(t.rows[0].object, {
      kind: 'PartialObjectMetadata',
      apiVersion: 'meta.k8s.io/v1',
      metadata: instance('a').metadata,
    });
  });
  it('Object is the whole object', () => {
    assert.deepEqual(toTable(columns, [instance('a')], { now, includeObject: 'Object' }).rows[0].object, instance('a'));
  });
  it('None is null', () => {
    assert.equal(toTable(columns, [instance('a')], { now, includeObject: 'None' }).rows[0].object, null);
  });
});

describe('Table list metadata', () => {
  it('carries resourceVersion, continue and remainingItemCount', () => {
    const t = toTable(columns, [instance('a'), instance('b')], {
      now,
      listMeta: { resourceVersion: '7', continue: 'tok', remainingItemCount: 3 },
    });
    assert.equal(t.kind, 'Table');
    assert.equal(t.apiVersion, 'meta.k8s.io/v1');
    assert.deepEqual(t.metadata, { resourceVersion: '7', continue: 'tok', remainingItemCount: 3 });
    assert.deepEqual(
      t.rows.map((r) => r.cells[0]),
      ['a', 'b'],
    );
  });
  it('omits empty list metadata', () => {
    assert.deepEqual(toTable(columns, [], { now }).metadata, {});
  });
  it("a Table of one object without listMeta carries the object's resourceVersion (a GET)", () => {
    assert.deepEqual(toTable(columns, [instance('a')], { now }).metadata, { resourceVersion: '42' });
  });
  it('listMeta wins over the object for a one-item list', () => {
    assert.deepEqual(toTable(columns, [instance('a')], { now, listMeta: { resourceVersion: '50' } }).metadata, { resourceVersion: '50' });
  });
});

describe('toTableRowForWatch', () => {
  it("is a one-row Table with the object's resourceVersion", () => {
    const t = toTableRowForWatch(columns, instance('a'), { now });
    assert.equal(t.rows.length, 1);
    assert.equal(t.metadata.resourceVersion, '42');
    assert.equal(t.columnDefinitions.length, 6);
  });
  it('omits column definitions for events after the first', () => {
    assert.deepEqual(toTableRowForWatch(columns, instance('a'), { now, noHeaders: true }).columnDefinitions, []);
  });
});

describe('humanDuration matches apimachinery', () => {
  const s = 1000;
  const m = 60 * s;
  const h = 60 * m;
  const d = 24 * h;
  const cases: [number, string][] = [
    [-5 * s, '<invalid>'],
    [-1 * s, '0s'],
    [0, '0s'],
    [119 * s, '119s'],
    [2 * m, '2m'],
    [2 * m + 30 * s, '2m30s'],
    [10 * m + 30 * s, '10m'],
    [179 * m, '179m'],
    [3 * h, '3h'],
    [5 * h + 3 * m, '5h3m'],
    [8 * h + 59 * m, '8h'],
    [47 * h, '47h'],
    [3 * d + 4 * h, '3d4h'],
    [2 * d, '2d'],
    [8 * d + 5 * h, '8d'],
    [400 * d, '400d'],
    [2 * 365 * d + 10 * d, '2y10d'],
    [9 * 365 * d, '9y'],
  ];
  for (const [ms, want] of cases) {
    it(`${ms}ms → ${want}`, () => assert.equal(humanDuration(ms), want));
  }
});
