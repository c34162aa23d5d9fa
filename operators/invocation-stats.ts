import { describeError, EddyError } from '../engine/errors.js';
import type { Envelope } from '../engine/wire/envelope.js';
import type { CoreEmits } from './core-host.js';

/** What the invocation core counts about handlers, shared by its parts (regular, participant, coordinator). */
export class InvocationStats {
  /** Handler runs (a PREPARE with n invocations counts n). */
  invocations = 0;
  /** Handlers that ended with InvocationFailed (an answer, not a bug). */
  invocationsFailed = 0;
  /** Handlers that threw anything else: bugs, dead-lettered. */
  handlerErrors = 0;

  /** Told of every regular handler run: its type, when it started (performance.now()), whether it threw. */
  onHandled: ((type: string, started: number, threw: boolean) => void) | undefined;

  constructor(private readonly host: CoreEmits) {}

  /**
   * `who` (a handler) threw something other than InvocationFailed working on `what`: a bug in it.
   * Counted and dead-lettered (with the code of the engine error it hit, if any); the job goes on.
   */
  handlerFailed(envelope: Envelope, who: string, what: string, error: unknown): void {
    this.handlerErrors++;
    const reason = `${who} failed for ${what} (envelope ${envelope.origin}:${envelope.seq}): ${describeError(error)}`;
    this.host.deadLetter(envelope, error instanceof EddyError ? error.code : 'EDDY_HANDLER_FAILED', reason);
  }
}
