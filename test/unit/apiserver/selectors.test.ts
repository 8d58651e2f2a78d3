import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  SelectorError,
  formatLabelSelector,
  labelSelectorFromObject,
  matchesFields,
  matchesLabels,
  parseFieldSelector,
  parseLabelSelector,
} from '../../../apiserver/selectors.js';

describe('label selector matching', () => {
  const labels = { app: 'web', tier: 'front', 'example.com/team': 'a', replicas: '3' };
  const cases: { name: string; selector: string; labels: Record<string, string> | undefined; want: boolean }[] = [
    { name: 'empty selector matches everything', selector: '', labels, want: true },
    { name: 'empty selector matches an object without labels', selector: '', labels: undefined, want: true },
    { name: '= matches an equal value', selector: 'app=web', labels, want: true },
    { name: '== is the same as =', selector: 'app==web', labels, want: true },
    { name: '= rejects another value', selector: 'app=db', labels, want: false },
    { name: '= rejects an absent label', selector: 'missing=web', labels, want: false },
    { name: '!= matches another value', selector: 'app!=db', labels, want: true },
    { name: '!= rejects the same value', selector: 'app!=web', labels, want: false },
    { name: '!= matches an absent label', selector: 'missing!=x', labels, want: true },
    { name: 'in matches a listed value', selector: 'tier in (back, front)', labels, want: true },
    { name: 'in rejects an absent label', selector: 'zone in (a)', labels, want: false },
    { name: 'notin rejects a listed value', selector: 'tier notin (front)', labels, want: false },
    { name: 'notin matches an absent label', selector: 'zone notin (a,b)', labels, want: true },
    { name: 'bare key means exists', selector: 'app', labels, want: true },
    { name: 'bare key rejects an absent label', selector: 'zone', labels, want: false },
    { name: '!key means does not exist', selector: '!zone', labels, want: true },
    { name: '!key rejects a present label', selector: '!app', labels, want: false },
    { name: 'all terms must hold', selector: 'app=web,tier=back', labels, want: false },
    { name: 'prefixed keys are accepted', selector: 'example.com/team=a', labels, want: true },
    { name: 'in and notin are values after an operator', selector: 'app in (in,notin,web)', labels, want: true },
    { name: 'gt compares integers', selector: 'replicas>2', labels, want: true },
    { name: 'lt compares integers', selector: 'replicas<2', labels, want: false },
    { name: 'empty value after = matches an empty label', selector: 'e=', labels: { e: '' }, want: true },
    { name: 'whitespace around terms is ignored', selector: '  app = web ,  tier  ', labels, want: true },
  ];
  for (const c of cases) {
    it(c.name, () => {
      assert.equal(matchesLabels(parseLabelSelector(c.selector), c.labels), c.want);
    });
  }
});

describe('label selector errors are kube-apiserver messages', () => {
  const cases: { name: string; selector: string; want: string | RegExp }[] = [
    {
      name: 'a missing value list after in',
      selector: 'a in',
      want: "unable to parse requirement: found '' expected: '('",
    },
    {
      name: 'an unclosed value list',
      selector: 'a in (b',
      want: "unable to parse requirement: found '', expected: ',' or ')'",
    },
    {
      name: 'two values for =',
      selector: 'a=b c',
      want: "found 'c', expected: ',' or 'end of string'",
    },
    {
      name: 'a trailing comma',
      selector: 'a=b,',
      want: "found '', expected: identifier after ','",
    },
    {
      name: 'a selector starting with an operator',
      selector: '=a',
      want: "found '=', expected: !, identifier, or 'end of string'",
    },
    {
      name: 'an unknown operator word',
      selector: 'a foo b',
      want: "unable to parse requirement: found 'foo', expected: in, notin, =, ==, !=, gt, lt",
    },
    {
      name: 'a key that is not a qualified name',
      selector: '-a=b',
      want:
        'unable to parse requirement: <nil>: Invalid value: "-a": name part must consist of alphanumeric characters, \'-\', \'_\' or \'.\', and must start and end with an alphanumeric character (e.g. \'MyName\', or \'my.name\', or \'123-abc\', regex used for validation is \'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]\')',
    },
    {
      name: 'a key with a bad DNS prefix',
      selector: 'Example.com/a=b',
      want: /^unable to parse requirement: <nil>: Invalid value: "Example.com\/a": prefix part a lowercase RFC 1123 subdomain/,
    },
    {
      name: 'a value longer than 63 characters',
      selector: `a=${'x'.repeat(64)}`,
      want: `unable to parse requirement: values[0][a]: Invalid value: "${'x'.repeat(64)}": must be no more than 63 characters`,
    },
    {
      name: 'a value with a forbidden character',
      selector: 'a=b$',
      want: /^unable to parse requirement: values\[0\]\[a\]: Invalid value: "b\$": a valid label must be an empty string/,
    },
    {
      name: '!key followed by a value',
      selector: '!a=b',
      want: "found '=', expected: ',' or 'end of string'",
    },
    {
      name: 'gt with a non-integer',
      selector: 'a>b',
      want: 'unable to parse requirement: values[0]: Invalid value: "b": for \'Gt\', \'Lt\' operators, the value must be an integer',
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      assert.throws(
        () => parseLabelSelector(c.selector),
        (e: unknown) => {
          assert.ok(e instanceof SelectorError, 'a SelectorError');
          if (typeof c.want === 'string') assert.equal(e.message, c.want);
          else assert.match(e.message, c.want);
          return true;
        },
      );
    });
  }
});

describe('parsed label selectors', () => {
  it('in values are de-duplicated and sorted', () => {
    assert.deepEqual(parseLabelSelector('a in (c,b,c)'), [{ key: 'a', operator: 'in', values: ['b', 'c'] }]);
  });
  it('"()" and "(,)" stand for the empty value', () => {
    assert.deepEqual(parseLabelSelector('a in ()')[0].values, ['']);
    assert.deepEqual(parseLabelSelector('a in (,b)')[0].values, ['', 'b']);
  });
  it('format renders a selector that parses back to the same requirements', () => {
    const sel = parseLabelSelector('a=b,c!=d,e in (f,g),!h,i,j notin (k)');
    assert.deepEqual(parseLabelSelector(formatLabelSelector(sel)), sel);
  });
});

describe('labelSelectorFromObject', () => {
  const cases: {
    name: string;
    obj: Parameters<typeof labelSelectorFromObject>[0];
    labels: Record<string, string>;
    want: boolean;
  }[] = [
    { name: 'an empty object selects everything', obj: {}, labels: { a: 'b' }, want: true },
    { name: 'matchLabels must all be equal', obj: { matchLabels: { a: 'b', c: 'd' } }, labels: { a: 'b' }, want: false },
    {
      name: 'In expression',
      obj: { matchExpressions: [{ key: 'a', operator: 'In', values: ['x', 'b'] }] },
      labels: { a: 'b' },
      want: true,
    },
    {
      name: 'NotIn expression',
      obj: { matchExpressions: [{ key: 'a', operator: 'NotIn', values: ['b'] }] },
      labels: { a: 'b' },
      want: false,
    },
    { name: 'Exists expression', obj: { matchExpressions: [{ key: 'a', operator: 'Exists' }] }, labels: { a: 'b' }, want: true },
    {
      name: 'DoesNotExist expression',
      obj: { matchExpressions: [{ key: 'a', operator: 'DoesNotExist' }] },
      labels: { a: 'b' },
      want: false,
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      assert.equal(matchesLabels(labelSelectorFromObject(c.obj), c.labels), c.want);
    });
  }
  it('rejects an unknown operator and an In without values', () => {
    assert.throws(() => labelSelectorFromObject({ matchExpressions: [{ key: 'a', operator: 'Gt' }] }), SelectorError);
    assert.throws(
      () => labelSelectorFromObject({ matchExpressions: [{ key: 'a', operator: 'In', values: [] }] }),
      /values set can't be empty/,
    );
  });
});

describe('field selectors', () => {
  const allowed = ['metadata.name', 'metadata.namespace'];
  const fields = { 'metadata.name': 'web-1', 'metadata.namespace': 'default' };
  const cases: { name: string; selector: string; want: boolean }[] = [
    { name: 'empty selector matches everything', selector: '', want: true },
    { name: '= matches an equal value', selector: 'metadata.name=web-1', want: true },
    { name: '== is the same as =', selector: 'metadata.name==web-1', want: true },
    { name: '!= rejects the same value', selector: 'metadata.namespace!=default', want: false },
    { name: 'all terms must hold', selector: 'metadata.name=web-1,metadata.namespace=other', want: false },
    { name: 'escaped comma is part of the value', selector: 'metadata.name=a\\,b', want: false },
  ];
  for (const c of cases) {
    it(c.name, () => {
      assert.equal(matchesFields(parseFieldSelector(c.selector, allowed), fields), c.want);
    });
  }
  it('an escaped comma unescapes into the value', () => {
    assert.deepEqual(parseFieldSelector('metadata.name=a\\,b', allowed), [
      { field: 'metadata.name', operator: '=', value: 'a,b' },
    ]);
  });

  const errors: { name: string; selector: string; want: string }[] = [
    {
      name: 'an unknown field names the allowed ones',
      selector: 'spec.foo=bar',
      want: '"spec.foo" is not a known field selector: only "metadata.name", "metadata.namespace"',
    },
    {
      name: 'a term without an operator',
      selector: 'metadata.name',
      want: "invalid selector: 'metadata.name'; can't understand 'metadata.name'",
    },
    { name: 'an invalid escape', selector: 'metadata.name=a\\b', want: 'invalid field selector: invalid escape sequence: \\b' },
  ];
  for (const c of errors) {
    it(`rejects ${c.name}`, () => {
      assert.throws(() => parseFieldSelector(c.selector, allowed), (e: unknown) => {
        assert.ok(e instanceof SelectorError, 'a SelectorError');
        assert.equal(e.message, c.want);
        return true;
      });
    });
  }
});
