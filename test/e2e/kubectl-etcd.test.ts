/** The kubectl end-to-end suite against `stratus serve --etcd-servers` on a real etcd. */
import { startStratusServe } from '../harness/apiserver.js';
import { startEtcd, type EtcdInstance } from '../harness/etcd.js';
import { kubectlSuite } from './kubectl-suite.js';

let etcd: EtcdInstance | undefined;

kubectlSuite('etcd', {
  start: async () => {
    etcd = await startEtcd();
    return startStratusServe({ etcdServers: [etcd.endpoint] });
  },
  cleanup: async () => {
    await etcd?.stop();
  },
});
