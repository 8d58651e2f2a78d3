/** The kubectl end-to-end suite against `stratus serve` on its embedded SQLite store. */
import { startStratusServe } from '../harness/apiserver.js';
import { kubectlSuite } from './kubectl-suite.js';

kubectlSuite('SQLite', {
  start: () => startStratusServe(),
  cleanup: async () => undefined,
});
