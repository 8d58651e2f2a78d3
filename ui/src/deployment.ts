/**
 * A Deployment's progress: the pipeline's stages (controllers/pipeline/stages.ts) in order as
 * a step list with a bar, each stage's state and duration, the failing stage's output, and a
 * rollback shown as such (phase RolledBack, the rollback stage's own step).
 */
import { html } from 'htm/preact';
import type { KubeObject } from './api.js';

interface Stage {
  name: string;
  state: 'Pending' | 'Running' | 'Succeeded' | 'Failed' | 'Skipped';
  startTime?: string;
  completionTime?: string;
  outputTail?: string;
}

function duration(s: Stage): string {
  const a = Date.parse(s.startTime ?? '');
  const b = s.completionTime ? Date.parse(s.completionTime) : Date.now();
  if (Number.isNaN(a) || Number.isNaN(b)) return '';
  const secs = Math.max(0, (b - a) / 1000);
  return secs < 60 ? `${secs.toFixed(1)} s` : `${Math.floor(secs / 60)} min ${Math.round(secs % 60)} s`;
}

export function DeploymentStages({ deployment }: { deployment: KubeObject }) {
  const stages = (deployment.status?.stages ?? []) as Stage[];
  const phase = String(deployment.status?.phase ?? 'Pending');
  const failed = String(deployment.status?.failedStage ?? '');
  const finished = stages.filter((s) => s.state === 'Succeeded' || s.state === 'Failed' || s.state === 'Skipped').length;
  const pct = stages.length ? Math.round((finished / stages.length) * 100) : 0;
  return html`<section class="stages" aria-labelledby="stages-title">
    <h2 id="stages-title">Release stages</h2>
    ${phase === 'RolledBack' ? html`<p class="error" role="status" data-testid="rolledback">Rolled back: stage ${failed} failed and the previous release was restored.</p>` : null}
    ${phase === 'Failed' ? html`<p class="error" role="status">Failed at stage ${failed}.</p>` : null}
    ${phase === 'Succeeded' ? html`<p class="ok" role="status">Released.</p>` : null}
    <div class="bar-track" role="progressbar" aria-label="stages finished" aria-valuemin="0" aria-valuemax="100" aria-valuenow=${pct}><div class=${`bar-fill${phase === 'RolledBack' || phase === 'Failed' ? ' bar-full' : ''}`} style=${`width:${pct}%`}></div></div>
    ${stages.length === 0 ? html`<p class="muted">Waiting for a worker (phase ${phase}).</p>` : null}
    <ol class="steps">
      ${stages.map(
        (s) => html`<li class=${`step step-${s.state.toLowerCase()}${s.name === 'rollback' ? ' step-rollback' : ''}`} data-stage=${s.name} data-state=${s.state}>
          <span class="step-name">${s.name}</span> <span class="step-state">${s.state}</span> <span class="muted">${s.startTime ? duration(s) : ''}</span>
          ${s.outputTail && (s.state === 'Failed' || s.name === failed || s.name === 'rollback') ? html`<pre class="output">${s.outputTail}</pre>` : null}
        </li>`,
      )}
    </ol>
  </section>`;
}
