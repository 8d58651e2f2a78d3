/**
 * A test kind (`Widget`, group test.stratus.dev) and its test reconciler for the runtime's
 * integration tests: the reconciler copies `spec.input` to `status.output` (suffixed),
 * records who reconciled it, sets `Ready` and `observedGeneration` — through the real
 * informer, queue, controller and `updateStatus` against the real API server.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { splitKey, type KubeObject, type ResourceClient, type ResourceRef } from '../../../runtime/client.js';
import type { Informer } from '../../../runtime/informer.js';
import type { ReconcileContext, ReconcileResult, Reconciler } from '../../../runtime/controller.js';
import { updateStatus } from '../../../runtime/status.js';
import { setCondition, type Condition } from '../../../runtime/conditions.js';

export const WidgetResource: ResourceRef = { group: 'test.stratus.dev', version: 'v1', plural: 'widgets', namespaced: true, kind: 'Widget' };

export type Widget = KubeObject & {
  spec?: { input?: string; delayMs?: number };
  status?: { output?: string; reconciledBy?: string; observedGeneration?: number; conditions?: Condition[] };
};

export const expectedOutput = (input: string | undefined): string => `${input ?? ''}-done`;

/** True when the object's status reflects its current spec. */
export function isSteady(w: Widget): boolean {
  return w.status?.output === expectedOutput(w.spec?.input) && w.status?.observedGeneration === w.metadata?.generation;
}

const CRD = `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.test.stratus.dev
spec:
  group: test.stratus.dev
  scope: Namespaced
  names: {kind: Widget, listKind: WidgetList, plural: widgets, singular: widget}
  versions:
    - name: v1
      served: true
      storage: true
      subresources:
        status: {}
      schema:
        openAPIV3Schema:
          type: object
          properties:
            metadata: {type: object}
            spec:
              type: object
              properties:
                input: {type: string}
                delayMs: {type: integer}
            status:
              type: object
              properties:
                output: {type: string}
                reconciledBy: {type: string}
                observedGeneration: {type: integer}
                conditions:
                  type: array
                  items:
                    type: object
                    required: [type, status]
                    properties:
                      type: {type: string}
                      status: {type: string}
                      reason: {type: string}
                      message: {type: string}
                      lastTransitionTime: {type: string}
                      observedGeneration: {type: integer}
`;

/** Writes the Widget CRD into `dir` (for `stratus serve --crd-dir`). */
export function writeWidgetCrd(dir: string): void {
  writeFileSync(join(dir, 'widgets.test.stratus.dev.yaml'), CRD);
}

export class WidgetReconciler implements Reconciler {
  /** Reconciles per key (observable by tests). */
  readonly counts = new Map<string, number>();

  constructor(
    private readonly widgets: ResourceClient<Widget>,
    private readonly cache: Informer<Widget>,
    private readonly identity: string,
  ) {}

  async reconcile(key: string, ctx: ReconcileContext): Promise<ReconcileResult | void> {
    this.counts.set(key, (this.counts.get(key) ?? 0) + 1);
    const cached = this.cache.get(key);
    if (!cached || cached.metadata?.deletionTimestamp) return;
    if (isSteady(cached)) return;
    const delay = cached.spec?.delayMs ?? 0;
    if (delay > 0) await new Promise((r) => setTimeout(r, delay));
    const { namespace, name } = splitKey(key);
    await updateStatus(this.widgets, namespace, name, (w) => {
      w.status = {
        ...w.status,
        output: expectedOutput(w.spec?.input),
        reconciledBy: this.identity,
        observedGeneration: w.metadata?.generation,
        conditions: setCondition(w.status?.conditions, { type: 'Ready', status: 'True', reason: 'Reconciled', message: `by ${this.identity}` }, w.metadata?.generation ?? 0),
      };
    });
    ctx.log.debug('widget reconciled');
  }
}
