import type { MessagePort } from 'node:worker_threads';
import type { FromWorker } from '../runtime/worker-protocol.js';
import { encodeEgressBatch, type EgressRecord } from '../wire/envelope.js';

/**
 * Egress records leave a worker for the job manager (which owns the sinks) in one transferred batch
 * per event-loop turn, never one message per record.
 */
export class EgressOutbox {
  batchesSent = 0;
  recordsSent = 0;
  /** Epoch of the records now being produced: one more than the last checkpoint cut here. */
  epoch = 1;
  private buffer: EgressRecord[] = [];
  private scheduled = false;

  constructor(private readonly control: MessagePort) {}

  get idle(): boolean {
    return this.buffer.length === 0;
  }

  push(record: EgressRecord): void {
    this.buffer.push(record);
    this.recordsSent++;
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.flush());
    }
  }

  /** Checkpoint `id` was cut here: what was produced so far belongs to epoch `id`. */
  cut(id: number): void {
    this.flush();
    this.epoch = id + 1;
  }

  flush(): void {
    this.scheduled = false;
    if (this.buffer.length === 0) return;
    const buffer = encodeEgressBatch(this.buffer, this.epoch);
    this.buffer = [];
    this.batchesSent++;
    const message: FromWorker = { type: 'egress', buffer };
    this.control.postMessage(message, [buffer]);
  }
}
