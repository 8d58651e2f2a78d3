/**
 * Mail: the SMTP settings of a Secret and one function that sends a plain-text message with
 * nodemailer. Used by the notification stage (a Deployment's outcome to the sysadmins and the
 * initiator) — the corpus document's "We sent via the configured mean the result of
 * deployment to user (mail, stdout)".
 *
 * Contract: the password is only handed to nodemailer; errors thrown from here carry the
 * server's answer but never the credentials (nodemailer's messages do not include them, and
 * `redact` strips them again in case a server echoes them).
 */
import { createTransport } from 'nodemailer';

export interface SmtpSettings {
  host: string;
  port: number;
  /** Implicit TLS (SMTPS, usually port 465); otherwise STARTTLS when the server offers it. */
  tls: boolean;
  from: string;
  /** Accept any certificate (a private relay with a self-signed one). Default false. */
  insecureSkipVerify: boolean;
  username?: string;
  password?: string;
}

export interface MailMessage {
  to: string[];
  subject: string;
  text: string;
}

/** Reads the keys of an SMTP Secret (`host`, `port`, `from`, `username`, `password`, `tls`, `insecureSkipVerify`); throws naming what is missing. */
export function smtpSettings(secretName: string, data: Record<string, string>): SmtpSettings {
  const host = data['host']?.trim();
  const from = data['from']?.trim();
  if (!host) throw new Error(`Secret "${secretName}" has no host`);
  if (!from) throw new Error(`Secret "${secretName}" has no from`);
  const tls = /^(true|1|yes)$/i.test(data['tls']?.trim() ?? '');
  const port = data['port'] ? Number(data['port'].trim()) : tls ? 465 : 587;
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new Error(`Secret "${secretName}" has an invalid port "${data['port']}"`);
  return {
    host,
    port,
    tls,
    from,
    insecureSkipVerify: /^(true|1|yes)$/i.test(data['insecureSkipVerify']?.trim() ?? ''),
    ...(data['username'] ? { username: data['username'] } : {}),
    ...(data['password'] !== undefined ? { password: data['password'] } : {}),
  };
}

/** Sends `msg` through the SMTP server of `s`; resolves with the server's message id. */
export async function sendMail(s: SmtpSettings, msg: MailMessage, timeoutMs = 15_000): Promise<string> {
  const transport = createTransport({
    host: s.host,
    port: s.port,
    secure: s.tls,
    ...(s.username ? { auth: { user: s.username, pass: s.password ?? '' } } : {}),
    connectionTimeout: timeoutMs,
    greetingTimeout: timeoutMs,
    socketTimeout: timeoutMs,
    tls: { servername: s.host, rejectUnauthorized: !s.insecureSkipVerify },
    logger: false,
  });
  try {
    const info = await transport.sendMail({ from: s.from, to: msg.to, subject: msg.subject, text: msg.text });
    return info.messageId;
  } catch (err) {
    throw new Error(redact(err instanceof Error ? err.message : String(err), s));
  } finally {
    transport.close();
  }
}

function redact(text: string, s: SmtpSettings): string {
  return s.password ? text.split(s.password).join('***') : text;
}
