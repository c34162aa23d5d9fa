/**
 * The `eddy` command line. `eddy run <job-module>` submits a job module (TypeScript or JavaScript)
 * with the engine's options, shows progress, stops cleanly on Ctrl-C, and prints a summary.
 */
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Command, InvalidArgumentError } from 'commander';
import { listCheckpoints, readMetadata } from './checkpoint/metadata.js';
import { describeError, EddyError } from './errors.js';
import { DEAD_LETTERS, jobFromModule } from './job.js';
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
  if (summary.checkpoints.length > 0) {
    const last = summary.checkpoints.at(-1)!;
    lines.push(`  checkpoints       ${summary.checkpoints.length} (last: ${last.id}, ${last.bytes} bytes in ${last.durationMs} ms)`);
  }
  if (summary.restarts > 0) lines.push(`  restarts          ${summary.restarts} (restored from checkpoints after worker failures)`);
  if (summary.stateDir !== undefined) lines.push(`  state             ${summary.stateDir}`);
  return lines.join('\n');
}

interface RunFlags {
  workers?: number;
  stateDir?: string;
  maxParallelism?: number;
  checkpointDir?: string;
  checkpointIntervalMs?: number;
  restore?: string;
  input: string[];
  show: number;
  progress: boolean;
}

function parseRestore(value: string): 'latest' | number {
  if (value === 'latest') return 'latest';
  const id = Number(value);
  if (!Number.isInteger(id) || id < 1) throw new EddyError('EDDY_INVALID_OPTION', `--restore ${value}: give 'latest' or a checkpoint id (list them with eddy checkpoints --checkpoint-dir <dir>)`);
  return id;
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
    .option('--checkpoint-dir <dir>', 'folder for checkpoints: exactly-once output and recovery from failed workers')
    .option('--checkpoint-interval-ms <ms>', 'take a checkpoint this often', positiveInteger('--checkpoint-interval-ms'))
    .option('--restore <latest|id>', "start from a checkpoint of --checkpoint-dir ('latest' or an id); --workers may differ")
    .option('--input <ingress=file>', 'read a file ingress from this file (repeatable)', (value: string, all: string[]) => [...all, value], [])
    .option('--show <n>', 'at the end, print the first n records of each memory egress (dead letters always)', (v: string) => Number(v), 3)
    .option('--no-progress', 'no progress display')
    .action(async (moduleArg: string, flags: RunFlags) => {
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
        ...(flags.checkpointDir !== undefined && { checkpointDir: resolve(flags.checkpointDir) }),
        ...(flags.checkpointIntervalMs !== undefined && { checkpointIntervalMs: flags.checkpointIntervalMs }),
        ...(flags.restore !== undefined && { restoreFrom: parseRestore(flags.restore) }),
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
      for (const egress of job.egresses) {
        if (egress.kind !== 'memory') continue;
        const records = handle.output(egress.name);
        const show = egress.name === DEAD_LETTERS ? Math.max(flags.show, 10) : flags.show;
        if (records.length === 0 || show <= 0) continue;
        process.stdout.write(`${egress.name} (first ${Math.min(show, records.length)} of ${records.length}):\n`);
        for (const record of records.slice(0, show)) process.stdout.write(`  ${JSON.stringify(record)}\n`);
      }
    });
  program
    .command('checkpoints')
    .description('list the complete checkpoints of a checkpoint folder')
    .requiredOption('--checkpoint-dir <dir>', 'the folder given to run --checkpoint-dir')
    .action((flags: { checkpointDir: string }) => {
      const dir = resolve(flags.checkpointDir);
      const ids = listCheckpoints(dir);
      if (ids.length === 0) {
        process.stdout.write(`no complete checkpoint in ${dir}\n`);
        return;
      }
      process.stdout.write('id\tjob\tworkers\tbytes\tduration ms\tcompleted\n');
      for (const id of ids) {
        const m = readMetadata(dir, id);
        process.stdout.write(`${id}\t${m.job}\t${m.workers}\t${m.bytes}\t${m.durationMs}\t${new Date(m.completedAt).toISOString()}\n`);
      }
    });
  await program.parseAsync(argv);
}
