/**
 * Every error the engine raises carries a stable code from this closed list, so callers and tests
 * can branch on `code` instead of parsing messages.
 */
export const ErrorCodes = [
  'EDDY_INVALID_OPTION',
  'EDDY_INVALID_JOB',
  'EDDY_UNKNOWN_FUNCTION_TYPE',
  'EDDY_UNKNOWN_EGRESS',
  'EDDY_UNKNOWN_INGRESS',
  'EDDY_UNDECLARED_STATE',
  'EDDY_UNDECODABLE_PAYLOAD',
  'EDDY_ROUTER_FAILED',
  'EDDY_ROUTER_NO_ADDRESS',
  'EDDY_HANDLER_FAILED',
  'EDDY_INVALID_ADDRESS',
  'EDDY_INVALID_ARGUMENT',
  'EDDY_DUPLICATE_TIMER_TOKEN',
  'EDDY_SOURCE_FAILED',
  'EDDY_SINK_FAILED',
  'EDDY_WORKER_FAILED',
  'EDDY_STATE_DIR_MISMATCH',
  'EDDY_DIR_LOCKED',
  'EDDY_STATE_DIR_UNWRITABLE',
  'EDDY_JOB_STOPPED',
  'EDDY_CHECKPOINT_CORRUPT',
  'EDDY_CHECKPOINT_NOT_FOUND',
  'EDDY_CHECKPOINT_FAILED',
  'EDDY_COMPENSATION_FAILED',
  'EDDY_SUBMIT_IN_WORKER',
  /** A request to an admin endpoint that requires a token came without the right one. */
  'EDDY_ADMIN_UNAUTHORIZED',
  /** `--job <name>`: no running job (or more than one) of that name is registered. */
  'EDDY_JOB_NOT_FOUND',
  /** A remote function (remoteFunction) did not answer with a 2xx within its timeoutMs, retries included. */
  'EDDY_REMOTE_FUNCTION_FAILED',
] as const;

export type ErrorCode = (typeof ErrorCodes)[number];

export class EddyError extends Error {
  readonly code: ErrorCode;
  /** Whether trying the same thing again can succeed. Bad input never can. */
  readonly retryable: boolean;

  constructor(code: ErrorCode, message: string, options: { cause?: unknown; retryable?: boolean } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'EddyError';
    this.code = code;
    this.retryable = options.retryable ?? false;
  }
}

/**
 * Thrown by a handler to fail its invocation: every side effect of that invocation (state writes,
 * messages, delayed messages, egress records) is discarded. Subclass it for domain failures.
 */
export class InvocationFailed extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

export function isInvocationFailed(error: unknown): error is InvocationFailed {
  return error instanceof InvocationFailed;
}

export function invalidOption(path: string, problem: string, fix: string): EddyError {
  return new EddyError('EDDY_INVALID_OPTION', `options.${path} ${problem}: ${fix}`);
}

/**
 * Renders any thrown value as one line for logs and dead letters. An error that is neither the
 * engine's nor `InvocationFailed` is a bug somewhere: its line names where it was thrown.
 */
export function describeError(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  if (error instanceof EddyError || error instanceof InvocationFailed) return `${error.name}: ${error.message}`;
  // A library's wrapper (classic-level's "Database failed to open") says what failed, its cause why (ENOSPC).
  const cause = error.cause instanceof Error && !error.message.includes(error.cause.message) ? `: ${error.cause.message}` : '';
  const line = `${error.name}: ${error.message}${cause}`;
  const at = throwSite(error.stack);
  return at === undefined ? line : `${line} (at ${at})`;
}

/** The first stack frame with a file of its own (not Node's internals, not a dependency): file:line:column. */
function throwSite(stack: string | undefined): string | undefined {
  for (const frame of (stack ?? '').split('\n').slice(1)) {
    const match = /^\s*at (?:.*? \()?((?:file:\/\/|\/|[A-Za-z]:\\).*?:\d+:\d+)\)?$/.exec(frame);
    if (match !== null && !match[1]!.includes('/node_modules/')) return match[1];
  }
  return undefined;
}
