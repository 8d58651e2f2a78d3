/**
 * The web console (`/ui/`, ui/README.md) in a real headless Chromium (Debian's, through
 * playwright-core) against `bin/stratus serve --sim-node` with its controllers, a real Docker
 * engine as a second ComputeNode (the Deployment's guest) and a real Git remote.
 *
 * Proves, as a user meets it: signing in with a token (a bad one refused in words); an
 * Instance created from the form reaching `running` on the page without a reload, stopped
 * from its button, and started again from outside while the page rides out a server restart;
 * the server's validation error shown under edited YAML; an unschedulable Instance's reason;
 * a live, sortable list that the keyboard can drive at phone width; a Project created from
 * YAML, pushed from its page, its Deployment's stages progressing and then rolled back with
 * the failing stage's output; and a user with only `view` rights who sees no Stop or Delete
 * button and gets the API's refusal when forcing a delete through its URL. No request leaves
 * the server's origin. Screenshots go to test/results/console/.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import type { Deployment, Instance } from '../../crds/types.js';
import { KubeClient, type KubeObject } from '../../runtime/client.js';
import { Resources } from '../../controllers/resources.js';
import { kubectl, startStratusServe, type StratusServe } from '../harness/apiserver.js';
import { startChromium, type Browser } from '../harness/chromium.js';
import { importBusybox, makeCerts, registerDockerNode, startDockerd, type Dockerd } from '../harness/dockerd.js';
import { startGitRemote, type GitRemote } from '../harness/gitrepo.js';
import { repoRoot } from '../harness/paths.js';
import { removeDir, tempDir, waitFor } from '../harness/process.js';
import { stratus } from './legacy/helpers.js';

const shots = join(repoRoot(), 'test', 'results', 'console');
let serve: StratusServe | undefined;
let engine: Dockerd | undefined;
let remote: GitRemote | undefined;
let dir: string | undefined;
let browser: Browser | undefined;
let client: KubeClient;
let image = '';
const tokens: Record<string, string> = {};

/** Creates a user with `stratus user create` and returns the token of the kubeconfig it writes. */
async function userToken(name: string, args: string[]): Promise<string> {
  const file = join(dir!, `${name}.kubeconfig`);
  await stratus(['user', 'create', name, ...args, '--kubeconfig', serve!.kubeconfig, '--kubeconfig-out', file]);
  const config = parseYaml(readFileSync(file, 'utf8')) as { users: { user: { token: string } }[] };
  return config.users[0]!.user.token;
}

async function admin(args: string[]): Promise<void> {
  const r = await kubectl(serve!.kubeconfig, join(dir!, 'kcache'), args);
  assert.equal(r.code, 0, r.stderr);
}

/** A shell command in the Docker guest `web`, behind stratus's back. */
async function inGuest(cmd: string): Promise<void> {
  const containers = await engine!.client.listContainers({ filters: { label: ['stratus.dev/name=web'] } });
  assert.equal(containers.length, 1, 'the container of Instance web');
  const exec = await engine!.client.getContainer(containers[0]!.Id).exec({ Cmd: ['sh', '-c', cmd] });
  await exec.start({ Detach: true });
  await waitFor(`${cmd} done`, async () => (await exec.inspect()).Running === false, 10_000, 50);
}

/** A request without credentials, trusting the server's CA: status, content type, CSP. */
function anonymous(method: string, path: string): Promise<{ status: number; type: string; csp: string }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(`${serve!.url}${path}`, { method, ca: readFileSync(join(serve!.dataDir, 'pki', 'ca.crt')) }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type'] ?? ''), csp: String(res.headers['content-security-policy'] ?? '') }));
    });
    req.on('error', reject);
    req.end();
  });
}

async function shot(name: string): Promise<void> {
  await browser!.page.screenshot({ path: join(shots, `${name}.png`), fullPage: true });
}

function stateBadge(): ReturnType<Browser['page']['locator']> {
  return browser!.page.locator('[data-testid=state] .badge');
}

async function signIn(token: string, namespace: string): Promise<void> {
  const page = browser!.page;
  await page.goto(`${serve!.url}/ui/`);
  await page.fill('input[name=token]', token);
  await page.fill('input[name=namespace]', namespace);
  await page.click('button:has-text("Sign in")');
  await page.waitForSelector('header.top .who');
}

describe('web console in Chromium', () => {
  before(async () => {
    if (!existsSync(join(repoRoot(), 'dist', 'ui', 'index.html'))) throw new Error('dist/ui/ is missing: run `make build` (it bundles the console)');
    mkdirSync(shots, { recursive: true });
    dir = await tempDir('console');
    const certs = await makeCerts(join(dir, 'certs'));
    engine = await startDockerd({ certs });
    image = await importBusybox(engine);
    remote = await startGitRemote();
    serve = await startStratusServe({ controllers: true, args: ['--sim-node'], env: { STRATUS_PROJECTS_DIR: join(dir, 'projects'), STRATUS_PROJECT_POLL_MS: '600000' } });
    client = KubeClient.fromFile(serve.kubeconfig);
    await registerDockerNode(client, engine, certs, { capacity: { cpus: 4, memoryMiB: 4096 } });
    tokens.ops = await userToken('ops', ['--group', 'admins']);
    await admin(['create', 'clusterrolebinding', 'admins', '--clusterrole=cluster-admin', '--group=admins']);
    tokens.viewer = await userToken('viewer', ['--namespace', 'team-v']);
    await admin(['create', 'rolebinding', 'viewer-view', '--clusterrole=view', '--user=viewer', '-n', 'default']);
    await client.resource<KubeObject & { spec: { hard: Record<string, number> } }>(Resources.quotas).create({
      apiVersion: 'iam.stratus.dev/v1alpha1',
      kind: 'Quota',
      metadata: { name: 'team', namespace: 'default' },
      spec: { hard: { instances: 10, cpus: 100 } },
    });
    browser = await startChromium({ origin: serve.url, servingCertFile: join(serve.dataDir, 'pki', 'serving.crt') });
  });

  after(async () => {
    try {
      await browser?.close();
      if (serve && client) {
        const instances = client.resource<Instance>(Resources.instances);
        for (const i of await instances.list('default').catch(() => [])) await instances.delete('default', i.metadata!.name!).catch(() => undefined);
        await waitFor('instances deleted', async () => (await instances.list('default')).length === 0, 30_000).catch(() => undefined);
      }
    } finally {
      client?.close();
      await serve?.stop();
      await engine?.stop();
      await remote?.remove();
      if (dir) await removeDir(dir);
    }
  });

  it('serves the console’s files without credentials, and still nothing else', async () => {
    const index = await anonymous('GET', '/ui/');
    assert.equal(index.status, 200);
    assert.match(index.type, /^text\/html/);
    assert.match(index.csp, /default-src 'none'; script-src 'self'/);
    assert.equal((await anonymous('GET', '/ui/console.js')).status, 200);
    assert.equal((await anonymous('GET', '/ui')).status, 301);
    assert.equal((await anonymous('POST', '/ui/')).status, 405);
    assert.equal((await anonymous('GET', '/ui/nothing.js')).status, 401, 'an unknown path under /ui/ is the API’s, so credentials are needed');
    assert.equal((await anonymous('GET', '/apis/compute.stratus.dev/v1alpha1/instances')).status, 401);
  });

  it('refuses a bad token in words and signs in with a good one; the overview shows both nodes with bars', async () => {
    const page = browser!.page;
    await page.goto(`${serve!.url}/ui/`);
    await page.fill('input[name=token]', '9-0000');
    await page.click('button:has-text("Sign in")');
    assert.match(await page.locator('[role=alert]').innerText(), /did not accept this token/);
    await signIn(tokens.ops!, 'default');
    assert.equal(await page.locator('header.top .who').innerText(), 'ops');
    await page.waitForSelector('.node[data-node=sim] [role=progressbar]');
    await page.waitForSelector('.node[data-node=engine-1] [role=progressbar]');
    await page.locator('a[data-kind=users]').waitFor(); // an admin sees the admin kinds
    await page.waitForSelector('.quota[data-quota=team] [role=progressbar]');
    await shot('overview');
  });

  it('creates an Instance from the form and shows it reach running, restarted, then stopped, without a reload', async () => {
    const page = browser!.page;
    await page.click('a[data-kind=instances]');
    await page.click('a:has-text("Create Instance")');
    await page.fill('input[name=name]', 'web1');
    await page.selectOption('select[name=provider]', 'libvirt');
    await page.fill('input[name=image]', 'debian-12');
    await page.fill('input[name=memoryMiB]', '256');
    await page.fill('textarea[name=nodeSelector]', 'stratus.dev/simulated=true');
    await page.click('button:has-text("Create")');
    await page.waitForURL(/#\/k\/instances\/default\/web1$/);
    // Page-side code is given as strings: this file is compiled without the DOM's types.
    await page.evaluate('window.consoleNotReloaded = true');
    await stateBadge().filter({ hasText: /^running$/ }).waitFor({ timeout: 30_000 });
    await page.locator('tr[data-condition=Ready] td', { hasText: 'Running' }).first().waitFor();
    await shot('instance-running');
    const created = await client.resource<Instance>(Resources.instances).get('default', 'web1');
    assert.deepEqual(created?.spec.nodeSelector, { 'stratus.dev/simulated': 'true' });

    // Restart: the page stops the Instance, waits for `stopped`, and starts it again.
    const seen: string[] = [];
    const watch = (async () => {
      for (let i = 0; i < 600 && !(seen.includes('stopped') && seen.at(-1) === 'running'); i++) {
        const s = (await client.resource<Instance>(Resources.instances).get('default', 'web1'))?.status?.state ?? '';
        if (s !== seen.at(-1)) seen.push(s);
        await new Promise((r) => setTimeout(r, 50));
      }
    })();
    await page.click('button:has-text("Restart")');
    await watch;
    assert.ok(seen.includes('stopped') && seen.at(-1) === 'running', `restart went through stopped back to running: ${seen.join(' → ')}`);
    await stateBadge().filter({ hasText: /^running$/ }).waitFor({ timeout: 30_000 });
    assert.equal((await client.resource<Instance>(Resources.instances).get('default', 'web1'))?.spec.powerState, 'Running');

    await page.click('button:has-text("Stop")');
    await stateBadge().filter({ hasText: /^stopped$/ }).waitFor({ timeout: 30_000 });
    assert.equal((await client.resource<Instance>(Resources.instances).get('default', 'web1'))?.spec.powerState, 'Stopped');
    await page.locator('button:has-text("Start")').waitFor();
    assert.equal(await page.evaluate('window.consoleNotReloaded === true'), true, 'the page was not reloaded');
  });

  it('keeps watching across a server restart: a change made with kubectl shows up', async () => {
    const page = browser!.page;
    await serve!.restart();
    client.close();
    client = KubeClient.fromFile(serve!.kubeconfig);
    await admin(['patch', 'instances.compute.stratus.dev', 'web1', '-n', 'default', '--type=merge', '-p', '{"spec":{"powerState":"Running"}}']);
    await stateBadge().filter({ hasText: /^running$/ }).waitFor({ timeout: 30_000 });
    assert.equal(await page.evaluate('window.consoleNotReloaded === true'), true, 'the page was not reloaded');
  });

  it('shows the server’s validation error under edited YAML and applies nothing', async () => {
    const page = browser!.page;
    const yaml = page.locator('#yaml-text');
    const alert = page.locator('form.yaml [role=alert]');
    // The controllers may still be writing status after the restart: an edit of a version
    // that changed meanwhile gets 409 Conflict, and the user reverts and edits again.
    let message = '';
    for (let attempt = 0; attempt < 5; attempt++) {
      const text = await yaml.inputValue();
      assert.match(text, /cpus: 1/);
      await yaml.fill(text.replace('cpus: 1', 'cpus: lots'));
      await page.click('form.yaml button:has-text("Apply")');
      await alert.waitFor();
      message = await alert.innerText();
      if (!message.startsWith('Conflict: ')) break;
      assert.match(message, /Revert shows the current version/);
      await page.click('form.yaml button:has-text("Revert")');
    }
    assert.match(message, /^Invalid: .*spec\.cpus/);
    assert.equal((await client.resource<Instance>(Resources.instances).get('default', 'web1'))?.spec.cpus, 1);
    await page.click('form.yaml button:has-text("Revert")');
  });

  it('shows why an Instance cannot be scheduled', async () => {
    const page = browser!.page;
    await page.goto(`${serve!.url}/ui/#/new/instances`);
    await page.fill('input[name=name]', 'huge');
    await page.fill('input[name=image]', 'debian-12');
    await page.fill('input[name=cpus]', '64');
    await page.click('button:has-text("Create")');
    const reason = page.locator('[data-testid=unschedulable]');
    await reason.waitFor({ timeout: 30_000 });
    assert.match(await reason.innerText(), /Unschedulable — 0\/2 nodes: .*insufficient cpu/);
  });

  it('lists live, sorts by a column, and works from the keyboard at phone width', async () => {
    const page = browser!.page;
    await page.setViewportSize({ width: 390, height: 844 });
    await page.goto(`${serve!.url}/ui/#/k/instances`);
    await page.locator('table.list tr[data-name=huge]').waitFor();
    const started = Date.now();
    await client.resource<Instance>(Resources.instances).create({ apiVersion: 'compute.stratus.dev/v1alpha1', kind: 'Instance', metadata: { name: 'web0', namespace: 'default' }, spec: { provider: 'libvirt', image: 'debian-12', cpus: 1, memoryMiB: 128 } });
    await page.locator('table.list tr[data-name=web0]').waitFor({ timeout: 5_000 });
    const shownAfterMs = Date.now() - started;
    await page.click('th button:has-text("Name")'); // now descending
    const names = await page.locator('table.list tbody tr').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-name')));
    assert.deepEqual(names, ['web1', 'web0', 'huge']);
    await shot('phone-list');
    // From the top of the page, Tab to the Instance's link and open it with Enter.
    await page.evaluate('document.activeElement && document.activeElement.blur()');
    let reached = false;
    for (let i = 0; i < 60 && !reached; i++) {
      await page.keyboard.press('Tab');
      reached = (await page.evaluate("document.activeElement.tagName === 'A' && document.activeElement.textContent === 'web0'")) === true;
    }
    assert.ok(reached, 'Tab reaches the link of web0');
    await page.keyboard.press('Enter');
    await page.waitForURL(/#\/k\/instances\/default\/web0$/);
    await page.setViewportSize({ width: 1280, height: 800 });
    process.stdout.write(`# a created Instance appeared in the open list ${shownAfterMs} ms after the create returned (load ${readFileSync('/proc/loadavg', 'utf8').trim()})\n`);
  });

  it('creates a Project from YAML, pushes it, and shows the Deployment progressing and then rolled back', async () => {
    const page = browser!.page;
    const instances = client.resource<Instance>(Resources.instances);
    await instances.create({ apiVersion: 'compute.stratus.dev/v1alpha1', kind: 'Instance', metadata: { name: 'web', namespace: 'default' }, spec: { provider: 'docker', image, command: ['/bin/busybox', 'sleep', '36000'], cpus: 1, memoryMiB: 64 } });
    await waitFor('web running', async () => (await instances.get('default', 'web'))?.status?.state === 'running', 60_000, 200);
    const app = (version: string, broken: boolean): Record<string, string> => ({
      'www/index.html': `${version}\n`,
      '.stratus/build': broken ? '#!/bin/sh\necho building\nwhile [ ! -e /tmp/go ]; do sleep 0.1; done\n' : '#!/bin/sh\necho building\n',
      '.stratus/activate': broken ? `#!/bin/sh\necho "${version}: cannot bind the new listener" >&2\nexit 1\n` : '#!/bin/sh\necho activated\n',
      '.stratus/rollback': '#!/bin/sh\necho "back to $STRATUS_RELEASE_ID"\n',
    });
    await remote!.commit(app('v1', false), 'v1');
    await page.goto(`${serve!.url}/ui/#/new/projects/yaml`);
    await page.locator('#yaml-new').fill(
      `apiVersion: apps.stratus.dev/v1alpha1\nkind: Project\nmetadata:\n  name: shop\n  namespace: default\nspec:\n  source:\n    git: {url: "${remote!.url}", ref: main}\n  mode: full\n  guests: [web]\n  keepReleases: 2\n`,
    );
    await page.click('button:has-text("Create")');
    await page.waitForURL(/#\/k\/projects\/default\/shop$/);
    const deployments = client.resource<Deployment>(Resources.deployments);
    const done = (d: Deployment | undefined): boolean => ['Succeeded', 'Failed', 'RolledBack'].includes(d?.status?.phase ?? '');
    const first = await waitFor('v1 deployed', async () => (await deployments.list('default')).find(done), 90_000, 200);
    assert.equal(first.status?.phase, 'Succeeded', JSON.stringify(first.status));

    await remote!.commit(app('v2', true), 'v2');
    await page.click('button:has-text("Push (deploy now)")');
    const pushed = await waitFor('the pushed Deployment', async () => (await deployments.list('default')).find((d) => d.metadata?.name?.endsWith('-push')), 10_000, 100);
    await page.click(`ul.related a:has-text("${pushed.metadata!.name!}")`);
    await page.locator('li[data-stage=build][data-state=Running]').waitFor({ timeout: 60_000 });
    assert.equal(await page.locator('li[data-stage=release-sync]').getAttribute('data-state'), 'Succeeded');
    await shot('deployment-progress');
    await inGuest('touch /tmp/go');
    await page.locator('[data-testid=rolledback]').waitFor({ timeout: 60_000 });
    assert.match(await page.locator('[data-testid=rolledback]').innerText(), /Rolled back: stage activate failed/);
    assert.match(await page.locator('li[data-stage=activate][data-state=Failed] pre.output').innerText(), /v2: cannot bind the new listener/);
    await page.locator('li[data-stage=rollback][data-state=Succeeded]').waitFor();
    await shot('deployment-rolledback');
    // The overview once there is something to see: Instances in several states, warnings, quota used.
    await page.goto(`${serve!.url}/ui/#/`);
    await page.locator('ul.counts li[data-state=running]').waitFor();
    await page.locator('ul.warnings li').first().waitFor();
    await shot('overview-busy');
  });

  it('shows a user with view rights no Stop or Delete, and the API’s refusal when a delete is forced', async () => {
    const page = browser!.page;
    await page.click('button:has-text("Sign out")');
    await signIn(tokens.viewer!, 'default');
    assert.equal(await page.locator('header.top .who').innerText(), 'viewer');
    await page.locator('a[data-kind=instances]').waitFor();
    assert.equal(await page.locator('a[data-kind=users]').count(), 0, 'no Users in the navigation of who may not list them');
    await page.goto(`${serve!.url}/ui/#/k/instances`);
    await page.locator('table.list tr[data-name=web1]').waitFor();
    assert.equal(await page.locator('a:has-text("Create Instance")').count(), 0, 'no create for a viewer');
    await page.click('table.list a:has-text("web1")');
    await stateBadge().waitFor();
    await page.locator('tr[data-condition=Ready]').waitFor();
    assert.equal(await page.locator('.actions button, .actions a').count(), 0, 'no Stop, Start, Restart or Delete for a viewer');
    assert.equal(await page.locator('#yaml-text').isEditable(), false, 'the YAML is read-only');
    await page.goto(`${serve!.url}/ui/#/k/instances/default/web1/delete`);
    await page.click('button:has-text("Delete web1")');
    const alert = page.locator('[role=alert]');
    await alert.waitFor();
    assert.match(await alert.innerText(), /^Not allowed: .*"web1" is forbidden: User "viewer" cannot delete/);
    await shot('viewer-refused');
    assert.ok(await client.resource<Instance>(Resources.instances).get('default', 'web1'), 'web1 is still there');
    assert.deepEqual(browser!.foreignRequests, [], 'no request left the server’s origin');
    assert.deepEqual(browser!.pageErrors, [], 'no uncaught error in the page');
  });
});
