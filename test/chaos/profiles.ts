/**
 * How long and how hard each chaos run is. `short` runs inside `make test` (about 4–5 minutes
 * on a 2-core machine at load ≈ 20); `full` is `make chaos` (its soak compressed from the 30
 * minutes an operator would run to CHAOS_SOAK_SECONDS, 10 minutes by default).
 * CHAOS_SEED replays a fault schedule.
 */
import type { ChaosProfile } from './scenarios.js';

const num = (name: string, fallback: number): number => {
  const v = Number(process.env[name]);
  return Number.isFinite(v) && v >= 0 && process.env[name] !== '' && process.env[name] !== undefined ? v : fallback;
};

const seed = (): number => num('CHAOS_SEED', Math.floor(Math.random() * 2 ** 31));

export function shortProfile(): ChaosProfile {
  return {
    name: 'short',
    seed: seed(),
    soakSeconds: num('CHAOS_SOAK_SECONDS', 20),
    faultSeconds: num('CHAOS_FAULT_SECONDS', 30),
    faultGapMs: [3000, 7000],
    writers: 4,
    watchers: 2,
    instanceClients: 2,
    etcdPhaseSeconds: 3,
    convergeSeconds: 120,
    dockerDownSeconds: num('CHAOS_DOCKER_DOWN_SECONDS', 15),
    gceFaultSeconds: num('CHAOS_GCE_FAULT_SECONDS', 5),
  };
}

export function fullProfile(): ChaosProfile {
  return {
    name: 'full',
    seed: seed(),
    soakSeconds: num('CHAOS_SOAK_SECONDS', 600),
    faultSeconds: num('CHAOS_FAULT_SECONDS', 180),
    faultGapMs: [2000, 8000],
    writers: 8,
    watchers: 4,
    instanceClients: 3,
    etcdPhaseSeconds: 10,
    convergeSeconds: 180,
    dockerDownSeconds: num('CHAOS_DOCKER_DOWN_SECONDS', 60),
    gceFaultSeconds: num('CHAOS_GCE_FAULT_SECONDS', 20),
  };
}
