/**
 * The notification stage's mail: a Deployment's outcome and stage list, sent to the
 * Project's `notify.mail.to` (sysadmins, a bot) and to the Deployment's initiator — the user
 * the API server recorded in the `apps.stratus.dev/initiator` annotation when the Deployment
 * was created (by `git push`, `stratus push`, kubectl …), mapped to an address by the caller
 * (the User's spec.email; a name that already is an address is used as is).
 *
 * The SMTP settings come from the Secret of `notify.mail.smtpSecretRef` (see controllers/mail.ts);
 * errors thrown from here never carry the SMTP password.
 */
import { INITIATOR_ANNOTATION } from '../apiserver/initiator.js';
import type { Deployment, Project } from '../crds/types.js';
import type { SecretReader } from './connections.js';
import { sendMail, smtpSettings } from './mail.js';
import type { ReleaseResult } from './pipeline/engine.js';

export interface OutcomeMailDeps {
  secrets: SecretReader;
  /** The address of a stratus user; undefined when the user has none. */
  userEmail?: (user: string) => Promise<string | undefined>;
}

export interface Outcome {
  releaseID: string;
  commit?: string;
  result: ReleaseResult;
}

const ADDRESS = /^[^\s@<>]+@[^\s@<>]+$/;

/** Who gets the outcome of `dep`: notify.mail.to, then the initiator (deduplicated). */
export async function outcomeRecipients(deps: OutcomeMailDeps, project: Project, dep: Deployment): Promise<string[]> {
  const mail = project.spec.notify?.mail;
  const to = new Set(mail?.to ?? []);
  const initiator = dep.metadata?.annotations?.[INITIATOR_ANNOTATION];
  if (initiator && mail?.initiator !== false) {
    const address = ADDRESS.test(initiator) ? initiator : await deps.userEmail?.(initiator);
    if (address) to.add(address);
  }
  return [...to];
}

/** The subject and plain-text body of the outcome mail. */
export function outcomeMessage(project: Project, dep: Deployment, o: Outcome): { subject: string; text: string } {
  const name = project.metadata?.name ?? dep.spec.project;
  const ns = project.metadata?.namespace ?? 'default';
  const r = o.result;
  const headline = r.outcome === 'Succeeded' ? 'succeeded' : r.outcome === 'RolledBack' ? `failed at ${r.failedStage}, rolled back` : `failed at ${r.failedStage}`;
  const subject = `[stratus] ${ns}/${name} release ${o.releaseID} ${headline}`;
  const initiator = dep.metadata?.annotations?.[INITIATOR_ANNOTATION];
  const lines = [
    `Project:     ${ns}/${name} (${project.spec.environment ?? 'dev'})`,
    `Deployment:  ${dep.metadata?.name ?? ''}`,
    `Release:     ${o.releaseID}`,
    `Commit:      ${o.commit ?? '(artifact)'}`,
    ...(initiator ? [`Initiator:   ${initiator}`] : []),
    `Outcome:     ${r.outcome}${r.failedStage ? ` (failed stage: ${r.failedStage})` : ''}`,
    '',
    'Stages:',
    ...r.stages.map((s, i) => `  [${i + 1}/${r.stages.length}] ${s.name.padEnd(14)} ${s.state}${duration(s.startTime, s.completionTime)}`),
  ];
  const failed = r.stages.find((s) => s.name === r.failedStage);
  if (failed?.outputTail?.trim()) lines.push('', `Output of ${failed.name} (tail):`, ...failed.outputTail.trim().split('\n').slice(-20).map((l) => `  ${l}`));
  return { subject, text: `${lines.join('\n')}\n` };
}

/**
 * Mails the outcome when the Project has `notify.mail`; resolves with the recipients (empty:
 * nothing sent). Throws (without the password) when the Secret is unusable or the server refuses.
 */
export async function mailOutcome(deps: OutcomeMailDeps, project: Project, dep: Deployment, o: Outcome): Promise<string[]> {
  const mail = project.spec.notify?.mail;
  if (!mail) return [];
  const to = await outcomeRecipients(deps, project, dep);
  if (to.length === 0) return [];
  const ref = mail.smtpSecretRef.name;
  const settings = smtpSettings(ref, await deps.secrets(project.metadata?.namespace ?? 'default', ref));
  await sendMail(settings, { to, ...outcomeMessage(project, dep, o) });
  return to;
}

function duration(start?: string, end?: string): string {
  if (!start || !end) return '';
  const ms = Date.parse(end) - Date.parse(start);
  return Number.isFinite(ms) ? ` (${(ms / 1000).toFixed(1)} s)` : '';
}
