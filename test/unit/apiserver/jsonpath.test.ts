import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { evalJsonPath, validateJsonPath } from '../../../apiserver/jsonpath.js';

const instance = {
  apiVersion: 'compute.stratus.dev/v1alpha1',
  kind: 'Instance',
  metadata: {
    name: 'web-1',
    labels: { app: 'web', 'example.com/team': 'a' },
    annotations: { 'example.com/x': 'annotated', plain: 'p' },
  },
  spec: {
    cpus: 2,
    disks: [
      { name: 'root', sizeGiB: 10 },
      { name: 'data', sizeGiB: 100 },
      { name: 'scratch', sizeGiB: 5 },
    ],
    env: { A: '1' },
  },
  status: {
    state: 'running',
    conditions: [
      { type: 'Synced', status: 'True' },
      { type: 'Ready', status: 'False', observedGeneration: 3 },
    ],
  },
};

describe('evalJsonPath', () => {
  const cases: { name: string; path: string; want: unknown[] }[] = [
    { name: 'a nested field', path: '.status.state', want: ['running'] },
    { name: 'braces and $ are optional decoration', path: '{$.status.state}', want: ['running'] },
    { name: 'a missing field selects nothing', path: '.status.missing.deeper', want: [] },
    { name: 'a field of a scalar selects nothing', path: '.status.state.x', want: [] },
    { name: 'an array index', path: '.spec.disks[0].name', want: ['root'] },
    { name: 'a negative index counts from the end', path: '.spec.disks[-1].name', want: ['scratch'] },
    { name: 'an out-of-range index selects nothing', path: '.spec.disks[7].name', want: [] },
    { name: 'a wildcard over a list', path: '.spec.disks[*].name', want: ['root', 'data', 'scratch'] },
    { name: 'a wildcard over a map', path: '.metadata.labels.*', want: ['web', 'a'] },
    { name: 'a slice', path: '.spec.disks[0:2].name', want: ['root', 'data'] },
    { name: 'a slice with a step', path: '.spec.disks[::2].name', want: ['root', 'scratch'] },
    { name: 'a union of indices', path: '.spec.disks[0,2].name', want: ['root', 'scratch'] },
    { name: 'a filter on a string', path: '.status.conditions[?(@.type=="Ready")].status', want: ['False'] },
    { name: 'a filter with single quotes and spaces', path: ".status.conditions[?(@.type == 'Synced')].status", want: ['True'] },
    { name: 'a filter with !=', path: '.status.conditions[?(@.type!="Ready")].type', want: ['Synced'] },
    { name: 'a numeric filter', path: '.spec.disks[?(@.sizeGiB>=10)].name', want: ['root', 'data'] },
    { name: 'an existence filter', path: '.status.conditions[?(@.observedGeneration)].type', want: ['Ready'] },
    { name: 'a filter matching nothing', path: '.status.conditions[?(@.type=="Gone")].status', want: [] },
    { name: 'an escaped dot in a field name', path: '.metadata.annotations.example\\.com/x', want: ['annotated'] },
    { name: 'a quoted field name in brackets', path: ".metadata.labels['example.com/team']", want: ['a'] },
    { name: 'recursive descent', path: '..sizeGiB', want: [10, 100, 5] },
    { name: 'a top-level wildcard', path: '[*]', want: Object.values(instance) },
    { name: 'a whole map', path: '.spec.env', want: [{ A: '1' }] },
    { name: 'the root', path: '.', want: [instance] },
    { name: 'spaces inside braces are ignored', path: '{ .status.state }', want: ['running'] },
    { name: 'spaces between segments are ignored', path: '.spec.disks[0] .name', want: ['root'] },
  ];
  for (const c of cases) {
    it(c.name, () => {
      assert.deepEqual(evalJsonPath(c.path, instance), c.want);
    });
  }

  it('a number compared with a string never matches', () => {
    assert.deepEqual(evalJsonPath('.spec.disks[?(@.sizeGiB=="10")].name', instance), []);
  });
  it('a top-level list is indexable', () => {
    assert.deepEqual(evalJsonPath('[1]', ['a', 'b']), ['b']);
  });
  it('a malformed path throws when evaluated', () => {
    assert.throws(() => evalJsonPath('.spec.disks[', instance), /invalid JSONPath/);
  });
});

describe('validateJsonPath', () => {
  const valid = ['.status.state', '.spec.disks[0].name', '.status.conditions[?(@.type=="Ready")].status', '{.a.b}', '$.a', '[*]', '..name'];
  for (const p of valid) {
    it(`accepts ${p}`, () => assert.equal(validateJsonPath(p), undefined));
  }
  const invalid: { path: string; want: RegExp }[] = [
    { path: '', want: /empty path/ },
    { path: 'status.state', want: /unrecognized identifier status/ },
    { path: '.spec.disks[0', want: /unterminated array/ },
    { path: '.spec.disks[x]', want: /invalid array index x/ },
    { path: '.a[?(@.b=="c")', want: /unclosed array expect \]/ },
    { path: '.a[?(@.b=="c"', want: /unterminated filter/ },
    { path: '.a[?(@.b=!"c")]', want: /unrecognized filter operator =!/ },
    { path: '{.a', want: /unclosed action/ },
    { path: '.a.', want: /ends with "\."/ },
  ];
  for (const c of invalid) {
    it(`rejects ${JSON.stringify(c.path)}`, () => {
      const msg = validateJsonPath(c.path);
      assert.ok(msg, 'an error message');
      assert.match(msg, c.want);
    });
  }
});
