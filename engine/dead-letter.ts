/** The record the engine writes to a job's `dead-letters` egress. */
import type { ErrorCode } from './errors.js';
import type { Address } from './function-types.js';

/** An undeliverable envelope or bad record, as written to the dead-letter egress. */
export interface DeadLetter {
  code: ErrorCode;
  reason: string;
  target?: Address;
  source?: Address;
  envelopeId?: string;
  /** The message bytes, base64, when the envelope could not be decoded or handled. */
  payloadBase64?: string;
  ingress?: string;
  record?: unknown;
}
