import { keyGroupOf } from '../engine/key-groups.js';
import { encodeEnvelope, type Envelope, Kind } from '../engine/wire/envelope.js';
import type { FunctionDispatcher } from './function-dispatcher.js';

/** What the feedback operator needs of its dispatcher. */
export type FeedbackTarget = Pick<FunctionDispatcher, 'acceptFeedback' | 'lastCut'>;

interface ChannelState {
  /** Barrier of this checkpoint came before our own snapshot of it: what follows waits for the snapshot. */
  heldFor: number | undefined;
  held: Envelope[];
}

/** The checkpoint whose in-flight feedback is being logged. */
interface Logging {
  id: number;
  /** Channels whose barrier has not come yet: what they deliver meanwhile was in flight at the cut. */
  open: Set<number>;
  /** Logged envelopes by target key group. */
  log: Map<number, Uint8Array[]>;
  done: (log: Map<number, Uint8Array[]>) => void;
}

/**
 * The feedback operator: takes in what dispatchers (on any worker, this one included) sent to
 * addresses owned here and feeds it to the local dispatcher, closing the cycle that makes
 * function-to-function messaging possible. It never blocks its senders (a blocked cycle deadlocks),
 * but a checkpoint barrier on a feedback channel has a precise meaning; per channel and checkpoint n:
 * - before our own snapshot n, envelopes behind barrier n were sent after their sender's snapshot:
 *   they are held (not processed) until our snapshot n, or a restore would apply them twice;
 * - from our snapshot n until barrier n arrives, envelopes are processed and logged: they are the
 *   messages in flight on the cycle at the cut, replayed after a restore;
 * - after barrier n, nothing more is logged for n.
 */
export class Feedback {
  received = 0;
  /** Envelopes held because their channel's barrier came before our own snapshot (a metric). */
  heldTotal = 0;
  private readonly channels: ChannelState[];
  private logging: Logging | undefined;
  private readonly logs = new Map<number, Promise<Map<number, Uint8Array[]>>>();

  constructor(
    private readonly dispatcher: FeedbackTarget,
    workers: number,
    private readonly maxParallelism: number,
  ) {
    this.channels = Array.from({ length: workers }, () => ({ heldFor: undefined, held: [] }));
  }

  onBatch(from: number, envelopes: readonly Envelope[]): void {
    this.received += envelopes.length;
    this.take(from, envelopes);
  }

  private take(from: number, envelopes: readonly Envelope[]): void {
    const channel = this.channels[from]!;
    const deliver: Envelope[] = [];
    let taken = 0;
    for (const envelope of envelopes) {
      if (channel.heldFor !== undefined) {
        channel.held.push(envelope);
        if (envelope.kind !== Kind.BARRIER) this.heldTotal++;
        continue;
      }
      taken++;
      if (envelope.kind === Kind.BARRIER) {
        const id = envelope.checkpointId ?? 0;
        if (this.logging?.id === id && this.logging.open.has(from)) this.closeChannel(from);
        else if (id > this.dispatcher.lastCut) channel.heldFor = id;
        continue;
      }
      if (this.logging?.open.has(from) === true) this.append(envelope);
      deliver.push(envelope);
    }
    this.dispatcher.acceptFeedback(from, deliver, taken);
  }

  /** Our own snapshot of checkpoint `id` was cut; returns the log of what was in flight at the cut. */
  onOwnSnapshot(id: number): Promise<Map<number, Uint8Array[]>> {
    let done!: (log: Map<number, Uint8Array[]>) => void;
    const promise = new Promise<Map<number, Uint8Array[]>>((resolve) => (done = resolve));
    this.logs.set(id, promise);
    this.logging = { id, open: new Set(this.channels.keys()), log: new Map(), done };
    for (let from = 0; from < this.channels.length; from++) {
      const channel = this.channels[from]!;
      if (channel.heldFor === undefined) continue;
      // Its barrier came first: nothing of this channel was in flight at our cut.
      const held = channel.held;
      const heldFor = channel.heldFor;
      channel.heldFor = undefined;
      channel.held = [];
      if (heldFor === id) this.closeChannel(from);
      this.take(from, held);
    }
    return promise;
  }

  /** Checkpoint `id` will not complete: stop logging and holding for it. */
  abort(id: number): void {
    if (this.logging?.id === id) {
      this.logging.done(new Map());
      this.logging = undefined;
    }
    this.logs.delete(id);
    for (let from = 0; from < this.channels.length; from++) {
      const channel = this.channels[from]!;
      if (channel.heldFor === undefined || channel.heldFor > id) continue;
      const held = channel.held;
      channel.heldFor = undefined;
      channel.held = [];
      this.take(from, held);
    }
  }

  /** The feedback log of checkpoint `id`, once every channel delivered its barrier. */
  logOf(id: number): Promise<Map<number, Uint8Array[]>> | undefined {
    return this.logs.get(id);
  }

  private append(envelope: Envelope): void {
    const log = this.logging!.log;
    const kg = keyGroupOf(envelope.targetId, this.maxParallelism);
    let entries = log.get(kg);
    if (entries === undefined) log.set(kg, (entries = []));
    entries.push(encodeEnvelope(envelope));
  }

  private closeChannel(from: number): void {
    const logging = this.logging!;
    logging.open.delete(from);
    if (logging.open.size > 0) return;
    this.logging = undefined;
    this.logs.delete(logging.id);
    logging.done(logging.log);
  }
}
