import type { Manager } from '../runtime/manager.js';

/**
 * Registers every stratus controller on the manager. Placeholder created by the runtime
 * (issue 5) so `stratus controller` builds; the controllers' owner replaces it.
 */
export function registerControllers(_mgr: Manager): void {}
