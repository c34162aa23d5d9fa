import { execFile } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { renderChart } from '../../bench/plot.js';

const root = fileURLToPath(new URL('../..', import.meta.url));

void t.test('a chart renders to SVG with its axis titles and one mark per row', async (t) => {
  const rows = [
    { system: 'a', requestsPerSec: 1000 },
    { system: 'b', requestsPerSec: 2500 },
    { system: 'c', requestsPerSec: 400 },
  ];
  const svg = await renderChart({
    name: 'test',
    title: 'A test chart',
    rows,
    spec: { mark: 'bar', encoding: { y: { field: 'system', type: 'nominal', title: 'system' }, x: { field: 'requestsPerSec', type: 'quantitative', title: 'throughput (requests/s)' } } },
  });
  t.match(svg, /^<svg /, 'SVG');
  t.match(svg, /throughput \(requests\/s\)/, 'the axis title with its unit');
  t.match(svg, /A test chart/, 'the title');
  t.match(svg, /cores \(/, 'the machine in the subtitle');
  const bars = svg.match(/aria-roledescription="bar"/g) ?? [];
  t.equal(bars.length, rows.length, 'one bar per row');
  for (const row of rows) t.match(svg, `throughput (requests/s): ${row.requestsPerSec}; system: ${row.system}"`, `the bar of ${row.system} carries its value`);
});

void t.test('npm run bench -- ycsb --plot writes its charts (a short real run)', async (t) => {
  const dir = t.testdir();
  const result = await new Promise<{ code: number; stderr: string }>((resolve) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', 'bench/run.ts', 'ycsb', '--duration', '1', '--keys', '100', '--workers', '1', '--no-write', '--plot'],
      { cwd: root, env: { ...process.env, EDDY_BENCH_PLOT_DIR: dir }, timeout: 240_000 },
      (error, _stdout, stderr) => resolve({ code: typeof error?.code === 'number' ? error.code : error === null ? 0 : 1, stderr }),
    );
  });
  t.equal(result.code, 0, result.stderr.slice(-500));
  t.same(readdirSync(dir).sort(), ['ycsb-latency.svg', 'ycsb-throughput.svg']);
  const throughput = readFileSync(join(dir, 'ycsb-throughput.svg'), 'utf8');
  t.match(throughput, /throughput \(ops\/s\)/);
  t.equal((throughput.match(/aria-roledescription="point"/g) ?? []).length, 4, 'a point per workload and handlers (2 workloads x record and limit, one key count)');
  const latency = readFileSync(join(dir, 'ycsb-latency.svg'), 'utf8');
  t.equal((latency.match(/aria-roledescription="point"/g) ?? []).length, 12, 'p50, p95, p99 at two loads for two workloads');
});

void t.test('--plot on a benchmark without charts says which have them', async (t) => {
  const result = await new Promise<{ code: number; stderr: string }>((resolve) => {
    execFile(process.execPath, ['--import', 'tsx', 'bench/run.ts', 'map-state', '--plot'], { cwd: root }, (error, _stdout, stderr) => resolve({ code: typeof error?.code === 'number' ? error.code : 0, stderr }));
  });
  t.not(result.code, 0);
  t.match(result.stderr, /--plot: map-state has no charts yet; ycsb, checkpoint, kafka, statefun have/);
});
