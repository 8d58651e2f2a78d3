import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { scryptSync } from 'node:crypto';
import { decodeStored, DEFAULT_SCRYPT, parseToken, scryptHash, scryptParamsOf, tokenFromHeader } from '../../../legacy/tokens.js';
import { signBody } from '../../../legacy/users.js';

describe('Cloud Brain token format', () => {
  const secret = '0123456789abcdef0123456789abcdef';
  it('parses ID-SECRET with a numeric ID and 32 lowercase hex', () => {
    assert.deepEqual(parseToken(`42-${secret}`), { id: '42', secret });
  });
  for (const bad of ['', '42', `-${secret}`, `a-${secret}`, `42-${secret.slice(1)}`, `42-${secret}0`, `42-${secret.toUpperCase()}`, `42 ${secret}`, `4-2-${secret}`]) {
    it(`refuses ${JSON.stringify(bad)}`, () => assert.equal(parseToken(bad), undefined));
  }
  it('reads "Authorization: token X" (scheme case-insensitive) and nothing else', () => {
    assert.equal(tokenFromHeader(`token 1-${secret}`), `1-${secret}`);
    assert.equal(tokenFromHeader(`Token 1-${secret}`), `1-${secret}`);
    assert.equal(tokenFromHeader(`Bearer 1-${secret}`), undefined);
    assert.equal(tokenFromHeader('token'), undefined);
    assert.equal(tokenFromHeader(undefined), undefined);
  });
});

describe('token hashing', () => {
  it('is scrypt with the stored parameters (Node scryptSync agrees)', async () => {
    const salt = Buffer.from('salt-of-16-bytes');
    const p = { cost: 1024, blockSize: 8, parallelization: 1, keyLength: 32 };
    const got = await scryptHash('s3cret', salt, p);
    assert.deepEqual(got, scryptSync('s3cret', salt, 32, { N: 1024, r: 8, p: 1 }));
  });
  it('defaults absent parameters to the CRD defaults', () => {
    assert.deepEqual(scryptParamsOf({ tokenID: '1', salt: 'x', hash: 'y' }), DEFAULT_SCRYPT);
    assert.deepEqual(scryptParamsOf({ tokenID: '1', salt: 'x', hash: 'y', scrypt: { cost: 2048 } }), { ...DEFAULT_SCRYPT, cost: 2048 });
  });
  it('decodes base64 and hex encodings of salt and hash', () => {
    const salt = Buffer.from('0123456789abcdef');
    const hash = Buffer.alloc(64, 7);
    assert.deepEqual(decodeStored({ tokenID: '1', salt: salt.toString('base64'), hash: hash.toString('base64') }, 64), { salt, hash });
    assert.deepEqual(decodeStored({ tokenID: '1', salt: salt.toString('hex'), hash: hash.toString('hex') }, 64), { salt, hash });
  });
});

describe('Brume signatures', () => {
  it('are hex HMAC-SHA256 of the body keyed by the secret (RFC 4231 test case 2)', () => {
    assert.equal(signBody('Jefe', 'what do ya want for nothing?'), '5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843');
  });
});
