/**
 * The fake's Cloud Monitoring: `GET /v3/projects/P/timeSeries` for the one metric stratus reads,
 * `compute.googleapis.com/instance/cpu/usage_time` (DELTA, DOUBLE, unit `s{CPU}`: the vCPU
 * seconds a VM used in each sampling period), in the real API's request and response shape.
 *
 * Model: each instance uses `load` vCPUs (set by the test, at most its machine type's, 0 unless
 * set) while `RUNNING` and nothing otherwise; its cumulative CPU seconds are integrated over
 * the fake clock. A change of load or status is taken into account from the next request to
 * the fake (status changes are applied lazily there too). Points are the completed sampling
 * periods (`samplePeriodMs`, 60 s on Google; tests shorten it) whose end lies in the request's
 * `(interval.startTime, interval.endTime]`, newest first, as the API lists them.
 *
 * Filter: `metric.type = "…"` (required) `AND` any of `resource.type = "gce_instance"`,
 * `metric.labels.instance_name = "…"`, `resource.labels.instance_id = "…"`,
 * `resource.labels.zone = "…"`; anything else is the API's 400 INVALID_ARGUMENT.
 */
import { ApiError, type FakeGceModel, type FakeInstance } from './state.js';

export const CPU_USAGE_TIME = 'compute.googleapis.com/instance/cpu/usage_time';

interface Breakpoint {
  at: number;
  /** Cumulative CPU seconds at `at`. */
  seconds: number;
  /** vCPUs in use from `at` on. */
  rate: number;
}

interface History {
  id: string;
  name: string;
  zone: string;
  points: Breakpoint[];
}

function invalidArgument(message: string): ApiError {
  return new ApiError(400, 'badRequest', message);
}

export class FakeMonitoring {
  private readonly loads = new Map<string, number>();
  private readonly history = new Map<string, History>();

  constructor(
    private readonly model: FakeGceModel,
    /** Length of one sampling period (Google's: 60 s). */
    readonly samplePeriodMs: number,
  ) {}

  /** Instance `name` (in any zone) uses `vcpus` from now on while it runs (capped at its machine type's). */
  setLoad(name: string, vcpus: number): void {
    this.advance();
    this.loads.set(name, vcpus);
    this.advance();
  }

  /** Cumulative CPU seconds of instance `name` now, as the model holds them (for tests). */
  cpuSeconds(name: string): number {
    this.advance();
    const h = [...this.history.values()].find((x) => x.name === name);
    return h ? this.at(h, this.model.timeline.now()) : 0;
  }

  private rateOf(i: FakeInstance): number {
    return i.status === 'RUNNING' ? Math.max(0, Math.min(this.loads.get(i.name) ?? 0, i.cpus)) : 0;
  }

  /** Integrates every instance up to now and starts a new segment where its rate changed. */
  advance(): void {
    const now = this.model.timeline.now();
    for (const zone of this.model.options.zones) {
      for (const i of this.model.listInstances(zone)) {
        let h = this.history.get(i.id);
        if (!h) {
          h = { id: i.id, name: i.name, zone, points: [{ at: now, seconds: 0, rate: this.rateOf(i) }] };
          this.history.set(i.id, h);
          continue;
        }
        const rate = this.rateOf(i);
        const last = h.points[h.points.length - 1]!;
        if (rate !== last.rate) h.points.push({ at: now, seconds: this.at(h, now), rate });
      }
    }
  }

  /** Cumulative CPU seconds of `h` at time `t`. */
  private at(h: History, t: number): number {
    let seg: Breakpoint | undefined;
    for (const p of h.points) if (p.at <= t) seg = p;
    return seg ? seg.seconds + (seg.rate * (t - seg.at)) / 1000 : 0;
  }

  /** `GET /v3/projects/P/timeSeries` with the API's query parameters. */
  listTimeSeries(project: string, query: Record<string, string>): object {
    this.model.requireProject(project);
    const filter = query.filter;
    if (!filter) throw invalidArgument('Field filter had an invalid value: a filter is required.');
    const endText = query['interval.endTime'];
    if (!endText) throw invalidArgument('Field interval.endTime had an invalid value: an end time is required.');
    const end = Date.parse(endText);
    const start = query['interval.startTime'] ? Date.parse(query['interval.startTime']) : end;
    if (Number.isNaN(end) || Number.isNaN(start) || start > end) throw invalidArgument(`Field interval had an invalid value: ${query['interval.startTime'] ?? ''} .. ${endText}`);
    const want: Record<string, string> = {};
    for (const clause of filter.split(/\s+AND\s+/)) {
      const m = /^\s*([a-z_.]+)\s*=\s*"([^"]*)"\s*$/.exec(clause);
      if (!m) throw invalidArgument(`Field filter had an invalid value of "${filter}": cannot parse "${clause.trim()}".`);
      want[m[1]!] = m[2]!;
    }
    const known = ['metric.type', 'resource.type', 'metric.labels.instance_name', 'resource.labels.instance_id', 'resource.labels.zone'];
    const unknown = Object.keys(want).find((k) => !known.includes(k));
    if (unknown) throw invalidArgument(`Field filter had an invalid value of "${filter}": the fake does not know ${unknown}.`);
    if (!want['metric.type']) throw invalidArgument(`Field filter had an invalid value of "${filter}": a metric.type is required.`);
    if (want['metric.type'] !== CPU_USAGE_TIME || (want['resource.type'] && want['resource.type'] !== 'gce_instance')) return {};
    this.advance();
    const now = this.model.timeline.now();
    const period = this.samplePeriodMs;
    const series = [...this.history.values()]
      .filter((h) => (!want['metric.labels.instance_name'] || h.name === want['metric.labels.instance_name']) && (!want['resource.labels.instance_id'] || h.id === want['resource.labels.instance_id']) && (!want['resource.labels.zone'] || h.zone === want['resource.labels.zone']))
      .map((h) => {
        const points = [];
        const born = h.points[0]!.at;
        for (let stop = Math.floor(Math.min(end, now) / period) * period; stop > start && stop > born; stop -= period) {
          const from = Math.max(stop - period, born);
          points.push({
            interval: { startTime: new Date(from).toISOString(), endTime: new Date(stop).toISOString() },
            value: { doubleValue: this.at(h, stop) - this.at(h, from) },
          });
        }
        return {
          metric: { labels: { instance_name: h.name }, type: CPU_USAGE_TIME },
          resource: { type: 'gce_instance', labels: { project_id: project, instance_id: h.id, zone: h.zone } },
          metricKind: 'DELTA',
          valueType: 'DOUBLE',
          points,
          unit: 's{CPU}',
        };
      })
      .filter((s) => s.points.length > 0);
    return series.length > 0 ? { timeSeries: series, unit: 's{CPU}' } : {};
  }
}
