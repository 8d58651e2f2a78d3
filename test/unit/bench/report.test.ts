/**
 * What `make bench` ends with: each goal judged on the right quantity (ratio to the same-run
 * limit, or the value against an absolute bound), the results table, and SVG charts that an
 * XML parser nobody here wrote (xmllint) accepts.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { meetsGoal, quantiles, resultsTable, type BenchReport, type Figure } from '../../../bench/report.js';
import { goalsChart, latencyChart } from '../../../bench/charts.js';
import { removeDir, requireBinary, tempDir } from '../../harness/process.js';

const execFileP = promisify(execFile);

const get: Figure = { name: 'GET by name: throughput', value: 400, unit: 'req/s', limit: { name: 'bare node http', value: 1000, unit: 'req/s' }, goal: { minRatio: 0.8 } };
const p99: Figure = { name: 'delivery latency p99', value: 30, unit: 'ms', goal: { max: 50 }, quantilesMs: quantiles([1, 2, 3, 30, 5, 8, 13, 21]), distribution: 'event <delivery> & "more"' };
const dns: Figure = { name: 'query latency p99', value: 2, unit: 'ms', limit: { name: 'p99 ≤', value: 1, unit: 'ms' }, goal: { maxRatio: 1 } };
const plain: Figure = { name: 'store writes per Instance', value: 8.4, unit: 'writes' };
const reports: BenchReport[] = [
  { benchmark: 'api', conditions: {}, figures: [get, plain] },
  { benchmark: 'watch-fanout', conditions: {}, figures: [p99, dns] },
];

describe('bench results', () => {
  let dir: string;
  before(async () => {
    requireBinary('xmllint', 'make deps-apt (libxml2-utils)');
    dir = await tempDir('bench-report');
  });
  after(async () => {
    await removeDir(dir);
  });

  it('judges a ratio goal on value ÷ limit and an absolute goal on the value', () => {
    assert.equal(meetsGoal(get), false); // 0.4× < 0.8×
    assert.equal(meetsGoal({ ...get, value: 800 }), true);
    assert.equal(meetsGoal(p99), true);
    assert.equal(meetsGoal({ ...p99, value: 51 }), false);
    assert.equal(meetsGoal({ ...p99, value: NaN }), false, 'a figure that was not measured does not pass');
    assert.equal(meetsGoal(dns), false);
    assert.equal(meetsGoal(plain), undefined);
    assert.equal(meetsGoal({ ...get, limit: { ...get.limit!, unit: 'ms' } }), false, 'no ratio across units');
  });

  it('quantiles are the 0th..100th percentiles, nearest rank', () => {
    const q = quantiles([5, 1, 4, 2, 3]);
    assert.equal(q.length, 101);
    assert.equal(q[0], 1);
    assert.equal(q[50], 3);
    assert.equal(q[100], 5);
    assert.deepEqual(quantiles([]), []);
  });

  it('the table lists figures with a limit or goal, grouped by benchmark, with pass/FAIL', () => {
    const lines = resultsTable(reports).split('\n');
    assert.match(lines[0]!, /^figure\s+value\s+same-run limit\s+ratio\s+goal\s+met$/);
    assert.equal(lines[1], 'api');
    assert.match(lines[2]!, /GET by name: throughput\s+400 req\/s\s+1000 \(bare node http\)\s+0\.400×\s+≥ 0\.8×\s+FAIL$/);
    assert.ok(!lines.some((l) => l.includes('store writes per Instance')), 'a figure with neither limit nor goal is left out');
    assert.match(lines.find((l) => l.includes('delivery latency p99'))!, /30\.00 ms.*≤ 50\.00 ms\s+pass$/);
  });

  it('writes well-formed SVG charts (names escaped)', async () => {
    for (const [name, svg] of [['goals', goalsChart(reports, 'test & run')], ['latency', latencyChart(reports, 'test')]] as const) {
      const file = join(dir, `${name}.svg`);
      await writeFile(file, svg);
      await execFileP('xmllint', ['--noout', file]);
      assert.match(svg, /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
    }
    assert.match(latencyChart(reports, 'x'), /event &lt;delivery&gt; &amp; &quot;more&quot;/);
    assert.match(goalsChart(reports, 'x'), /FAIL {2}0\.400× bare node http \(goal ≥ 0\.8×\)/);
  });
});
