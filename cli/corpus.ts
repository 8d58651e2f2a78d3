/**
 * `stratus corpus VERB ...`: the corpus document's CLI (seed 004, "CLI Tools") against
 * endpoints named in a YAML config file of the document's shape:
 *
 *   envnickname:
 *     url: https://api.example:6443   # the stratus API server
 *     id: alice                       # the user name the token belongs to (checked)
 *     password: 12-0123...            # an AccessToken, ID-SECRET (`stratus token create --user alice`)
 *     ca: /path/ca.pem                # the server's CA (a PEM file or the PEM itself)
 *     namespace: team-a               # where Projects and guests live (default "default")
 *     # or: kubeconfig: /path/kubeconfig (then url/id/password may be left out)
 *
 * The config file is `--config`, else `$STRATUS_CORPUS_CONFIG`, else `~/.makinastates.conf`.
 * The document's concepts map onto stratus kinds: a compute node (ENV_UUID, its name or uid)
 * is a ComputeNode, a guest an Instance, a project a Project with its Deployments, the
 * operation mode override `ComputeNode.spec.projectMode`. Every verb prints a table or a
 * line for humans, or the objects as JSON with `-o json`.
 */
import { readFileSync, existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { Command } from 'commander';
import { parse as parseYaml } from 'yaml';
import type { ComputeNode, Deployment, Instance, Project } from '../crds/types.js';
import { KubeClient } from '../runtime/client.js';
import { Resources } from '../controllers/resources.js';
import { deploymentFor, deploymentName } from '../controllers/project.js';
import { pushSpec } from './push.js';
import { guestLoginUser } from '../providers/libvirt/guest-user.js';

export interface CorpusEndpoint {
  url?: string;
  id?: string;
  password?: string;
  ca?: string;
  kubeconfig?: string;
  namespace?: string;
}

const MODES = ['full', 'editable', 'staging', 'final'] as const;
const PLATFORM_TYPES = ['staging', 'prod', 'dev'] as const;
/** The Instance defaults (InstanceSpec): one guest slot is what a guest gets when it asks for nothing. */
const SLOT = { cpus: 1, memoryMiB: 512 };
const ENV_LABEL = 'corpus.stratus.dev/platform-type';
const GUEST_TYPES_ANNOTATION = 'corpus.stratus.dev/guest-types';
/** The data disk guest_create gives a VM guest for its project storage (the document: "fixed at 5gb"). */
const PROJECT_DISK = 'project';
const PROJECT_DISK_GIB = 5;

export function defaultCorpusConfig(): string {
  return process.env.STRATUS_CORPUS_CONFIG ?? join(homedir(), '.makinastates.conf');
}

/** Reads and checks the config file: every entry a mapping with url+password or kubeconfig. */
export function readCorpusConfig(path: string): Record<string, CorpusEndpoint> {
  if (!existsSync(path)) throw new Error(`config file ${path} does not exist (see \`stratus corpus --help\` for its shape)`);
  const parsed = parseYaml(readFileSync(path, 'utf8')) as unknown;
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error(`${path}: expected a mapping of endpoint nicknames`);
  const out: Record<string, CorpusEndpoint> = {};
  for (const [nick, raw] of Object.entries(parsed as Record<string, unknown>)) {
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new Error(`${path}: endpoint "${nick}" must be a mapping {url, id, password}`);
    const e = raw as Record<string, unknown>;
    for (const k of Object.keys(e)) {
      if (!['url', 'id', 'password', 'ca', 'kubeconfig', 'namespace'].includes(k)) throw new Error(`${path}: endpoint "${nick}": unknown key "${k}"`);
      if (typeof e[k] !== 'string') throw new Error(`${path}: endpoint "${nick}": ${k} must be a string`);
    }
    const ep = e as CorpusEndpoint;
    // paths may start with ~/ as in the document's ~/.makinastates.conf
    for (const k of ['ca', 'kubeconfig'] as const) if (ep[k]?.startsWith('~/')) ep[k] = join(homedir(), ep[k].slice(2));
    if (!ep.kubeconfig && (!ep.url || !ep.password)) throw new Error(`${path}: endpoint "${nick}" needs url and password (an AccessToken), or kubeconfig`);
    if (ep.url && !/^https:\/\//.test(ep.url)) throw new Error(`${path}: endpoint "${nick}": url must be an https:// URL of the stratus API server`);
    out[nick] = ep;
  }
  return out;
}

/** A client for one endpoint; the token's user is checked against `id` (SelfSubjectReview). */
export async function endpointClient(nick: string, ep: CorpusEndpoint): Promise<KubeClient> {
  let client: KubeClient;
  if (ep.kubeconfig && !ep.url) {
    client = KubeClient.fromFile(ep.kubeconfig);
  } else {
    const ca = ep.ca === undefined ? undefined : ep.ca.includes('-----BEGIN') ? ep.ca : readFileSync(ep.ca, 'utf8');
    client = KubeClient.fromCredentials({ server: ep.url!, ...(ca ? { ca } : {}), ...(ep.password ? { token: ep.password } : {}) });
  }
  if (ep.id && ep.password) {
    try {
      const review = (await client.request({
        method: 'POST',
        path: '/apis/authentication.k8s.io/v1/selfsubjectreviews',
        body: { apiVersion: 'authentication.k8s.io/v1', kind: 'SelfSubjectReview' },
      })) as { status?: { userInfo?: { username?: string } } };
      const who = review.status?.userInfo?.username;
      if (who !== ep.id) throw new Error(`endpoint "${nick}": the password (token) belongs to user ${who ?? '(unknown)'}, not ${ep.id}`);
    } catch (err) {
      client.close();
      throw err;
    }
  }
  return client;
}

interface Ctx {
  json: boolean;
  config: Record<string, CorpusEndpoint>;
}

function out(ctx: Ctx, value: unknown, human: () => string): void {
  process.stdout.write(ctx.json ? `${JSON.stringify(value, null, 2)}\n` : human());
}

/** A plain-text table: a header row and aligned columns. */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]): string => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join('  ').trimEnd();
  return `${[line(header), ...rows.map(line)].join('\n')}\n`;
}

function progress(ctx: Ctx, text: string): void {
  // progress goes to stderr, so stdout stays the result (and valid JSON with -o json)
  process.stderr.write(`${text}\n`);
  void ctx;
}

async function withEndpoint<T>(ctx: Ctx, nick: string, fn: (client: KubeClient, ep: CorpusEndpoint) => Promise<T>): Promise<T> {
  const ep = ctx.config[nick];
  if (!ep) throw new Error(`no endpoint "${nick}" in the config file (known: ${Object.keys(ctx.config).join(', ') || 'none'})`);
  const client = await endpointClient(nick, ep);
  try {
    return await fn(client, ep);
  } finally {
    client.close();
  }
}

const nsOf = (ep: CorpusEndpoint): string => ep.namespace ?? 'default';

/** A ComputeNode by name or uid (the document's ENV_UUID). */
async function findNode(client: KubeClient, ref: string): Promise<ComputeNode> {
  const nodes = client.resource<ComputeNode>(Resources.computeNodes);
  const byName = await nodes.get(undefined, ref);
  if (byName) return byName;
  const byUid = (await nodes.list()).find((n) => n.metadata?.uid === ref);
  if (!byUid) throw new Error(`no compute node "${ref}" (neither a ComputeNode name nor uid)`);
  return byUid;
}

function freeSlots(node: ComputeNode): number {
  const alloc = node.status?.allocatable ?? node.spec.capacityOverride ?? node.status?.capacity;
  if (alloc?.cpus === undefined || alloc.memoryMiB === undefined) return 0;
  const used = node.status?.allocated ?? {};
  return Math.max(0, Math.min(Math.floor((alloc.cpus - (used.cpus ?? 0)) / SLOT.cpus), Math.floor((alloc.memoryMiB - (used.memoryMiB ?? 0)) / SLOT.memoryMiB)));
}

function nodeSummary(nick: string, n: ComputeNode): Record<string, unknown> {
  return {
    endpoint: nick,
    name: n.metadata?.name,
    uid: n.metadata?.uid,
    provider: n.spec.provider,
    platformType: n.metadata?.labels?.[ENV_LABEL] ?? null,
    projectMode: n.spec.projectMode ?? null,
    ready: (n.status as { conditions?: { type: string; status: string }[] } | undefined)?.conditions?.find((c) => c.type === 'Ready')?.status ?? 'Unknown',
    freeGuestSlots: freeSlots(n),
    guests: n.status?.allocated?.instances ?? 0,
  };
}

function guestSummary(i: Instance): Record<string, unknown> {
  const ip = i.status?.ipAddress;
  return {
    name: i.metadata?.name,
    namespace: i.metadata?.namespace,
    uid: i.metadata?.uid,
    node: i.spec.nodeName ?? null,
    state: i.status?.state ?? 'pending',
    ipAddress: ip ?? null,
    dnsNames: i.status?.dnsNames ?? [],
    ssh: ip ? `ssh ${guestLoginUser(i.spec.image, i.metadata?.annotations)}@${ip}` : null,
  };
}

/** Polls `get` until `done` says so, printing each new `describe` line; `timeoutSeconds` bounds it. */
async function follow<T>(ctx: Ctx, what: string, get: () => Promise<T | undefined>, describe: (v: T | undefined) => string, done: (v: T | undefined) => boolean, timeoutSeconds: number): Promise<T | undefined> {
  const deadline = Date.now() + timeoutSeconds * 1000;
  let last = '';
  for (;;) {
    const v = await get();
    const line = describe(v);
    if (line !== last) progress(ctx, `${what}: ${line}`);
    last = line;
    if (done(v)) return v;
    if (Date.now() > deadline) throw new Error(`${what}: still ${line} after ${timeoutSeconds} s`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

export function registerCorpus(program: Command): void {
  const corpus = program
    .command('corpus')
    .description('the corpus PaaS verbs against endpoints named in a config file (--config, $STRATUS_CORPUS_CONFIG or ~/.makinastates.conf)')
    .option('--config <file>', 'YAML file of endpoints: NICK: {url: API server URL, id: user name, password: AccessToken ID-SECRET, ca: CA PEM file, namespace: NS} or NICK: {kubeconfig: FILE}')
    .option('-o, --output <format>', 'json for machine-readable output (default: tables)')
    .addHelpText(
      'after',
      `
Config file (the corpus document's shape; url is the stratus API server, id the user name and
password an AccessToken of that user, made with \`stratus token create --user ID\`; ca the
server's CA certificate, so TLS is verified):

  prod:
    url: https://api.example.net:6443
    id: alice
    password: 12-0123456789abcdef0123456789abcdef
    ca: /etc/stratus/ca.pem
  dev:
    kubeconfig: ~/.kube/dev-stratus

ENDPOINT is a nickname of that file; ENV_UUID a ComputeNode's name or uid.`,
    );
  const ctxOf = (): Ctx => {
    const o = corpus.opts<{ config?: string; output?: string }>();
    if (o.output !== undefined && o.output !== 'json') throw new Error(`-o ${o.output}: only json is supported`);
    return { json: o.output === 'json', config: readCorpusConfig(o.config ?? defaultCorpusConfig()) };
  };

  corpus
    .command('computenode_list')
    .description('list the compute nodes of every endpoint (or of ENDPOINT)')
    .argument('[endpoint]', 'only this endpoint')
    .action(async (only?: string) => {
      const ctx = ctxOf();
      const nicks = only ? [only] : Object.keys(ctx.config);
      const rows: Record<string, unknown>[] = [];
      for (const nick of nicks) {
        await withEndpoint(ctx, nick, async (client) => {
          for (const n of await client.resource<ComputeNode>(Resources.computeNodes).list()) rows.push(nodeSummary(nick, n));
        });
      }
      out(ctx, rows, () =>
        table(
          ['ENDPOINT', 'NAME', 'UID', 'PROVIDER', 'TYPE', 'MODE', 'READY', 'FREE SLOTS', 'GUESTS'],
          rows.map((r) => [r.endpoint, r.name, r.uid, r.provider, r.platformType ?? '-', r.projectMode ?? '-', r.ready, r.freeGuestSlots, r.guests].map(String)),
        ),
      );
    });

  corpus
    .command('computenode_init')
    .description('link a host as a new compute node (a ComputeNode); prints its UUID')
    .argument('<endpoint>', 'endpoint nickname')
    .argument('<platform_type>', `${PLATFORM_TYPES.join(', ')}`)
    .argument('<host>', 'the host: a libvirt URI (qemu+ssh://root@host/system, test:///...) or a Docker address (unix://..., tcp://host:port)')
    .argument('[guest_types...]', 'guest types the node is meant for (recorded on the node)')
    .option('--name <name>', 'name of the ComputeNode (default: generated, node-xxxxx)')
    .option('--mode <mode>', `operation mode override (${MODES.join(', ')})`)
    .action(async (nick: string, type: string, host: string, guestTypes: string[], opts: { name?: string; mode?: string }) => {
      const ctx = ctxOf();
      if (!(PLATFORM_TYPES as readonly string[]).includes(type)) throw new Error(`platform_type "${type}": expected one of ${PLATFORM_TYPES.join(', ')}`);
      if (opts.mode !== undefined && !(MODES as readonly string[]).includes(opts.mode)) throw new Error(`--mode ${opts.mode}: expected one of ${MODES.join(', ')}`);
      let spec: ComputeNode['spec'];
      if (/^(qemu|test|xen|lxc)(\+[a-z]+)?:\/\//.test(host)) spec = { provider: 'libvirt', libvirt: { uri: host } };
      else if (/^(unix|tcp):\/\//.test(host)) spec = { provider: 'docker', docker: { address: host } };
      else throw new Error(`host "${host}": expected a libvirt URI (qemu+ssh://root@HOST/system) or a Docker address (unix://PATH, tcp://HOST:PORT)`);
      if (opts.mode) spec.projectMode = opts.mode as ComputeNode['spec']['projectMode'];
      const node = await withEndpoint(ctx, nick, (client) =>
        client.resource<ComputeNode>(Resources.computeNodes).create({
          apiVersion: 'compute.stratus.dev/v1alpha1',
          kind: 'ComputeNode',
          metadata: {
            ...(opts.name ? { name: opts.name } : { generateName: 'node-' }),
            labels: { [ENV_LABEL]: type },
            ...(guestTypes.length ? { annotations: { [GUEST_TYPES_ANNOTATION]: guestTypes.join(' ') } } : {}),
          },
          spec,
        }),
      );
      out(ctx, nodeSummary(nick, node), () => `${node.metadata?.uid} (compute node ${node.metadata?.name})\n`);
    });

  corpus
    .command('computenode_infos')
    .description('a compute node: free guest slots and its guests (IPs, DNS names, SSH access)')
    .argument('<endpoint>', 'endpoint nickname')
    .argument('<env_uuid>', 'ComputeNode name or uid')
    .action(async (nick: string, ref: string) => {
      const ctx = ctxOf();
      const info = await withEndpoint(ctx, nick, async (client, ep) => {
        const node = await findNode(client, ref);
        // all namespaces when allowed (sysadmins), else the endpoint's own
        let instances: Instance[];
        try {
          instances = await client.resource<Instance>(Resources.instances).list();
        } catch {
          instances = await client.resource<Instance>(Resources.instances).list(nsOf(ep));
        }
        const guests = instances.filter((i) => i.spec.nodeName === node.metadata?.name).map(guestSummary);
        const summary: Record<string, unknown> & { guests: Record<string, unknown>[] } = { ...nodeSummary(nick, node), guests };
        return summary;
      });
      out(ctx, info, () => {
        const head = `node ${String(info.name)} (${String(info.uid)}) on ${nick}: ${String(info.provider)}, type ${String(info.platformType ?? '-')}, mode ${String(info.projectMode ?? 'per project')}, ready ${String(info.ready)}\nfree guest slots: ${String(info.freeGuestSlots)} (of ${SLOT.cpus} CPU, ${SLOT.memoryMiB} MiB each)\n`;
        return `${head}${table(
          ['GUEST', 'NAMESPACE', 'STATE', 'IP', 'DNS NAMES', 'SSH'],
          info.guests.map((g) => [g.name, g.namespace, g.state, g.ipAddress ?? '-', (g.dnsNames as string[]).join(',') || '-', g.ssh ?? '-'].map(String)),
        )}`;
      });
    });

  corpus
    .command('computenode_switchmode')
    .description('force an operation mode on every Project released onto the node (ComputeNode spec.projectMode); "default" removes the override')
    .argument('<endpoint>', 'endpoint nickname')
    .argument('<env_uuid>', 'ComputeNode name or uid')
    .argument('<operation_mode>', `${MODES.join(', ')}, cooking (= staging) or default`)
    .action(async (nick: string, ref: string, mode: string) => {
      const ctx = ctxOf();
      const m = mode === 'cooking' ? 'staging' : mode;
      if (m !== 'default' && !(MODES as readonly string[]).includes(m)) throw new Error(`operation_mode "${mode}": expected one of ${MODES.join(', ')}, cooking or default`);
      const node = await withEndpoint(ctx, nick, async (client) => {
        const n = await findNode(client, ref);
        return client.resource<ComputeNode>(Resources.computeNodes).mergePatch(undefined, n.metadata!.name!, { spec: { projectMode: m === 'default' ? null : m } });
      });
      out(ctx, nodeSummary(nick, node), () => `compute node ${node.metadata?.name}: mode ${node.spec.projectMode ?? 'per project (no override)'}\n`);
    });

  corpus
    .command('project_create')
    .description('create a Project deployed by git push (prints its UUID and push remotes)')
    .argument('<endpoint>', 'endpoint nickname')
    .argument('<project>', 'name of the Project')
    .option('--mode <mode>', 'full, editable, staging, cooking or final (default editable)')
    .option('--environment <env>', 'dev, staging or prod (default dev)')
    .option('--ref <ref>', 'branch whose pushes deploy (default main)')
    .action(async (nick: string, name: string, opts: { mode?: string; environment?: string; ref?: string }) => {
      const ctx = ctxOf();
      const project = await withEndpoint(ctx, nick, async (client, ep) => {
        const projects = client.resource<Project>(Resources.projects);
        await projects.create({
          apiVersion: 'apps.stratus.dev/v1alpha1',
          kind: 'Project',
          metadata: { name, namespace: nsOf(ep) },
          spec: {
            source: { push: opts.ref ? { ref: opts.ref } : {} },
            ...(opts.mode ? { mode: opts.mode as Project['spec']['mode'] } : {}),
            ...(opts.environment ? { environment: opts.environment as Project['spec']['environment'] } : {}),
          },
        });
        // the controller writes the push remotes; a few seconds at most
        return follow(ctx, `project ${name}`, () => projects.get(nsOf(ep), name), (p) => (p?.status?.pushURL ? 'push remotes ready' : 'waiting for its push remotes'), (p) => Boolean(p?.status?.pushURL), 30);
      });
      out(ctx, project, () => `${project?.metadata?.uid} (project ${name})\npush: ${project?.status?.pushURL}\npillar: ${project?.status?.pillarPushURL ?? '-'}\n`);
    });

  corpus
    .command('guest_create')
    .description('create a guest (an Instance) and wait until it runs; prints its guest_id')
    .argument('<endpoint>', 'endpoint nickname')
    .argument('<guest>', 'name of the guest')
    .option('--node <env_uuid>', 'the compute node to put it on (name or uid; default: the scheduler chooses)')
    .option('--provider <p>', 'libvirt, docker or gce (default: the node\'s, else libvirt)')
    .option('--image <image>', 'image to boot (default debian-12 on libvirt, debian:12 on docker)')
    .option('--cpus <n>', 'CPUs', (v) => Number(v))
    .option('--memory <mib>', 'memory in MiB', (v) => Number(v))
    .option('--storage <size>', `project storage: a data disk "${PROJECT_DISK}" of this many GiB (VMs; default ${PROJECT_DISK_GIB}, 0 for none; containers have no disks)`)
    .option('--no-wait', 'return once created')
    .option('--timeout <seconds>', 'how long to wait for running', (v) => Number(v), 300)
    .action(async (nick: string, name: string, opts: { node?: string; provider?: string; image?: string; cpus?: number; memory?: number; storage?: string; wait: boolean; timeout: number }) => {
      const ctx = ctxOf();
      const guest = await withEndpoint(ctx, nick, async (client, ep) => {
        const node = opts.node ? await findNode(client, opts.node) : undefined;
        const provider = (opts.provider ?? node?.spec.provider ?? 'libvirt') as Instance['spec']['provider'];
        const storage = opts.storage === undefined || opts.storage === '0' ? (opts.storage === '0' ? 0 : PROJECT_DISK_GIB) : parseGiB(opts.storage);
        if (provider === 'docker' && opts.storage !== undefined && storage > 0) throw new Error('--storage: containers have no disks (Docker guests keep their project storage in the container)');
        const instances = client.resource<Instance>(Resources.instances);
        const created = await instances.create({
          apiVersion: 'compute.stratus.dev/v1alpha1',
          kind: 'Instance',
          metadata: { name, namespace: nsOf(ep) },
          spec: {
            provider,
            image: opts.image ?? (provider === 'docker' ? 'debian:12' : 'debian-12'),
            ...(opts.cpus ? { cpus: opts.cpus } : {}),
            ...(opts.memory ? { memoryMiB: opts.memory } : {}),
            ...(provider !== 'docker' && storage > 0 ? { disks: [{ name: PROJECT_DISK, sizeGiB: storage }] } : {}),
            ...(node ? { nodeName: node.metadata!.name! } : {}),
          },
        });
        if (!opts.wait) return created;
        const i = await follow(ctx, `guest ${name}`, () => instances.get(nsOf(ep), name), (v) => v?.status?.state ?? 'pending', (v) => v?.status?.state === 'running' || v?.status?.state === 'failed', opts.timeout);
        if (i?.status?.state === 'failed') throw new Error(`guest ${name} failed: ${JSON.stringify(i.status)}`);
        return i;
      });
      out(ctx, guest && guestSummary(guest), () => `${guest?.metadata?.name} (uid ${guest?.metadata?.uid}, ${guest?.status?.state ?? 'pending'}${guest?.status?.ipAddress ? `, ${guest.status.ipAddress}` : ''})\n`);
    });

  corpus
    .command('guest_delete')
    .description('delete a guest (an Instance) and wait until it is gone')
    .argument('<endpoint>', 'endpoint nickname')
    .argument('<guest_id>', 'name of the guest')
    .option('--timeout <seconds>', 'how long to wait', (v) => Number(v), 300)
    .action(async (nick: string, name: string, opts: { timeout: number }) => {
      const ctx = ctxOf();
      await withEndpoint(ctx, nick, async (client, ep) => {
        const instances = client.resource<Instance>(Resources.instances);
        if (!(await instances.delete(nsOf(ep), name))) throw new Error(`no guest "${name}" in namespace ${nsOf(ep)}`);
        await follow(ctx, `guest ${name}`, () => instances.get(nsOf(ep), name), (v) => (v ? (v.status?.state ?? 'terminating') : 'deleted'), (v) => v === undefined, opts.timeout);
      });
      out(ctx, { deleted: name }, () => `guest ${name} deleted\n`);
    });

  corpus
    .command('push')
    .description('deploy a Project onto a guest: adds the guest to the Project and creates a Deployment, following its stages')
    .argument('<endpoint>', 'endpoint nickname')
    .argument('<guest_id>', 'name of the guest (Instance)')
    .argument('<project>', 'name of the Project')
    .option('--ref <ref>', 'branch, tag or commit (default: the Project\'s)')
    .option('--no-wait', 'return once the Deployment is created')
    .option('--timeout <seconds>', 'how long to wait for the outcome', (v) => Number(v), 600)
    .action(async (nick: string, guest: string, name: string, opts: { ref?: string; wait: boolean; timeout: number }) => {
      const ctx = ctxOf();
      const dep = await withEndpoint(ctx, nick, async (client, ep) => {
        const ns = nsOf(ep);
        const projects = client.resource<Project>(Resources.projects);
        let project = await projects.get(ns, name);
        if (!project) throw new Error(`no project "${name}" in namespace ${ns}`);
        if (!(await client.resource<Instance>(Resources.instances).get(ns, guest))) throw new Error(`no guest "${guest}" in namespace ${ns}`);
        if (!project.spec.guests?.includes(guest)) project = await projects.mergePatch(ns, name, { spec: { guests: [...(project.spec.guests ?? []), guest] } });
        const spec = pushSpec(project, opts.ref);
        const deployments = client.resource<Deployment>(Resources.deployments);
        const created = await deployments.create(deploymentFor(project, deploymentName(name, 'push'), spec));
        progress(ctx, `deployment ${created.metadata?.name} created (${spec.commit ?? spec.ref ?? spec.artifact})`);
        if (!opts.wait) return created;
        const seen = new Set<string>();
        const d = await follow(
          ctx,
          `deployment ${created.metadata?.name}`,
          async () => {
            const v = await deployments.get(ns, created.metadata!.name!);
            for (const s of v?.status?.stages ?? []) {
              const key = `${s.name}:${s.state ?? ''}`;
              if (!seen.has(key) && s.state && s.state !== 'Pending' && s.state !== 'Running') progress(ctx, `  ${s.name} ${s.state}`);
              seen.add(key);
            }
            return v;
          },
          (v) => v?.status?.phase ?? 'Pending',
          (v) => ['Succeeded', 'Failed', 'RolledBack'].includes(v?.status?.phase ?? ''),
          opts.timeout,
        );
        if (d?.status?.phase !== 'Succeeded') throw new Error(`deployment ${created.metadata?.name} ${d?.status?.phase}: ${(d?.status as { message?: string } | undefined)?.message ?? ''}`);
        return d;
      });
      out(ctx, dep, () => `deployment ${dep?.metadata?.name} ${dep?.status?.phase ?? 'created'}\n`);
    });

  corpus
    .command('project_destroy')
    .description('delete a Project and its Deployments; waits until they are gone')
    .argument('<endpoint>', 'endpoint nickname')
    .argument('<env_uuid>', 'the ComputeNode (name or uid) the Project\'s guests are on')
    .argument('<project>', 'name of the Project')
    .option('--timeout <seconds>', 'how long to wait', (v) => Number(v), 120)
    .action(async (nick: string, ref: string, name: string, opts: { timeout: number }) => {
      const ctx = ctxOf();
      const result = await withEndpoint(ctx, nick, async (client, ep) => {
        const ns = nsOf(ep);
        const node = await findNode(client, ref);
        const projects = client.resource<Project>(Resources.projects);
        const project = await projects.get(ns, name);
        if (!project) throw new Error(`no project "${name}" in namespace ${ns}`);
        const instances = client.resource<Instance>(Resources.instances);
        const elsewhere: string[] = [];
        for (const g of project.spec.guests ?? []) {
          const i = await instances.get(ns, g);
          if (i?.spec.nodeName && i.spec.nodeName !== node.metadata?.name) elsewhere.push(`${g} (on ${i.spec.nodeName})`);
        }
        if (elsewhere.length) throw new Error(`project ${name} has guests on other compute nodes than ${node.metadata?.name}: ${elsewhere.join(', ')}`);
        await projects.delete(ns, name, { propagationPolicy: 'Foreground' });
        const deployments = client.resource<Deployment>(Resources.deployments);
        const selector = { labelSelector: `apps.stratus.dev/project=${name}` };
        await follow(
          ctx,
          `project ${name}`,
          async () => ({ project: await projects.get(ns, name), deployments: await deployments.list(ns, selector) }),
          (v) => (v?.project ? `deleting (${v.deployments.length} deployments left)` : v?.deployments.length ? `${v.deployments.length} deployments left` : 'deleted'),
          (v) => !v?.project && v?.deployments.length === 0,
          opts.timeout,
        );
        return { destroyed: name, node: node.metadata?.name, guests: project.spec.guests ?? [] };
      });
      out(ctx, result, () => `project ${name} destroyed (guests: ${result.guests.join(', ') || 'none'})\n`);
    });

  for (const verb of ['enlarge', 'trim'] as const) {
    corpus
      .command(verb)
      .description(
        verb === 'enlarge'
          ? "grow a guest's project storage (its data disk) by SIZE, in place, and wait until the node has done it"
          : "remove SIZE from a guest's project storage: asks for the smaller disk, which stratus refuses (a disk only grows; shrinking would lose data)",
      )
      .argument('<endpoint>', 'endpoint nickname')
      .argument('<env_uuid>', 'the ComputeNode (name or uid) the guest is on')
      .argument('<guest>', 'name of the guest (Instance)')
      .argument('<size>', 'whole GiB: 5, 5G, 5GB or 5GiB')
      .option('--disk <name>', `the data disk holding the project storage (default: "${PROJECT_DISK}", else the guest's only data disk)`)
      .option('--no-wait', 'return once the new size is asked for')
      .option('--timeout <seconds>', 'how long to wait for the node', (v) => Number(v), 300)
      .action(async (nick: string, ref: string, guest: string, size: string, opts: { disk?: string; wait: boolean; timeout: number }) => {
        const ctx = ctxOf();
        const delta = parseGiB(size);
        const result = await withEndpoint(ctx, nick, async (client, ep) => {
          const ns = nsOf(ep);
          const node = await findNode(client, ref);
          const instances = client.resource<Instance>(Resources.instances);
          const inst = await instances.get(ns, guest);
          if (!inst) throw new Error(`no guest "${guest}" in namespace ${ns}`);
          if (inst.spec.nodeName !== node.metadata?.name) throw new Error(`guest ${guest} is on ${inst.spec.nodeName ?? 'no compute node yet'}, not on ${node.metadata?.name}`);
          const disks = inst.spec.disks ?? [];
          const disk = projectDisk(disks, opts.disk, guest);
          const from = disk.sizeGiB;
          const to = verb === 'enlarge' ? from + delta : from - delta;
          if (to < 1) throw new Error(`guest ${guest}: disk ${disk.name} is ${from} GiB; it cannot lose ${delta} GiB`);
          progress(ctx, `guest ${guest}: disk ${disk.name} ${from} GiB → ${to} GiB`);
          // A full update with the read resourceVersion: a concurrent change is a 409, not lost.
          const next: Instance = { ...inst, spec: { ...inst.spec, disks: disks.map((d) => (d.name === disk.name ? { ...d, sizeGiB: to } : d)) } };
          const updated = await instances.replace(next);
          if (!opts.wait) return { guest, disk: disk.name, fromGiB: from, toGiB: to, sizeGiB: null as number | null };
          const sized = await follow(
            ctx,
            `guest ${guest}`,
            () => instances.get(ns, guest),
            (v) => {
              const c = v?.status?.conditions?.find((x) => x.type === 'DisksSized');
              const have = v?.status?.disks?.find((d) => d.name === disk.name)?.sizeGiB;
              return `disk ${disk.name} ${have ?? '?'} GiB${c ? ` (${c.status === 'True' ? 'sized' : `${c.reason ?? ''}${c.message ? `: ${c.message}` : ''}`})` : ''}`;
            },
            (v) => {
              if ((v?.status?.observedGeneration ?? 0) < (updated.metadata?.generation ?? 0)) return false;
              const c = v?.status?.conditions?.find((x) => x.type === 'DisksSized');
              const have = v?.status?.disks?.find((d) => d.name === disk.name)?.sizeGiB;
              return have === to || (c?.status === 'False' && c.reason !== 'Resizing');
            },
            opts.timeout,
          );
          const have = sized?.status?.disks?.find((d) => d.name === disk.name)?.sizeGiB;
          if (have !== to) {
            const c = sized?.status?.conditions?.find((x) => x.type === 'DisksSized');
            throw new Error(`guest ${guest}: disk ${disk.name} was not grown to ${to} GiB: ${c ? `${c.reason ?? ''}: ${c.message ?? ''}` : 'the node reports no disk sizes'}`);
          }
          return { guest, disk: disk.name, fromGiB: from, toGiB: to, sizeGiB: have };
        });
        out(ctx, result, () => `guest ${guest}: disk ${result.disk} ${result.sizeGiB === null ? `asked for ${result.toGiB} GiB` : `now ${result.sizeGiB} GiB`} (was ${result.fromGiB} GiB)\n`);
      });
  }
}

/** `5`, `5G`, `5GB`, `5GiB` (case-insensitive) → 5: Instance disks are sized in whole GiB. */
export function parseGiB(size: string): number {
  const m = /^(\d+)\s*(g|gb|gib)?$/i.exec(size.trim());
  const n = m ? Number(m[1]) : NaN;
  if (!Number.isSafeInteger(n) || n < 1) throw new Error(`size "${size}": expected a whole number of GiB, e.g. 5G`);
  return n;
}

/** The data disk holding a guest's project storage: `--disk`, else "project", else its only disk. */
function projectDisk(disks: { name: string; sizeGiB: number }[], asked: string | undefined, guest: string): { name: string; sizeGiB: number } {
  const names = disks.map((d) => d.name).join(', ') || 'none';
  if (asked) {
    const d = disks.find((x) => x.name === asked);
    if (!d) throw new Error(`guest ${guest} has no data disk "${asked}" (disks: ${names})`);
    return d;
  }
  const d = disks.find((x) => x.name === PROJECT_DISK) ?? (disks.length === 1 ? disks[0] : undefined);
  if (!d) throw new Error(`guest ${guest}: which data disk is the project storage? pass --disk NAME (disks: ${names}; guest_create gives a guest a "${PROJECT_DISK}" disk)`);
  return d;
}
