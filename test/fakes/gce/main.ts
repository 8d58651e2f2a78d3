/**
 * The fake Compute API as a process, for tests that run stratus itself (`stratus serve` with
 * a ComputeNode whose `spec.gce.endpoint` points here):
 *
 *   node dist/test/fakes/gce/main.js [--port N] [--project P] [--zones a,b] [--step-ms MS]
 *
 * Prints one JSON line `{"endpoint", "port", "pid", "serviceAccountKey"}` on stdout when it listens; SIGTERM or
 * SIGINT closes it.
 */
import { parseArgs } from 'node:util';
import { startFakeGce } from './index.js';

const { values } = parseArgs({
  options: {
    port: { type: 'string', default: '0' },
    project: { type: 'string', default: 'stratus-test' },
    zones: { type: 'string', default: 'us-central1-a,us-central1-b,europe-west1-b' },
    'step-ms': { type: 'string', default: '500' },
    'wait-deadline-ms': { type: 'string', default: '10000' },
  },
});

const gce = await startFakeGce({
  port: Number(values.port),
  project: values.project,
  zones: values.zones.split(',').map((z) => z.trim()).filter(Boolean),
  stepMs: Number(values['step-ms']),
  waitDeadlineMs: Number(values['wait-deadline-ms']),
});
process.stdout.write(JSON.stringify({ endpoint: gce.endpoint, port: gce.port, pid: process.pid, serviceAccountKey: gce.serviceAccountKey }) + '\n');

const stop = (): void => {
  void gce.close().then(() => process.exit(0));
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
