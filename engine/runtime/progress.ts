import cliProgress from 'cli-progress';
import type { JobHandle, JobMetrics } from './job-manager.js';

export interface ProgressOptions {
  /** Expected number of records on `egress`; shows a bar with ETA when given. */
  total?: number;
  /** The egress whose records are counted. Default: all egresses but dead letters. */
  egress?: string;
  /** Refresh interval. Default: 250 ms on a terminal, 2000 ms otherwise. */
  intervalMs?: number;
  stream?: NodeJS.WriteStream;
}

function outputCount(metrics: JobMetrics, egress: string | undefined): number {
  if (egress !== undefined) return metrics.egress[egress] ?? 0;
  return Object.entries(metrics.egress).reduce((sum, [name, count]) => (name === 'dead-letters' ? sum : sum + count), 0);
}

/**
 * Shows a running job's progress on the terminal (a bar on a TTY, a line every few seconds
 * otherwise) until it ends. Returns a function that stops the display early.
 */
export function showProgress(handle: JobHandle, options: ProgressOptions = {}): () => void {
  const stream = options.stream ?? process.stderr;
  const tty = stream.isTTY === true;
  const bar = new cliProgress.SingleBar(
    {
      stream,
      format: options.total !== undefined
        ? '{bar} {percentage}% | {value}/{total} out | {rate}/s | read {read} | ETA {eta_formatted}'
        : '{value} out | {rate}/s | read {read} | invocations {invocations}',
      noTTYOutput: !tty,
      notTTYSchedule: options.intervalMs ?? 2000,
      hideCursor: tty,
    },
    cliProgress.Presets.shades_classic,
  );
  bar.start(options.total ?? 0, 0, { rate: 0, read: 0, invocations: 0 });
  let last = { at: Date.now(), count: 0 };
  let stopped = false;
  const tick = async (): Promise<void> => {
    if (stopped) return;
    const metrics = await handle.metrics().catch(() => undefined);
    if (metrics === undefined || stopped) return;
    const count = outputCount(metrics, options.egress);
    const now = Date.now();
    const rate = Math.round(((count - last.count) * 1000) / Math.max(1, now - last.at));
    last = { at: now, count };
    bar.update(count, { rate, read: metrics.totals.recordsRead, invocations: metrics.totals.invocations });
  };
  const timer = setInterval(() => void tick(), options.intervalMs ?? (tty ? 250 : 2000));
  const stop = (): void => {
    if (stopped) return;
    stopped = true;
    clearInterval(timer);
    bar.stop();
  };
  handle.done.then(
    (summary) => {
      if (!stopped) bar.update(outputCount(summary, options.egress), { read: summary.totals.recordsRead, invocations: summary.totals.invocations });
      stop();
    },
    stop,
  );
  return stop;
}
