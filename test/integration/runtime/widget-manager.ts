/**
 * A controller process for the leader-election integration test: a Manager with leader
 * election running the Widget test reconciler. Prints `ready <metrics port>` on stdout.
 *
 *   node widget-manager.js KUBECONFIG IDENTITY
 */
import { KubeClient } from '../../../runtime/client.js';
import { Manager } from '../../../runtime/manager.js';
import { WidgetReconciler, WidgetResource, type Widget } from './widgets.js';

const [kubeconfig, identity] = process.argv.slice(2);
if (!kubeconfig || !identity) throw new Error('usage: widget-manager KUBECONFIG IDENTITY');
const mgr = new Manager({
  client: KubeClient.fromFile(kubeconfig),
  metricsListen: '127.0.0.1:0',
  leaderElection: { namespace: 'default', name: 'widget-manager', identity },
});
const widgets = mgr.informer<Widget>(WidgetResource);
mgr.addController({ name: 'widget', concurrency: 4 }, widgets, new WidgetReconciler(mgr.resource<Widget>(WidgetResource), widgets, identity));
await mgr.start();
process.stdout.write(`ready ${mgr.metricsAddress()?.port}\n`);
process.once('SIGTERM', () => {
  void mgr.stop().then(() => process.exit(0));
});
