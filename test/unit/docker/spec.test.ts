import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { ContainerInspectInfo } from 'dockerode';
import { ReconcileError } from '../../../runtime/errors.js';
import type { MachineSpec, MachineState } from '../../../providers/machine.js';
import {
  LABEL_HOST_PORTS,
  LABEL_SPEC_HASH,
  LABEL_UID,
  containerIP,
  containerName,
  createOptions,
  dockerSettings,
  drift,
  machineState,
  parseHostPortsLabel,
  stateMessage,
} from '../../../providers/docker/spec.js';

const UID = '0f3c2a9e-1b2c-4d5e-8f90-123456789abc';

function spec(overrides: Partial<MachineSpec> = {}): MachineSpec {
  return {
    uid: UID,
    namespace: 'shop',
    name: 'web',
    hostname: 'web',
    image: 'stratus/busybox:1',
    cpus: 1,
    memoryMiB: 128,
    disks: [],
    networks: [],
    sshAuthorizedKeys: [],
    env: { B: '2', A: '1' },
    command: ['busybox', 'httpd', '-f'],
    ports: [{ containerPort: 80, hostPort: 8080, protocol: 'TCP' }],
    labels: { app: 'web' },
    powerState: 'Running',
    providerSpec: {},
    ...overrides,
  };
}

type State = ContainerInspectInfo['State'];

function state(partial: Partial<State>): State {
  return {
    Status: 'running', Running: true, Paused: false, Restarting: false, OOMKilled: false, Dead: false,
    Pid: 42, ExitCode: 0, Error: '', StartedAt: '', FinishedAt: '', ...partial,
  };
}

/** The parts of an inspect result `drift` reads, as the container created from `s` would have. */
function inspected(s: MachineSpec, overrides: { State?: Partial<State>; HostConfig?: Record<string, unknown> } = {}): ContainerInspectInfo {
  const body = createOptions(s, '127.0.0.1', 5);
  const info = {
    Id: 'abc',
    State: state(overrides.State ?? {}),
    Config: { Labels: body.Labels },
    HostConfig: { ...body.HostConfig, ...overrides.HostConfig },
    NetworkSettings: { IPAddress: '', Networks: {} },
  };
  return info as unknown as ContainerInspectInfo;
}

describe('container naming and create request', () => {
  it('names the container stratus-<name>-<uid8>', () => {
    assert.equal(containerName(spec()), 'stratus-web-0f3c2a9e');
  });

  it('translates the spec: entrypoint+cmd from argv, env, labels, limits, loopback port binding', () => {
    const body = createOptions(spec(), '127.0.0.1', 7);
    assert.equal(body.name, 'stratus-web-0f3c2a9e');
    assert.deepEqual(body.Entrypoint, ['busybox']);
    assert.deepEqual(body.Cmd, ['httpd', '-f']);
    assert.deepEqual(body.Env, ['B=2', 'A=1']);
    assert.equal(body.Hostname, 'web');
    assert.equal(body.StopTimeout, 7);
    assert.deepEqual(body.ExposedPorts, { '80/tcp': {} });
    assert.deepEqual(body.HostConfig?.PortBindings, { '80/tcp': [{ HostIp: '127.0.0.1', HostPort: '8080' }] });
    assert.equal(body.HostConfig?.NanoCpus, 1_000_000_000);
    assert.equal(body.HostConfig?.Memory, 128 * 1048576);
    assert.deepEqual(body.HostConfig?.RestartPolicy, { Name: 'no' });
    assert.equal(body.Labels?.[LABEL_UID], UID);
    assert.equal(body.Labels?.['stratus.dev/namespace'], 'shop');
    assert.equal(body.Labels?.['stratus.dev/name'], 'web');
    assert.equal(body.Labels?.app, 'web');
    assert.equal(body.Labels?.[LABEL_HOST_PORTS], '8080/TCP@127.0.0.1');
  });

  it('stratus labels win over user labels of the same key', () => {
    const body = createOptions(spec({ labels: { [LABEL_UID]: 'forged' } }), '127.0.0.1', 5);
    assert.equal(body.Labels?.[LABEL_UID], UID);
  });

  it('host address precedence: port hostIP > docker.hostIP > node default', () => {
    const ports = [
      { containerPort: 80, hostPort: 8080, protocol: 'TCP' as const, hostIP: '127.0.0.9' },
      { containerPort: 53, hostPort: 5353, protocol: 'UDP' as const },
      { containerPort: 9000, protocol: 'TCP' as const },
    ];
    const withSpec = createOptions(spec({ ports, providerSpec: { hostIP: '127.0.0.5' } }), '127.0.0.1', 5);
    assert.deepEqual(withSpec.HostConfig?.PortBindings, {
      '80/tcp': [{ HostIp: '127.0.0.9', HostPort: '8080' }],
      '53/udp': [{ HostIp: '127.0.0.5', HostPort: '5353' }],
    });
    assert.deepEqual(withSpec.ExposedPorts, { '80/tcp': {}, '53/udp': {}, '9000/tcp': {} }, 'a port without hostPort is only exposed');
    const byNode = createOptions(spec({ ports: ports.slice(1) }), '0.0.0.0', 5);
    assert.deepEqual(byNode.HostConfig?.PortBindings, { '53/udp': [{ HostIp: '0.0.0.0', HostPort: '5353' }] });
  });

  it('volumes: named ones are private to the Instance, host paths bind, others are anonymous', () => {
    const body = createOptions(
      spec({
        providerSpec: {
          restartPolicy: 'always',
          volumes: [
            { name: 'data', containerPath: '/data' },
            { hostPath: '/srv/conf', containerPath: '/etc/app', readOnly: true },
            { containerPath: '/cache' },
          ],
        },
      }),
      '127.0.0.1',
      5,
    );
    const mounts = body.HostConfig?.Mounts ?? [];
    assert.equal(mounts[0]?.Type, 'volume');
    assert.equal(mounts[0]?.Source, `stratus-${UID}-data`);
    assert.equal(mounts[0]?.VolumeOptions?.Labels[LABEL_UID], UID);
    assert.deepEqual({ ...mounts[1] }, { Type: 'bind', Source: '/srv/conf', Target: '/etc/app', ReadOnly: true });
    assert.deepEqual({ ...mounts[2] }, { Type: 'volume', Source: '', Target: '/cache', ReadOnly: false });
    assert.deepEqual(body.HostConfig?.RestartPolicy, { Name: 'always' });
  });

  const invalid: Array<[string, Partial<MachineSpec>, RegExp]> = [
    ['no image', { image: undefined }, /image is required/],
    ['empty command', { command: [] }, /must name a program/],
    ['bad restart policy', { providerSpec: { restartPolicy: 'sometimes' } }, /restartPolicy must be one of/],
    ['relative containerPath', { providerSpec: { volumes: [{ containerPath: 'data' }] } }, /containerPath must be an absolute path/],
    ['name and hostPath', { providerSpec: { volumes: [{ name: 'a', hostPath: '/a', containerPath: '/a' }] } }, /exclusive/],
    ['non-string label', { providerSpec: { labels: { a: 1 } } }, /docker.labels.a must be a string/],
  ];
  for (const [name, overrides, message] of invalid) {
    it(`rejects ${name} as InvalidSpec (not retryable)`, () => {
      assert.throws(
        () => createOptions(spec(overrides), '127.0.0.1', 5),
        (err: unknown) => err instanceof ReconcileError && err.reason === 'InvalidSpec' && !err.retryable && message.test(err.message),
      );
    });
  }

  it('docker settings default to restart policy no, no volumes, no labels', () => {
    assert.deepEqual(dockerSettings({}), { restartPolicy: 'no', volumes: [], labels: {} });
  });
});

describe('container state → machine state', () => {
  const table: Array<[string, Partial<State>, MachineSpec['powerState'], MachineState]> = [
    ['created', { Status: 'created', Running: false }, 'Running', 'creating'],
    ['created on purpose while Stopped', { Status: 'created', Running: false }, 'Stopped', 'stopped'],
    ['created whose start failed', { Status: 'created', Running: false, Error: 'exec: no such file' }, 'Running', 'failed'],
    ['running', { Status: 'running' }, 'Running', 'running'],
    ['restarting', { Status: 'restarting', Restarting: true }, 'Running', 'starting'],
    ['paused', { Status: 'paused', Paused: true }, 'Running', 'stopped'],
    ['exited', { Status: 'exited', Running: false, ExitCode: 1 }, 'Running', 'stopped'],
    ['dead', { Status: 'dead', Running: false, Dead: true }, 'Running', 'failed'],
    ['removing', { Status: 'removing' }, 'Running', 'terminating'],
  ];
  for (const [name, s, power, expected] of table) {
    it(`${name} → ${expected}`, () => assert.equal(machineState({ State: state(s) }, power), expected));
  }

  it('explains exits, OOM kills and start errors', () => {
    assert.match(stateMessage({ State: state({ Status: 'exited', ExitCode: 3 }) }) ?? '', /exited with code 3/);
    assert.match(stateMessage({ State: state({ Status: 'exited', OOMKilled: true, ExitCode: 137 }) }) ?? '', /memory limit/);
    assert.match(stateMessage({ State: state({ Status: 'created', Error: 'boom' }) }) ?? '', /container error: boom/);
    assert.equal(stateMessage({ State: state({}) }), undefined);
  });

  it('reads the address from the top level or the first network that has one', () => {
    const top = { NetworkSettings: { IPAddress: '10.1.0.2', Networks: {} } } as unknown as ContainerInspectInfo;
    const net = { NetworkSettings: { IPAddress: '', Networks: { custom: { IPAddress: '10.9.0.3' } } } } as unknown as ContainerInspectInfo;
    assert.equal(containerIP(top), '10.1.0.2');
    assert.equal(containerIP(net), '10.9.0.3');
  });
});

describe('drift', () => {
  it('a container made from the spec is up to date', () => {
    const s = spec();
    const d = drift(s, inspected(s), '127.0.0.1');
    assert.deepEqual(d.reasons, []);
    assert.equal(d.needs.size, 0);
  });

  const recreate: Array<[string, Partial<MachineSpec>]> = [
    ['image', { image: 'stratus/busybox:2' }],
    ['command', { command: ['sleep', '1'] }],
    ['env', { env: { A: '1', B: '3' } }],
    ['ports', { ports: [{ containerPort: 80, hostPort: 8081, protocol: 'TCP' }] }],
    ['volumes', { providerSpec: { volumes: [{ name: 'v', containerPath: '/v' }] } }],
    ['hostname', { hostname: 'other' }],
    ['labels', { labels: { app: 'api' } }],
  ];
  for (const [field, change] of recreate) {
    it(`a ${field} change needs a recreate`, () => {
      const d = drift(spec(change), inspected(spec()), '127.0.0.1');
      assert.deepEqual([...d.needs], ['recreate']);
      assert.match(d.reasons.join(), /recreate/);
    });
  }

  it('env order does not matter', () => {
    const d = drift(spec({ env: { A: '1', B: '2' } }), inspected(spec()), '127.0.0.1');
    assert.equal(d.needs.size, 0);
  });

  it('a different node default host address is a ports change', () => {
    const d = drift(spec(), inspected(spec()), '0.0.0.0');
    assert.ok(d.needs.has('recreate'));
  });

  it('cpus, memory and restart policy are repaired in place', () => {
    const s = spec();
    const d = drift(spec({ cpus: 2, memoryMiB: 256, providerSpec: { restartPolicy: 'always' } }), inspected(s), '127.0.0.1');
    // restartPolicy lives in providerSpec but not in the fingerprint: no recreate.
    assert.deepEqual([...d.needs], ['resources']);
    assert.equal(d.reasons.length, 3);
    assert.match(d.reasons.join('; '), /cpus 1 ≠ 2; memory 128 MiB ≠ 256 MiB; restart policy no ≠ always/);
  });

  it('power: stopped while Running, running while Stopped, paused either way', () => {
    const s = spec();
    assert.deepEqual([...drift(s, inspected(s, { State: { Status: 'exited', Running: false } }), '127.0.0.1').needs], ['power']);
    const stopped = spec({ powerState: 'Stopped' });
    assert.deepEqual([...drift(stopped, inspected(stopped), '127.0.0.1').needs], ['power']);
    assert.equal(drift(stopped, inspected(stopped, { State: { Status: 'exited', Running: false } }), '127.0.0.1').needs.size, 0);
    assert.deepEqual([...drift(s, inspected(s, { State: { Status: 'paused', Paused: true } }), '127.0.0.1').needs], ['power']);
  });

  it('a container without the fingerprint label (made outside stratus) is recreated', () => {
    const s = spec();
    const info = inspected(s);
    delete info.Config.Labels[LABEL_SPEC_HASH];
    assert.ok(drift(s, info, '127.0.0.1').needs.has('recreate'));
  });
});

describe('host port label', () => {
  it('round-trips and ignores garbage', () => {
    assert.deepEqual(parseHostPortsLabel('8080/TCP@127.0.0.1,53/UDP@0.0.0.0,junk'), [
      { port: 8080, protocol: 'TCP', hostIP: '127.0.0.1' },
      { port: 53, protocol: 'UDP', hostIP: '0.0.0.0' },
    ]);
    assert.deepEqual(parseHostPortsLabel(''), []);
    assert.deepEqual(parseHostPortsLabel(undefined), []);
  });
});
