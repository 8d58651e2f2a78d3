import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { JSONSchemaProps } from '../../../apiserver/schema/types.js';
import { compileSchema } from '../../../apiserver/schema/validate.js';

function withSpec(spec: JSONSchemaProps): JSONSchemaProps {
  return { type: 'object', properties: { spec } };
}

function fields(schema: JSONSchemaProps, obj: unknown): string[] {
  return compileSchema(schema).validate(obj).map((c) => `${c.field} ${c.reason}`);
}

describe('compileSchema: validation in the Kubernetes dialect', () => {
  test('nullable accepts null; a field that is not nullable rejects it as a type error', () => {
    const s = withSpec({ type: 'object', properties: { a: { type: 'string', nullable: true }, b: { type: 'string' }, e: { type: 'string', enum: ['x'], nullable: true } } });
    assert.deepEqual(fields(s, { spec: { a: null, e: null } }), []);
    assert.deepEqual(fields(s, { spec: { b: null } }), ['spec.b FieldValueTypeInvalid']);
  });

  test('x-kubernetes-int-or-string takes 8080 and "http" but not true', () => {
    const s = withSpec({ type: 'object', properties: { port: { 'x-kubernetes-int-or-string': true } } });
    assert.deepEqual(fields(s, { spec: { port: 8080 } }), []);
    assert.deepEqual(fields(s, { spec: { port: 'http' } }), []);
    assert.deepEqual(fields(s, { spec: { port: true } }), ['spec.port FieldValueTypeInvalid']);
  });

  test('exclusiveMinimum is the OpenAPI v3.0 flag on minimum', () => {
    const s = withSpec({ type: 'object', properties: { n: { type: 'number', minimum: 0, exclusiveMinimum: true, maximum: 1, exclusiveMaximum: true } } });
    assert.deepEqual(fields(s, { spec: { n: 0.5 } }), []);
    const causes = compileSchema(s).validate({ spec: { n: 0 } });
    assert.deepEqual(causes, [{ reason: 'FieldValueInvalid', field: 'spec.n', message: 'Invalid value: 0: spec.n in body should be greater than 0' }]);
    assert.equal(compileSchema(s).validate({ spec: { n: 1 } })[0]?.message, 'Invalid value: 1: spec.n in body should be less than 1');
  });

  test('kube formats: date-time, cidr, mac, ipv6 are checked; an unknown format is ignored', () => {
    const s = withSpec({
      type: 'object',
      properties: { t: { type: 'string', format: 'date-time' }, c: { type: 'string', format: 'cidr' }, m: { type: 'string', format: 'mac' }, v6: { type: 'string', format: 'ipv6' }, x: { type: 'string', format: 'x-made-up' } },
    });
    assert.deepEqual(fields(s, { spec: { t: '2026-11-22T03:00:00Z', c: '10.0.0.0/8', m: '52:54:00:aa:bb:cc', v6: 'fd00::1', x: 'anything' } }), []);
    assert.deepEqual(fields(s, { spec: { t: '2026-13-01T00:00:00Z', c: '10.0.0.0/33', m: '52:54:00', v6: '10.0.0.1' } }), ['spec.t FieldValueInvalid', 'spec.c FieldValueInvalid', 'spec.m FieldValueInvalid', 'spec.v6 FieldValueInvalid']);
  });

  test('map values are validated and named by key; keys that are not identifiers use brackets', () => {
    const s = withSpec({ type: 'object', properties: { labels: { type: 'object', maxProperties: 2, additionalProperties: { type: 'string', maxLength: 3 } } } });
    const causes = compileSchema(s).validate({ spec: { labels: { team: 'platform', 'stratus.dev/zone': 'rack-a' } } });
    assert.deepEqual(causes.map((c) => c.field), ['spec.labels.team', 'spec.labels[stratus.dev/zone]']);
    assert.deepEqual(fields(s, { spec: { labels: { a: '1', b: '2', c: '3' } } }), ['spec.labels FieldValueTooMany']);
  });

  test('list-maps with two keys and sets report the duplicate entry by index', () => {
    const s = withSpec({
      type: 'object',
      properties: {
        ports: { type: 'array', 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['port', 'protocol'], items: { type: 'object', required: ['port', 'protocol'], properties: { port: { type: 'integer' }, protocol: { type: 'string' } } } },
        tags: { type: 'array', 'x-kubernetes-list-type': 'set', items: { type: 'string' } },
      },
    });
    const ok = { spec: { ports: [{ port: 53, protocol: 'TCP' }, { port: 53, protocol: 'UDP' }], tags: ['a', 'b'] } };
    assert.deepEqual(fields(s, ok), []);
    const bad = { spec: { ports: [{ port: 53, protocol: 'UDP' }, { port: 80, protocol: 'TCP' }, { port: 53, protocol: 'UDP' }], tags: ['a', 'b', 'a'] } };
    assert.deepEqual(compileSchema(s).validate(bad), [
      { reason: 'FieldValueDuplicate', field: 'spec.ports[2]', message: 'Duplicate value: {"port":53,"protocol":"UDP"}' },
      { reason: 'FieldValueDuplicate', field: 'spec.tags[2]', message: 'Duplicate value: "a"' },
    ]);
  });

  test('a body that is not an object is one type error at the root', () => {
    assert.deepEqual(compileSchema(withSpec({ type: 'object' })).validate('hello'), [
      { reason: 'FieldValueTypeInvalid', field: '', message: 'Invalid value: "string": body must be of type object: "string"' },
    ]);
  });

  test('a schema is compiled once: the same schema object gives the same compiled schema', () => {
    const s = withSpec({ type: 'object' });
    assert.equal(compileSchema(s), compileSchema(s));
  });

  test('equal schemas in different objects (a CRD from its write and from its watch event) share one compiled schema', () => {
    const a = withSpec({ type: 'object', properties: { n: { type: 'integer', minimum: 3 } } });
    const b = structuredClone(a);
    assert.notEqual(a, b);
    assert.equal(compileSchema(a), compileSchema(b));
    assert.notEqual(compileSchema(withSpec({ type: 'object', properties: { n: { type: 'integer', minimum: 4 } } })), compileSchema(a));
    assert.equal(compileSchema(b).validate({ spec: { n: 2 } })[0]?.field, 'spec.n');
  });

  test('a schema ajv cannot compile fails at compile time, not on first use', () => {
    assert.throws(() => compileSchema(withSpec({ type: 'string', pattern: '^[a-z' })));
  });
});

describe('compileSchema: defaulting', () => {
  const s = withSpec({
    type: 'object',
    properties: {
      replicas: { type: 'integer', default: 1 },
      mode: { type: 'string', default: 'auto' },
      maybe: { type: 'string', nullable: true, default: 'x' },
      section: { type: 'object', properties: { level: { type: 'integer', default: 3 } } },
      always: { type: 'object', default: {}, properties: { strategy: { type: 'string', default: 'spread' } } },
      items: { type: 'array', items: { type: 'object', properties: { proto: { type: 'string', default: 'TCP' } } } },
      byName: { type: 'object', additionalProperties: { type: 'object', properties: { weight: { type: 'integer', default: 10 } } } },
    },
  });

  test('sets absent fields, recurses into lists, maps and defaulted objects, and never creates an absent parent', () => {
    const obj = { spec: { items: [{}, { proto: 'UDP' }], byName: { a: {} } } };
    compileSchema(s).applyDefaults(obj);
    assert.deepEqual(obj.spec, {
      replicas: 1,
      mode: 'auto',
      maybe: 'x',
      always: { strategy: 'spread' },
      items: [{ proto: 'TCP' }, { proto: 'UDP' }],
      byName: { a: { weight: 10 } },
    });
  });

  test('null in a field that is not nullable is replaced by the default; a nullable field keeps null', () => {
    const obj = { spec: { mode: null, maybe: null } };
    compileSchema(s).applyDefaults(obj);
    assert.equal(obj.spec.mode, 'auto');
    assert.equal(obj.spec.maybe, null);
  });

  test('defaults are copies: changing one object does not change the next one', () => {
    const a: { spec: { always?: { strategy: string } } } = { spec: {} };
    compileSchema(s).applyDefaults(a);
    if (a.spec.always) a.spec.always.strategy = 'changed';
    const b: { spec: { always?: { strategy: string } } } = { spec: {} };
    compileSchema(s).applyDefaults(b);
    assert.equal(b.spec.always?.strategy, 'spread');
  });
});

describe('compileSchema: pruning', () => {
  test('keeps apiVersion, kind and metadata at the root, drops unknown fields everywhere else and names them', () => {
    const s = withSpec({ type: 'object', properties: { list: { type: 'array', items: { type: 'object', properties: { a: { type: 'string' } } } } } });
    const obj = { apiVersion: 'x/v1', kind: 'X', metadata: { name: 'n', labels: { a: 'b' } }, extra: 1, spec: { list: [{ a: 'x', b: 'y' }], other: true } };
    assert.deepEqual(compileSchema(s).prune(obj), ['extra', 'spec.list[0].b', 'spec.other']);
    assert.deepEqual(obj, { apiVersion: 'x/v1', kind: 'X', metadata: { name: 'n', labels: { a: 'b' } }, spec: { list: [{ a: 'x' }] } });
  });

  test('fields named like Object.prototype members ("constructor", "__proto__", "toString") are unknown fields too', () => {
    const s = withSpec({ type: 'object', properties: { a: { type: 'string' } } });
    const obj = JSON.parse('{"spec": {"a": "x", "constructor": 1, "__proto__": {"polluted": true}, "toString": "y"}}') as { spec: Record<string, unknown> };
    assert.deepEqual(compileSchema(s).prune(obj).sort(), ['spec.__proto__', 'spec.constructor', 'spec.toString']);
    assert.deepEqual(Object.keys(obj.spec), ['a']);
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
  });

  test('x-kubernetes-preserve-unknown-fields keeps unknown fields but still prunes inside known ones', () => {
    const s = withSpec({ type: 'object', 'x-kubernetes-preserve-unknown-fields': true, properties: { known: { type: 'object', properties: { a: { type: 'string' } } } } });
    const obj = { spec: { free: { anything: 1 }, known: { a: 'x', z: 1 } } };
    assert.deepEqual(compileSchema(s).prune(obj), ['spec.known.z']);
    assert.deepEqual(obj.spec, { free: { anything: 1 }, known: { a: 'x' } });
  });

  test('an embedded resource keeps its apiVersion, kind and metadata, and must name apiVersion and kind', () => {
    const s = withSpec({ type: 'object', properties: { template: { type: 'object', 'x-kubernetes-embedded-resource': true, properties: { spec: { type: 'object', properties: { a: { type: 'string' } } } } } } });
    const obj = { spec: { template: { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'x' }, spec: { a: 'y', b: 'z' }, data: {} } } };
    assert.deepEqual(compileSchema(s).prune(obj), ['spec.template.spec.b', 'spec.template.data']);
    assert.deepEqual(obj.spec.template, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'x' }, spec: { a: 'y' } });
    assert.deepEqual(fields(s, { spec: { template: { metadata: {} } } }), ['spec.template.apiVersion FieldValueRequired', 'spec.template.kind FieldValueRequired']);
  });
});
