import type { Address } from '../function-type.js';

/**
 * Effects whose payloads arrive already encoded, with a StateFun typename: what a remote function
 * answers. The context a handler gets implements it (operators/invocation.ts); only remote functions
 * use it. Each checks the typename against the codec of the target (a function type, or an egress)
 * and throws an EddyError naming both when they differ.
 */
export interface EncodedEffects {
  sendEncoded(to: Address, typename: string, payload: Uint8Array): void;
  /** A delayed message; `token` (StateFun's cancellation token) when given, else a fresh one. */
  sendAfterEncoded(delayMs: number, to: Address, typename: string, payload: Uint8Array, token: string | undefined): void;
  /** A record for the egress whose StateFun typename (`egressTypename`) is `egress`. */
  egressEncoded(egress: string, typename: string, payload: Uint8Array): void;
}
