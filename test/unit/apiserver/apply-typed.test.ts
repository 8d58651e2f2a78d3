import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { FieldSet, pathString, type Path } from '../../../apiserver/apply/fieldpath.js';
import { TypedSchema, compare, merge, removeItems, toFieldSet, type ListTypeResolver } from '../../../apiserver/apply/typed.js';

const resolver: ListTypeResolver = (p) => {
  switch (p.join('.')) {
    case 'items':
      return { type: 'map', keys: ['name'] };
    case 'tags':
      return { type: 'set' };
    case 'ports':
      return { type: 'map', keys: ['port', 'protocol'] };
    default:
      return undefined;
  }
};
const schema = new TypedSchema(resolver);

const paths = (s: FieldSet): string[] => s.paths().map(pathString);
const item = (name: string, v = 0): Record<string, unknown> => ({ name, v });

describe('merge orders list items like structured-merge-diff', () => {
  const cases: { name: string; live: unknown[]; applied: unknown[]; want: string[] }[] = [
    { name: 'new items go after the live ones', live: ['a', 'b'], applied: ['c'], want: ['a', 'b', 'c'] },
    { name: 'shared items follow the applied order', live: ['a', 'b'], applied: ['b', 'a'], want: ['b', 'a'] },
    { name: 'live-only items keep their place', live: ['a', 'x', 'b'], applied: ['b', 'a'], want: ['x', 'b', 'a'] },
    { name: 'applied-only items come before the shared item that follows them', live: ['a', 'b'], applied: ['a', 'n', 'b'], want: ['a', 'n', 'b'] },
    { name: 'an empty live list takes the applied one', live: [], applied: ['a'], want: ['a'] },
  ];
  for (const c of cases) {
    it(`set-list: ${c.name}`, () => {
      assert.deepEqual(merge({ tags: c.live }, { tags: c.applied }, schema), { tags: c.want });
    });
    it(`map-list: ${c.name}`, () => {
      const out = merge({ items: c.live.map((n) => item(n as string)) }, { items: c.applied.map((n) => item(n as string, 1)) }, schema) as {
        items: { name: string }[];
      };
      assert.deepEqual(
        out.items.map((i) => i.name),
        c.want,
      );
    });
  }
  it('map-list items merge field by field', () => {
    assert.deepEqual(merge({ items: [{ name: 'a', x: 1, y: 2 }] }, { items: [{ name: 'a', y: 3 }] }, schema), { items: [{ name: 'a', x: 1, y: 3 }] });
  });
  it('atomic lists are replaced', () => {
    assert.deepEqual(merge({ other: [1, 2, 3] }, { other: [4] }, schema), { other: [4] });
  });
  it('a value of another type replaces the live one', () => {
    assert.deepEqual(merge({ a: { b: 1 } }, { a: 'x' }, schema), { a: 'x' });
  });
});

describe('compare', () => {
  const cases: { name: string; lhs: unknown; rhs: unknown; added: string[]; removed: string[]; modified: string[] }[] = [
    { name: 'a changed scalar is modified', lhs: { a: 1 }, rhs: { a: 2 }, added: [], removed: [], modified: ['.a'] },
    { name: 'an added map is added with its fields', lhs: {}, rhs: { m: { x: 1 } }, added: ['.m', '.m.x'], removed: [], modified: [] },
    { name: 'a removed map is removed with its fields', lhs: { m: { x: 1 } }, rhs: {}, added: [], removed: ['.m', '.m.x'], modified: [] },
    { name: 'an atomic list is one leaf', lhs: { other: [1] }, rhs: { other: [1, 2] }, added: [], removed: [], modified: ['.other'] },
    {
      name: 'map-list items are compared by key',
      lhs: { items: [item('a', 1), item('b', 1)] },
      rhs: { items: [item('b', 2), item('c', 1)] },
      added: ['.items[name="c"]', '.items[name="c"].name', '.items[name="c"].v'],
      removed: ['.items[name="a"]', '.items[name="a"].name', '.items[name="a"].v'],
      modified: ['.items[name="b"].v'],
    },
    {
      name: 'a reordered map-list is unchanged',
      lhs: { items: [item('a'), item('b')] },
      rhs: { items: [item('b'), item('a')] },
      added: [],
      removed: [],
      modified: [],
    },
    { name: 'set items are added and removed by value', lhs: { tags: ['a', 'b'] }, rhs: { tags: ['b', 'c'] }, added: ['.tags[="c"]'], removed: ['.tags[="a"]'], modified: [] },
    {
      name: 'multi-key map-list items',
      lhs: { ports: [{ port: 80, protocol: 'TCP' }] },
      rhs: { ports: [{ port: 80, protocol: 'UDP' }] },
      added: ['.ports[port=80,protocol="UDP"]', '.ports[port=80,protocol="UDP"].port', '.ports[port=80,protocol="UDP"].protocol'],
      removed: ['.ports[port=80,protocol="TCP"]', '.ports[port=80,protocol="TCP"].port', '.ports[port=80,protocol="TCP"].protocol'],
      modified: [],
    },
    { name: 'a map that became a scalar is modified, its fields removed', lhs: { a: { b: 1 } }, rhs: { a: 'x' }, added: [], removed: ['.a.b'], modified: ['.a'] },
    { name: 'a scalar that became a map is modified, its fields added', lhs: { a: 'x' }, rhs: { a: { b: 1 } }, added: ['.a.b'], removed: [], modified: ['.a'] },
    { name: 'empty map to null is a modified leaf', lhs: { a: {} }, rhs: { a: null }, added: [], removed: [], modified: ['.a'] },
    {
      name: 'duplicated items are compared as a whole',
      lhs: { tags: ['a', 'a'] },
      rhs: { tags: ['a'] },
      added: ['.tags[="a"]'],
      removed: ['.tags[="a"]'],
      modified: [],
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const r = compare(c.lhs, c.rhs, schema);
      assert.deepEqual({ added: paths(r.added), removed: paths(r.removed), modified: paths(r.modified) }, { added: c.added, removed: c.removed, modified: c.modified });
    });
  }
});

describe('toFieldSet', () => {
  const cases: { name: string; obj: unknown; want: string[] }[] = [
    { name: 'scalars are leaves; non-empty maps are not members', obj: { a: { b: 1 } }, want: ['.a.b'] },
    { name: 'empty maps and nulls are leaves', obj: { a: {}, n: null }, want: ['.a', '.n'] },
    { name: 'atomic lists are leaves', obj: { other: [1, 2] }, want: ['.other'] },
    { name: 'empty granular lists set nothing', obj: { tags: [] }, want: [] },
    { name: 'set items are members', obj: { tags: ['x', 'y'] }, want: ['.tags[="x"]', '.tags[="y"]'] },
    { name: 'map-list items and their fields', obj: { items: [{ name: 'a', v: 1 }] }, want: ['.items[name="a"]', '.items[name="a"].name', '.items[name="a"].v'] },
  ];
  for (const c of cases) {
    it(c.name, () => assert.deepEqual(paths(toFieldSet(c.obj, schema)), c.want));
  }
});

describe('removeItems', () => {
  const f = (name: string) => ({ kind: 'field' as const, name });
  const cases: { name: string; obj: unknown; remove: Path[]; want: unknown }[] = [
    { name: 'a leaf', obj: { a: 1, b: 2 }, remove: [[f('a')]], want: { b: 2 } },
    { name: 'a member map goes whole', obj: { m: { x: 1, y: 2 }, b: 2 }, remove: [[f('m')]], want: { b: 2 } },
    { name: 'a child of a map', obj: { m: { x: 1, y: 2 } }, remove: [[f('m'), f('x')]], want: { m: { y: 2 } } },
    {
      name: 'a map-list item by key',
      obj: { items: [item('a'), item('b')] },
      remove: [[f('items'), { kind: 'key', fields: [['name', 'a']] }]],
      want: { items: [item('b')] },
    },
    { name: 'a set item by value', obj: { tags: ['a', 'b'] }, remove: [[f('tags'), { kind: 'value', value: 'b' }]], want: { tags: ['a'] } },
  ];
  for (const c of cases) {
    it(c.name, () => assert.deepEqual(removeItems(c.obj, FieldSet.of(...c.remove), schema), c.want));
  }
});

describe('FieldsV1 encoding', () => {
  it('round-trips, with "." for members that have children and keys canonicalised', () => {
    const fieldsV1 = {
      'f:spec': {
        '.': {},
        'f:items': { 'k:{"protocol":"TCP","port":80}': { '.': {}, 'f:port': {} } },
        'f:tags': { 'v:"a"': {} },
      },
    };
    const set = FieldSet.fromFieldsV1(fieldsV1);
    assert.deepEqual(paths(set), ['.spec', '.spec.items[port=80,protocol="TCP"]', '.spec.items[port=80,protocol="TCP"].port', '.spec.tags[="a"]']);
    assert.deepEqual(set.toFieldsV1(), {
      'f:spec': {
        '.': {},
        'f:items': { 'k:{"port":80,"protocol":"TCP"}': { '.': {}, 'f:port': {} } },
        'f:tags': { 'v:"a"': {} },
      },
    });
  });
  const invalid: [string, unknown][] = [
    ['a non-object', []],
    ['an unknown prefix', { 'x:a': {} }],
    ['a key that is not JSON', { 'k:{bad': {} }],
    ['a child that is not an object', { 'f:a': 1 }],
  ];
  for (const [name, v] of invalid) {
    it(`rejects ${name}`, () => assert.throws(() => FieldSet.fromFieldsV1(v)));
  }
});
