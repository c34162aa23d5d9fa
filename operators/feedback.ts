import { Channel, type Envelope } from '../engine/wire/envelope.js';
import type { FunctionDispatcher } from './function-dispatcher.js';

/**
 * The feedback operator: takes in what dispatchers (on any worker, this one included) sent to
 * addresses owned here and feeds it to the local dispatcher, closing the cycle that makes
 * function-to-function messaging possible. It never blocks its senders: a blocked cycle deadlocks.
 * This is where checkpoint barriers on feedback channels are handled (hold, log, done).
 */
export class Feedback {
  received = 0;

  constructor(private readonly dispatcher: FunctionDispatcher) {}

  onBatch(from: number, envelopes: readonly Envelope[]): void {
    this.received += envelopes.length;
    this.dispatcher.acceptBatch(from, Channel.FEEDBACK, envelopes);
  }
}
