/**
 * The `eddy` command line. `eddy run <job-module>` submits a job module (TypeScript or JavaScript)
 * with the engine's options, shows progress, stops cleanly on Ctrl-C, and prints a summary.
 */
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Command, InvalidArgumentError } from 'commander';
import { describeError, EddyError } from './errors.js';
import { jobFromModule } from './job.js';
import { submit, type JobSummary } from './runtime/job-manager.js';
import { showProgress } from './runtime/progress.js';

function positiveInteger(name: string) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`${name} must be a positive integer`);
    return n;
  };
}

export function formatSummary(summary: JobSummary): string {
  const seconds = summary.uptimeMs / 1000;
  const lines = [
    `job ${summary.job} ended by ${summary.endedBy} after ${seconds.toFixed(1)} s on ${summary.workers} workers`,
    `  records read      ${summary.totals.recordsRead}`,
    `  invocations       ${summary.totals.invocations} (${Math.round(summary.totals.invocations / Math.max(seconds, 0.001))}/s), failed ${summary.totals.invocationsFailed}, handler errors ${summary.totals.handlerErrors}`,
    `  messages sent     ${summary.totals.messagesSent}, delayed ${summary.totals.delayedScheduled} (fired ${summary.totals.delayedFired})`,
    ...Object.entries(summary.egress).map(([name, count]) => `  egress ${name.padEnd(13)} ${count}`),
    `  latency           p50 ${summary.latency.p50Ms.toFixed(2)} ms, p95 ${summary.latency.p95Ms.toFixed(2)} ms, p99 ${summary.latency.p99Ms.toFixed(2)} ms`,
  ];
  if (summary.stateDir !== undefined) lines.push(`  state             ${summary.stateDir}`);
  return lines.join('\n');
}

export async function main(argv: string[]): Promise<void> {
  const program = new Command('eddy').description('Eddy: stateful functions on a dataflow engine').showHelpAfterError();
  program
    .command('run')
    .description('run a job module until its input is done (or Ctrl-C)')
    .argument('<job-module>', 'file that exports a job made with defineJob() (TypeScript runs directly)')
    .option('--workers <n>', 'worker threads', positiveInteger('--workers'))
    .option('--state-dir <dir>', 'folder for the state; run again with the same folder to continue')
    .option('--max-parallelism <n>', 'number of key groups (fixed for the life of the state)', positiveInteger('--max-parallelism'))
    .option('--input <ingress=file>', 'read a file ingress from this file (repeatable)', (value: string, all: string[]) => [...all, value], [])
    .option('--no-progress', 'no progress display')
    .action(async (moduleArg: string, flags: { workers?: number; stateDir?: string; maxParallelism?: number; input: string[]; progress: boolean }) => {
      const url = pathToFileURL(resolve(moduleArg)).href;
      let exports: Record<string, unknown>;
      try {
        exports = (await import(url)) as Record<string, unknown>;
      } catch (cause) {
        throw new EddyError('EDDY_INVALID_JOB', `cannot load job module ${moduleArg}: ${describeError(cause)}`, { cause });
      }
      const job = jobFromModule(exports, moduleArg);
      const inputs: Record<string, string> = {};
      for (const pair of flags.input) {
        const [name, file] = pair.split('=', 2);
        if (name === undefined || file === undefined || name === '' || file === '') {
          throw new EddyError('EDDY_INVALID_OPTION', `--input ${pair}: write it as <ingress name>=<file>`);
        }
        inputs[name] = resolve(file);
      }
      const handle = submit(job, {
        ...(flags.workers !== undefined && { workers: flags.workers }),
        ...(flags.stateDir !== undefined && { stateDir: resolve(flags.stateDir) }),
        ...(flags.maxParallelism !== undefined && { maxParallelism: flags.maxParallelism }),
        inputs,
      });
      if (flags.progress) showProgress(handle);
      let interrupted = 0;
      process.on('SIGINT', () => {
        if (++interrupted > 1) process.exit(130);
        process.stderr.write('\nstopping: finishing in-flight work and flushing state (Ctrl-C again to abort)\n');
        void handle.stop();
      });
      const summary = await handle.done;
      process.stdout.write(`${formatSummary(summary)}\n`);
    });
  await program.parseAsync(argv);
}
