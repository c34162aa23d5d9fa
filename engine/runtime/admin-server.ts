import { timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { Counter, Gauge, Registry } from 'prom-client';
import { describeError, EddyError } from '../errors.js';
import { type ConnectorMetric, DEAD_LETTERS, type Job } from '../job.js';
import { engineVersion } from '../version.js';
import type { CheckpointAbortCause, JobHandle, JobMetrics, JobStatus, LatencySummary } from './job-manager.js';
import { registerJob } from './job-registry.js';
import { HANDLER_BUCKETS_MS } from './worker-stats.js';

/** The port `'auto'` tries first; `eddy status` and the other commands look there without --admin or --job. */
export const DEFAULT_ADMIN_PORT = 7077;

export interface AdminConfig {
  /** A port, 0 for a free one, or 'auto': DEFAULT_ADMIN_PORT, or a free one when it is taken. */
  port: number | 'auto';
  host: string;
  /** Required on every request when set. */
  token: string | undefined;
  job: Job;
  /** Ingress-to-sink latency since the previous call (the console's latency chart). */
  latencyWindow: () => LatencySummary;
  feedbackHighWaterMark: number;
}

/**
 * The admin endpoint of a running job, on loopback unless `adminHost` says otherwise (it can stop the
 * job, so any other interface requires a token):
 *
 *   GET  /            the web console (engine/console/)
 *   GET  /console     what the console shows, once, as JSON; GET /events streams it (Server-Sent Events)
 *   GET  /status      the job's state, restarts and checkpoints, as JSON
 *   GET  /locks       the longest current lock waits of 2PC transactions (the wait-for graph's edges), as JSON
 *   GET  /state/<namespace>/<name>/<id>  one function instance's state, mailbox and transaction hold
 *   GET  /state/<namespace>/<name>?prefix=<p>&limit=<n>  the instances whose ids start with p, each as above
 *   GET  /metrics     Prometheus text format
 *   POST /checkpoint  takes a checkpoint; answers with its id, duration and size when it is complete
 *   POST /stop        stops the job; answers with its summary when it has ended
 *
 * `eddy checkpoint|status|stop|metrics` are its clients. While it listens, the job is registered in
 * the per-user runtime folder (`eddy jobs`).
 */
export class AdminServer {
  private constructor(
    private readonly server: Server,
    readonly url: string,
    private readonly console: ConsoleFeed,
    private readonly unregister: () => void,
  ) {}

  static async start(handle: JobHandle, config: AdminConfig): Promise<AdminServer> {
    const metrics = new JobMetricsRegistry(handle);
    const feed = new ConsoleFeed(handle, config);
    const server = createServer((request, response) => {
      if (!authorised(config.token, request, response)) {
        reply(response, 401, { code: 'EDDY_ADMIN_UNAUTHORIZED', error: 'this admin endpoint requires its token: send `Authorization: Bearer <token>` (eddy --admin-token, or $EDDY_ADMIN_TOKEN), or open the console as /?token=<token>' });
        return;
      }
      void route(handle, metrics, feed, request, response).catch((error: unknown) => reply(response, 500, { error: describeError(error) }));
    });
    const listen = (port: number): Promise<void> =>
      new Promise<void>((resolve, reject) => {
        const onError = (error: NodeJS.ErrnoException): void => reject(error);
        server.once('error', onError);
        server.listen(port, config.host, () => {
          server.off('error', onError);
          resolve();
        });
      });
    const port = config.port === 'auto' ? DEFAULT_ADMIN_PORT : config.port;
    try {
      await listen(port).catch((error: NodeJS.ErrnoException) => {
        // Several jobs on one machine: the second takes a free port (`eddy jobs` says which).
        if (config.port === 'auto' && error.code === 'EADDRINUSE') return listen(0);
        throw error;
      });
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      throw new EddyError(
        'EDDY_INVALID_OPTION',
        code === 'EADDRINUSE'
          ? `options.adminPort: port ${port} on ${config.host} is in use; pick another port, or 0 for a free one (eddy run --admin-port 0)`
          : `options.adminPort: cannot listen on ${config.host}:${port}: ${describeError(error)}`,
        { cause: error },
      );
    }
    // Keep-alive connections of clients must not hold the process open once the job has ended.
    server.unref();
    const { port: bound } = server.address() as AddressInfo;
    const host = config.host.includes(':') ? `[${config.host}]` : config.host === '0.0.0.0' ? '127.0.0.1' : config.host;
    const url = `http://${host}:${bound}`;
    const unregister = registerJob({ job: handle.job, pid: process.pid, url, startedAt: Date.now(), ...(config.token !== undefined && { token: config.token }) });
    return new AdminServer(server, url, feed, unregister);
  }

  close(): Promise<void> {
    this.unregister();
    this.console.close();
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      this.server.closeIdleConnections();
      // A response still being written (POST /stop's summary) gets a moment; then every connection ends.
      setTimeout(() => this.server.closeAllConnections(), 1000).unref();
    });
  }
}

/** The cookie the console gets once opened with ?token=, so its script and event stream carry the token too. */
const TOKEN_COOKIE = 'eddy_admin_token';

/** Whether a request carries the token: a bearer header, `?token=`, or the console's cookie. */
function authorised(token: string | undefined, request: IncomingMessage, response: ServerResponse): boolean {
  if (token === undefined) return true;
  const header = request.headers.authorization;
  const query = new URL(request.url ?? '/', 'http://x').searchParams.get('token');
  const cookie = /(?:^|;\s*)eddy_admin_token=([^;]*)/.exec(request.headers.cookie ?? '')?.[1];
  const given = header?.startsWith('Bearer ') === true ? header.slice(7) : (query ?? (cookie === undefined ? undefined : decodeURIComponent(cookie)));
  if (given === undefined) return false;
  const a = Buffer.from(given);
  const b = Buffer.from(token);
  if (a.length !== b.length || !timingSafeEqual(a, b)) return false;
  if (query !== null) response.setHeader('set-cookie', `${TOKEN_COOKIE}=${encodeURIComponent(token)}; HttpOnly; SameSite=Strict; Path=/`);
  return true;
}

/** The console's files: plain HTML and one script module, read once. */
const CONSOLE_DIR = join(import.meta.dirname, '..', 'console');
const consoleFiles = new Map<string, { type: string; body?: Buffer }>([
  ['/', { type: 'text/html; charset=utf-8' }],
  ['/console.mjs', { type: 'text/javascript; charset=utf-8' }],
]);

function consoleFile(path: string): { type: string; body: Buffer } | undefined {
  const file = consoleFiles.get(path);
  if (file === undefined) return undefined;
  file.body ??= readFileSync(join(CONSOLE_DIR, path === '/' ? 'index.html' : path.slice(1)));
  return { type: file.type, body: file.body };
}

async function route(handle: JobHandle, metrics: JobMetricsRegistry, feed: ConsoleFeed, request: IncomingMessage, response: ServerResponse): Promise<void> {
  const requestUrl = new URL(request.url ?? '/', 'http://127.0.0.1');
  const path = requestUrl.pathname;
  const query = requestUrl.searchParams;
  const endpoint = `${request.method ?? 'GET'} ${path}`;
  const file = request.method === 'GET' ? consoleFile(path) : undefined;
  if (file !== undefined) {
    response.writeHead(200, { 'content-type': file.type, 'cache-control': 'no-cache' });
    response.end(file.body);
    return;
  }
  if (request.method === 'GET' && path.startsWith('/state/')) {
    // /state/<namespace>/<name>/<id>: one instance; /state/<namespace>/<name>?prefix=&limit=: a listing.
    // Function types are namespace/name without further slashes, so the segment count tells which.
    const segments = path.slice('/state/'.length).split('/').map(decodeURIComponent);
    if (segments.length < 2 || segments.length > 3 || segments.some((segment) => segment === '')) {
      return reply(response, 404, { error: `GET ${path}: ask for GET /state/<namespace>/<name>/<id>, or GET /state/<namespace>/<name>?prefix=<p>&limit=<n> to list instances` });
    }
    const type = `${segments[0]}/${segments[1]}`;
    try {
      if (segments.length === 3) return reply(response, 200, await handle.state(type, segments[2]!));
      const limit = query.get('limit');
      return reply(response, 200, await handle.states(type, { prefix: query.get('prefix') ?? '', ...(limit === null ? {} : { limit: Number(limit) }) }));
    } catch (error) {
      const code = (error as EddyError).code;
      return reply(response, code === 'EDDY_UNKNOWN_FUNCTION_TYPE' ? 404 : code === 'EDDY_INVALID_OPTION' ? 400 : 409, { error: describeError(error), code });
    }
  }
  switch (endpoint) {
    case 'GET /status':
      return reply(response, 200, handle.status());
    case 'GET /metrics':
      response.writeHead(200, { 'content-type': metrics.registry.contentType });
      response.end(await metrics.render());
      return;
    case 'GET /console':
      return reply(response, 200, await feed.snapshot());
    case 'GET /locks': {
      const { totals, lockWaits } = await handle.metrics();
      return reply(response, 200, { waits: lockWaits, locksHeld: totals.locksHeld, transactionsRunning: totals.transactionsRunning, deadlocksFound: totals.deadlocksFound });
    }
    case 'GET /events':
      return feed.subscribe(response);
    case 'POST /checkpoint':
      try {
        return reply(response, 200, await handle.checkpoint());
      } catch (error) {
        return reply(response, 409, { error: describeError(error), code: (error as EddyError).code });
      }
    case 'POST /stop':
      try {
        return reply(response, 200, await handle.stop());
      } catch (error) {
        return reply(response, 500, { error: `the job failed: ${describeError(error)}` });
      }
    default:
      return reply(response, 404, { error: `no ${endpoint}; try GET / (the console), GET /status, GET /metrics, POST /checkpoint or POST /stop` });
  }
}

function reply(response: ServerResponse, status: number, body: unknown): void {
  response.writeHead(status, { 'content-type': 'application/json' });
  response.end(`${JSON.stringify(body)}\n`);
}

/**
 * A dead letter as people read it: its message decoded by the target function's codec (`payload`)
 * instead of base64, when the codec can decode it.
 */
export function readableDeadLetter(job: Job, letter: unknown): unknown {
  const { payloadBase64, ...rest } = letter as { payloadBase64?: unknown; target?: { type?: unknown } };
  const type = rest.target?.type;
  const fn = typeof type === 'string' ? job.functions.get(type) : undefined;
  if (typeof payloadBase64 !== 'string' || fn === undefined) return letter;
  try {
    return { ...rest, payload: fn.codec.decode(Buffer.from(payloadBase64, 'base64')) };
  } catch {
    return letter;
  }
}

/** One sample of the console's charts. */
interface ConsoleSample {
  /** Wall-clock ms. */
  at: number;
  /** Per second since the previous sample. */
  recordsIn: number;
  invocations: number;
  egressRecords: number;
  latencyP50Ms: number;
  latencyP99Ms: number;
}

/** Samples the console keeps: five minutes at one a second. */
const HISTORY = 300;
const SAMPLE_MS = 1000;
/** Dead letters the console shows. */
const DEAD_LETTERS_SHOWN = 20;

/**
 * What the web console shows, sampled once a second while a console is connected (nothing runs
 * while none is): the job's metrics and status, the last five minutes of rates, dead letters.
 */
class ConsoleFeed {
  private readonly samples: ConsoleSample[] = [];
  private previous: { at: number; totals: JobMetrics['totals'] } | undefined;
  private readonly clients = new Set<ServerResponse>();
  private timer: NodeJS.Timeout | undefined;
  private latest: Promise<unknown> | undefined;

  constructor(
    private readonly handle: JobHandle,
    private readonly config: AdminConfig,
  ) {}

  async snapshot(): Promise<unknown> {
    const metrics = await this.handle.metrics();
    this.sample(metrics);
    const status = this.handle.status();
    return {
      version: engineVersion(),
      at: Date.now(),
      job: this.handle.job,
      graph: {
        ingresses: this.config.job.ingresses.map((ingress) => ingress.name),
        egresses: this.config.job.egresses.map((egress) => egress.name),
        functions: [...this.config.job.functions].map(([type, fn]) => ({ type, kind: fn.kind })),
        feedbackHighWaterMark: this.config.feedbackHighWaterMark,
      },
      status,
      metrics,
      samples: this.samples,
      deadLetters: this.deadLetters(),
    };
  }

  private sample(metrics: JobMetrics): void {
    const now = Date.now();
    const previous = this.previous;
    // At most one sample a second, however many consoles ask.
    if (previous !== undefined && now - previous.at < SAMPLE_MS * 0.9) return;
    this.previous = { at: now, totals: metrics.totals };
    if (previous === undefined) return;
    const seconds = (now - previous.at) / 1000;
    // A restore starts the workers' counts again: a negative difference is a reset, not a rate.
    const rate = (key: 'recordsRead' | 'invocations' | 'egressRecords'): number => Math.max(0, metrics.totals[key] - previous.totals[key]) / seconds;
    const latency = this.config.latencyWindow();
    this.samples.push({ at: now, recordsIn: rate('recordsRead'), invocations: rate('invocations'), egressRecords: rate('egressRecords'), latencyP50Ms: latency.p50Ms, latencyP99Ms: latency.p99Ms });
    if (this.samples.length > HISTORY) this.samples.shift();
  }

  private deadLetters(): { total: number; latest: unknown[] } {
    if (this.config.job.egresses.find((egress) => egress.name === DEAD_LETTERS)?.kind !== 'memory') return { total: 0, latest: [] };
    const all = this.handle.output(DEAD_LETTERS);
    return { total: all.length, latest: all.slice(-DEAD_LETTERS_SHOWN).reverse().map((letter) => readableDeadLetter(this.config.job, letter)) };
  }

  /** Server-Sent Events: the snapshot now, then once a second until the client leaves. */
  subscribe(response: ServerResponse): void {
    response.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
    this.clients.add(response);
    response.on('close', () => {
      this.clients.delete(response);
      if (this.clients.size === 0 && this.timer !== undefined) {
        clearInterval(this.timer);
        this.timer = undefined;
      }
    });
    void this.push([response]);
    this.timer ??= setInterval(() => void this.push([...this.clients]), SAMPLE_MS);
    this.timer.unref();
  }

  private async push(clients: ServerResponse[]): Promise<void> {
    // A slow metrics round trip never stacks up requests to the workers.
    if (this.latest !== undefined) return;
    this.latest = this.snapshot();
    try {
      const data = `data: ${JSON.stringify(await this.latest)}\n\n`;
      for (const client of clients) client.write(data);
    } catch {
      // The job ended meanwhile: the next tick (if any client stays) tries again.
    } finally {
      this.latest = undefined;
    }
  }

  close(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    for (const client of this.clients) client.end();
    this.clients.clear();
  }
}

type Totals = JobMetrics['totals'];

/** Counters that grow over the job's life, as Prometheus counters; the rest are gauges. */
const COUNTERS: ReadonlyArray<[keyof Totals, string, string?]> = [
  ['recordsRead', 'records read from ingresses (per ingress-router: one per worker)'],
  ['envelopesRouted', 'envelopes routed by ingress-routers'],
  ['invocations', 'function invocations'],
  ['invocationsFailed', 'invocations that threw InvocationFailed'],
  ['handlerErrors', 'invocations whose handler threw another error (dead-lettered)'],
  ['deadLetters', 'records sent to the dead-letter egress'],
  ['egressRecords', 'records produced for egresses'],
  ['messagesSent', 'messages sent between functions'],
  ['delayedScheduled', 'delayed messages scheduled'],
  ['delayedFired', 'delayed messages delivered'],
  ['feedbackHeldForCheckpoint', 'feedback envelopes held because their checkpoint barrier came before this worker\'s snapshot'],
  ['transactionsCommitted', '2PC transactions committed'],
  ['transactionsAborted', '2PC transactions aborted because a participant failed'],
  ['transactionsRetryable', '2PC transactions ended as retryable (deadlock victims, lock-wait timeouts)'],
  ['deadlocksFound', 'deadlock cycles broken'],
  ['lockWaitTimeouts', '2PC transactions ended as retryable after waiting longer than their lockWaitTimeoutMs'],
  ['locksReleased', 'participant locks released'],
  // Held in ms by the workers, exported in seconds as Prometheus prefers.
  ['lockHoldMsTotal', 'time participant locks were held, summed', 'eddy_lock_hold_seconds_total'],
  ['sagasSucceeded', 'sagas that succeeded'],
  ['sagasFailed', 'sagas that failed (and compensated)'],
  ['compensationsFailed', 'saga compensations that failed (each is retried)'],
  ['compensationsAbandoned', 'saga compensations given up after their last attempt (dead-lettered)'],
  ['staleProtocolMessages', 'late votes, stale probes and other protocol messages ignored'],
];
const GAUGES: ReadonlyArray<[keyof Totals, string]> = [
  ['mailboxDepth', 'envelopes waiting behind a running invocation of their address'],
  ['feedbackBacklog', 'feedback envelopes taken in and not yet run'],
  ['stateCacheDirty', 'state entries written and not yet flushed to LevelDB'],
  ['transactionsRunning', 'two-phase-commit transactions running in coordinators'],
  ['transactionLimit', 'transactions a worker starts at once now (maxTransactionsPerWorker, less under lock contention)'],
  ['sagasRunning', 'sagas running in coordinators (at most maxSagasPerWorker per worker)'],
  ['transactionsWaiting', 'requests to coordinators waiting for a slot of their protocol'],
  ['locksHeld', 'participant instances locked by a transaction'],
  ['heapUsedBytes', 'V8 heap in use by the worker thread, bytes'],
  ['stateBytesOnDisk', 'size of the worker\'s LevelDB folder on disk, bytes'],
];
const ABORT_CAUSES: readonly CheckpointAbortCause[] = ['declined', 'timeout', 'output', 'metadata', 'interrupted'];

const snake = (name: string): string => name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);

/** The job's metrics for Prometheus; read from the workers once per scrape. */
class JobMetricsRegistry {
  readonly registry = new Registry();
  private readonly counters = new Map<keyof Totals, Counter<'worker'>>();
  private readonly gauges = new Map<keyof Totals, Gauge<'worker'>>();
  private readonly egress: Counter<'egress'>;
  private readonly latency: Gauge<'quantile'>;
  private readonly latencyMax: Gauge;
  private readonly checkpoints: Counter;
  private readonly checkpointsFailed: Counter<'cause'>;
  private readonly checkpointsAborted: Counter<'cause'>;
  private readonly checkpointAge: Gauge;
  private readonly checkpointDuration: Gauge;
  private readonly checkpointBytes: Gauge;
  private readonly unpublished: Gauge;
  private readonly restarts: Counter;
  private readonly lastRecovery: Gauge;
  private readonly routerBlocked: Counter<'worker' | 'reason'>;
  private readonly eventLoop: Gauge<'worker'>;
  private readonly fnCounters: Array<[Counter<'function'>, (m: FunctionTotals) => number]>;
  private readonly handlerTime: HandlerHistogram;

  constructor(private readonly handle: JobHandle) {
    const registers = [this.registry];
    for (const [key, help, name] of COUNTERS) {
      this.counters.set(key, new Counter({ name: name ?? `eddy_${snake(key)}_total`, help: `Eddy: ${help}`, labelNames: ['worker'], registers }));
    }
    for (const [key, help] of GAUGES) {
      this.gauges.set(key, new Gauge({ name: `eddy_${snake(key)}`, help: `Eddy: ${help}`, labelNames: ['worker'], registers }));
    }
    const counter = <L extends string>(name: string, help: string, labelNames: L[] = []): Counter<L> => new Counter({ name, help: `Eddy: ${help}`, labelNames, registers });
    const gauge = <L extends string>(name: string, help: string, labelNames: L[] = []): Gauge<L> => new Gauge({ name, help: `Eddy: ${help}`, labelNames, registers });
    this.egress = counter('eddy_egress_records_received_total', 'records received by the sinks, per egress', ['egress']);
    this.latency = gauge('eddy_latency_seconds', 'ingress to sink latency quantiles (never above eddy_latency_max_seconds)', ['quantile']);
    this.latencyMax = gauge('eddy_latency_max_seconds', 'largest ingress to sink latency');
    this.checkpoints = counter('eddy_checkpoints_completed_total', 'checkpoints completed by this run');
    this.checkpointsFailed = counter('eddy_checkpoints_failed_total', 'checkpoints that failed (counted against tolerableCheckpointFailures), per cause: declined, timeout, output, metadata', ['cause']);
    this.checkpointsAborted = counter('eddy_checkpoints_aborted_total', 'checkpoints aborted, per cause: the failure causes, and interrupted (a worker failed or the job ended)', ['cause']);
    this.checkpointAge = gauge('eddy_seconds_since_last_checkpoint', 'seconds since the last complete checkpoint of this run (since the start before the first); absent without checkpointDir');
    this.checkpointDuration = gauge('eddy_last_checkpoint_duration_seconds', 'duration of the last completed checkpoint');
    this.checkpointBytes = gauge('eddy_last_checkpoint_bytes', 'size of the last completed checkpoint');
    this.unpublished = gauge('eddy_unpublished_epochs', 'completed checkpoints whose output a sink has not published yet');
    this.restarts = counter('eddy_restarts_total', 'restores after worker failures');
    this.lastRecovery = gauge('eddy_last_recovery_timestamp_seconds', 'Unix time of the last restore or restart (0: none)');
    this.routerBlocked = counter('eddy_router_blocked_seconds_total', 'time the ingress-router could not read: a destination had no credits (reason="credits"), or feedback was past its high-water mark (reason="feedback")', ['worker', 'reason']);
    this.eventLoop = gauge('eddy_worker_event_loop_utilization', 'share of the last second the worker thread\'s event loop was busy (0 to 1)', ['worker']);
    this.fnCounters = [
      [counter('eddy_function_invocations_total', 'invocations per function type', ['function']), (m) => m.invocations],
      [counter('eddy_function_failures_total', 'invocations that threw, per function type', ['function']), (m) => m.failures],
      [counter('eddy_function_state_reads_total', 'reads of declared state, per function type', ['function']), (m) => m.stateReads],
      [counter('eddy_function_state_writes_total', 'writes of declared state, per function type', ['function']), (m) => m.stateWrites],
      [counter('eddy_function_state_cache_misses_total', 'state reads that missed the cache and read LevelDB, per function type', ['function']), (m) => m.stateCacheMisses],
    ];
    this.handlerTime = new HandlerHistogram('eddy_function_handler_seconds', 'Eddy: handler time per function type, from the call to its promise settling');
    this.registry.registerMetric(this.handlerTime as never);
    new Gauge({ name: 'eddy_build_info', help: 'Eddy: the engine version', labelNames: ['version'], registers }).set({ version: engineVersion() }, 1);
    this.registry.setDefaultLabels({ job: handle.job });
  }

  async render(): Promise<string> {
    const metrics = await this.handle.metrics();
    const functions = new Map<string, FunctionTotals>();
    for (const worker of metrics.perWorker) {
      const labels = { worker: String(worker.worker) };
      for (const [key, counter] of this.counters) this.setCounter(counter, key === 'lockHoldMsTotal' ? worker[key] / 1000 : worker[key], labels);
      for (const [key, gauge] of this.gauges) gauge.set(labels, worker[key]);
      this.setCounter(this.routerBlocked, worker.routerBlockedOnCreditsMs / 1000, { ...labels, reason: 'credits' });
      this.setCounter(this.routerBlocked, worker.routerBlockedOnFeedbackMs / 1000, { ...labels, reason: 'feedback' });
      this.eventLoop.set(labels, worker.eventLoopUtilization);
      for (const [type, m] of Object.entries(worker.functions)) {
        const sum = functions.get(type) ?? { invocations: 0, failures: 0, stateReads: 0, stateWrites: 0, stateCacheMisses: 0, handlerBuckets: m.handlerBuckets.map(() => 0), handlerMsSum: 0 };
        for (const key of ['invocations', 'failures', 'stateReads', 'stateWrites', 'stateCacheMisses', 'handlerMsSum'] as const) sum[key] += m[key];
        m.handlerBuckets.forEach((count, i) => (sum.handlerBuckets[i]! += count));
        functions.set(type, sum);
      }
    }
    for (const [type, sum] of functions) {
      for (const [counter, value] of this.fnCounters) this.setCounter(counter, value(sum), { function: type });
    }
    this.handlerTime.set(functions);
    for (const [name, count] of Object.entries(metrics.egress)) this.setCounter(this.egress, count, { egress: name });
    for (const [quantile, ms] of [['0.5', metrics.latency.p50Ms], ['0.95', metrics.latency.p95Ms], ['0.99', metrics.latency.p99Ms]] as const) {
      this.latency.set({ quantile }, ms / 1000);
    }
    this.latencyMax.set(metrics.latency.maxMs / 1000);
    const status = this.handle.status();
    this.setStatus(status);
    for (const metric of metrics.connectors) this.setConnectorMetric(metric);
    return this.registry.metrics();
  }

  private setStatus(status: JobStatus): void {
    this.setCounter(this.checkpoints, status.checkpointsCompleted);
    for (const cause of ABORT_CAUSES) {
      const count = status.checkpointAborts[cause] ?? 0;
      this.setCounter(this.checkpointsAborted, count, { cause });
      if (cause !== 'interrupted') this.setCounter(this.checkpointsFailed, count, { cause });
    }
    if (status.checkpointDir !== undefined) this.checkpointAge.set((Date.now() - (status.lastCheckpointAt ?? Date.now() - status.uptimeMs)) / 1000);
    const last = status.checkpoints.at(-1);
    if (last !== undefined) {
      this.checkpointDuration.set(last.durationMs / 1000);
      this.checkpointBytes.set(last.bytes);
    }
    this.unpublished.set(status.unpublishedEpochs);
    this.setCounter(this.restarts, status.restarts);
    this.lastRecovery.set((status.lastRecoveryAt ?? 0) / 1000);
  }

  /** Connector series, registered the first time their name is seen. */
  private readonly connectorSeries = new Map<string, Counter<string> | Gauge<string>>();

  private setConnectorMetric(metric: ConnectorMetric): void {
    let series = this.connectorSeries.get(metric.name);
    if (series === undefined) {
      const options = { name: metric.name, help: metric.help, labelNames: Object.keys(metric.labels), registers: [this.registry] };
      series = metric.type === 'counter' ? new Counter(options) : new Gauge(options);
      this.connectorSeries.set(metric.name, series);
    }
    if (series instanceof Counter) this.setCounter(series, metric.value, metric.labels);
    else series.set(metric.labels, metric.value);
  }

  /** Last total set per counter and label set. */
  private readonly totals = new Map<Counter<string>, Map<string, number>>();

  /**
   * Sets a counter to a total the workers keep: prom-client counters only increment, so add the
   * difference; a total that went down (a restore restarted the workers' counts) is a counter reset.
   * A total of zero still gets its sample (`inc` by 0), so rate() and alerts see the series from the start.
   */
  private setCounter<L extends string>(counter: Counter<L>, total: number, labels: Partial<Record<L, string>> = {}): void {
    let totals = this.totals.get(counter);
    if (totals === undefined) this.totals.set(counter, (totals = new Map()));
    const key = JSON.stringify(labels);
    const previous = totals.get(key) ?? 0;
    totals.set(key, total);
    if (total < previous) counter.remove(labels);
    counter.inc(labels, total < previous ? total : total - previous);
  }
}

type FunctionTotals = { invocations: number; failures: number; stateReads: number; stateWrites: number; stateCacheMisses: number; handlerBuckets: number[]; handlerMsSum: number };

/**
 * A Prometheus histogram whose buckets the workers count (prom-client's Histogram only observes
 * values one by one, here): rendered from the summed counts of the last scrape.
 */
class HandlerHistogram {
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  private functions = new Map<string, FunctionTotals>();

  constructor(
    readonly name: string,
    readonly help: string,
  ) {}

  set(functions: Map<string, FunctionTotals>): void {
    this.functions = functions;
  }

  get(): { name: string; help: string; type: string; aggregator: string; values: Array<{ metricName: string; labels: Record<string, string | number>; value: number }> } {
    const values: Array<{ metricName: string; labels: Record<string, string | number>; value: number }> = [];
    for (const [type, m] of this.functions) {
      let cumulative = 0;
      m.handlerBuckets.forEach((count, i) => {
        cumulative += count;
        const le = i < HANDLER_BUCKETS_MS.length ? String(HANDLER_BUCKETS_MS[i]! / 1000) : '+Inf';
        values.push({ metricName: `${this.name}_bucket`, labels: { function: type, le }, value: cumulative });
      });
      values.push({ metricName: `${this.name}_sum`, labels: { function: type }, value: m.handlerMsSum / 1000 });
      values.push({ metricName: `${this.name}_count`, labels: { function: type }, value: cumulative });
    }
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }
}
