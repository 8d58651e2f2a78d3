/**
 * The audit log: one JSON line per record with who, what and the response code, and size
 * rotation that keeps `keep` older files and drops the oldest.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, symlinkSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { AuditLog } from '../../../apiserver/auth/audit.js';
import { requestInfo } from '../../../apiserver/auth/requestinfo.js';
import { removeDir, tempDir, waitFor } from '../../harness/process.js';

test('records JSON lines and rotates by size, keeping the newest files', async () => {
  const dir = await tempDir('audit');
  try {
    const log = new AuditLog(dir, 2000, 2);
    const user = { username: 'alice', groups: ['team', 'system:authenticated'] };
    const a = requestInfo('DELETE', new URL('https://x/apis/compute.stratus.dev/v1alpha1/namespaces/team-b/instances/web?dryRun=All'));
    for (let i = 0; i < 40; i++) log.record(user, a, 403);
    await log.close();
    const first = JSON.parse(readFileSync(join(dir, 'audit.log'), 'utf8').split('\n')[0]!) as Record<string, unknown>;
    assert.deepEqual({ ...first, time: undefined }, {
      time: undefined,
      user: 'alice',
      groups: ['team', 'system:authenticated'],
      verb: 'delete',
      apiGroup: 'compute.stratus.dev',
      resource: 'instances',
      namespace: 'team-b',
      name: 'web',
      path: '/apis/compute.stratus.dev/v1alpha1/namespaces/team-b/instances/web',
      code: 403,
    });
    assert.ok(existsSync(join(dir, 'audit.log.1')) && existsSync(join(dir, 'audit.log.2')), 'rotated files');
    assert.ok(!existsSync(join(dir, 'audit.log.3')), 'no more than `keep` rotated files');
    for (const f of ['audit.log', 'audit.log.1', 'audit.log.2']) {
      const text = readFileSync(join(dir, f), 'utf8');
      assert.ok(Buffer.byteLength(text) <= 2000, `${f} is within the size bound`);
      for (const line of text.trim().split('\n')) assert.equal((JSON.parse(line) as { code: number }).code, 403);
    }
  } finally {
    await removeDir(dir);
  }
});

test('a full disk drops audit records instead of crashing the server, and auditing resumes when writes succeed again', async () => {
  const dir = await tempDir('audit-full');
  try {
    // /dev/full answers every write with ENOSPC, as a full filesystem does
    symlinkSync('/dev/full', join(dir, 'audit.log'));
    const log = new AuditLog(dir);
    const user = { username: 'alice', groups: ['system:authenticated'] };
    const a = requestInfo('POST', new URL('https://x/api/v1/namespaces/default/configmaps'));
    for (let i = 0; i < 5; i++) {
      log.record(user, a, 201);
      // the failed write's 'error' (unhandled, it ended the process) fires before this resolves
      await waitFor('the write to fail', () => log.droppedRecords === i + 1, 5000, 5);
    }
    // space comes back
    unlinkSync(join(dir, 'audit.log'));
    log.record(user, a, 201);
    await log.close();
    const lines = readFileSync(join(dir, 'audit.log'), 'utf8').trim().split('\n');
    assert.equal(lines.length, 1);
    assert.equal((JSON.parse(lines[0]!) as { code: number }).code, 201);
  } finally {
    await removeDir(dir);
  }
});
