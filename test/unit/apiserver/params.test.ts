/** Query parameter parsing follows Go's strconv, as kube-apiserver's does. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseGoBool, parseGoInt64 } from '../../../apiserver/http/params.js';

describe('query parameter parsing', () => {
  it('booleans accept exactly strconv.ParseBool\'s spellings (and a bare flag as true)', () => {
    for (const t of ['1', 't', 'T', 'TRUE', 'true', 'True', '']) assert.equal(parseGoBool(t), true, t);
    for (const f of ['0', 'f', 'F', 'FALSE', 'false', 'False']) assert.equal(parseGoBool(f), false, f);
    for (const bad of ['yes', 'no', 'tRUE', 'fALSE', 'maybe', ' true', '2', 'on']) assert.equal(parseGoBool(bad), undefined, bad);
  });

  it('integers accept strconv.ParseInt(s, 10, 64)\'s forms and refuse the rest', () => {
    assert.equal(parseGoInt64('0'), 0);
    assert.equal(parseGoInt64('500'), 500);
    assert.equal(parseGoInt64('+7'), 7);
    assert.equal(parseGoInt64('-3'), -3);
    assert.notEqual(parseGoInt64('9223372036854775807'), undefined);
    assert.equal(parseGoInt64('-9007199254740991'), -9007199254740991);
    for (const bad of ['', 'abc', '1.5', '1e3', '0x10', ' 1', '9223372036854775808', '-9223372036854775809', '--1']) {
      assert.equal(parseGoInt64(bad), undefined, bad);
    }
  });
});
