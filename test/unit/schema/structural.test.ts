import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { crdErrors, structuralErrors } from '../../../apiserver/schema/structural.js';
import type { CustomResourceDefinition, JSONSchemaProps } from '../../../apiserver/schema/types.js';
import { loadCrdDir } from '../../../apiserver/schema/validate.js';
import { repoRoot } from '../../harness/paths.js';

function root(spec: JSONSchemaProps, extra: Record<string, JSONSchemaProps> = {}): JSONSchemaProps {
  return { type: 'object', properties: { spec, ...extra } };
}

describe('structuralErrors', () => {
  const cases: { name: string; schema: JSONSchemaProps; want: string }[] = [
    { name: 'a field without a type', schema: root({ type: 'object', properties: { size: { minimum: 1 } } }), want: 'openAPIV3Schema.properties[spec].properties[size].type: Required value: must not be empty for specified object fields' },
    { name: 'list items without a type', schema: root({ type: 'array', maxItems: 1, items: { maxLength: 3 } }), want: 'openAPIV3Schema.properties[spec].items.type: Required value: must not be empty for specified array items' },
    { name: 'a root that is not an object', schema: { type: 'string' }, want: 'openAPIV3Schema.type: Invalid value: "string": must be object at the root' },
    { name: 'an array without items', schema: root({ type: 'array' }), want: 'openAPIV3Schema.properties[spec].items: Required value' },
    { name: 'a field only specified inside oneOf', schema: root({ type: 'object', properties: { a: { type: 'string' } }, oneOf: [{ properties: { b: { maxLength: 1 } } }] }), want: 'openAPIV3Schema.properties[spec].oneOf[0].properties[b]: Required value: must be specified in the structural part' },
    { name: 'a type inside anyOf', schema: root({ type: 'object', properties: { a: { type: 'string' } }, anyOf: [{ type: 'object' }] }), want: 'openAPIV3Schema.properties[spec].anyOf[0].type: Forbidden' },
    { name: 'a default inside allOf', schema: root({ type: 'object', properties: { a: { type: 'string' } }, allOf: [{ properties: { a: { default: 'x' } } }] }), want: 'openAPIV3Schema.properties[spec].allOf[0].properties[a].default: Forbidden' },
    { name: 'properties and additionalProperties together', schema: root({ type: 'object', properties: { a: { type: 'string' } }, additionalProperties: { type: 'string' } }), want: 'openAPIV3Schema.properties[spec].additionalProperties: Forbidden: additionalProperties and properties are mutual exclusive' },
    { name: 'additionalProperties: false', schema: root({ type: 'object', additionalProperties: false }), want: 'openAPIV3Schema.properties[spec].additionalProperties: Forbidden' },
    { name: 'uniqueItems: true', schema: root({ type: 'array', items: { type: 'string' }, uniqueItems: true }), want: 'openAPIV3Schema.properties[spec].uniqueItems: Forbidden' },
    { name: 'a list-map without keys', schema: root({ type: 'array', 'x-kubernetes-list-type': 'map', items: { type: 'object', properties: { name: { type: 'string' } } } }), want: 'openAPIV3Schema.properties[spec].x-kubernetes-list-map-keys: Required value' },
    { name: 'a list-map key neither required nor defaulted', schema: root({ type: 'array', 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['name'], items: { type: 'object', properties: { name: { type: 'string' } } } }), want: 'openAPIV3Schema.properties[spec].x-kubernetes-list-map-keys[0]: Required value: map key "name" must be required or have a default' },
    { name: 'a set of granular objects', schema: root({ type: 'array', 'x-kubernetes-list-type': 'set', items: { type: 'object', properties: { a: { type: 'string' } } } }), want: 'openAPIV3Schema.properties[spec].items: Invalid value' },
    { name: 'metadata restricted beyond name', schema: { type: 'object', properties: { metadata: { type: 'object', properties: { labels: { type: 'object' } } } } }, want: 'openAPIV3Schema.properties[metadata].properties[labels]: Forbidden' },
    { name: 'a default of the wrong type', schema: root({ type: 'object', properties: { cpus: { type: 'integer', default: 'one' } } }), want: 'openAPIV3Schema.properties[spec].properties[cpus].default: Invalid value: "string": body must be of type integer' },
    { name: 'a default with an unknown field', schema: root({ type: 'object', properties: { p: { type: 'object', default: { x: 1 }, properties: { y: { type: 'integer' } } } } }), want: 'openAPIV3Schema.properties[spec].properties[p].default: Invalid value: {"x":1}: must not have unknown fields: x' },
    { name: 'a default that breaks a bound', schema: root({ type: 'object', properties: { n: { type: 'integer', minimum: 4, default: 1 } } }), want: 'openAPIV3Schema.properties[spec].properties[n].default: Invalid value: 1: body should be greater than or equal to 4' },
    { name: 'a pattern that is not a regular expression', schema: root({ type: 'string', pattern: '^[a-z' }), want: 'openAPIV3Schema.properties[spec].pattern: Invalid value: "^[a-z": must be a valid regular expression' },
    { name: 'an enum value of the wrong type', schema: root({ type: 'string', enum: ['a', 1] }), want: 'openAPIV3Schema.properties[spec].enum[1]: Invalid value: 1: must be of type string' },
    { name: 'a draft-07 numeric exclusiveMinimum', schema: root({ type: 'integer', exclusiveMinimum: 0 as unknown as boolean }), want: 'openAPIV3Schema.properties[spec].exclusiveMinimum: Invalid value: 0: must be a boolean' },
    { name: 'a misspelt keyword', schema: root({ type: 'string', maxlength: 3 } as JSONSchemaProps), want: 'openAPIV3Schema.properties[spec].maxlength: Forbidden: unknown field "maxlength"' },
    { name: 'a $ref', schema: root({ type: 'object', $ref: '#/definitions/x' } as JSONSchemaProps), want: 'openAPIV3Schema.properties[spec].$ref: Forbidden' },
    { name: 'int-or-string with a type', schema: root({ type: 'string', 'x-kubernetes-int-or-string': true }), want: 'openAPIV3Schema.properties[spec].type: Invalid value: "string": must be empty if x-kubernetes-int-or-string is true' },
    { name: 'a required field that is not specified', schema: root({ type: 'object', required: ['size'], properties: { sise: { type: 'integer' } } }), want: 'openAPIV3Schema.properties[spec].required: Invalid value: "size": must be specified in properties' },
    { name: 'x-kubernetes-preserve-unknown-fields: false', schema: root({ type: 'object', 'x-kubernetes-preserve-unknown-fields': false }), want: 'openAPIV3Schema.properties[spec].x-kubernetes-preserve-unknown-fields: Invalid value: false' },
    { name: 'a description that YAML read as a map', schema: root({ type: 'string', description: { 'e.g. x': null } as unknown as string }), want: 'openAPIV3Schema.properties[spec].description: Invalid value' },
  ];
  for (const c of cases) {
    test(`catches ${c.name}`, () => {
      const errs = structuralErrors(c.schema);
      assert.ok(errs.some((e) => e.startsWith(c.want)), `expected an error starting with\n  ${c.want}\ngot\n  ${errs.join('\n  ')}`);
    });
  }

  test('accepts what Kubernetes accepts: int-or-string, preserve-unknown-fields, embedded resources, name rules, value validations on specified fields', () => {
    const schema: JSONSchemaProps = {
      type: 'object',
      properties: {
        metadata: { type: 'object', properties: { name: { type: 'string', maxLength: 63, pattern: '^[a-z]+$' } } },
        spec: {
          type: 'object',
          anyOf: [{ required: ['port'] }, { required: ['raw'] }],
          properties: {
            port: { 'x-kubernetes-int-or-string': true, anyOf: [{ type: 'integer' }, { type: 'string' }] },
            raw: { 'x-kubernetes-preserve-unknown-fields': true },
            template: { type: 'object', 'x-kubernetes-embedded-resource': true, 'x-kubernetes-preserve-unknown-fields': true },
            ports: { type: 'array', 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['port', 'protocol'], items: { type: 'object', required: ['port'], properties: { port: { type: 'integer' }, protocol: { type: 'string', default: 'TCP' } } } },
            labels: { type: 'object', additionalProperties: { type: 'string' }, 'x-kubernetes-map-type': 'granular' },
            when: { type: 'string', format: 'date-time', nullable: true, default: null },
          },
        },
      },
    };
    assert.deepEqual(structuralErrors(schema), []);
  });
});

function validCrd(): CustomResourceDefinition {
  const crd = loadCrdDir(join(repoRoot(), 'crds')).find((c) => c.spec.names.kind === 'Network');
  assert.ok(crd);
  return structuredClone(crd);
}

describe('crdErrors', () => {
  const cases: { name: string; change: (c: CustomResourceDefinition) => void; field: string; message: string }[] = [
    { name: 'a name that is not plural.group', change: (c) => (c.metadata.name = 'network.compute.stratus.dev'), field: 'metadata.name', message: 'must be spec.names.plural+"."+spec.group' },
    { name: 'a group without a dot', change: (c) => (c.spec.group = 'compute'), field: 'spec.group', message: 'should be a domain with at least one dot' },
    { name: 'an upper-case plural', change: (c) => (c.spec.names.plural = 'Networks'), field: 'spec.names.plural', message: 'lowercase RFC 1123 label' },
    { name: 'listKind equal to kind', change: (c) => (c.spec.names.listKind = 'Network'), field: 'spec.names.listKind', message: 'kind and listKind may not be the same' },
    { name: 'a scope that does not exist', change: (c) => ((c.spec as { scope: string }).scope = 'Global'), field: 'spec.scope', message: 'Unsupported value: "Global"' },
    {
      name: 'two storage versions',
      change: (c) => c.spec.versions.push({ ...structuredClone(c.spec.versions[0]!), name: 'v1beta1' }),
      field: 'spec.versions',
      message: 'must have exactly one version marked as storage version',
    },
    { name: 'no storage version', change: (c) => (c.spec.versions[0]!.storage = false), field: 'spec.versions', message: 'must have exactly one version marked as storage version' },
    { name: 'a version without a schema', change: (c) => delete c.spec.versions[0]!.schema, field: 'spec.versions[0].schema.openAPIV3Schema', message: 'Required value: schemas are required' },
    {
      name: 'a non-structural schema',
      change: (c) => (c.spec.versions[0]!.schema!.openAPIV3Schema.properties!.spec!.properties!.vlan = { minimum: 1 }),
      field: 'spec.versions[0].schema.openAPIV3Schema.properties[spec].properties[vlan].type',
      message: 'Required value: must not be empty for specified object fields',
    },
    { name: 'a printer column of an unknown type', change: (c) => (c.spec.versions[0]!.additionalPrinterColumns![0]!.type = 'text'), field: 'spec.versions[0].additionalPrinterColumns[0].type', message: 'Unsupported value: "text"' },
    { name: 'a printer column that points at no field', change: (c) => (c.spec.versions[0]!.additionalPrinterColumns![1]!.jsonPath = '.spec.vlanID'), field: 'spec.versions[0].additionalPrinterColumns[1].jsonPath', message: 'field "vlanID" is not in the schema at .spec' },
    { name: 'a printer column filter on a field the items lack', change: (c) => (c.spec.versions[0]!.additionalPrinterColumns![3]!.jsonPath = '.status.conditions[?(@.kind=="Ready")].status'), field: 'spec.versions[0].additionalPrinterColumns[3].jsonPath', message: 'filter field "@.kind"' },
    { name: 'an unparsable printer column path', change: (c) => (c.spec.versions[0]!.additionalPrinterColumns![0]!.jsonPath = 'spec.bridge'), field: 'spec.versions[0].additionalPrinterColumns[0].jsonPath', message: 'must be a simple json path starting with .' },
    { name: 'two printer columns with one name', change: (c) => (c.spec.versions[0]!.additionalPrinterColumns![1]!.name = 'bridge'), field: 'spec.versions[0].additionalPrinterColumns[1].name', message: 'Duplicate value: "bridge"' },
  ];
  test('the Network CRD as committed has no problem (the baseline of the table)', () => {
    assert.deepEqual(crdErrors(validCrd()), []);
  });
  for (const c of cases) {
    test(`reports ${c.name} at ${c.field}`, () => {
      const crd = validCrd();
      c.change(crd);
      const errs = crdErrors(crd);
      assert.ok(errs.some((e) => e.field === c.field && e.message.includes(c.message)), `want ${c.field}: …${c.message}…, got ${JSON.stringify(errs, null, 1)}`);
    });
  }
});

describe('malformed input', () => {
  const garbage: unknown[] = [
    {},
    { spec: null },
    { spec: { names: 'x', versions: 'y' } },
    { spec: { group: 5, names: { plural: 5, kind: 7, shortNames: 'a', categories: [1] }, versions: [null, 5, { name: 5, schema: 'x', additionalPrinterColumns: [null, 5, {}] }] } },
    { spec: { group: 'b.c', scope: 'Cluster', names: { plural: 'a', kind: 'A' }, versions: [{ name: 'v1', served: true, storage: true, schema: { openAPIV3Schema: { type: 'object', properties: { x: null, y: 5, z: { type: 'array', items: 5 } }, allOf: 5, not: 7 } }, subresources: { scale: 5 } }] } },
  ];
  test('crdErrors reports problems in a malformed CRD instead of throwing', () => {
    for (const g of garbage) assert.ok(crdErrors(g as CustomResourceDefinition).length > 0, JSON.stringify(g));
  });

  test('structuralErrors reports a schema that is not an object, or items that are not a schema', () => {
    for (const s of [null, 5, 'x', []]) assert.deepEqual(structuralErrors(s as unknown as JSONSchemaProps), [`openAPIV3Schema: Invalid value: ${JSON.stringify(s)}: must be a schema object`]);
    assert.deepEqual(structuralErrors({ type: 'object', properties: { a: { type: 'array', items: 5 as unknown as JSONSchemaProps } } }), ['openAPIV3Schema.properties[a].items: Invalid value: 5: must be a schema object']);
  });
});
