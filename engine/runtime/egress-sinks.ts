import * as hdr from 'hdr-histogram-js';
import { describeError, EddyError } from '../errors.js';
import type { Job, Sink } from '../job.js';
import { decodeEgressBatch } from '../wire/envelope.js';
import type { LatencySummary } from './job-manager.js';

/**
 * The job's sinks, on the job manager's thread. With checkpoints, records are held per epoch and
 * published only when the checkpoint that ends their epoch completes, so after a restore nothing is
 * published twice and nothing published is lost; without checkpoints they are published at once.
 */
export class EgressSinks {
  /** Records received per egress (published or not). */
  readonly counts: number[];
  private sinks: Array<Sink<unknown>> = [];
  private writes: Array<Promise<void>> = [];
  /** Epoch -> records per egress index, in arrival order. */
  private readonly held = new Map<number, Map<number, unknown[]>>();
  private readonly latency = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 3_600_000_000, numberOfSignificantValueDigits: 3 });

  constructor(
    private readonly job: Job,
    private readonly exactlyOnce: boolean,
    private readonly log: (line: string) => void,
    private readonly fail: (error: unknown) => void,
  ) {
    this.counts = job.egresses.map(() => 0);
  }

  async open(): Promise<void> {
    for (const egress of this.job.egresses) {
      this.sinks.push(await egress.openSink({ job: this.job.name, egress: egress.name, exactlyOnce: this.exactlyOnce, epochScope: '', log: this.log }));
    }
    this.writes = this.sinks.map(() => Promise.resolve());
  }

  receive(buffer: ArrayBuffer): void {
    const now = performance.timeOrigin + performance.now();
    const { records, epoch } = decodeEgressBatch(buffer);
    const byEgress = new Map<number, unknown[]>();
    for (const record of records) {
      const egress = this.job.egresses[record.egress];
      if (egress === undefined) continue;
      let value: unknown;
      try {
        value = egress.codec.decode(record.payload);
      } catch (error) {
        this.log(`egress ${egress.name}: a record is not valid ${egress.codec.name}: ${describeError(error)}`);
        continue;
      }
      let list = byEgress.get(record.egress);
      if (list === undefined) byEgress.set(record.egress, (list = []));
      list.push(value);
      this.counts[record.egress]!++;
      if (record.ingressTime > 0) this.latency.recordValue(Math.max(1, Math.round((now - record.ingressTime) * 1000)));
    }
    if (!this.exactlyOnce) {
      for (const [index, list] of byEgress) this.write(index, list);
      return;
    }
    let epochRecords = this.held.get(epoch);
    if (epochRecords === undefined) this.held.set(epoch, (epochRecords = new Map()));
    for (const [index, list] of byEgress) {
      const kept = epochRecords.get(index);
      if (kept === undefined) epochRecords.set(index, list);
      else for (const value of list) kept.push(value);
    }
  }

  /** Checkpoint `id` completed: publish every epoch up to it, in order. */
  publishUpTo(id: number): void {
    for (const epoch of [...this.held.keys()].sort((a, b) => a - b)) {
      if (epoch > id) break;
      for (const [index, list] of this.held.get(epoch)!) this.write(index, list);
      this.held.delete(epoch);
    }
  }

  /** The job ended cleanly (its state is flushed): publish everything held. */
  publishAll(): void {
    this.publishUpTo(Infinity);
  }

  /** A restore from a checkpoint: what came after it will be produced again. */
  discardUnpublished(): void {
    this.held.clear();
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
    const q = (p: number): number => this.latency.getValueAtPercentile(p) / 1000;
    return { count: this.latency.totalCount, p50Ms: q(50), p95Ms: q(95), p99Ms: q(99), maxMs: this.latency.maxValue / 1000 };
  }

  resetLatency(): void {
    this.latency.reset();
  }

  async close(): Promise<void> {
    await Promise.all(this.writes);
    for (const sink of this.sinks) await sink.close();
  }

  private write(index: number, records: unknown[]): void {
    const sink = this.sinks[index]!;
    this.writes[index] = this.writes[index]!.then(() => sink.write(records)).catch((error: unknown) =>
      this.fail(new EddyError('EDDY_SINK_FAILED', `egress ${this.job.egresses[index]!.name}: ${describeError(error)}`, { cause: error })),
    );
  }
}
