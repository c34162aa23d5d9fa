/**
 * Shared parts of the benchmarks: flags, timing a job run, the table, and bench/RESULTS.md.
 * Every benchmark takes --duration <s>, --workers, --keys, --seed and --json (one JSON object per
 * workload run per line) so results can be compared across versions by scripts.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus } from 'node:os';
import { parseArgs } from 'node:util';
import { Kafka, logLevel } from 'kafkajs';
import type { JobHandle, JobSummary } from '../index.js';

export interface BenchFlags {
  durationS: number;
  workers: number[];
  keys: number[];
  seed: number;
  json: boolean;
  write: boolean;
  /** Also write SVG charts of the results to bench/plots/ (see plot.ts). */
  plot: boolean;
}

/** A mistake in a benchmark's flags: reported as one line with a pointer to --help. */
export class FlagError extends Error {}

function list(flag: string, value: string | undefined, fallback: number[]): number[] {
  if (value === undefined) return fallback;
  const numbers = value.split(',').map(Number);
  if (numbers.some((n) => !Number.isInteger(n) || n < 1)) throw new FlagError(`${flag}: expected a comma-separated list of positive integers, got ${value}`);
  return numbers;
}

export function parseFlags(argv: string[], defaults: { workers: number[]; keys: number[] }): BenchFlags {
  const { values } = parseArgs({
    args: argv,
    options: {
      duration: { type: 'string', default: '3' },
      workers: { type: 'string' },
      keys: { type: 'string' },
      seed: { type: 'string', default: '42' },
      json: { type: 'boolean', default: false },
      'no-write': { type: 'boolean', default: false },
      plot: { type: 'boolean', default: false },
    },
  });
  const durationS = Number(values.duration);
  if (!(durationS > 0)) throw new FlagError(`--duration must be a number of seconds > 0, got ${values.duration}`);
  return {
    durationS,
    workers: list('--workers', values.workers, defaults.workers),
    keys: list('--keys', values.keys, defaults.keys),
    seed: Number(values.seed),
    json: values.json,
    write: !values['no-write'],
    plot: values.plot,
  };
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export interface Measured {
  opsPerSec: number;
  /** Ingress-to-egress latency over the measured window only (warm-up excluded). */
  latency: { p50Ms: number; p95Ms: number; p99Ms: number };
  summary: JobSummary;
}

/** Envelopes waiting in the workers (mailboxes and transactions not yet admitted) below which a job has caught up. */
const SETTLED_BACKLOG = 200;

/**
 * Measures a running job over `durationS`, after `ready()` holds (e.g. the records were loaded) and
 * a warm-up: the egress rate and the ingress-to-egress latency of that window only. Then stops it.
 *
 * With `settle` (runs at a fixed input rate), the warm-up also lasts until the job has caught up:
 * while code is still being compiled the first seconds run slower than the rate, and the backlog that
 * builds then takes seconds to drain; measured in that window, latency is that of the start-up, not of
 * the load. A job that never catches up (the rate is above what it sustains) is measured anyway, after
 * 30 s, and said so on stderr.
 */
export async function measure(
  handle: JobHandle,
  egress: string,
  durationS: number,
  warmupMs: number,
  ready: (count: number) => boolean,
  settle = false,
): Promise<Measured> {
  const count = async (): Promise<number> => (await handle.metrics()).egress[egress] ?? 0;
  const deadline = Date.now() + 60_000;
  while (!ready(await count())) {
    if (Date.now() > deadline) throw new Error('benchmark job did not get ready within 60 s');
    await sleep(20);
  }
  await sleep(warmupMs);
  if (settle) {
    const backlog = async (): Promise<number> => {
      const { totals } = await handle.metrics();
      return totals.mailboxDepth + totals.transactionsWaiting;
    };
    const giveUp = Date.now() + 30_000;
    let calm = 0; // consecutive polls below the bound
    while (calm < 2 && Date.now() < giveUp) {
      calm = (await backlog()) < SETTLED_BACKLOG ? calm + 1 : 0;
      await sleep(250);
    }
    if (calm < 2) console.error(`the job did not catch up with its input rate within 30 s (backlog ${await backlog()}); measured anyway`);
  }
  handle.resetLatency();
  const c0 = await count();
  const t0 = performance.now();
  await sleep(durationS * 1000);
  const metrics = await handle.metrics();
  const c1 = metrics.egress[egress] ?? 0;
  const t1 = performance.now();
  const summary = await handle.stop();
  const { p50Ms, p95Ms, p99Ms } = metrics.latency;
  return { opsPerSec: ((c1 - c0) * 1000) / (t1 - t0), latency: { p50Ms, p95Ms, p99Ms }, summary };
}

export function machine(): string {
  return `${availableParallelism()} cores (${cpus()[0]?.model.trim() ?? 'unknown CPU'}), Node ${process.version}, ${process.platform}/${process.arch}`;
}

export type Row = Record<string, string | number>;

export function printTable(rows: Row[]): string {
  if (rows.length === 0) return '';
  const columns = Object.keys(rows[0]!);
  const cells = rows.map((row) => columns.map((c) => String(row[c] ?? '')));
  const widths = columns.map((c, i) => Math.max(c.length, ...cells.map((r) => r[i]!.length)));
  const line = (values: string[]): string => `| ${values.map((v, i) => v.padEnd(widths[i]!)).join(' | ')} |`;
  return [line(columns), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...cells.map(line)].join('\n');
}

/** Replaces (or appends) the section `## <title>` of bench/RESULTS.md; `charts` (Markdown images) go after the table. */
export function writeResults(title: string, command: string, table: string, notes: string, charts = ''): void {
  const file = new URL('./RESULTS.md', import.meta.url);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    text = '# Benchmark results\n\nEvery figure is from this repository\'s `bench/`, on the machine named with it.\n';
  }
  const section = `## ${title}\n\nMachine: ${machine()}. Date: ${new Date().toISOString().slice(0, 10)}.\n\nCommand: \`${command}\`\n\n${table}\n\n${charts === '' ? '' : `${charts}\n\n`}${notes}\n`;
  const start = text.indexOf(`## ${title}\n`);
  if (start < 0) text = `${text.trimEnd()}\n\n${section}`;
  else {
    const next = text.indexOf('\n## ', start + 1);
    text = text.slice(0, start) + section + (next < 0 ? '' : `\n${text.slice(next + 1)}`);
  }
  writeFileSync(file, text);
}

export function round(n: number, digits = 0): number {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}

/**
 * The broker of a Kafka benchmark ($EDDY_KAFKA_BROKERS) and a client for it; undefined, with the
 * way to get one printed, when none is set.
 */
export function benchKafka(benchmark: string): { brokers: string; kafka: Kafka } | undefined {
  const brokers = process.env.EDDY_KAFKA_BROKERS;
  if (brokers === undefined || brokers === '') {
    console.error(`the ${benchmark} benchmark needs a broker: \`scripts/with-kafka npm run bench -- ${benchmark}\`, or \`scripts/kafka start\` and EDDY_KAFKA_BROKERS=127.0.0.1:PORT`);
    process.exitCode = 2;
    return undefined;
  }
  return { brokers, kafka: new Kafka({ clientId: 'eddy-bench', brokers: brokers.split(','), logLevel: logLevel.NOTHING, retry: { initialRetryTime: 50, retries: 8 } }) };
}
