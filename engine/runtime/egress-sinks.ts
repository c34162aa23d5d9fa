import * as hdr from 'hdr-histogram-js';
import { describeError, EddyError } from '../errors.js';
import type { ConnectorMetric, Job, Sink } from '../job.js';
import { readEgressLog, writeEgressLog } from '../checkpoint/egress-log.js';
import { checkpointPath, listCheckpoints } from '../checkpoint/metadata.js';
import { decodeEgressBatch } from '../wire/envelope.js';
import type { LatencySummary } from './job-manager.js';

/** What arrived for one epoch and is not published yet. */
interface HeldEpoch {
  /** The encoded egress batches, as the workers sent them: what a checkpoint's egress log holds. */
  readonly batches: Uint8Array[];
  /** Decoded records per egress index, in arrival order. */
  readonly byEgress: Map<number, unknown[]>;
}

/**
 * The job's sinks, on the job manager's thread. With checkpoints, records are held per epoch, written
 * into the checkpoint that ends their epoch (its egress log, before its _metadata), and published
 * only when that checkpoint is complete: sinks with `publishEpoch` publish each epoch atomically with
 * a marker, and after a crash every complete epoch above the marker is published again from its
 * egress log. So nothing is published twice and nothing published is lost. Without checkpoints
 * records are published at once.
 */
export class EgressSinks {
  /** Records received per egress (published or not). */
  readonly counts: number[];
  private sinks: Array<Sink<unknown>> = [];
  private writes: Array<Promise<void>> = [];
  private readonly held = new Map<number, HeldEpoch>();
  /** Per sink: the highest epoch whose publication finished (exactly-once path). */
  private published: number[] = [];
  /**
   * Per sink: epochs handed to it and not yet known published, oldest first. They stay here until
   * their publication succeeds, so that after a failure `recover` publishes them again, in order.
   */
  private pending: Array<Array<{ epoch: number; records: unknown[] }>> = [];
  /**
   * Per sink: the failure that stopped its queue, until `recover` opens it again. While set, nothing
   * more runs on that sink: a later epoch published after a failed one would move its marker past
   * the failed one, and the failed one's output would be lost.
   */
  private broken: Array<unknown> = [];

  private readonly latency = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 3_600_000_000, numberOfSignificantValueDigits: 3 });
  /** The same, since the last takeLatencyWindow() (the console charts latency per interval). */
  private readonly latencyWindow = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 3_600_000_000, numberOfSignificantValueDigits: 3 });

  constructor(
    private readonly job: Job,
    /** The job takes checkpoints; `epochScope` names their directory's lineage. */
    private readonly exactlyOnce: { epochScope: string } | undefined,
    private readonly log: (line: string) => void,
    /** A sink call failed (after the sink's own retries): the job's attempt fails. Called once per failure. */
    private readonly fail: (error: EddyError) => void,
    /** The job's connectorRetryDeadlineMs, handed to the sinks. */
    private readonly retryDeadlineMs: number,
  ) {
    this.counts = job.egresses.map(() => 0);
  }

  async open(): Promise<void> {
    for (let index = 0; index < this.job.egresses.length; index++) this.sinks.push(await this.openSink(index));
    this.writes = this.sinks.map(() => Promise.resolve());
    this.published = this.sinks.map(() => 0);
    this.pending = this.sinks.map(() => []);
    this.broken = this.sinks.map(() => undefined);
  }

  private async openSink(index: number): Promise<Sink<unknown>> {
    const egress = this.job.egresses[index]!;
    return egress.openSink({
      job: this.job.name,
      egress: egress.name,
      exactlyOnce: this.exactlyOnce !== undefined,
      epochScope: this.exactlyOnce?.epochScope ?? '',
      retryDeadlineMs: this.retryDeadlineMs,
      log: this.log,
    });
  }

  /** Whether some sink's queue stopped on a failure and waits for `recover`. */
  get failed(): boolean {
    return this.broken.some((error) => error !== undefined);
  }

  /**
   * The job restores after a failure: every sink whose queue stopped is closed and opened again
   * (a Kafka sink's new producer fences the old one and ends its open transaction), its durable
   * marker is read, and the epochs it was handed and has not published are published again, oldest
   * first, before anything newer. Runs in the sink's queue: epochs completed meanwhile wait behind.
   * A failure again stops the queue again and is reported as before.
   */
  recover(): void {
    this.sinks.forEach((old, index) => {
      if (this.broken[index] === undefined) return;
      this.broken[index] = undefined;
      const name = this.job.egresses[index]!.name;
      this.writes[index] = this.writes[index]!.then(async () => {
        await Promise.resolve(old.close()).catch(() => {});
        let sink: Sink<unknown>;
        try {
          sink = await this.openSink(index);
        } catch (error) {
          this.stopQueue(index, error);
          return;
        }
        this.sinks[index] = sink;
        const marker = sink.publishedEpoch === undefined ? this.published[index]! : await sink.publishedEpoch().catch((error: unknown) => error);
        if (typeof marker !== 'number') {
          this.stopQueue(index, marker);
          return;
        }
        this.published[index] = Math.max(this.published[index]!, marker);
        const queue = this.pending[index]!;
        while (queue.length > 0 && queue[0]!.epoch <= marker) queue.shift();
        if (queue.length > 0) this.log(`egress ${name}: publishing epoch${queue.length > 1 ? 's' : ''} ${queue.map((p) => p.epoch).join(', ')} again (the sink had published up to ${marker})`);
        await this.drain(index, Infinity);
      });
    });
  }

  /**
   * Restore from checkpoint `restored` after a crash: every complete epoch up to it that a sink has
   * not published yet (by its own durable marker) is published again from the checkpoints' egress
   * logs, through the sink's queue (so before anything newer, and a failure stops the queue as any).
   */
  async republish(checkpointDir: string, restored: number): Promise<void> {
    if (this.exactlyOnce === undefined) return;
    const complete = listCheckpoints(checkpointDir).filter((id) => id <= restored);
    for (let index = 0; index < this.sinks.length; index++) {
      const sink = this.sinks[index]!;
      if (sink.publishEpoch === undefined || sink.publishedEpoch === undefined) continue;
      const name = this.job.egresses[index]!.name;
      const marker = await sink.publishedEpoch();
      this.published[index] = marker;
      const missing = complete.filter((id) => id > marker);
      if (missing.length === 0) continue;
      if (marker > 0 && missing[0]! > marker + 1 && !complete.includes(marker + 1)) {
        this.log(`egress ${name}: epochs ${marker + 1} to ${missing[0]! - 1} were never published and their checkpoints are gone; their output is lost`);
      }
      for (const id of missing) {
        const records: unknown[] = [];
        for (const batch of await readEgressLog(checkpointPath(checkpointDir, id))) {
          for (const record of decodeEgressBatch(batch).records) {
            if (record.egress !== index) continue;
            const value = this.decode(index, record.payload);
            if (value !== undefined) records.push(value.value);
          }
        }
        this.pending[index]!.push({ epoch: id, records });
      }
      this.log(`egress ${name}: publishing the output of checkpoint${missing.length > 1 ? 's' : ''} ${missing.join(', ')} again (the sink had published up to ${marker})`);
      this.writes[index] = this.writes[index]!.then(() => this.drain(index, restored));
    }
  }

  receive(buffer: ArrayBuffer): void {
    const now = performance.timeOrigin + performance.now();
    const bytes = new Uint8Array(buffer);
    const { records, epoch } = decodeEgressBatch(bytes);
    const byEgress = new Map<number, unknown[]>();
    for (const record of records) {
      const value = this.decode(record.egress, record.payload);
      if (value === undefined) continue;
      let list = byEgress.get(record.egress);
      if (list === undefined) byEgress.set(record.egress, (list = []));
      list.push(value.value);
      this.counts[record.egress]!++;
      if (record.ingressTime > 0) {
        const us = Math.max(1, Math.round((now - record.ingressTime) * 1000));
        this.latency.recordValue(us);
        this.latencyWindow.recordValue(us);
      }
    }
    if (this.exactlyOnce === undefined) {
      for (const [index, list] of byEgress) this.write(index, list);
      return;
    }
    let held = this.held.get(epoch);
    if (held === undefined) this.held.set(epoch, (held = { batches: [], byEgress: new Map() }));
    held.batches.push(bytes);
    for (const [index, list] of byEgress) {
      const kept = held.byEgress.get(index);
      if (kept === undefined) held.byEgress.set(index, list);
      else for (const value of list) kept.push(value);
    }
  }

  /**
   * Checkpoint `id` is about to complete: writes the output of every epoch up to it that is not
   * published yet into its folder (fsynced); returns the bytes written.
   */
  async stage(id: number, folder: string): Promise<number> {
    const batches: Uint8Array[] = [];
    for (const epoch of [...this.held.keys()].sort((a, b) => a - b)) {
      if (epoch <= id) batches.push(...this.held.get(epoch)!.batches);
    }
    return writeEgressLog(folder, batches);
  }

  /** Checkpoint `id` completed: publish every epoch up to it, in order, as epoch `id`. */
  publishUpTo(id: number): void {
    const byEgress = new Map<number, unknown[]>();
    for (const epoch of [...this.held.keys()].sort((a, b) => a - b)) {
      if (epoch > id) break;
      for (const [index, list] of this.held.get(epoch)!.byEgress) {
        const kept = byEgress.get(index);
        if (kept === undefined) byEgress.set(index, list);
        else for (const value of list) kept.push(value);
      }
      this.held.delete(epoch);
    }
    this.sinks.forEach((sink, index) => {
      const records = byEgress.get(index) ?? [];
      if (sink.publishEpoch === undefined) {
        if (records.length > 0) this.write(index, records);
        return;
      }
      if (id <= this.published[index]!) return;
      this.pending[index]!.push({ epoch: id, records });
      // While the queue is stopped the epoch waits in `pending`: recover() publishes it.
      if (this.broken[index] !== undefined) return;
      this.writes[index] = this.writes[index]!.then(() => this.drain(index, id));
    });
  }

  /**
   * Publishes the pending epochs of sink `index` up to `upTo`, oldest first, each once its
   * predecessor is out; the first failure stops the queue (the failed epoch stays pending).
   */
  private async drain(index: number, upTo: number): Promise<void> {
    const queue = this.pending[index]!;
    while (this.broken[index] === undefined && queue.length > 0 && queue[0]!.epoch <= upTo) {
      const { epoch, records } = queue[0]!;
      try {
        await this.sinks[index]!.publishEpoch!(epoch, records);
      } catch (error) {
        this.stopQueue(index, error);
        return;
      }
      queue.shift();
      this.published[index] = epoch;
    }
  }

  /** Sink `index` failed: nothing more runs on it until recover(); the job is told once. */
  private stopQueue(index: number, error: unknown): void {
    if (this.broken[index] !== undefined) return;
    this.broken[index] = error;
    this.fail(new EddyError('EDDY_SINK_FAILED', `egress ${this.job.egresses[index]!.name}: ${describeError(error)}`, { cause: error, retryable: true }));
  }

  /**
   * The job ended without a final checkpoint: publish what is held at once. A sink's epoch marker is
   * not moved, so this output is at-least-once if the job is later restored from an older checkpoint.
   */
  publishRemaining(): void {
    for (const epoch of [...this.held.keys()].sort((a, b) => a - b)) {
      for (const [index, list] of this.held.get(epoch)!.byEgress) this.write(index, list);
    }
    this.held.clear();
  }

  /**
   * A restore of the last completed checkpoint (whose output was published when it completed): what
   * is held came after it and is dropped, since it will be produced again. Returns how many records.
   */
  discardHeld(): number {
    let records = 0;
    for (const held of this.held.values()) for (const list of held.byEgress.values()) records += list.length;
    this.held.clear();
    return records;
  }

  /** The lowest epoch some sink has not finished publishing: checkpoints from it on must be kept. */
  unpublishedFrom(): number {
    let lowest = Infinity;
    this.sinks.forEach((sink, index) => {
      if (sink.publishEpoch !== undefined) lowest = Math.min(lowest, this.published[index]! + 1);
    });
    return lowest;
  }

  /** What the sinks report, labelled with their egress. */
  connectorMetrics(): ConnectorMetric[] {
    return this.sinks.flatMap((sink, index) =>
      (sink.connectorMetrics?.() ?? []).map((metric) => ({ ...metric, labels: { egress: this.job.egresses[index]!.name, ...metric.labels } })),
    );
  }

  output(name: string): readonly unknown[] {
    const index = this.job.egresses.findIndex((e) => e.name === name);
    if (index < 0) {
      throw new EddyError('EDDY_UNKNOWN_EGRESS', `job ${this.job.name} has no egress ${name}; its egresses: ${this.job.egresses.map((e) => e.name).join(', ')}`);
    }
    // Sinks open asynchronously after submit: until then, no egress has received anything.
    const sink = this.sinks[index];
    if (sink === undefined) return [];
    if (sink.records === undefined) {
      throw new EddyError('EDDY_UNKNOWN_EGRESS', `egress ${name} does not keep records in memory (it is a ${this.job.egresses[index]!.kind} egress): read its output where it writes`);
    }
    return sink.records;
  }

  latencySummary(): LatencySummary {
    return summarise(this.latency);
  }

  /** Latency since the last call (then a new window starts). */
  takeLatencyWindow(): LatencySummary {
    const summary = summarise(this.latencyWindow);
    this.latencyWindow.reset();
    return summary;
  }

  resetLatency(): void {
    this.latency.reset();
  }

  /** Settles once every sink call queued so far has run (or was skipped because its queue stopped). */
  async idle(): Promise<void> {
    await Promise.all(this.writes);
  }

  /** Waits for the calls under way (a stopped queue runs nothing more), then closes every sink. */
  async close(): Promise<void> {
    await Promise.all(this.writes);
    for (const sink of this.sinks) await sink.close();
  }

  private decode(index: number, payload: Uint8Array): { value: unknown } | undefined {
    const egress = this.job.egresses[index];
    if (egress === undefined) return undefined;
    try {
      return { value: egress.codec.decode(payload) };
    } catch (error) {
      this.log(`egress ${egress.name}: a record is not valid ${egress.codec.name}: ${describeError(error)}`);
      return undefined;
    }
  }

  private write(index: number, records: unknown[]): void {
    const sink = this.sinks[index]!;
    this.enqueue(index, () => sink.write(records));
  }

  /**
   * Runs sink calls one after another per sink. A failure stops the sink's queue (later calls do not
   * run) and fails the job's attempt.
   */
  private enqueue(index: number, call: () => unknown): void {
    this.writes[index] = this.writes[index]!.then(async () => {
      if (this.broken[index] !== undefined) return;
      try {
        await call();
      } catch (error) {
        this.stopQueue(index, error);
      }
    });
  }
}

/**
 * Quantiles of a histogram, in ms. HdrHistogram answers a quantile with the top of its bucket, which
 * can lie above the largest value recorded: quantiles are capped at the max.
 */
function summarise(histogram: hdr.Histogram): LatencySummary {
  const max = histogram.maxValue / 1000;
  const q = (p: number): number => Math.min(max, histogram.getValueAtPercentile(p) / 1000);
  return { count: histogram.totalCount, p50Ms: q(50), p95Ms: q(95), p99Ms: q(99), maxMs: max };
}
