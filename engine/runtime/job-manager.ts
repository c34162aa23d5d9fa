import { fileURLToPath } from 'node:url';
import { MessageChannel, type MessagePort } from 'node:worker_threads';
import * as hdr from 'hdr-histogram-js';
import { Piscina } from 'piscina';
import { describeError, EddyError } from '../errors.js';
import type { Job, Sink } from '../job.js';
import { resolveOptions, type ResolvedOptions, type SubmitOptions } from '../options.js';
import { decodeEgressBatch } from '../wire/envelope.js';
import { openStateDir, type StateDir } from './state-dir.js';
import type { FromWorker, SplitAssignment, ToWorker, WorkerInit, WorkerMetrics, WorkerResult, WorkerStatus } from './worker-protocol.js';

export interface LatencySummary {
  /** Records measured (egress records with a known ingress time). */
  count: number;
  p50Ms: number;
  p95Ms: number;
  p99Ms: number;
  maxMs: number;
}

export interface JobMetrics {
  job: string;
  workers: number;
  uptimeMs: number;
  /** Per worker. */
  perWorker: WorkerMetrics[];
  /** Sums over workers (gauges summed too). */
  totals: Omit<WorkerMetrics, 'worker' | 'routerThrottled'>;
  /** Records received per egress name. */
  egress: Record<string, number>;
  /** From the moment a record entered an ingress to the moment its egress records reached the sink. */
  latency: LatencySummary;
}

export interface JobSummary extends JobMetrics {
  /** `end-of-input`: every source finished and all work was done; `stop`: `stop()` was called. */
  endedBy: 'end-of-input' | 'stop';
  stateDir: string | undefined;
}

export interface JobHandle {
  readonly job: string;
  /** Settles when the job ends: resolves with its summary, rejects if it failed. */
  readonly done: Promise<JobSummary>;
  /** Stops reading sources, lets in-flight work finish (parking what is left after stopTimeoutMs), flushes state. */
  stop(): Promise<JobSummary>;
  metrics(): Promise<JobMetrics>;
  /** Starts a fresh latency window (e.g. after a benchmark's warm-up); `metrics().latency` covers it. */
  resetLatency(): void;
  /** The records a memory egress has received so far. */
  output<R = unknown>(egress: string): readonly R[];
}

const POLL_MS = 20;

/**
 * The job manager: plans splits, starts one long-lived task per worker through piscina, wires the
 * worker mesh, owns the egress sinks, and decides when the job has ended.
 */
class JobRun implements JobHandle {
  readonly job: string;
  readonly done: Promise<JobSummary>;
  private resolveDone!: (summary: JobSummary) => void;
  private rejectDone!: (error: unknown) => void;
  private readonly started = Date.now();
  private pool: Piscina | undefined;
  private controls: MessagePort[] = [];
  private sinks: Array<Sink<unknown>> = [];
  private sinkWrites: Array<Promise<void>> = [];
  private readonly egressCounts: number[];
  private egressBatchesReceived: number[] = [];
  private readonly latency = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 3_600_000_000, numberOfSignificantValueDigits: 3 });
  private stateDir!: StateDir;
  private assignments: SplitAssignment[][] = [];
  private wave = 0;
  private statuses: Array<WorkerStatus | undefined> = [];
  private previousWave: string | undefined;
  private stopRequested = false;
  private stopDeadline = Infinity;
  private pauseSent = false;
  private ending: 'end-of-input' | 'stop' | undefined;
  private failed = false;
  private pollTimer: NodeJS.Timeout | undefined;
  private metricsRequests = new Map<number, { pending: number; results: WorkerMetrics[]; resolve: (m: WorkerMetrics[]) => void }>();
  private nextMetricsId = 0;
  private lastMetrics: WorkerMetrics[] = [];
  /** One per worker: settles with the worker's result when it closes, rejects if it fails. */
  private runs: Array<Promise<WorkerResult>> = [];
  private results: WorkerResult[] = [];

  constructor(
    private readonly spec: Job,
    private readonly options: ResolvedOptions,
  ) {
    this.job = spec.name;
    this.egressCounts = spec.egresses.map(() => 0);
    this.done = new Promise((resolve, reject) => {
      this.resolveDone = resolve;
      this.rejectDone = reject;
    });
    // A handle whose caller only awaits stop() must not crash the process on an unobserved rejection.
    this.done.catch(() => {});
    this.stateDir = openStateDir(options.stateDir, options.stateBackend, spec.name, options.workers, options.maxParallelism);
    void this.start().catch((error: unknown) => this.fail(error));
  }

  private async start(): Promise<void> {
    const { workers } = this.options;
    const job = this.spec;
    for (const name of Object.keys(this.options.inputs)) {
      if (!job.ingresses.some((ingress) => ingress.name === name)) {
        throw new EddyError('EDDY_UNKNOWN_INGRESS', `options.inputs.${name}: the job has no ingress ${name}; its ingresses: ${job.ingresses.map((i) => i.name).join(', ') || '(none)'}`);
      }
    }
    // Splits, round-robin over workers across all ingresses, resuming where an earlier run stopped.
    this.assignments = Array.from({ length: workers }, () => []);
    let next = 0;
    for (let ingress = 0; ingress < job.ingresses.length; ingress++) {
      const source = job.ingresses[ingress]!;
      const splits = await source.planSplits(this.options.inputs[source.name]);
      const stored = this.stateDir.manifest.positions[source.name] ?? {};
      splits.forEach((description, split) => {
        const previous = stored[String(split)];
        const resume = source.resumable && previous !== undefined && previous.description === JSON.stringify(description);
        this.assignments[next++ % workers]!.push({ ingress, split, description, position: resume ? previous.position : undefined });
      });
    }
    this.sinks = [];
    for (const egress of job.egresses) this.sinks.push(await egress.openSink());
    this.sinkWrites = this.sinks.map(() => Promise.resolve());

    this.pool = new Piscina({
      filename: fileURLToPath(new URL('./worker-bootstrap.mjs', import.meta.url)),
      minThreads: workers,
      maxThreads: workers,
      concurrentTasksPerWorker: 1,
      idleTimeout: 60_000,
      atomics: 'disabled',
    });
    const peers: Array<Array<MessagePort | undefined>> = Array.from({ length: workers }, () => Array.from({ length: workers }, () => undefined));
    for (let a = 0; a < workers; a++) {
      for (let b = a + 1; b < workers; b++) {
        const { port1, port2 } = new MessageChannel();
        peers[a]![b] = port1;
        peers[b]![a] = port2;
      }
    }
    const attempt = `${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
    const ready: Array<Promise<void>> = [];
    const { log: _log, inputs: _inputs, stateDir: _stateDir, ...workerOptions } = this.options;
    this.egressBatchesReceived = Array.from({ length: workers }, () => 0);
    for (let worker = 0; worker < workers; worker++) {
      const { port1: control, port2: workerControl } = new MessageChannel();
      this.controls.push(control);
      ready.push(new Promise((resolve) => this.listen(worker, control, resolve)));
      const init: WorkerInit = {
        worker,
        workers,
        jobModule: job.module,
        jobName: job.name,
        attempt,
        stateLocation: this.stateDir.location(worker),
        options: workerOptions,
        splits: this.assignments[worker]!,
        control: workerControl,
        peers: peers[worker]!,
      };
      const transfer = [workerControl, ...peers[worker]!.filter((p): p is MessagePort => p !== undefined)];
      const run = this.pool.run(init, { transferList: transfer }) as Promise<WorkerResult>;
      this.runs.push(run);
      run.catch((error: unknown) => this.fail(new EddyError('EDDY_WORKER_FAILED', `worker ${worker} failed: ${describeError(error)}`, { cause: error })));
    }
    await Promise.all(ready);
    if (this.failed) return;
    // stop() before the workers were up may not have reached them: they stay unstarted (nothing read,
    // parked work and timers stay in state) and close at the first quiet status wave.
    if (!this.stopRequested) this.broadcast({ type: 'start' });
    this.schedulePoll();
  }

  private listen(worker: number, control: MessagePort, ready: () => void): void {
    control.on('message', (message: FromWorker) => {
      switch (message.type) {
        case 'ready':
          ready();
          break;
        case 'egress':
          this.egressBatchesReceived[worker]!++;
          this.receiveEgress(message.buffer);
          break;
        case 'status':
          if (message.wave === this.wave) {
            this.statuses[worker] = message.status;
            if (this.statuses.every((s) => s !== undefined)) this.evaluateWave();
          }
          break;
        case 'metrics': {
          const request = this.metricsRequests.get(message.id);
          if (request === undefined) break;
          request.results[worker] = message.metrics;
          if (--request.pending === 0) {
            this.metricsRequests.delete(message.id);
            request.resolve(request.results);
          }
          break;
        }
        case 'log':
          this.options.log(message.line);
          break;
        case 'closed':
          break;
      }
    });
  }

  private receiveEgress(buffer: ArrayBuffer): void {
    const now = performance.timeOrigin + performance.now();
    const byEgress = new Map<number, unknown[]>();
    for (const record of decodeEgressBatch(buffer)) {
      const egress = this.spec.egresses[record.egress];
      if (egress === undefined) continue;
      let value: unknown;
      try {
        value = egress.codec.decode(record.payload);
      } catch (error) {
        this.options.log(`egress ${egress.name}: a record is not valid ${egress.codec.name}: ${describeError(error)}`);
        continue;
      }
      let list = byEgress.get(record.egress);
      if (list === undefined) byEgress.set(record.egress, (list = []));
      list.push(value);
      this.egressCounts[record.egress]!++;
      if (record.ingressTime > 0) this.latency.recordValue(Math.max(1, Math.round((now - record.ingressTime) * 1000)));
    }
    for (const [index, records] of byEgress) {
      const sink = this.sinks[index]!;
      this.sinkWrites[index] = this.sinkWrites[index]!.then(() => sink.write(records)).catch((error: unknown) =>
        this.fail(new EddyError('EDDY_SINK_FAILED', `egress ${this.spec.egresses[index]!.name}: ${describeError(error)}`, { cause: error })),
      );
    }
  }

  private broadcast(message: ToWorker): void {
    for (const control of this.controls) control.postMessage(message);
  }

  private schedulePoll(): void {
    if (this.failed || this.ending !== undefined) return;
    this.pollTimer = setTimeout(() => {
      this.wave++;
      this.statuses = this.controls.map(() => undefined);
      this.broadcast({ type: 'status', wave: this.wave });
    }, POLL_MS);
  }

  /**
   * The job has ended when, in two consecutive status waves with the same counters, every worker is
   * idle and every envelope sent has been taken in (per worker pair) and every egress batch arrived.
   */
  private evaluateWave(): void {
    const statuses = this.statuses as WorkerStatus[];
    const delivered = statuses.every((status, to) => statuses.every((from, f) => from.sent[to] === status.accepted[f]));
    const egressArrived = statuses.every((status, w) => status.egressBatchesSent === this.egressBatchesReceived[w]);
    const fingerprint = JSON.stringify(statuses.map((s) => [s.sent, s.accepted, s.egressBatchesSent]));
    const stable = delivered && egressArrived && fingerprint === this.previousWave;
    this.previousWave = fingerprint;
    const allIdle = statuses.every((s) => s.idle);
    if (this.stopRequested) {
      if (!this.pauseSent && Date.now() > this.stopDeadline) {
        this.pauseSent = true;
        this.stopDeadline = Date.now() + this.options.stopTimeoutMs;
        this.options.log(`job ${this.job}: work still running ${this.options.stopTimeoutMs} ms after stop; parking the rest in state`);
        this.broadcast({ type: 'pause' });
      }
      // Paused: close once running handlers finished, or after another stopTimeoutMs (a handler
      // that never settles is parked with its envelope and runs again on the next start).
      const handlersDone = statuses.every((s) => s.noneRunning) || Date.now() > this.stopDeadline;
      if (stable && (allIdle || (this.pauseSent && handlersDone))) {
        void this.finish('stop');
        return;
      }
    } else if (stable && allIdle && statuses.every((s) => s.sourcesDone && s.timersPending === 0)) {
      void this.finish('end-of-input');
      return;
    }
    this.schedulePoll();
  }

  stop(): Promise<JobSummary> {
    if (!this.stopRequested && this.ending === undefined) {
      this.stopRequested = true;
      this.stopDeadline = Date.now() + this.options.stopTimeoutMs;
      this.broadcast({ type: 'stop-sources' });
    }
    return this.done;
  }

  async metrics(): Promise<JobMetrics> {
    if (this.ending === undefined && !this.failed && this.controls.length > 0) {
      const id = this.nextMetricsId++;
      this.lastMetrics = await new Promise<WorkerMetrics[]>((resolve) => {
        this.metricsRequests.set(id, { pending: this.controls.length, results: [], resolve });
        this.broadcast({ type: 'metrics', id });
      });
    }
    return this.snapshot(this.lastMetrics);
  }

  resetLatency(): void {
    this.latency.reset();
  }

  output<R = unknown>(egress: string): readonly R[] {
    const index = this.spec.egresses.findIndex((e) => e.name === egress);
    const sink = this.sinks[index];
    if (index < 0) {
      throw new EddyError('EDDY_UNKNOWN_EGRESS', `job ${this.job} has no egress ${egress}; its egresses: ${this.spec.egresses.map((e) => e.name).join(', ')}`);
    }
    // Sinks open asynchronously after submit: until then, no egress has received anything.
    if (sink === undefined) return [];
    if (sink.records === undefined) {
      throw new EddyError('EDDY_UNKNOWN_EGRESS', `egress ${egress} does not keep records in memory (it is a ${this.spec.egresses[index]!.kind} egress)`);
    }
    return sink.records as readonly R[];
  }

  private snapshot(perWorker: WorkerMetrics[]): JobMetrics {
    const totals = {
      recordsRead: 0, envelopesRouted: 0, invocations: 0, invocationsFailed: 0, handlerErrors: 0, deadLetters: 0,
      egressRecords: 0, messagesSent: 0, delayedScheduled: 0, delayedFired: 0, mailboxDepth: 0, feedbackBacklog: 0, stateCacheDirty: 0,
    };
    for (const m of perWorker) for (const key of Object.keys(totals) as Array<keyof typeof totals>) totals[key] += m[key];
    const q = (p: number): number => this.latency.getValueAtPercentile(p) / 1000;
    return {
      job: this.job,
      workers: this.options.workers,
      uptimeMs: Date.now() - this.started,
      perWorker,
      totals,
      egress: Object.fromEntries(this.spec.egresses.map((e, i) => [e.name, this.egressCounts[i]!])),
      latency: { count: this.latency.totalCount, p50Ms: q(50), p95Ms: q(95), p99Ms: q(99), maxMs: this.latency.maxValue / 1000 },
    };
  }

  private async finish(endedBy: 'end-of-input' | 'stop'): Promise<void> {
    this.ending = endedBy;
    try {
      this.broadcast({ type: 'close' });
      this.results = await Promise.all(this.runs);
      await Promise.all(this.sinkWrites);
      for (const sink of this.sinks) await sink.close();
      await this.pool?.destroy();
      this.savePositions();
      if (this.stateDir.temporary) this.stateDir.remove();
      const perWorker = this.results.sort((a, b) => a.worker - b.worker).map((r) => r.metrics);
      this.resolveDone({ ...this.snapshot(perWorker), endedBy, stateDir: this.stateDir.temporary ? undefined : this.stateDir.path });
    } catch (error) {
      this.fail(error);
    }
  }

  private savePositions(): void {
    const manifest = { ...this.stateDir.manifest, positions: { ...this.stateDir.manifest.positions } };
    const descriptions = new Map(this.assignments.flat().map((a) => [`${a.ingress}/${a.split}`, a.description]));
    for (const result of this.results) {
      for (const { ingress, split, position } of result.positions) {
        const name = this.spec.ingresses[ingress]!.name;
        manifest.positions[name] = { ...manifest.positions[name], [String(split)]: { description: JSON.stringify(descriptions.get(`${ingress}/${split}`)), position } };
      }
    }
    this.stateDir.save(manifest);
  }

  private fail(error: unknown): void {
    if (this.failed) return;
    this.failed = true;
    if (this.pollTimer !== undefined) clearTimeout(this.pollTimer);
    for (const request of this.metricsRequests.values()) request.resolve(this.lastMetrics);
    this.metricsRequests.clear();
    this.options.log(`job ${this.job} failed: ${describeError(error)}`);
    const pool = this.pool;
    void (async () => {
      await pool?.destroy().catch(() => {});
      await Promise.all(this.sinks.map(async (sink) => sink.close())).catch(() => {});
      if (this.stateDir.temporary) this.stateDir.remove();
      this.rejectDone(error);
    })();
  }
}

/** Starts a job. Invalid options throw here; everything later settles `handle.done`. */
export function submit(job: Job, options?: SubmitOptions): JobHandle {
  if (job?.kind !== 'eddy-job') throw new EddyError('EDDY_INVALID_JOB', 'submit(job): job must be made with defineJob()');
  return new JobRun(job, resolveOptions(options));
}
