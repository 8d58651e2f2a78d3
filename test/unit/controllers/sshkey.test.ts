import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { readFile } from 'node:fs/promises';
import { parsePublicKey } from '../../../controllers/sshkey.js';
import { execFileP, removeDir, requireBinary, tempDir } from '../../harness/process.js';

test('the fingerprint of a public key is the one ssh-keygen prints', async () => {
  const keygen = requireBinary('ssh-keygen');
  const dir = await tempDir('sshkey');
  try {
    for (const type of ['ed25519', 'rsa', 'ecdsa']) {
      const file = join(dir, `id_${type}`);
      await execFileP(keygen, ['-q', '-t', type, '-N', '', '-C', `test@${type}`, '-f', file]);
      const pub = await readFile(`${file}.pub`, 'utf8');
      const { stdout } = await execFileP(keygen, ['-l', '-E', 'sha256', '-f', `${file}.pub`]);
      const expected = stdout.split(' ')[1];
      const parsed = parsePublicKey(pub);
      assert.equal(parsed.fingerprint, expected, type);
      assert.equal(parsed.keyType, pub.split(' ')[0]);
    }
  } finally {
    await removeDir(dir);
  }
});

const invalid: { name: string; line: string; message: RegExp }[] = [
  { name: 'an unknown key type', line: 'ssh-dss AAAAB3NzaC1kc3M=', message: /unsupported key type "ssh-dss"/ },
  { name: 'a body that is not base64', line: 'ssh-ed25519 <script>', message: /not base64/ },
  { name: 'a body of another key type', line: 'ssh-rsa AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl', message: /does not hold a ssh-rsa key/ },
  { name: 'a truncated body', line: 'ssh-ed25519 AAA=', message: /truncated/ },
  { name: 'an empty line', line: '', message: /unsupported key type ""/ },
];
for (const c of invalid) {
  test(`a public key with ${c.name} is rejected with a reason`, () => {
    assert.throws(() => parsePublicKey(c.line), c.message);
  });
}
