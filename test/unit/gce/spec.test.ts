/**
 * The GCE provider's pure pieces: names, labels, machine type choice, image references,
 * state mapping, operation and HTTP error classification — and the fake's list filters.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
// The pure modules only (not index.js): the unit tests do not load the client library.
import { describeFailure, parseEndpoint, retryAfterMs } from '../../../providers/gce/http.js';
import { operationFailure } from '../../../providers/gce/operations.js';
import {
  instanceName,
  labelsFor,
  machineState,
  machineTypeFor,
  parseImage,
  powerSettled,
  reconciledLabels,
  sshKeysMetadata,
  type PendingKind,
} from '../../../providers/gce/spec.js';
import { ReconcileError } from '../../../runtime/errors.js';
import type { MachineSpec, MachineState } from '../../../providers/machine.js';
import { compileFilter } from '../../fakes/gce/filter.js';

function spec(over: Partial<MachineSpec> = {}): MachineSpec {
  return {
    uid: '4F1C2B9E-8D7A-4E3B-9C1D-0123456789AB',
    namespace: 'prod',
    name: 'db.primary',
    hostname: 'db',
    cpus: 1,
    memoryMiB: 512,
    disks: [],
    networks: [],
    sshAuthorizedKeys: [],
    env: {},
    ports: [],
    labels: {},
    powerState: 'Running',
    providerSpec: {},
    ...over,
  };
}

const GCE_NAME = /^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$/;

describe('instance names and labels', () => {
  it('names a VM st-<uid hex>, a valid GCE name, the same every time', () => {
    const name = instanceName('4F1C2B9E-8D7A-4E3B-9C1D-0123456789AB');
    assert.equal(name, 'st-4f1c2b9e8d7a4e3b9c1d0123456789ab');
    assert.match(name, GCE_NAME);
    assert.equal(instanceName('4f1c2b9e-8d7a-4e3b-9c1d-0123456789ab'), name);
    assert.throws(() => instanceName(''), (e: unknown) => e instanceof ReconcileError && e.reason === 'InvalidSpec');
  });

  it('labels carry uid, namespace and name in GCE-safe form; stratus keys win over user labels', () => {
    const labels = labelsFor(
      spec({ labels: { 'app.kubernetes.io/name': 'My.App', 'stratus-uid': 'spoofed', '9lives': 'x', long: 'v'.repeat(80) } }),
    );
    assert.equal(labels['stratus-uid'], '4f1c2b9e-8d7a-4e3b-9c1d-0123456789ab');
    assert.equal(labels['stratus-namespace'], 'prod');
    assert.equal(labels['stratus-name'], 'db_primary');
    assert.equal(labels.app_kubernetes_io_name, 'my_app');
    assert.equal(labels.l9lives, 'x', 'keys start with a letter');
    assert.equal(labels.long?.length, 63);
    for (const [k, v] of Object.entries(labels)) {
      assert.match(k, /^[a-z][a-z0-9_-]{0,62}$/);
      assert.match(v, /^[a-z0-9_-]{0,63}$/);
    }
  });

  it('keeps at most 64 labels', () => {
    const many = Object.fromEntries(Array.from({ length: 100 }, (_, i) => [`k${i}`, 'v']));
    const labels = labelsFor(spec({ labels: many }));
    assert.equal(Object.keys(labels).length, 64);
    assert.ok('stratus-uid' in labels);
  });

  it("keeps Google's goog-* labels and drops other foreign ones", () => {
    assert.deepEqual(reconciledLabels({ 'goog-ops-agent-policy': 'v2', stale: 'x', a: 'old' }, { a: 'new' }), { 'goog-ops-agent-policy': 'v2', a: 'new' });
  });

  it('ssh-keys metadata takes the user from the key comment', () => {
    assert.equal(
      sshKeysMetadata(['ssh-ed25519 AAAA alice@laptop', 'ssh-rsa BBBB', '  ']),
      'alice:ssh-ed25519 AAAA alice@laptop\nstratus:ssh-rsa BBBB',
    );
  });
});

describe('machine type choice', () => {
  const cases: [string, Partial<MachineSpec>, string][] = [
    ['1 vCPU, 512 MiB → shared-core micro', { cpus: 1, memoryMiB: 512 }, 'e2-micro'],
    ['1 vCPU, 1.5 GiB → e2-small', { cpus: 1, memoryMiB: 1536 }, 'e2-small'],
    ['1 vCPU, 4 GiB → e2-medium', { cpus: 1, memoryMiB: 4096 }, 'e2-medium'],
    ['2 vCPUs never get a shared core', { cpus: 2, memoryMiB: 1024 }, 'e2-highcpu-2'],
    ['2 vCPUs, 4 GiB → e2-standard-2', { cpus: 2, memoryMiB: 4096 }, 'e2-standard-2'],
    ['2 vCPUs, 12 GiB → e2-highmem-2', { cpus: 2, memoryMiB: 12288 }, 'e2-highmem-2'],
    ['3 vCPUs round up to 4', { cpus: 3, memoryMiB: 4096 }, 'e2-highcpu-4'],
    ['4 vCPUs, 8 GiB → e2-standard-4', { cpus: 4, memoryMiB: 8192 }, 'e2-standard-4'],
    ['32 vCPUs, 128 GiB → e2-standard-32', { cpus: 32, memoryMiB: 131072 }, 'e2-standard-32'],
    ['40 vCPUs → N2', { cpus: 40, memoryMiB: 8192 }, 'n2-standard-48'],
    ['spec.gce.machineType wins', { cpus: 64, memoryMiB: 1, providerSpec: { machineType: 'c3-standard-4' } }, 'c3-standard-4'],
  ];
  for (const [name, over, want] of cases) {
    it(name, () => assert.equal(machineTypeFor(spec(over)), want));
  }
  it('nothing fits → InvalidSpec naming spec.gce.machineType', () => {
    assert.throws(() => machineTypeFor(spec({ cpus: 256, memoryMiB: 1024 })), (e: unknown) => e instanceof ReconcileError && e.reason === 'InvalidSpec' && /spec\.gce\.machineType/.test(e.message) && !e.retryable);
  });
});

describe('image references', () => {
  it('accepts URLs, partial paths, project/name and short names', () => {
    assert.deepEqual(parseImage('https://www.googleapis.com/compute/v1/projects/debian-cloud/global/images/debian-12-bookworm-v20241112', 'x'), {
      kind: 'url',
      url: 'https://www.googleapis.com/compute/v1/projects/debian-cloud/global/images/debian-12-bookworm-v20241112',
      project: 'debian-cloud',
      name: 'debian-12-bookworm-v20241112',
    });
    assert.deepEqual(parseImage('projects/ubuntu-os-cloud/global/images/family/ubuntu-2404-lts-amd64', 'x'), {
      kind: 'url',
      url: 'projects/ubuntu-os-cloud/global/images/family/ubuntu-2404-lts-amd64',
      project: 'ubuntu-os-cloud',
      family: 'ubuntu-2404-lts-amd64',
    });
    assert.deepEqual(parseImage('debian-12', 'debian-cloud'), { kind: 'short', project: 'debian-cloud', name: 'debian-12' });
    assert.deepEqual(parseImage('my-project/golden', 'debian-cloud'), { kind: 'short', project: 'my-project', name: 'golden' });
  });
  it('rejects what no image can be called', () => {
    for (const bad of [undefined, '', 'UPPER', 'has space', 'http://example.com/x.img']) {
      assert.throws(() => parseImage(bad, 'p'), (e: unknown) => e instanceof ReconcileError && e.reason === 'InvalidSpec' && !e.retryable, String(bad));
    }
  });
});

describe('state mapping', () => {
  const cases: [string | undefined, PendingKind | undefined, MachineState][] = [
    ['PROVISIONING', 'insert', 'creating'],
    ['STAGING', undefined, 'starting'],
    ['RUNNING', undefined, 'running'],
    ['RUNNING', 'stop', 'stopping'],
    ['STOPPING', undefined, 'stopping'],
    ['SUSPENDING', undefined, 'stopping'],
    ['SUSPENDED', undefined, 'stopped'],
    ['SUSPENDED', 'resume', 'starting'],
    ['TERMINATED', undefined, 'stopped'],
    ['TERMINATED', 'start', 'starting'],
    ['REPAIRING', undefined, 'starting'],
    ['RUNNING', 'delete', 'terminating'],
    ['SOMETHING_NEW', undefined, 'failed'],
  ];
  for (const [status, pending, want] of cases) {
    it(`${status}${pending ? ` with ${pending} in flight` : ''} → ${want}`, () => assert.equal(machineState(status, pending), want));
  }
  it('power is settled when the VM is (or is headed) where powerState wants it', () => {
    assert.equal(powerSettled(spec(), 'TERMINATED'), false);
    assert.equal(powerSettled(spec(), 'TERMINATED', 'start'), true);
    assert.equal(powerSettled(spec({ powerState: 'Stopped' }), 'RUNNING'), false);
    assert.equal(powerSettled(spec({ powerState: 'Stopped' }), 'RUNNING', 'stop'), true);
    assert.equal(powerSettled(spec({ powerState: 'Stopped' }), 'TERMINATED'), true);
  });
});

describe('error classification', () => {
  it('an operation error with QUOTA_EXCEEDED is a retryable QuotaExceeded after ~30 s', () => {
    const e = operationFailure({ name: 'operation-1', status: 'DONE', error: { errors: [{ code: 'QUOTA_EXCEEDED', message: "Quota 'CPUS' exceeded.  Limit: 8.0 in region us-central1." }] } }, 'insert');
    assert.ok(e);
    assert.equal(e.reason, 'QuotaExceeded');
    assert.equal(e.retryable, true);
    assert.equal(e.retryAfterMs, 30_000);
    assert.match(e.message, /operation-1.*CPUS/);
  });
  it('other operation errors', () => {
    assert.equal(operationFailure({ status: 'DONE' }, 'insert'), undefined);
    assert.equal(operationFailure({ error: { errors: [{ code: 'ZONE_RESOURCE_POOL_EXHAUSTED', message: 'no capacity' }] } }, 'insert')?.reason, 'ZoneExhausted');
    assert.equal(operationFailure({ error: { errors: [{ code: 'RESOURCE_NOT_FOUND', message: "The resource 'projects/p/global/images/x' was not found" }] } }, 'insert')?.reason, 'ImageNotFound');
    assert.equal(operationFailure({ error: { errors: [{ code: 'UNKNOWN_THING', message: '?' }] } }, 'stop')?.reason, 'OperationFailed');
  });
  it('reads status, reason, message and Retry-After from a client error', () => {
    const err = Object.assign(new Error(JSON.stringify({ error: { code: 429, message: 'Rate Limit Exceeded', errors: [{ reason: 'rateLimitExceeded' }], status: 'RESOURCE_EXHAUSTED' } })), {
      status: 429,
      response: { status: 429, headers: { 'retry-after': '12' } },
    });
    assert.deepEqual(describeFailure(err), { status: 429, reason: 'rateLimitExceeded', message: 'Rate Limit Exceeded', retryAfterMs: 12_000 });
    assert.deepEqual(describeFailure(Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:9'), { code: 'ECONNREFUSED' })), {
      status: 0,
      reason: '',
      message: 'connect ECONNREFUSED 127.0.0.1:9',
    });
  });
  it('Retry-After as seconds or an HTTP date', () => {
    assert.equal(retryAfterMs('3'), 3000);
    assert.equal(retryAfterMs(new Date(10_000).toUTCString(), 4_000), 6000);
    assert.equal(retryAfterMs('soon'), undefined);
    assert.equal(retryAfterMs(undefined), undefined);
  });
  it('an endpoint is http(s)://host[:port] without a path', () => {
    assert.deepEqual(parseEndpoint('http://127.0.0.1:8089'), { apiEndpoint: '127.0.0.1', port: 8089, protocol: 'http' });
    assert.deepEqual(parseEndpoint('https://compute.example.net'), { apiEndpoint: 'compute.example.net', port: 443, protocol: 'https' });
    assert.throws(() => parseEndpoint('http://h/compute/v1'), (e: unknown) => e instanceof ReconcileError && e.reason === 'InvalidSpec');
    assert.throws(() => parseEndpoint('ftp://h'), (e: unknown) => e instanceof ReconcileError && e.reason === 'InvalidSpec');
  });
});

describe("the fake's list filter", () => {
  const vm = { name: 'st-abc', status: 'RUNNING', guestCpus: 4, labels: { 'stratus-uid': 'u1', team: 'blue' } };
  const cases: [string, boolean][] = [
    ['labels.stratus-uid:*', true],
    ['labels.other:*', false],
    ['labels.stratus-uid = "u1"', true],
    ['labels.stratus-uid = u2', false],
    ['name = st-*', true],
    ['name != st-abc', false],
    ['(status = RUNNING) (labels.team = blue)', true],
    ['status = RUNNING AND labels.team = red', false],
    ['labels.team = red OR guestCpus >= 4', true],
    ['NOT status = TERMINATED', true],
    ['-labels.team:*', false],
  ];
  for (const [expr, want] of cases) {
    it(`${expr} → ${want}`, () => assert.equal(compileFilter(expr)(vm), want));
  }
  it('rejects malformed expressions', () => {
    for (const bad of ['labels.x ==== y', '(status = RUNNING', 'status =', '"unterminated']) assert.throws(() => compileFilter(bad), bad);
  });
});
