/** Small pieces every page uses: a usage bar, a conditions table, an error banner. */
import { html } from 'htm/preact';
import type { ApiFailure, Condition } from './api.js';

/** A labelled bar: `used` of `total`, red past 90 %. */
export function Bar({ label, used, total, unit = '' }: { label: string; used: number; total: number; unit?: string }) {
  const pct = total > 0 ? Math.min(100, Math.round((used / total) * 100)) : 0;
  return html`<div class="bar">
    <div class="bar-label"><span>${label}</span><span>${used}${unit} / ${total > 0 ? `${total}${unit}` : '∞'}</span></div>
    <div class="bar-track" role="progressbar" aria-label=${label} aria-valuemin="0" aria-valuemax="100" aria-valuenow=${pct}>
      <div class=${`bar-fill${pct >= 90 ? ' bar-full' : ''}`} style=${`width:${pct}%`}></div>
    </div>
  </div>`;
}

export function Conditions({ conditions }: { conditions: Condition[] }) {
  if (conditions.length === 0) return html`<p class="muted">No conditions yet.</p>`;
  return html`<table class="conditions">
    <thead><tr><th>Type</th><th>Status</th><th>Reason</th><th>Message</th><th>Since</th></tr></thead>
    <tbody>
      ${conditions.map(
        (c) => html`<tr class=${c.status === 'True' ? 'ok' : 'bad'} data-condition=${c.type}>
          <td>${c.type}</td><td>${c.status}</td><td>${c.reason ?? ''}</td><td class="message">${c.message ?? ''}</td><td>${c.lastTransitionTime ?? ''}</td>
        </tr>`,
      )}
    </tbody>
  </table>`;
}

/** A refusal as the server worded it, with what it means for a person. */
export function ErrorBanner({ error }: { error: ApiFailure | Error | null }) {
  if (!error) return null;
  const code = (error as ApiFailure).code;
  const lead = code === 403 ? 'Not allowed: ' : code === 422 ? 'Invalid: ' : code === 409 ? 'Conflict: ' : code === 0 ? '' : 'Error: ';
  return html`<div class="error" role="alert">${lead}${error.message}</div>`;
}

export function StateBadge({ state }: { state: string }) {
  return state ? html`<span class=${`badge state-${state.toLowerCase()}`}>${state}</span>` : null;
}
