/**
 * Where a process's CPU time goes: reads a V8 `.cpuprofile` (`node --cpu-prof`) and sums
 * self time per function (name, file, line), so a benchmark can say what dominates.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface HotFunction {
  /** `name (file:line)`, the file relative to the checkout or node's own. */
  where: string;
  selfMs: number;
  /** Share of all sampled time, 0..1 (idle included). */
  share: number;
  /** The JavaScript caller that most of this self time came through (native frames skipped). */
  via: string;
}

function label(frame: ProfileNode['callFrame']): string {
  const name = frame.functionName || '(anonymous)';
  if (!frame.url) return name;
  const file = frame.url.replace(/^file:\/\//, '').replace(/^.*\/(dist|node_modules)\//, '$1/');
  return `${name} (${file}:${frame.lineNumber + 1})`;
}

/** The `top` functions by self time in one profile, and the busy (non-idle) share of it. */
export function hotFunctions(file: string, top = 8): { busyShare: number; totalMs: number; functions: HotFunction[] } {
  const p = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  /** The nearest ancestor that is JavaScript of ours or of a package (not node internals). */
  const callerOf = (id: number): string => {
    for (let cur = parent.get(id); cur !== undefined; cur = parent.get(cur)) {
      const f = byId.get(cur)!.callFrame;
      if (f.url && !f.url.startsWith('node:')) return label(f);
    }
    return '(root)';
  };
  const via = new Map<string, Map<string, number>>();
  const self = new Map<string, number>();
  let total = 0;
  let idle = 0;
  for (let i = 0; i < p.samples.length; i++) {
    const node = byId.get(p.samples[i]!);
    const us = p.timeDeltas[i] ?? 0;
    if (!node) continue;
    total += us;
    const name = node.callFrame.functionName;
    if (name === '(idle)' || name === '(program)') {
      if (name === '(idle)') idle += us;
      continue;
    }
    const key = label(node.callFrame);
    self.set(key, (self.get(key) ?? 0) + us);
    const callers = via.get(key) ?? new Map<string, number>();
    const caller = callerOf(node.id);
    callers.set(caller, (callers.get(caller) ?? 0) + us);
    via.set(key, callers);
  }
  const functions = [...self]
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([where, us]) => ({
      where,
      selfMs: us / 1000,
      share: total ? us / total : 0,
      via: [...(via.get(where) ?? new Map<string, number>())].sort((a, b) => b[1] - a[1])[0]?.[0] ?? '',
    }));
  return { busyShare: total ? (total - idle) / total : 0, totalMs: total / 1000, functions };
}

/** The newest `.cpuprofile` in `dir` (by name) that `which` accepts. */
export function newestProfile(dir: string, which: (file: string) => boolean = () => true): string | undefined {
  const files = readdirSync(dir).filter((f) => f.endsWith('.cpuprofile') && which(f)).sort();
  return files.length ? join(dir, files[files.length - 1]!) : undefined;
}

/** One line per hot function, for the printed report. */
export function describeProfile(title: string, file: string, top = 8): string {
  const h = hotFunctions(file, top);
  const lines = [`-- profile: ${title} (${(h.totalMs / 1000).toFixed(1)} s sampled, ${(h.busyShare * 100).toFixed(0)}% busy); top self time:`];
  for (const f of h.functions) {
    const via = f.via && f.via !== f.where && !f.where.includes(' (dist/') ? `  ← ${f.via}` : '';
    lines.push(`   ${(f.share * 100).toFixed(1).padStart(5)}%  ${f.selfMs.toFixed(0).padStart(7)} ms  ${f.where}${via}`);
  }
  return lines.join('\n');
}
