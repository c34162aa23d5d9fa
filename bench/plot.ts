/**
 * `--plot`: SVG charts of a benchmark's results, next to bench/RESULTS.md (in bench/plots/), drawn
 * with Vega-Lite and rendered to SVG by Vega in Node (no browser, no canvas).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import { machine } from './harness.js';

/** One chart: a Vega-Lite spec without data and title; the rows are its data. */
export interface Chart {
  /** File name without extension, e.g. `ycsb-throughput`. */
  name: string;
  /** What it shows, e.g. `YCSB: throughput against keys`. */
  title: string;
  rows: ReadonlyArray<Record<string, unknown>>;
  /** The mark and encoding (axis titles with units) of a Vega-Lite unit spec: https://vega.github.io/vega-lite/docs/ */
  spec: Record<string, unknown>;
}

/** bench/plots/, or $EDDY_BENCH_PLOT_DIR (the tests write their charts elsewhere). */
const folder = process.env.EDDY_BENCH_PLOT_DIR === undefined ? new URL('./plots/', import.meta.url) : pathToFileURL(`${process.env.EDDY_BENCH_PLOT_DIR.replace(/\/$/, '')}/`);

/** Renders a chart to SVG text. */
export async function renderChart(chart: Chart): Promise<string> {
  const spec = {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    width: 520,
    height: 280,
    ...chart.spec,
    title: { text: chart.title, subtitle: `${machine()}, ${new Date().toISOString().slice(0, 10)}` },
    // Whole labels (series names, system names), and category labels level.
    config: { legend: { labelLimit: 0, titleLimit: 0 }, axis: { labelLimit: 0 }, axisX: { labelAngle: 0 } },
    data: { values: chart.rows.map((row) => ({ ...row })) },
  } as TopLevelSpec;
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/** Writes each chart to bench/plots/<name>.svg; returns the Markdown that shows them (for RESULTS.md). */
export async function writeCharts(charts: readonly Chart[]): Promise<string> {
  mkdirSync(folder, { recursive: true });
  const lines: string[] = [];
  for (const chart of charts) {
    if (chart.rows.length === 0) continue;
    writeFileSync(new URL(`${chart.name}.svg`, folder), await renderChart(chart));
    console.error(`wrote ${fileURLToPath(new URL(`${chart.name}.svg`, folder))}`);
    lines.push(`![${chart.title}](plots/${chart.name}.svg)`);
  }
  return lines.join('\n\n');
}
