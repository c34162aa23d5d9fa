import type { Address } from '../function-type.js';
import type { Envelope } from '../wire/envelope.js';

/**
 * Effects whose payloads arrive already encoded, with a StateFun typename: what a remote function
 * answers; and the messages waiting for the instance, which it batches into its next request. The context a handler gets implements it (operators/invocation.ts); only remote functions
 * use it. Each checks the typename against the codec of the target (a function type, or an egress)
 * and throws an EddyError naming both when they differ.
 */
export interface EncodedEffects {
  sendEncoded(to: Address, typename: string, payload: Uint8Array): void;
  /** A delayed message; `token` (StateFun's cancellation token) when given, else a fresh one. */
  sendAfterEncoded(delayMs: number, to: Address, typename: string, payload: Uint8Array, token: string | undefined): void;
  /** A record for the egress whose StateFun typename (`egressTypename`) is `egress`. */
  egressEncoded(egress: string, typename: string, payload: Uint8Array): void;
  /**
   * Up to `max` plain messages waiting behind this one in the instance's mailbox, in order, left there
   * (a checkpoint cut meanwhile still holds them); none when this invocation is part of a transaction.
   */
  waitingInvokes(max: number): readonly Envelope[];
  /** Takes the first `count` of them out of the mailbox: this invocation handled them. Call it as the handler returns. */
  takeWaiting(count: number): void;
}
