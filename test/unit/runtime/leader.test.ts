import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { KubeClient, CoreResources } from '../../../runtime/client.js';
import { LeaderElector, type Lease } from '../../../runtime/leader.js';
import { FakeApiServer } from './fakeapi.js';
import { waitFor } from '../../harness/process.js';

// Short periods keep the test fast; the algorithm is the same as with 15/10/2 s.
const periods = { leaseDurationMs: 1500, renewDeadlineMs: 1000, retryPeriodMs: 200 };

describe('LeaderElector', () => {
  const api = new FakeApiServer();
  let client: KubeClient;
  const electors: LeaderElector[] = [];
  before(async () => {
    await api.start();
    client = KubeClient.fromKubeConfig(api.kubeConfig());
  });
  after(async () => {
    api.unavailable = false;
    for (const e of electors) await e.stop();
    client.close();
    await api.stop();
  });

  /** Electors sharing one lease; `leaders` tracks who believes it leads, `overlap` counts double leadership. */
  function group(lease: string, n: number, releaseOnStop = true) {
    const state = { leaders: new Set<string>(), overlap: 0, stopped: [] as string[] };
    const es = Array.from({ length: n }, (_, i) => {
      const id = `${lease}-${i}`;
      const e = new LeaderElector(client, { namespace: 'le', name: lease, identity: id, releaseOnStop, ...periods }, {
        onStartedLeading: () => {
          state.leaders.add(id);
          if (state.leaders.size > 1) state.overlap++;
        },
        onStoppedLeading: () => {
          state.leaders.delete(id);
          state.stopped.push(id);
        },
      });
      electors.push(e);
      return e;
    });
    return { es, state };
  }

  /** Two candidates started and one of them elected: the leader and the other. */
  async function elected(lease: string, releaseOnStop: boolean) {
    const { es, state } = group(lease, 2, releaseOnStop);
    for (const e of es) e.start();
    await waitFor('a leader', () => state.leaders.size === 1);
    const leader = es.find((e) => e.isLeader()) as LeaderElector;
    const other = es.find((e) => e !== leader) as LeaderElector;
    return { state, leader, other };
  }

  test('of two candidates exactly one leads, and the Lease names it', async () => {
    const { es, state } = group('one', 2);
    for (const e of es) e.start();
    await waitFor('a leader', () => state.leaders.size === 1);
    await new Promise((r) => setTimeout(r, 3 * periods.retryPeriodMs));
    assert.equal(state.leaders.size, 1);
    assert.equal(state.overlap, 0);
    const leader = es.find((e) => e.isLeader());
    const lease = await client.resource<Lease>(CoreResources.leases).get('le', 'one');
    assert.equal(lease?.spec?.holderIdentity, leader?.identity);
    assert.equal(lease?.spec?.leaseDurationSeconds, 2);
    assert.match(lease?.spec?.renewTime ?? '', /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/, 'renewTime is a MicroTime');
  });

  test('when the leader dies without releasing, the other takes over after the lease expires', async () => {
    const { state, leader, other } = await elected('crash', false);
    const before = (await client.resource<Lease>(CoreResources.leases).get('le', 'crash'))?.spec?.leaseTransitions ?? 0;
    await leader.stop(); // no release: from the Lease's point of view the leader just went silent
    await waitFor('takeover', () => other.isLeader(), 10_000);
    const lease = await client.resource<Lease>(CoreResources.leases).get('le', 'crash');
    assert.equal(lease?.spec?.holderIdentity, other.identity);
    assert.equal(lease?.spec?.leaseTransitions, before + 1);
    assert.equal(state.overlap, 0);
  });

  test('a graceful stop releases the Lease so the standby leads at once', async () => {
    const { state, leader, other } = await elected('release', true);
    await leader.stop();
    const lease = await client.resource<Lease>(CoreResources.leases).get('le', 'release');
    assert.ok(lease?.spec?.holderIdentity === '' || lease?.spec?.holderIdentity === other.identity, 'released on stop');
    await waitFor('standby leads', () => other.isLeader(), 10_000);
    assert.equal(state.overlap, 0);
  });

  test('a leader that cannot renew stops leading, and leads again once the API is back', async () => {
    const { es, state } = group('outage', 1);
    const [e] = es as [LeaderElector];
    e.start();
    await waitFor('leader', () => e.isLeader());
    api.unavailable = true;
    await waitFor('stopped leading', () => state.stopped.includes(e.identity), 10_000);
    assert.equal(e.isLeader(), false);
    api.unavailable = false;
    await waitFor('leads again once the API is back', () => e.isLeader(), 10_000);
  });

  test('a wall-clock jump (Date.now an hour ahead, then an hour behind) neither hands a live leader\'s lease to a follower nor delays the takeover after the leader dies', async () => {
    const { state, leader, other } = await elected('jump', false);
    const leases = client.resource<Lease>(CoreResources.leases);
    /** Resolves after the leader has renewed the Lease `n` more times (the follower re-judged expiry meanwhile). */
    const renewals = async (n: number): Promise<void> => {
      let last = (await leases.get('le', 'jump'))?.spec?.renewTime;
      let seen = 0;
      await waitFor(`${n} renewals`, async () => {
        const t = (await leases.get('le', 'jump'))?.spec?.renewTime;
        if (t !== last) {
          seen++;
          last = t;
        }
        return seen >= n;
      }, 30_000, 20);
    };
    const realNow = Date.now.bind(Date);
    try {
      await renewals(2);
      Date.now = () => realNow() + 3_600_000;
      await renewals(4);
      assert.equal(leader.isLeader(), true, 'the leader kept leading across the forward jump');
      assert.equal(other.isLeader(), false, 'the follower did not take a live lease');
      Date.now = () => realNow() - 3_600_000;
      await renewals(4);
      assert.equal(leader.isLeader(), true, 'the leader kept leading across the backward jump');
      assert.deepEqual(state.stopped, []);
      assert.equal(state.overlap, 0);
      // Still an hour behind: a dead leader's lease expires a lease duration after its last renewal, not an hour later.
      await leader.stop();
      await waitFor('takeover', () => other.isLeader(), 10_000);
      assert.equal(state.overlap, 0);
    } finally {
      Date.now = realNow;
    }
  });

  test('rejects periods that cannot be safe', () => {
    assert.throws(() => new LeaderElector(client, { namespace: 'le', name: 'x', leaseDurationMs: 1000, renewDeadlineMs: 2000 }, { onStartedLeading() {}, onStoppedLeading() {} }));
  });
});
