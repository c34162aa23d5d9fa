/**
 * The `eddy` command line. `eddy run <job-module>` submits a job module (TypeScript or JavaScript)
 * with the engine's options, shows progress, stops cleanly on Ctrl-C, and prints a summary.
 * `eddy serve <job-module>` serves its functions to an Apache Flink StateFun cluster instead.
 */
import { existsSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Command, InvalidArgumentError } from 'commander';
import { inspectCheckpoint, jobCheckpointDirs, listCheckpoints } from './checkpoint/metadata.js';
import { describeError, EddyError } from './errors.js';
import { DEAD_LETTERS, type Job, jobFromModule } from './job.js';
import { DEFAULT_ADMIN_PORT, readableDeadLetter } from './runtime/admin-server.js';
import { type CheckpointInfo, type JobStatus, submit, type JobSummary } from './runtime/job-manager.js';
import { findJob, listJobs, runtimeDir } from './runtime/job-registry.js';
import { showProgress } from './runtime/progress.js';
import { statefunModuleYaml } from './statefun/module-yaml.js';
import { serveStatefun } from './statefun/server.js';
import { engineVersion } from './version.js';

export { readableDeadLetter };

function positiveInteger(name: string) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`${name} must be a positive integer`);
    return n;
  };
}

function nonNegativeInteger(name: string) {
  return (value: string): number => {
    const n = Number(value);
    if (value.trim() === '' || !Number.isInteger(n) || n < 0) throw new InvalidArgumentError(`${name} must be an integer >= 0`);
    return n;
  };
}

export function formatSummary(summary: JobSummary): string {
  const seconds = summary.uptimeMs / 1000;
  const lines = [
    `job ${summary.job} ended by ${summary.endedBy} after ${seconds.toFixed(1)} s on ${summary.workers} worker${summary.workers === 1 ? '' : 's'}`,
    `  records read      ${summary.totals.recordsRead}`,
    `  invocations       ${summary.totals.invocations} (${Math.round(summary.totals.invocations / Math.max(seconds, 0.001))}/s), failed ${summary.totals.invocationsFailed}, handler errors ${summary.totals.handlerErrors}`,
    `  messages sent     ${summary.totals.messagesSent}, delayed ${summary.totals.delayedScheduled} (fired ${summary.totals.delayedFired})`,
    ...Object.entries(summary.egress).map(([name, count]) => `  egress ${name.padEnd(13)} ${count}`),
    `  latency           p50 ${summary.latency.p50Ms.toFixed(2)} ms, p95 ${summary.latency.p95Ms.toFixed(2)} ms, p99 ${summary.latency.p99Ms.toFixed(2)} ms`,
  ];
  const t = summary.totals;
  if (t.transactionsCommitted + t.transactionsAborted + t.transactionsRetryable > 0) {
    lines.push(`  transactions      committed ${t.transactionsCommitted}, aborted ${t.transactionsAborted}, retryable ${t.transactionsRetryable} (deadlocks ${t.deadlocksFound}, lock-wait timeouts ${t.lockWaitTimeouts})`);
  }
  if (t.sagasSucceeded + t.sagasFailed > 0) {
    lines.push(`  sagas             succeeded ${t.sagasSucceeded}, failed and compensated ${t.sagasFailed}${t.compensationsAbandoned > 0 ? `, compensations abandoned ${t.compensationsAbandoned}` : ''}`);
  }
  if (summary.checkpoints.length > 0) {
    const last = summary.checkpoints.at(-1)!;
    lines.push(`  checkpoints       ${summary.checkpoints.length} (last: ${last.id}, ${last.bytes} bytes in ${last.durationMs} ms)`);
  }
  if (summary.restarts > 0) lines.push(`  restarts          ${summary.restarts} (restored from checkpoints after failures)`);
  if (summary.stateDir !== undefined) lines.push(`  state             ${summary.stateDir}`);
  return lines.join('\n');
}

interface RunFlags {
  workers?: number;
  stateDir?: string;
  maxParallelism?: number;
  checkpointDir?: string;
  checkpointIntervalMs?: number;
  tolerableCheckpointFailures?: number;
  restore?: string;
  maxFailures?: number;
  failureIntervalMs?: number;
  restartBackoffMs?: number;
  maxRestartBackoffMs?: number;
  restartBackoffResetMs?: number;
  connectorRetryDeadlineMs?: number;
  input: string[];
  show: number;
  progress: boolean;
  adminPort?: number;
  adminHost?: string;
  adminToken?: string;
  /** false with --no-admin. */
  admin: boolean;
}

function port(name: string) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < 0 || n > 65535) throw new InvalidArgumentError(`${name} must be a port number from 0 to 65535`);
    return n;
  };
}

/** `--topics in=a,b` (repeatable) into { in: ['a', 'b'] }. */
function collectTopics(value: string, previous: Record<string, string[]>): Record<string, string[]> {
  const at = value.indexOf('=');
  const topics = value.slice(at + 1).split(',').map((topic) => topic.trim()).filter((topic) => topic.length > 0);
  if (at <= 0 || topics.length === 0) throw new InvalidArgumentError(`--topics takes <ingress>=<topic>[,<topic>...], e.g. --topics requests=bank-requests; got ${JSON.stringify(value)}`);
  return { ...previous, [value.slice(0, at)]: topics };
}

/** How the commands that talk to a running job choose it. */
interface TargetFlags {
  admin?: string;
  job?: string;
  adminToken?: string;
}

/**
 * The job a command talks to: --admin <url>, else --job <name> (from the runtime folder, with its
 * token), else the only registered job, else 127.0.0.1:7077.
 */
function target(flags: TargetFlags): { base: string; token: string | undefined } {
  const token = flags.adminToken ?? (process.env.EDDY_ADMIN_TOKEN || undefined);
  if (flags.admin !== undefined) return { base: /^https?:\/\//.test(flags.admin) ? flags.admin : `http://${flags.admin}`, token };
  if (flags.job !== undefined) {
    const entry = findJob(flags.job);
    return { base: entry.url, token: token ?? entry.token };
  }
  const jobs = listJobs();
  if (jobs.length === 1) return { base: jobs[0]!.url, token: token ?? jobs[0]!.token };
  return { base: `http://127.0.0.1:${DEFAULT_ADMIN_PORT}`, token };
}

/** Calls the admin endpoint of a running job; a job that does not answer gets a message saying what to check. */
async function callAdmin(flags: TargetFlags, method: 'GET' | 'POST', path: string): Promise<Response> {
  const { base, token } = target(flags);
  let response: Response;
  try {
    response = await fetch(new URL(path, base), { method, ...(token !== undefined && { headers: { authorization: `Bearer ${token}` } }) });
  } catch (cause) {
    throw new EddyError(
      'EDDY_INVALID_OPTION',
      `no job answers at ${base}: is \`eddy run\` running? \`eddy jobs\` lists the running jobs; pick one with --job <name>, or pass the endpoint eddy run printed with --admin`,
      { cause },
    );
  }
  if (!response.ok) {
    const body = (await response.json().catch(() => ({}))) as { error?: string; code?: string };
    throw new EddyError(body.code === 'EDDY_ADMIN_UNAUTHORIZED' ? 'EDDY_ADMIN_UNAUTHORIZED' : 'EDDY_INVALID_OPTION', `${method} ${path} failed (${response.status}): ${body.error ?? response.statusText}`);
  }
  return response;
}

function parseRestore(value: string): 'latest' | number {
  if (value === 'latest') return 'latest';
  const id = Number(value);
  if (!Number.isInteger(id) || id < 1) throw new EddyError('EDDY_INVALID_OPTION', `--restore ${value}: give 'latest' or a checkpoint id (list them with eddy checkpoints --checkpoint-dir <dir>)`);
  return id;
}

/** Imports a job module and finds its job. */
async function loadJobModule(moduleArg: string): Promise<Job> {
  const url = pathToFileURL(resolve(moduleArg)).href;
  let exports: Record<string, unknown>;
  try {
    exports = (await import(url)) as Record<string, unknown>;
  } catch (cause) {
    throw new EddyError('EDDY_INVALID_JOB', `cannot load job module ${moduleArg}: ${describeError(cause)}`, { cause });
  }
  return jobFromModule(exports, moduleArg);
}

export async function main(argv: string[]): Promise<void> {
  const program = new Command('eddy').description('Eddy: stateful functions on a dataflow engine').version(engineVersion(), '-V, --version').showHelpAfterError();
  program
    .command('run')
    .description('run a job module until its input is done (or Ctrl-C)')
    .argument('<job-module>', 'file that exports a job made with defineJob() (TypeScript runs directly)')
    .option('--workers <n>', 'worker threads', positiveInteger('--workers'))
    .option('--state-dir <dir>', 'folder for the state; run again with the same folder to continue')
    .option('--max-parallelism <n>', 'number of key groups (fixed for the life of the state)', positiveInteger('--max-parallelism'))
    .option('--checkpoint-dir <dir>', 'folder for checkpoints: exactly-once output and recovery from failed workers')
    .option('--checkpoint-interval-ms <ms>', 'take a checkpoint this often', positiveInteger('--checkpoint-interval-ms'))
    .option('--tolerable-checkpoint-failures <n>', 'checkpoints that may fail in a row before the attempt fails and restores the last checkpoint (default 3)', nonNegativeInteger('--tolerable-checkpoint-failures'))
    .option('--restore <latest|id>', "start from a checkpoint of --checkpoint-dir ('latest' or an id); --workers may differ")
    .option('--max-failures <n>', 'restart strategy: failures (worker, sink, source) within --failure-interval-ms that restore the last checkpoint; one more fails the job (default 10)', nonNegativeInteger('--max-failures'))
    .option('--failure-interval-ms <ms>', 'restart strategy: the sliding window failures are counted in (default 60000)', positiveInteger('--failure-interval-ms'))
    .option('--restart-backoff-ms <ms>', 'restart strategy: pause before the first restore; it doubles while failures follow closely (default 100)', nonNegativeInteger('--restart-backoff-ms'))
    .option('--max-restart-backoff-ms <ms>', 'restart strategy: the pause never grows above this (default 5000)', nonNegativeInteger('--max-restart-backoff-ms'))
    .option('--restart-backoff-reset-ms <ms>', 'restart strategy: after this long without a failure the pause starts over (default 10000)', nonNegativeInteger('--restart-backoff-reset-ms'))
    .option('--connector-retry-deadline-ms <ms>', 'how long sources and sinks retry transient errors (broker down or stalled) before the attempt fails (default 60000)', positiveInteger('--connector-retry-deadline-ms'))
    .option('--input <ingress=file>', 'read a file ingress from this file (repeatable)', (value: string, all: string[]) => [...all, value], [])
    .option('--show <n>', 'at the end, print the first n records of each memory egress (dead letters always)', (v: string) => Number(v), 3)
    .option('--no-progress', 'no progress display')
    .option('--admin-port <port>', `port of the admin endpoint: web console, eddy checkpoint/status/stop/metrics (default ${DEFAULT_ADMIN_PORT}, or a free port when it is taken; 0: a free port)`, port('--admin-port'))
    .option('--admin-host <host>', 'interface of the admin endpoint (default 127.0.0.1); anything else requires --admin-token')
    .option('--admin-token <token>', 'secret every admin request must carry (default $EDDY_ADMIN_TOKEN); at least 16 characters')
    .option('--no-admin', 'no admin endpoint')
    .action(async (moduleArg: string, flags: RunFlags) => {
      const job = await loadJobModule(moduleArg);
      const inputs: Record<string, string> = {};
      for (const pair of flags.input) {
        const [name, file] = pair.split('=', 2);
        if (name === undefined || file === undefined || name === '' || file === '') {
          throw new EddyError('EDDY_INVALID_OPTION', `--input ${pair}: write it as <ingress name>=<file>`);
        }
        if (!existsSync(resolve(file))) throw new EddyError('EDDY_INVALID_OPTION', `--input ${pair}: there is no file ${resolve(file)}`);
        inputs[name] = resolve(file);
      }
      const handle = submit(job, {
        ...(flags.workers !== undefined && { workers: flags.workers }),
        ...(flags.stateDir !== undefined && { stateDir: resolve(flags.stateDir) }),
        ...(flags.maxParallelism !== undefined && { maxParallelism: flags.maxParallelism }),
        ...(flags.checkpointDir !== undefined && { checkpointDir: resolve(flags.checkpointDir) }),
        ...(flags.checkpointIntervalMs !== undefined && { checkpointIntervalMs: flags.checkpointIntervalMs }),
        ...(flags.tolerableCheckpointFailures !== undefined && { tolerableCheckpointFailures: flags.tolerableCheckpointFailures }),
        ...(flags.restore !== undefined && { restoreFrom: parseRestore(flags.restore) }),
        restartStrategy: {
          ...(flags.maxFailures !== undefined && { maxFailures: flags.maxFailures }),
          ...(flags.failureIntervalMs !== undefined && { intervalMs: flags.failureIntervalMs }),
          ...(flags.restartBackoffMs !== undefined && { initialBackoffMs: flags.restartBackoffMs }),
          ...(flags.maxRestartBackoffMs !== undefined && { maxBackoffMs: flags.maxRestartBackoffMs }),
          ...(flags.restartBackoffResetMs !== undefined && { backoffResetMs: flags.restartBackoffResetMs }),
        },
        ...(flags.connectorRetryDeadlineMs !== undefined && { connectorRetryDeadlineMs: flags.connectorRetryDeadlineMs }),
        ...(flags.admin && { adminPort: flags.adminPort ?? 'auto' }),
        ...(flags.adminHost !== undefined && { adminHost: flags.adminHost }),
        ...(flags.adminToken !== undefined && { adminToken: flags.adminToken }),
        inputs,
      });
      const adminUrl = await handle.adminUrl();
      if (adminUrl !== undefined) process.stderr.write(`admin endpoint: ${adminUrl} (web console at ${adminUrl}/; eddy status|checkpoint|stop|metrics --job ${job.name})\n`);
      const stopProgress = flags.progress ? showProgress(handle) : undefined;
      let interrupted = 0;
      // Ctrl-C and a plain `kill` stop cleanly; a second one aborts.
      const stopCleanly = (signal: NodeJS.Signals): void => {
        if (++interrupted > 1) process.exit(signal === 'SIGINT' ? 130 : 143);
        process.stderr.write(`\nstopping (${signal}): finishing in-flight work and flushing state (${signal} again to abort)\n`);
        void handle.stop();
      };
      process.on('SIGINT', stopCleanly);
      process.on('SIGTERM', stopCleanly);
      let summary: JobSummary;
      try {
        summary = await handle.done;
      } catch (error) {
        // Failed means over: the reason, and a non-zero exit now (kafkajs sockets, timers or the admin
        // endpoint must not keep a failed job's process looking alive).
        stopProgress?.();
        const code = error instanceof EddyError ? `${error.code}: ` : '';
        process.stderr.write(`eddy: job ${job.name} failed after ${handle.status().restarts} restarts: ${code}${error instanceof Error ? error.message : String(error)}\n`);
        process.exit(1);
      }
      process.stdout.write(`${formatSummary(summary)}\n`);
      for (const egress of job.egresses) {
        if (egress.kind !== 'memory') continue;
        const records = handle.output(egress.name);
        const show = egress.name === DEAD_LETTERS ? Math.max(flags.show, 10) : flags.show;
        if (records.length === 0 || show <= 0) continue;
        process.stdout.write(`${egress.name} (first ${Math.min(show, records.length)} of ${records.length}):\n`);
        for (const record of records.slice(0, show)) {
          process.stdout.write(`  ${JSON.stringify(egress.name === DEAD_LETTERS ? readableDeadLetter(job, record) : record)}\n`);
        }
      }
    });
  program
    .command('serve')
    .description('serve the functions of a job module as an Apache Flink StateFun 3.x remote-function endpoint (see docs/statefun.md)')
    .argument('<job-module>', 'file that exports a job made with defineJob() (TypeScript runs directly)')
    .requiredOption('--port <port>', 'port to listen on (0: a free one, printed at start)', port('--port'))
    .option('--host <host>', 'interface to listen on; 0.0.0.0 to be reachable from other machines', '127.0.0.1')
    .option('--path <path>', 'the path StateFun posts to (module.yaml urlPathTemplate)', '/statefun')
    .option('--workers <n>', 'worker threads running the handlers (0: on the HTTP thread; default: one per core)', nonNegativeInteger('--workers'))
    .action(async (moduleArg: string, flags: { port: number; host: string; path: string; workers?: number }) => {
      const job = await loadJobModule(moduleArg);
      const server = await serveStatefun(job, { port: flags.port, host: flags.host, path: flags.path, ...(flags.workers === undefined ? {} : { workers: flags.workers }) });
      process.stderr.write(`eddy serve: job ${job.name} (${[...job.functions.keys()].join(', ')}) at ${server.url}\n`);
      const stop = (signal: NodeJS.Signals): void => {
        process.stderr.write(`eddy serve: ${signal}: answering requests in flight, then exiting\n`);
        void server.close().then(() => {
          const m = server.metrics;
          process.stderr.write(`eddy serve: ${m.requests} requests (${m.handshakes} state handshakes), ${m.invocations} invocations, ${m.deadLetters} dead letters, ${m.failedRequests} failed\n`);
          process.exit(0);
        });
      };
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });
  program
    .command('statefun-module')
    .description('write the StateFun module.yaml that runs a job module behind eddy serve: endpoints, Kafka ingresses and egresses (see docs/statefun.md)')
    .argument('<job-module>', 'file that exports a job made with defineJob()')
    .requiredOption('--endpoint <url>', 'the URL StateFun calls, where eddy serve listens (e.g. http://eddy-host:8000/statefun)')
    .option('--brokers <host:port,...>', 'Kafka brokers as the StateFun cluster reaches them (default: the ones in the job)')
    .option('--topics <ingress=topic,...>', 'topics of an ingress that leaves them to submit-time inputs (repeat per ingress)', collectTopics, {} as Record<string, string[]>)
    .option('--call-timeout <duration>', 'StateFun\'s deadline for one call, retries included, before it fails the job', '2min')
    .option('-o, --out <file>', 'write to this file (default: standard output)')
    .action(async (moduleArg: string, flags: { endpoint: string; brokers?: string; topics: Record<string, string[]>; callTimeout: string; out?: string }) => {
      const job = await loadJobModule(moduleArg);
      const yaml = statefunModuleYaml(job, {
        endpoint: flags.endpoint,
        ...(flags.brokers === undefined ? {} : { brokers: flags.brokers.split(',').map((broker) => broker.trim()) }),
        topics: flags.topics,
        callTimeout: flags.callTimeout,
      });
      if (flags.out === undefined) process.stdout.write(yaml);
      else {
        writeFileSync(flags.out, yaml);
        process.stderr.write(`eddy statefun-module: wrote ${flags.out}\n`);
      }
    });
  program
    .command('checkpoints')
    .description('list the checkpoints of a checkpoint folder, per job, each verified (ok, or CORRUPT with the reason)')
    .requiredOption('--checkpoint-dir <dir>', 'the folder given to run --checkpoint-dir (or one job\'s folder in it)')
    .option('--job <name>', 'only this job\'s checkpoints')
    .action((flags: { checkpointDir: string; job?: string }) => {
      const dir = resolve(flags.checkpointDir);
      const folders = jobCheckpointDirs(dir).filter(({ job }) => flags.job === undefined || job === flags.job);
      const entries = folders.flatMap(({ folder }) => listCheckpoints(folder).map((id) => ({ folder, entry: inspectCheckpoint(folder, id) })));
      if (entries.length === 0) {
        process.stdout.write(`no complete checkpoint${flags.job === undefined ? '' : ` of job ${flags.job}`} in ${dir}\n`);
        return;
      }
      // One line per checkpoint, corrupt ones included (with the reason), never stopping part-way.
      process.stdout.write('job\tid\tstatus\tworkers\tbytes\tduration ms\tcompleted\tfolder\n');
      for (const { folder, entry } of entries) {
        const job = folders.find((f) => f.folder === folder)?.job ?? '?';
        if (entry.error !== undefined) {
          process.stdout.write(`${job}\t${entry.id}\tCORRUPT\t-\t-\t-\t-\t${folder}\n  ${entry.error.code}: ${entry.error.message}\n`);
          continue;
        }
        const m = entry.metadata;
        process.stdout.write(`${m.job}\t${entry.id}\tok\t${m.workers}\t${m.bytes}\t${m.durationMs}\t${new Date(m.completedAt).toISOString()}\t${folder}\n`);
      }
    });
  // Commands that talk to a running job: --job <name>, or --admin <host:port>; with one job running, neither.
  const targeted = (command: Command): Command =>
    command
      .option('--job <name>', 'the running job of this name (or pid), as eddy jobs lists it')
      .option('--admin <host:port>', `admin endpoint of the running job, as eddy run printed it (default: the only running job, else 127.0.0.1:${DEFAULT_ADMIN_PORT})`)
      .option('--admin-token <token>', 'the admin token, when the job requires one (default $EDDY_ADMIN_TOKEN, or the one registered by the job)');
  program
    .command('jobs')
    .description('list the jobs running on this machine for this user (with an admin endpoint)')
    .action(() => {
      const jobs = listJobs();
      if (jobs.length === 0) {
        process.stdout.write(`no running job is registered in ${runtimeDir()}\n`);
        return;
      }
      process.stdout.write('job\tpid\tadmin\tstarted\n');
      for (const entry of jobs) process.stdout.write(`${entry.job}\t${entry.pid}\t${entry.url}\t${new Date(entry.startedAt).toISOString()}\n`);
    });
  targeted(program.command('checkpoint').description('take a checkpoint of a running job now; prints its id, duration and size'))
    .action(async (flags: TargetFlags) => {
      const info = (await (await callAdmin(flags, 'POST', '/checkpoint')).json()) as CheckpointInfo;
      process.stdout.write(`checkpoint ${info.id} complete: ${info.bytes} bytes in ${info.durationMs} ms\n`);
    });
  targeted(program.command('status').description('where a running job stands: state, workers, restarts, checkpoints'))
    .action(async (flags: TargetFlags) => {
      const status = (await (await callAdmin(flags, 'GET', '/status')).json()) as JobStatus;
      const last = status.checkpoints.at(-1);
      process.stdout.write(
        [
          `job ${status.job}: ${status.state} for ${(status.uptimeMs / 1000).toFixed(1)} s on ${status.workers} workers, ${status.restarts} restarts`,
          `checkpoints: ${status.checkpointsCompleted} this run${status.checkpointsAborted > 0 ? ` (${status.checkpointsAborted} aborted)` : ''}${last === undefined ? '' : `, last: ${last.id}, ${last.bytes} bytes in ${last.durationMs} ms`}${status.checkpointDir === undefined ? ', no checkpoint dir' : ` in ${status.checkpointDir}`}`,
        ].join('\n') + '\n',
      );
    });
  targeted(program.command('stop').description('stop a running job cleanly (in-flight work finishes, state is flushed); prints its summary'))
    .action(async (flags: TargetFlags) => {
      const summary = (await (await callAdmin(flags, 'POST', '/stop')).json()) as JobSummary;
      process.stdout.write(`${formatSummary(summary)}\n`);
    });
  targeted(program.command('metrics').description("print a running job's metrics in Prometheus text format (what GET /metrics serves)"))
    .action(async (flags: TargetFlags) => {
      process.stdout.write(await (await callAdmin(flags, 'GET', '/metrics')).text());
    });
  targeted(
    program
      .command('state')
      .description('one function instance of a running job: its declared state (decoded), mailbox depth and transaction hold, as JSON; without an id, the instances whose ids start with --prefix')
      .option('--prefix <p>', 'list the instances whose ids start with this (without an id)')
      .option('--limit <n>', 'list at most this many, in id order (1-10000, default 100)', positiveInteger('--limit')),
  )
    .argument('<type>', 'function type, namespace/name')
    .argument('[id]', 'instance id (omit to list instances)')
    .action(async (type: string, id: string | undefined, flags: TargetFlags & { prefix?: string; limit?: number }) => {
      const base = `/state/${type.split('/').map(encodeURIComponent).join('/')}`;
      if (id !== undefined && (flags.prefix !== undefined || flags.limit !== undefined)) {
        throw new EddyError('EDDY_INVALID_OPTION', '--prefix and --limit list instances: give them without an id, or give only the id');
      }
      const query = new URLSearchParams({ ...(flags.prefix === undefined ? {} : { prefix: flags.prefix }), ...(flags.limit === undefined ? {} : { limit: String(flags.limit) }) });
      const path = id === undefined ? `${base}?${query.toString()}` : `${base}/${encodeURIComponent(id)}`;
      process.stdout.write(`${JSON.stringify(await (await callAdmin(flags, 'GET', path)).json(), null, 2)}\n`);
    });
  await program.parseAsync(argv);
}
