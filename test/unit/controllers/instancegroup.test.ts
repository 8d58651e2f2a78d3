/**
 * The InstanceGroup decisions as tables: scale-down victims, maxSurge/maxUnavailable
 * arithmetic, the template hash, the autoscaler's recommendation and stabilisation, and the
 * Scale made from an object by the API server's /scale subresource.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Instance, InstanceGroup } from '../../../crds/types.js';
import { resolveIntOrPercent, templateHash, victimOrder } from '../../../controllers/instancegroup.js';
import { recommend, stabilise } from '../../../controllers/autoscaler.js';
import { scaleOf } from '../../../apiserver/http/scale.js';

function inst(name: string, created: string, ready: boolean): Instance {
  return {
    apiVersion: 'compute.stratus.dev/v1alpha1',
    kind: 'Instance',
    metadata: { name, creationTimestamp: created },
    spec: { provider: 'docker', image: 'busybox' },
    status: { conditions: [{ type: 'Ready', status: ready ? 'True' : 'False', reason: 'x', message: '' }] },
  };
}

describe('InstanceGroup decisions', () => {
  test('victims: not Ready first, then the newest (creationTimestamp, then name)', () => {
    const all = [
      inst('a', '2026-01-01T00:00:01Z', true),
      inst('b', '2026-01-01T00:00:02Z', false),
      inst('c', '2026-01-01T00:00:03Z', true),
      inst('d', '2026-01-01T00:00:03Z', true),
      inst('e', '2026-01-01T00:00:00Z', false),
    ];
    assert.deepEqual([...all].sort(victimOrder).map((i) => i.metadata?.name), ['b', 'e', 'd', 'c', 'a']);
  });

  const cases: Array<[number | string | undefined, number, number, boolean, number]> = [
    [undefined, 4, 1, true, 1],
    [2, 4, 1, true, 2],
    ['25%', 4, 1, true, 1],
    ['25%', 5, 1, true, 2],
    ['25%', 5, 0, false, 1],
    ['100%', 3, 0, false, 3],
  ];
  for (const [v, replicas, fallback, up, want] of cases) {
    test(`maxSurge/maxUnavailable ${String(v)} of ${replicas} (${up ? 'up' : 'down'}) is ${want}`, () => {
      assert.equal(resolveIntOrPercent(v, replicas, fallback, up), want);
    });
  }
  test('a value that is neither a number nor a percentage is refused', () => {
    assert.throws(() => resolveIntOrPercent('lots', 3, 0, true), /neither a number nor a percentage/);
  });

  test('the template hash ignores key order and changes with the template', () => {
    const t1: InstanceGroup['spec']['template'] = { metadata: { labels: { app: 'web' } }, spec: { provider: 'docker', image: 'a' } };
    const t2: InstanceGroup['spec']['template'] = { spec: { image: 'a', provider: 'docker' }, metadata: { labels: { app: 'web' } } };
    assert.equal(templateHash(t1), templateHash(t2));
    assert.match(templateHash(t1), /^[0-9a-f]{10}$/);
    assert.notEqual(templateHash(t1), templateHash({ ...t1, spec: { provider: 'docker', image: 'b' } }));
  });
});

describe('autoscaler', () => {
  const rec: Array<[number, number, number, number, number]> = [
    // current, measured, average %, target %, recommendation
    [2, 2, 90, 30, 6],
    [2, 2, 32, 30, 2], // within the 10 % tolerance
    [4, 4, 10, 50, 1],
    [3, 2, 0, 50, 0],
    [1, 1, 75, 50, 2],
  ];
  for (const [current, measured, avg, target, want] of rec) {
    test(`${measured} Instance(s) at ${avg}% against ${target}% recommend ${want} (current ${current})`, () => {
      assert.equal(recommend(current, measured, avg, target), want);
    });
  }

  test('a scale down waits for the highest recommendation of its window; a scale up takes the lowest of its own', () => {
    const now = 100_000;
    const history = [
      { at: now - 9_000, replicas: 4 },
      { at: now - 4_000, replicas: 2 },
      { at: now, replicas: 1 },
    ];
    assert.equal(stabilise(4, history, now, 0, 10), 4, 'a 4 inside the 10 s window holds the scale down');
    assert.equal(stabilise(4, history, now, 0, 5), 2, 'with a 5 s window only 2 and 1 count');
    assert.equal(stabilise(4, history, now, 0, 0), 1);
    assert.equal(stabilise(1, [{ at: now - 1000, replicas: 3 }, { at: now, replicas: 5 }], now, 0, 0), 5);
    assert.equal(stabilise(1, [{ at: now - 1000, replicas: 3 }, { at: now, replicas: 5 }], now, 2, 0), 3, 'the up window takes its lowest');
  });
});

describe('/scale', () => {
  test('a Scale carries spec.replicas, status.replicas and the selector from the CRD paths', () => {
    const obj = { apiVersion: 'compute.stratus.dev/v1alpha1', kind: 'InstanceGroup', metadata: { name: 'web', namespace: 'default', uid: 'u1', resourceVersion: '7', labels: { x: 'y' } }, spec: { replicas: 3 }, status: { replicas: 2, selector: 'app=web' } };
    assert.deepEqual(scaleOf(obj, { specReplicasPath: '.spec.replicas', statusReplicasPath: '.status.replicas', labelSelectorPath: '.status.selector' }), {
      kind: 'Scale',
      apiVersion: 'autoscaling/v1',
      metadata: { name: 'web', namespace: 'default', uid: 'u1', resourceVersion: '7' },
      spec: { replicas: 3 },
      status: { replicas: 2, selector: 'app=web' },
    });
    assert.deepEqual(scaleOf({ ...obj, status: undefined }, { specReplicasPath: '.spec.replicas', statusReplicasPath: '.status.replicas' }).status, { replicas: 0 });
  });
});
