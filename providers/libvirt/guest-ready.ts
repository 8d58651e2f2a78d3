/**
 * Is the guest up? A VM counts as ready for users once its SSH server answers: the TCP
 * connection is accepted and the server's identification line (`SSH-2.0-...`, RFC 4253
 * §4.2) arrives. Nothing is authenticated and nothing is sent, so the probe needs no key.
 *
 * Contract: resolves `{ready: true, banner}` or `{ready: false, message}` within `timeoutMs`;
 * never throws.
 */
import { connect } from 'node:net';

export type SshProbe = { ready: true; banner: string } | { ready: false; message: string };

export function probeSsh(host: string, port = 22, timeoutMs = 3000): Promise<SshProbe> {
  return new Promise((resolve) => {
    let buf = '';
    let settled = false;
    const sock = connect({ host, port });
    const done = (r: SshProbe): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      sock.destroy();
      resolve(r);
    };
    const timer = setTimeout(() => done({ ready: false, message: `no SSH banner from ${host}:${port} within ${timeoutMs} ms` }), timeoutMs);
    sock.setEncoding('latin1');
    sock.on('data', (chunk: string) => {
      buf += chunk;
      // Servers may send other lines before the identification line.
      for (const line of buf.split('\r\n').slice(0, -1)) {
        if (line.startsWith('SSH-')) return done({ ready: true, banner: line });
      }
      if (buf.length > 8192) done({ ready: false, message: `${host}:${port} answers, but not as an SSH server` });
    });
    sock.on('error', (err) => done({ ready: false, message: `SSH on ${host}:${port}: ${err.message}` }));
    sock.on('close', () => done({ ready: false, message: `${host}:${port} closed the connection before an SSH banner` }));
  });
}
