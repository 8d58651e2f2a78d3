/**
 * The notification stage's mail against a real SMTP server (the `smtp-server` package, with
 * AUTH) on 127.0.0.1: real releases run by the pipeline on a LocalChannel, their outcome
 * mailed by nodemailer to the Project's sysadmins and the Deployment's initiator.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, writeFile, chmod } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { SMTPServer } from 'smtp-server';
import { LocalChannel } from '../../../providers/guest/local.js';
import { runRelease, type ReleasePlan, type ReleaseResult } from '../../../controllers/pipeline/engine.js';
import { mailOutcome, outcomeRecipients } from '../../../controllers/deployment-mail.js';
import { INITIATOR_ANNOTATION } from '../../../apiserver/initiator.js';
import type { Deployment, Project } from '../../../crds/types.js';
import { execFileP, removeDir, tempDir } from '../../harness/process.js';

const PASSWORD = 's3cret-smtp-pw-4711';

interface Received {
  from: string;
  to: string[];
  user: string;
  raw: string;
}

let dir = '';
let server: SMTPServer;
let port = 0;
const inbox: Received[] = [];

before(async () => {
  dir = await tempDir('mail-notify');
  server = new SMTPServer({
    authMethods: ['PLAIN', 'LOGIN'],
    allowInsecureAuth: true, // loopback, no certificate
    disabledCommands: ['STARTTLS'],
    logger: false,
    onAuth(auth, _session, cb) {
      if (auth.username === 'stratus' && auth.password === PASSWORD) cb(null, { user: auth.username });
      else cb(new Error('Invalid username or password'));
    },
    onData(stream, session, cb) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        inbox.push({
          from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
          to: session.envelope.rcptTo.map((r) => r.address),
          user: String(session.user ?? ''),
          raw: Buffer.concat(chunks).toString('utf8'),
        });
        cb();
      });
    },
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  port = (server.server.address() as AddressInfo).port;
});

after(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
  await removeDir(dir);
});

/** The body of a received message, quoted-printable undone. */
function body(raw: string): string {
  const text = raw.slice(raw.indexOf('\r\n\r\n') + 4);
  return /content-transfer-encoding: quoted-printable/i.test(raw)
    ? text.replace(/=\r?\n/g, '').replace(/=([0-9A-F]{2})/g, (_m, h: string) => String.fromCharCode(parseInt(h, 16)))
    : text;
}

function header(raw: string, name: string): string {
  const head = raw.slice(0, raw.indexOf('\r\n\r\n')).replace(/\r\n[ \t]+/g, ' ');
  return new RegExp(`^${name}: (.*)$`, 'im').exec(head)?.[1] ?? '';
}

async function release(name: string, failBuild: boolean): Promise<{ plan: ReleasePlan; result: ReleaseResult }> {
  const d = join(dir, 'trees', name);
  await mkdir(join(d, '.stratus'), { recursive: true });
  await writeFile(join(d, 'index.html'), `${name}\n`);
  await writeFile(join(d, '.stratus/build'), failBuild ? '#!/bin/sh\necho "npm ERR! missing script: build" >&2\nexit 1\n' : '#!/bin/sh\necho built\n');
  await chmod(join(d, '.stratus/build'), 0o755);
  const { stdout } = await execFileP('tar', ['-c', '-C', d, '.'], { encoding: 'buffer', maxBuffer: 64 << 20 });
  const plan: ReleasePlan = {
    project: 'shop',
    releaseID: `20261207T1700${failBuild ? '02' : '01'}Z-abc${name}`,
    mode: 'full',
    environment: 'prod',
    keepReleases: 5,
    root: join(dir, 'srv'),
    source: async () => stdout,
  };
  return { plan, result: await runRelease([{ name: 'g1', channel: new LocalChannel('g1') }], plan) };
}

const project = (mail: NonNullable<Project['spec']['notify']>['mail']): Project => ({
  apiVersion: 'apps.stratus.dev/v1alpha1',
  kind: 'Project',
  metadata: { name: 'shop', namespace: 'team-a' },
  spec: { source: { git: { url: 'https://example.invalid/shop.git' } }, environment: 'prod', notify: { ...(mail ? { mail } : {}) } },
});

const deployment = (initiator?: string): Deployment => ({
  apiVersion: 'apps.stratus.dev/v1alpha1',
  kind: 'Deployment',
  metadata: { name: 'shop-git-1', namespace: 'team-a', ...(initiator ? { annotations: { [INITIATOR_ANNOTATION]: initiator } } : {}) },
  spec: { project: 'shop' },
});

const smtpSecret = (password: string): Record<string, string> => ({
  host: '127.0.0.1',
  port: String(port),
  username: 'stratus',
  password,
  from: 'stratus@ops.example',
});

test('a deployment outcome is mailed to the sysadmins and the initiator through an authenticated SMTP server', async () => {
  const { plan, result } = await release('v1', false);
  assert.equal(result.outcome, 'Succeeded');
  const secretsRead: string[] = [];
  const deps = {
    secrets: async (ns: string, name: string) => (secretsRead.push(`${ns}/${name}`), smtpSecret(PASSWORD)),
    userEmail: async (user: string) => (user === 'alice' ? 'alice@dev.example' : undefined),
  };
  const before = inbox.length;
  const to = await mailOutcome(deps, project({ to: ['ops@ops.example'], smtpSecretRef: { name: 'smtp' } }), deployment('alice'), {
    releaseID: plan.releaseID,
    commit: 'a'.repeat(40),
    result,
  });
  assert.deepEqual(to, ['ops@ops.example', 'alice@dev.example']);
  assert.deepEqual(secretsRead, ['team-a/smtp']);
  assert.equal(inbox.length, before + 1);
  const m = inbox.at(-1)!;
  assert.equal(m.user, 'stratus', 'the server authenticated the sender');
  assert.equal(m.from, 'stratus@ops.example');
  assert.deepEqual(m.to, ['ops@ops.example', 'alice@dev.example']);
  assert.equal(header(m.raw, 'From'), 'stratus@ops.example');
  assert.match(header(m.raw, 'To'), /ops@ops\.example, alice@dev\.example/);
  assert.equal(header(m.raw, 'Subject'), `[stratus] team-a/shop release ${plan.releaseID} succeeded`);
  const text = body(m.raw);
  assert.match(text, /Outcome: +Succeeded/);
  assert.match(text, /Initiator: +alice/);
  assert.match(text, new RegExp(`Commit: +${'a'.repeat(40)}`));
  // every stage of the release, in order, with its state
  for (const [i, s] of result.stages.entries()) assert.match(text, new RegExp(`\\[${i + 1}/${result.stages.length}\\] ${s.name} +${s.state}`), s.name);
  assert.ok(!m.raw.includes(PASSWORD));
});

test('a failed deployment mails the failed stage and its output; an initiator that is an address needs no User', async () => {
  const { plan, result } = await release('v2', true);
  assert.notEqual(result.outcome, 'Succeeded');
  assert.equal(result.failedStage, 'build');
  const deps = { secrets: async () => smtpSecret(PASSWORD) };
  const before = inbox.length;
  const to = await mailOutcome(deps, project({ smtpSecretRef: { name: 'smtp' } }), deployment('bob@dev.example'), { releaseID: plan.releaseID, result });
  assert.deepEqual(to, ['bob@dev.example']);
  assert.equal(inbox.length, before + 1);
  const m = inbox.at(-1)!;
  assert.deepEqual(m.to, ['bob@dev.example']);
  assert.match(header(m.raw, 'Subject'), new RegExp(`release ${plan.releaseID} failed at build`));
  const text = body(m.raw);
  assert.match(text, /Output of build \(tail\):/);
  assert.match(text, /npm ERR! missing script: build/);
  assert.match(text, /Commit: +\(artifact\)/);
});

test('recipients: no notify.mail sends nothing, initiator: false leaves the initiator out, an unknown user is skipped', async () => {
  const { plan, result } = await release('v3', false);
  const deps = { secrets: async () => assert.fail('no Secret read without notify.mail'), userEmail: async () => undefined };
  assert.deepEqual(await mailOutcome(deps, project(undefined), deployment('alice'), { releaseID: plan.releaseID, result }), []);
  assert.deepEqual(await outcomeRecipients(deps, project({ to: ['ops@ops.example'], initiator: false, smtpSecretRef: { name: 's' } }), deployment('carol@dev.example')), ['ops@ops.example']);
  assert.deepEqual(await outcomeRecipients(deps, project({ smtpSecretRef: { name: 's' } }), deployment('nobody')), []);
});

test('a refused login fails the mail without the password in the error (what reaches logs and Events)', async () => {
  const { plan, result } = await release('v4', false);
  const wrong = `${PASSWORD}-wrong`;
  const before = inbox.length;
  await assert.rejects(
    mailOutcome({ secrets: async () => smtpSecret(wrong) }, project({ to: ['ops@ops.example'], smtpSecretRef: { name: 'smtp' } }), deployment(), { releaseID: plan.releaseID, result }),
    (err: Error) => {
      assert.match(err.message, /Invalid username or password|auth/i);
      assert.ok(!err.message.includes(wrong) && !err.message.includes(PASSWORD), err.message);
      assert.ok(!(err.stack ?? '').includes(wrong));
      return true;
    },
  );
  assert.equal(inbox.length, before, 'nothing delivered');
  await assert.rejects(
    mailOutcome({ secrets: async () => ({ port: '25' }) }, project({ to: ['ops@ops.example'], smtpSecretRef: { name: 'smtp' } }), deployment(), { releaseID: plan.releaseID, result }),
    /Secret "smtp" has no host/,
  );
});
