/**
 * Impersonation headers, table-tested: who may act as whom, what the impersonated identity
 * carries, and the 400/403 answers, with kube's message shape.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { IncomingMessage } from 'node:http';
import { Socket } from 'node:net';
import { applyImpersonation, mastersMayImpersonate, type ImpersonationCheck } from '../../../apiserver/auth/impersonation.js';
import { requestUser, setRequestUser, type UserInfo } from '../../../apiserver/auth/user.js';
import { ApiError } from '../../../apiserver/errors.js';

function request(headers: [string, string][], requester?: UserInfo): IncomingMessage {
  const req = new IncomingMessage(new Socket());
  const raw: string[] = [];
  for (const [k, v] of headers) raw.push(k, v);
  req.rawHeaders = raw;
  req.headers = {};
  for (const [k, v] of headers) {
    const key = k.toLowerCase();
    const prev = req.headers[key];
    req.headers[key] = prev === undefined ? v : `${String(prev)}, ${v}`;
  }
  if (requester) setRequestUser(req, requester);
  return req;
}

const proxy: UserInfo = { username: 'legacy-proxy', groups: ['system:masters', 'system:authenticated'] };
const alice: UserInfo = { username: 'alice', groups: ['developers', 'system:authenticated'] };

describe('applyImpersonation', () => {
  const cases: {
    name: string;
    headers: [string, string][];
    requester?: UserInfo;
    want?: UserInfo;
    code?: number;
    message?: RegExp;
  }[] = [
    { name: 'no headers: the identity is unchanged', headers: [], requester: alice, want: alice },
    {
      name: 'a master becomes the user with its groups and system:authenticated',
      headers: [['Impersonate-User', 'bob'], ['Impersonate-Group', 'red'], ['Impersonate-Group', 'blue']],
      requester: proxy,
      want: { username: 'bob', groups: ['red', 'blue', 'system:authenticated'], extra: { impersonator: ['legacy-proxy'] } },
    },
    {
      name: 'system:anonymous is unauthenticated',
      headers: [['Impersonate-User', 'system:anonymous'], ['Impersonate-Group', 'system:unauthenticated']],
      requester: proxy,
      want: { username: 'system:anonymous', groups: ['system:unauthenticated'], extra: { impersonator: ['legacy-proxy'] } },
    },
    {
      name: 'a plain user may not impersonate (kube message)',
      headers: [['Impersonate-User', 'bob']],
      requester: alice,
      code: 403,
      message: /^users "bob" is forbidden: User "alice" cannot impersonate resource "users" in API group "" at the cluster scope$/,
    },
    {
      name: 'a service account is checked as serviceaccounts in its namespace',
      headers: [['Impersonate-User', 'system:serviceaccount:team-a:default']],
      requester: alice,
      code: 403,
      message: /^serviceaccounts "default" is forbidden: User "alice" cannot impersonate resource "serviceaccounts" in API group "" in the namespace "team-a"$/,
    },
    { name: 'groups without a user are a 400', headers: [['Impersonate-Group', 'red']], requester: proxy, code: 400, message: /without impersonating a user/ },
    { name: 'two users are a 400', headers: [['Impersonate-User', 'a'], ['Impersonate-User', 'b']], requester: proxy, code: 400, message: /only one Impersonate-User/ },
  ];
  for (const c of cases) {
    it(c.name, async () => {
      const req = request(c.headers, c.requester);
      if (c.code) {
        await assert.rejects(applyImpersonation(req, mastersMayImpersonate), (err: unknown) => {
          assert.ok(err instanceof ApiError);
          assert.equal(err.code, c.code);
          assert.match(err.message, c.message!);
          return true;
        });
        assert.deepEqual(requestUser(req), c.requester, 'a refusal keeps the identity');
      } else {
        await applyImpersonation(req, mastersMayImpersonate);
        assert.deepEqual(requestUser(req), c.want);
      }
    });
  }

  it('asks the authorizer about the user and each group', async () => {
    const asked: ImpersonationCheck[] = [];
    const req = request([['Impersonate-User', 'bob'], ['Impersonate-Group', 'red']], alice);
    await applyImpersonation(req, async (_who, what) => {
      asked.push(what);
      return true;
    });
    assert.deepEqual(asked, [{ resource: 'users', name: 'bob' }, { resource: 'groups', name: 'red' }]);
  });
});
