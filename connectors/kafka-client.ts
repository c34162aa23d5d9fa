/**
 * What the Kafka ingress and egress share: the client options, their validation, and connecting
 * with a bounded wait and an error that says what to check.
 */
import { Kafka, type KafkaConfig, logLevel as KafkaLogLevel } from 'kafkajs';
import { describeError, EddyError, type ErrorCode, invalidOption } from '../engine/errors.js';

export interface KafkaClientOptions {
  /** Bootstrap brokers, `host:port` (an array, or one comma-separated string). Required. */
  brokers: string | readonly string[];
  /** Prefix of the kafkajs client id. Default: `eddy`. */
  clientId?: string;
  /**
   * How long opening may try to reach the brokers before it fails with an error naming them.
   * Default: 10000 ms.
   */
  connectTimeoutMs?: number;
  /** TLS, passed to kafkajs as is. Default: none. */
  ssl?: KafkaConfig['ssl'];
  /** SASL authentication, passed to kafkajs as is. Default: none. */
  sasl?: KafkaConfig['sasl'];
  /**
   * kafkajs's own log lines (on stderr). Failures reach Eddy as errors either way, and kafkajs logs
   * every retried request at `error`, so the default is silence. Default: `nothing`.
   */
  logLevel?: 'nothing' | 'error' | 'warn' | 'info' | 'debug';
}

/** The validated client options: plain data, so a split description can carry them to a worker. */
export interface ResolvedClientOptions {
  brokers: string[];
  clientId: string;
  connectTimeoutMs: number;
  logLevel: NonNullable<KafkaClientOptions['logLevel']>;
}

const LOG_LEVELS = { nothing: KafkaLogLevel.NOTHING, error: KafkaLogLevel.ERROR, warn: KafkaLogLevel.WARN, info: KafkaLogLevel.INFO, debug: KafkaLogLevel.DEBUG } as const;

export const clientDefaults = { clientId: 'eddy', connectTimeoutMs: 10_000, logLevel: 'nothing' } as const;

/** A non-empty list of `host:port`, from an array or a comma-separated string. */
export function resolveBrokers(where: string, brokers: unknown): string[] {
  const list = typeof brokers === 'string' ? brokers.split(',') : Array.isArray(brokers) ? (brokers as unknown[]) : undefined;
  const fix = 'give the bootstrap brokers as ["host:port", ...] or "host:port,host:port" (for a local broker: scripts/kafka start prints one)';
  if (list === undefined) throw invalidOption(`${where}.brokers`, 'is missing', fix);
  const trimmed = list.map((b) => (typeof b === 'string' ? b.trim() : b)).filter((b) => b !== '');
  if (trimmed.length === 0) throw invalidOption(`${where}.brokers`, 'is empty', fix);
  for (const broker of trimmed) {
    if (typeof broker !== 'string' || !/^[^\s:]+:\d{1,5}$/.test(broker)) throw invalidOption(`${where}.brokers`, `has ${JSON.stringify(broker)}`, fix);
  }
  return trimmed as string[];
}

export function positiveInteger(where: string, value: unknown, fallback: number, min = 1): number {
  const n = value ?? fallback;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < min) throw invalidOption(where, `is ${JSON.stringify(value)}`, `must be an integer >= ${min}`);
  return n;
}

/** A Kafka topic name as the broker accepts it. */
export function checkTopic(where: string, topic: unknown): string {
  if (typeof topic !== 'string' || !/^[a-zA-Z0-9._-]{1,249}$/.test(topic)) {
    throw invalidOption(where, `is ${JSON.stringify(topic)}`, 'must be a Kafka topic name (1 to 249 of a-z A-Z 0-9 . _ -)');
  }
  return topic;
}

export function resolveClientOptions(where: string, options: KafkaClientOptions): ResolvedClientOptions {
  const clientId = options.clientId ?? clientDefaults.clientId;
  if (typeof clientId !== 'string' || clientId.length === 0) throw invalidOption(`${where}.clientId`, `is ${JSON.stringify(clientId)}`, 'must be a non-empty string');
  const level = options.logLevel ?? clientDefaults.logLevel;
  if (!(level in LOG_LEVELS)) throw invalidOption(`${where}.logLevel`, `is ${JSON.stringify(level)}`, `must be one of ${Object.keys(LOG_LEVELS).join(', ')}`);
  return {
    brokers: resolveBrokers(where, options.brokers),
    clientId,
    connectTimeoutMs: positiveInteger(`${where}.connectTimeoutMs`, options.connectTimeoutMs, clientDefaults.connectTimeoutMs),
    logLevel: level,
  };
}

/**
 * How kafkajs retries. `transactions`: retries start small, since a transaction begun right after a
 * commit gets CONCURRENT_TRANSACTIONS until the commit's markers are written (a few ms on one broker),
 * and with kafkajs's default 300 ms first retry every back-to-back transaction would take about
 * 330 ms. `patient`: for consumers, which must outlast a leader election (e.g. of a partition just
 * added) rather than crash after a second of fast retries.
 */
const RETRY = {
  transactions: { initialRetryTime: 5, maxRetryTime: 2000, retries: 12 },
  patient: { initialRetryTime: 100, maxRetryTime: 5000, retries: 10 },
} as const;

export function kafkaClient(resolved: ResolvedClientOptions, options: Pick<KafkaClientOptions, 'ssl' | 'sasl'>, role: string, retry: keyof typeof RETRY): Kafka {
  return new Kafka({
    clientId: `${resolved.clientId}-${role}`,
    brokers: resolved.brokers,
    logLevel: LOG_LEVELS[resolved.logLevel],
    connectionTimeout: Math.min(3000, resolved.connectTimeoutMs),
    retry: RETRY[retry],
    ...(options.ssl === undefined ? {} : { ssl: options.ssl }),
    ...(options.sasl === undefined ? {} : { sasl: options.sasl }),
  });
}

/**
 * Runs `attempt` (a connect, or a first request) for at most `resolved.connectTimeoutMs`; a failure or
 * a timeout becomes an error that names the brokers and the fix. `onTimeout` releases what the attempt
 * holds (kafkajs would otherwise keep retrying in the background).
 */
/**
 * Runs a Kafka call again while it fails with an error kafkajs marks retriable (e.g. NOT_COORDINATOR
 * while a fresh broker creates its internal topics), up to `attempts` times with a growing pause.
 */
export async function retryRetriable<T>(call: () => Promise<T>, attempts = 20): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await call();
    } catch (error) {
      if ((error as { retriable?: boolean }).retriable !== true || attempt >= attempts) throw error;
      await new Promise((resolve) => setTimeout(resolve, Math.min(1000, 50 * attempt)));
    }
  }
}

export async function withinConnectTimeout<T>(
  resolved: ResolvedClientOptions,
  code: ErrorCode,
  what: string,
  attempt: Promise<T>,
  onTimeout: () => Promise<void>,
): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), resolved.connectTimeoutMs)));
  attempt.catch(() => {}); // settled below, or abandoned after a timeout
  try {
    const result = await Promise.race([attempt, timedOut]);
    if (result === 'timeout') {
      await onTimeout().catch(() => {});
      throw unreachable(resolved, code, what, `no answer within ${resolved.connectTimeoutMs} ms`);
    }
    return result;
  } catch (error) {
    if (error instanceof EddyError) throw error;
    await onTimeout().catch(() => {});
    throw unreachable(resolved, code, what, describeError(error), error);
  } finally {
    clearTimeout(timer);
  }
}

function unreachable(resolved: ResolvedClientOptions, code: ErrorCode, what: string, problem: string, cause?: unknown): EddyError {
  return new EddyError(
    code,
    `${what}: cannot reach the Kafka brokers ${resolved.brokers.join(',')} (${problem}). Check that a broker runs there and that ` +
      'options.brokers names its listener (for a local broker: `scripts/kafka start` prints its address), or raise connectTimeoutMs',
    { cause, retryable: true },
  );
}

/** A call given up on after its time (see withDeadline). */
export class NoAnswer extends Error {
  constructor(what: string, ms: number) {
    super(`${what}: no answer within ${ms} ms`);
    this.name = 'NoAnswer';
  }
}

/** `promise`, or NoAnswer after `ms` (the promise is abandoned, its outcome ignored). */
export async function withDeadline<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  promise.catch(() => {});
  try {
    return await Promise.race([promise, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new NoAnswer(what, ms)), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

export interface RetryPlan {
  /** What is tried, for the log line and the error. */
  what: string;
  /** Give up when this passes (ms since the epoch): the job's connectorRetryDeadlineMs from the first try. */
  deadline: number;
  /** An attempt that takes longer than this counts as failed. Default: until the deadline. */
  attemptMs?: number;
  /** Before each retry: restore a clean state (e.g. a new client). Default: nothing. */
  reset?: () => Promise<void>;
  /** Errors that retrying cannot cure (bad input, a fence): thrown at once. */
  permanent: (error: unknown) => boolean;
  /** Told of the first failure, once. */
  log: (line: string) => void;
}

/**
 * Runs `call` until it succeeds, retrying transient failures (a broker unreachable or stalled, a
 * coordinator moving, a leader election, a request timeout) with pauses growing from 100 ms to 2 s,
 * until `plan.deadline`. Throws the last failure (permanent, or the deadline passed).
 */
export async function retryTransient<T>(plan: RetryPlan, call: () => Promise<T>): Promise<T> {
  // The error to report: the last one that says more than that the deadline cut an attempt short.
  let telling: unknown;
  for (let attempt = 1; ; attempt++) {
    try {
      if (attempt > 1 && plan.reset !== undefined) await withDeadline(plan.reset(), Math.max(1, plan.deadline - Date.now()), `${plan.what}: reconnecting`);
      return await withDeadline(call(), Math.max(1, Math.min(plan.attemptMs ?? Infinity, plan.deadline - Date.now())), plan.what);
    } catch (error) {
      if (plan.permanent(error)) throw error;
      if (!(error instanceof NoAnswer) || telling === undefined) telling = error;
      if (Date.now() >= plan.deadline) throw telling;
      if (attempt === 1) plan.log(`${plan.what} failed (${describeError(error)}); retrying until ${new Date(plan.deadline).toISOString()} (connectorRetryDeadlineMs)`);
      await new Promise((resolve) => setTimeout(resolve, Math.min(2000, 100 * 2 ** (attempt - 1), Math.max(0, plan.deadline - Date.now()))));
    }
  }
}

/** kafkajs header values as strings (the last one when a header repeats). */
export function headersAsStrings(headers: Record<string, Buffer | string | ReadonlyArray<Buffer | string> | undefined> | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers ?? {})) {
    const last = Array.isArray(value) ? value.at(-1) : value;
    if (last !== undefined) out[name] = typeof last === 'string' ? last : (last as Buffer).toString('utf8');
  }
  return out;
}
