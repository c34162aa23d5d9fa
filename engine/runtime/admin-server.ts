import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Counter, Gauge, Registry } from 'prom-client';
import { describeError, EddyError } from '../errors.js';
import type { ConnectorMetric } from '../job.js';
import type { JobHandle, JobMetrics } from './job-manager.js';

/**
 * The admin endpoint of a running job, on loopback only (it can stop the job, so it never listens on
 * other interfaces):
 *
 *   GET  /status      the job's state, restarts and checkpoints, as JSON
 *   GET  /metrics     Prometheus text format
 *   POST /checkpoint  takes a checkpoint; answers with its id, duration and size when it is complete
 *   POST /stop        stops the job; answers with its summary when it has ended
 *
 * `eddy checkpoint|status|stop|metrics` are its clients.
 */
export class AdminServer {
  private constructor(
    private readonly server: Server,
    readonly url: string,
  ) {}

  static async start(handle: JobHandle, port: number): Promise<AdminServer> {
    const metrics = new JobMetricsRegistry(handle);
    const server = createServer((request, response) => {
      void route(handle, metrics, request, response).catch((error: unknown) => reply(response, 500, { error: describeError(error) }));
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', (error: NodeJS.ErrnoException) =>
        reject(
          new EddyError(
            'EDDY_INVALID_OPTION',
            error.code === 'EADDRINUSE'
              ? `options.adminPort: port ${port} on 127.0.0.1 is in use; pick another port, or 0 for a free one (eddy run --admin-port 0)`
              : `options.adminPort: cannot listen on 127.0.0.1:${port}: ${describeError(error)}`,
            { cause: error },
          ),
        ),
      );
      server.listen(port, '127.0.0.1', () => resolve());
    });
    // Keep-alive connections of clients must not hold the process open once the job has ended.
    server.unref();
    const { port: bound } = server.address() as AddressInfo;
    return new AdminServer(server, `http://127.0.0.1:${bound}`);
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      this.server.closeIdleConnections();
    });
  }
}

async function route(handle: JobHandle, metrics: JobMetricsRegistry, request: IncomingMessage, response: ServerResponse): Promise<void> {
  const path = new URL(request.url ?? '/', 'http://127.0.0.1').pathname;
  const endpoint = `${request.method ?? 'GET'} ${path}`;
  switch (endpoint) {
    case 'GET /status':
      return reply(response, 200, handle.status());
    case 'GET /metrics':
      response.writeHead(200, { 'content-type': metrics.registry.contentType });
      response.end(await metrics.render());
      return;
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
      return reply(response, 404, { error: `no ${endpoint}; try GET /status, GET /metrics, POST /checkpoint or POST /stop` });
  }
}

function reply(response: ServerResponse, status: number, body: unknown): void {
  response.writeHead(status, { 'content-type': 'application/json' });
  response.end(`${JSON.stringify(body)}\n`);
}

type Totals = JobMetrics['totals'];

/** Counters that grow over the job's life, as Prometheus counters; the rest are gauges. */
const COUNTERS: ReadonlyArray<[keyof Totals, string]> = [
  ['recordsRead', 'records read from ingresses'],
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
  ['lockHoldMsTotal', 'milliseconds participant locks were held, summed'],
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
];

/** The job's metrics for Prometheus; read from the workers once per scrape. */
class JobMetricsRegistry {
  readonly registry = new Registry();
  private readonly counters = new Map<keyof Totals, Counter<'worker'>>();
  private readonly gauges = new Map<keyof Totals, Gauge<'worker'>>();
  private readonly egress: Counter<'egress'>;
  private readonly latency: Gauge<'quantile'>;
  private readonly checkpoints: Counter;
  private readonly checkpointDuration: Gauge;
  private readonly checkpointBytes: Gauge;
  private readonly restarts: Counter;

  constructor(private readonly handle: JobHandle) {
    const registers = [this.registry];
    const snake = (name: string): string => name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
    for (const [key, help] of COUNTERS) {
      this.counters.set(key, new Counter({ name: `eddy_${snake(key)}_total`, help: `Eddy: ${help}`, labelNames: ['worker'], registers }));
    }
    for (const [key, help] of GAUGES) {
      this.gauges.set(key, new Gauge({ name: `eddy_${snake(key)}`, help: `Eddy: ${help}`, labelNames: ['worker'], registers }));
    }
    this.egress = new Counter({ name: 'eddy_egress_records_received_total', help: 'Eddy: records received by the sinks, per egress', labelNames: ['egress'], registers });
    this.latency = new Gauge({ name: 'eddy_latency_seconds', help: 'Eddy: ingress to sink latency quantiles', labelNames: ['quantile'], registers });
    this.checkpoints = new Counter({ name: 'eddy_checkpoints_completed_total', help: 'Eddy: checkpoints completed by this run', registers });
    this.checkpointDuration = new Gauge({ name: 'eddy_last_checkpoint_duration_seconds', help: 'Eddy: duration of the last completed checkpoint', registers });
    this.checkpointBytes = new Gauge({ name: 'eddy_last_checkpoint_bytes', help: 'Eddy: size of the last completed checkpoint', registers });
    this.restarts = new Counter({ name: 'eddy_restarts_total', help: 'Eddy: restores after worker failures', registers });
    this.registry.setDefaultLabels({ job: handle.job });
  }

  async render(): Promise<string> {
    const metrics = await this.handle.metrics();
    for (const worker of metrics.perWorker) {
      const labels = { worker: String(worker.worker) };
      for (const [key, counter] of this.counters) this.setCounter(counter, worker[key], labels);
      for (const [key, gauge] of this.gauges) gauge.set(labels, worker[key]);
    }
    for (const [name, count] of Object.entries(metrics.egress)) this.setCounter(this.egress, count, { egress: name });
    for (const [quantile, ms] of [['0.5', metrics.latency.p50Ms], ['0.95', metrics.latency.p95Ms], ['0.99', metrics.latency.p99Ms]] as const) {
      this.latency.set({ quantile }, ms / 1000);
    }
    const status = this.handle.status();
    this.setCounter(this.checkpoints, status.checkpointsCompleted);
    const last = status.checkpoints.at(-1);
    if (last !== undefined) {
      this.checkpointDuration.set(last.durationMs / 1000);
      this.checkpointBytes.set(last.bytes);
    }
    this.setCounter(this.restarts, status.restarts);
    for (const metric of metrics.connectors) this.setConnectorMetric(metric);
    return this.registry.metrics();
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
   */
  private setCounter<L extends string>(counter: Counter<L>, total: number, labels: Partial<Record<L, string>> = {}): void {
    let totals = this.totals.get(counter);
    if (totals === undefined) this.totals.set(counter, (totals = new Map()));
    const key = JSON.stringify(labels);
    const previous = totals.get(key) ?? 0;
    totals.set(key, total);
    if (total < previous) counter.remove(labels);
    const delta = total < previous ? total : total - previous;
    if (delta > 0) counter.inc(labels, delta);
  }
}
