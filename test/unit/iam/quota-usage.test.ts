/**
 * What objects cost against a Quota, kube's refusal message, the group membership rule and
 * the login rate limiter.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { exceeded, exceededMessage, increase, usageOf } from '../../../apiserver/quota/usage.js';
import { authenticatedUser, groupsOf, tokenUser } from '../../../apiserver/auth/membership.js';
import { AttemptLimiter, groupNamesOf } from '../../../legacy/login.js';

describe('quota usage', () => {
  it('an Instance costs 1 instance, its cpus, memory and the sum of its disks; an ElasticIP one elasticIP; others nothing', () => {
    assert.deepEqual(usageOf('Instance', { spec: { cpus: 2, memoryMiB: 512, disks: [{ sizeGiB: 10 }, { sizeGiB: 5 }] } }), { instances: 1, cpus: 2, memoryMiB: 512, diskGiB: 15 });
    assert.deepEqual(usageOf('ElasticIP', {}), { elasticIPs: 1 });
    assert.deepEqual(usageOf('Network', {}), {});
  });

  it('a resize charges only increases', () => {
    assert.deepEqual(increase({ instances: 1, cpus: 2, memoryMiB: 512 }, { instances: 1, cpus: 4, memoryMiB: 256 }), { cpus: 2 });
  });

  it("refuses with kube's message naming only what is exceeded", () => {
    const hard = { cpus: 16, instances: 10 };
    const used = { cpus: 14, instances: 3 };
    const requested = { cpus: 4, instances: 1 };
    const over = exceeded(hard, used, requested);
    assert.deepEqual(over, ['cpus']);
    assert.equal(exceededMessage('team-a', over, hard, used, requested), 'exceeded quota: team-a, requested: cpus=4, used: cpus=14, limited: cpus=16');
    assert.deepEqual(exceeded({ cpus: 16 }, { cpus: 12 }, { cpus: 4 }), [], 'reaching the limit exactly is allowed');
    assert.deepEqual(exceeded({}, { cpus: 1e9 }, { cpus: 1 }), [], 'an absent limit is unlimited');
  });
});

describe('membership', () => {
  const source = async () => [
    { metadata: { name: 'red' }, spec: { members: ['alice', 'bob'] } },
    { metadata: { name: 'blue' }, spec: { members: ['bob'] } },
    { metadata: { name: 'empty' }, spec: {} },
  ];

  it('groupsOf: the Groups listing the user in spec.members, sorted', async () => {
    assert.deepEqual(await groupsOf('bob', source), ['blue', 'red']);
    assert.deepEqual(await groupsOf('carol', source), []);
  });

  it('an authenticated user gets system:authenticated; a token without a user is its namespace\'s default service account', async () => {
    assert.deepEqual(await authenticatedUser('alice', source), { username: 'alice', groups: ['red', 'system:authenticated'] });
    assert.deepEqual(await tokenUser({ namespace: 'team-a' }, source), {
      username: 'system:serviceaccount:team-a:default',
      groups: ['system:serviceaccounts', 'system:serviceaccounts:team-a', 'system:authenticated'],
    });
  });

  it('LDAP group cns become Group names: lower-cased DNS labels only', () => {
    assert.deepEqual(groupNamesOf(['Developers', 'ops', 'Not A Label', 'ops']), ['developers', 'ops']);
  });
});

describe('AttemptLimiter', () => {
  it('allows the limit per window and per key, then says how long to wait', () => {
    const l = new AttemptLimiter(2, 60_000);
    assert.equal(l.take('a', 0), 0);
    assert.equal(l.take('a', 1000), 0);
    assert.equal(l.take('a', 2000), 58);
    assert.equal(l.take('b', 2000), 0);
    assert.equal(l.take('a', 60_000), 0, 'a new window');
  });
});
