import type { Codec } from './codec.js';
import type { AnyFunctionType, CoordinatorType } from './coordinator-type.js';
import { EddyError } from './errors.js';
import type { Address, FunctionType } from './function-type.js';

/**
 * Where a record goes: one message to one function instance. Make it with `routeTo(address, message)`
 * so the message is checked against the target's type; a `{ to, message }` literal is unchecked.
 */
export interface Route {
  readonly to: Address;
  readonly message: unknown;
}

/** A route to `to` with `message`, which must be what `to` takes (typed by `fn.address(id)`). */
export function routeTo<T>(to: Address<T>, message: NoInfer<T>): Route {
  return { to, message };
}

/** Maps each record of an ingress to zero or more routes; returning nothing is an error. */
export interface Router<R = unknown> {
  readonly ingress: string;
  /** The ingress it was defined with, when given as an object: the job must list that very ingress. */
  readonly source?: Ingress<R> | undefined;
  route(record: R): Route | readonly Route[] | undefined;
}

/**
 * Routes the records of `ingress`. Given the ingress itself, its record type types `record` and the
 * job must list that ingress; given a name, `R` is whatever you say (the dynamic case).
 */
export function defineRouter<R>(ingress: Ingress<R>, route: (record: R) => Route | readonly Route[] | undefined): Router<R>;
export function defineRouter<R>(ingress: string, route: (record: R) => Route | readonly Route[] | undefined): Router<R>;
export function defineRouter<R>(ingress: Ingress<R> | string, route: (record: R) => Route | readonly Route[] | undefined): Router<R> {
  if (typeof ingress === 'string') return { ingress, route };
  if (typeof ingress?.name !== 'string') {
    throw new EddyError('EDDY_INVALID_JOB', 'defineRouter: pass the ingress (e.g. memoryIngress(...)) or its name as the first argument');
  }
  return { ingress: ingress.name, source: ingress, route };
}

/** What one `read` of a split returned. */
export interface ReadResult<R> {
  readonly records: readonly R[];
  /** The split has no more records, now or later. */
  readonly done: boolean;
  /** Nothing is available now; ask again after this many ms. */
  readonly retryAfterMs?: number;
  /** Input that could not be decoded into records; each goes to the dead-letter egress. */
  readonly rejected?: ReadonlyArray<{ readonly reason: string; readonly raw: unknown }>;
}

/**
 * One series a connector reports (records in and out, consumer lag, commit latency, ...): shown by
 * `handle.metrics().connectors` and served on the admin endpoint's Prometheus metrics.
 */
export interface ConnectorMetric {
  /** Prometheus name, e.g. `eddy_kafka_consumer_lag`; counters end in `_total`. */
  readonly name: string;
  readonly help: string;
  readonly type: 'counter' | 'gauge';
  /** The same label names for every series of one name. */
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

/** Reads one split of an ingress, inside a worker. */
export interface SplitReader<R> {
  /** Optional: the reader's metrics (the engine adds an `ingress` label). */
  connectorMetrics?(): ConnectorMetric[];
  read(max: number): ReadResult<R> | Promise<ReadResult<R>>;
  /** Where the next read starts: recorded by checkpoints; must be structured-cloneable. */
  position(): unknown;
  close(): void | Promise<void>;
}

/**
 * A source of records. The job manager plans splits once (on the main thread); each split is read by
 * the ingress-router of one worker.
 */
export interface Ingress<R = unknown> {
  readonly name: string;
  readonly kind: string;
  /**
   * Whether reading continues where it stopped when the job is submitted again with the same state
   * (and the same split descriptions), as for files; memory inputs are read from the start each time.
   */
  readonly resumable: boolean;
  /**
   * Main thread: one structured-cloneable description per split. `input` comes from submit options.
   * A source that retries transient errors gives up after `context.retryDeadlineMs` (carry it in
   * the split descriptions for the readers).
   */
  planSplits(input: unknown, context?: SourceContext): readonly unknown[] | Promise<readonly unknown[]>;
  /** Worker thread: opens one split, at `position` if it was read before. */
  openSplit(split: unknown, position: unknown): SplitReader<R> | Promise<SplitReader<R>>;
}

/** What a source learns about the job when it plans splits. */
export interface SourceContext {
  /** The job's connectorRetryDeadlineMs: how long transient errors may be retried before the attempt fails. */
  readonly retryDeadlineMs: number;
}

/** What a sink learns about the job when it opens. */
export interface SinkContext {
  readonly job: string;
  /** The egress's name. */
  readonly egress: string;
  /**
   * Whether the job takes checkpoints. Then the engine publishes output with `publishEpoch` (when
   * the sink has it) once the checkpoint that ends an epoch is complete; otherwise with `write`.
   */
  readonly exactlyOnce: boolean;
  /**
   * Names one sequence of epochs: the checkpoint directory's lineage, made when the directory is first
   * used. Epoch numbers only grow within one scope, so a marker of another scope means nothing
   * (a fresh checkpoint directory starts at epoch 1 again).
   */
  readonly epochScope: string;
  /**
   * How long a call may keep retrying transient errors (a broker unreachable or stalled, a request
   * timeout) before it fails: the job's connectorRetryDeadlineMs. A failed call fails the attempt,
   * and the engine calls nothing more on this sink: it opens a new one when it restores.
   */
  readonly retryDeadlineMs: number;
  log(line: string): void;
}

/** Receives the records of one egress, on the job manager's thread. */
export interface Sink<R> {
  /** Publishes records at once: the path without checkpoints (at-least-once across crashes). */
  write(records: readonly R[]): void | Promise<void>;
  /**
   * Exactly-once path: publishes the records of epoch `epoch` (everything produced up to the cut of
   * checkpoint `epoch`, which is complete and holds a copy of them) atomically together with a durable
   * marker saying `epoch` is published. Called in increasing epoch order, also with no records. After
   * a crash the engine calls it again for every completed epoch above `publishedEpoch()`.
   */
  publishEpoch?(epoch: number, records: readonly R[]): Promise<void>;
  /** The highest epoch of `context.epochScope` whose publication is durable; 0 if none. Called once after open. */
  publishedEpoch?(): Promise<number>;
  close(): void | Promise<void>;
  /** Optional: the sink's metrics (the engine adds an `egress` label). */
  connectorMetrics?(): ConnectorMetric[];
  /** For sinks that keep their records in memory: what they received, in order. */
  readonly records?: readonly R[];
}

export interface Egress<R = unknown> {
  readonly name: string;
  readonly kind: string;
  readonly codec: Codec<R>;
  openSink(context: SinkContext): Sink<R> | Promise<Sink<R>>;
}

export interface JobSpec {
  /** Shown in logs and stored in the state directory. */
  name: string;
  /**
   * The URL of the module that defines this job, i.e. `import.meta.url`: workers import it to get
   * the handlers (functions cannot be sent between threads).
   */
  module: string;
  /** Regular functions and coordinators (tpcCoordinator, sagaCoordinator). */
  functions: ReadonlyArray<FunctionType<any, any, any> | CoordinatorType<any, any>>;
  ingresses?: ReadonlyArray<Ingress<any>>;
  routers?: ReadonlyArray<Router<any>>;
  egresses?: ReadonlyArray<Egress<any>>;
}

export interface Job {
  readonly kind: 'eddy-job';
  readonly name: string;
  readonly module: string;
  readonly functions: ReadonlyMap<string, AnyFunctionType>;
  readonly ingresses: ReadonlyArray<Ingress>;
  readonly routers: ReadonlyMap<string, ReadonlyArray<Router>>;
  /** Egresses by index; the index is what crosses threads. */
  readonly egresses: ReadonlyArray<Egress>;
}

/** Name of the egress that receives undeliverable envelopes and bad records. */
export const DEAD_LETTERS = 'dead-letters';

function invalid(job: string, problem: string): EddyError {
  return new EddyError('EDDY_INVALID_JOB', `job ${JSON.stringify(job)}: ${problem}`);
}

/**
 * Checks a job's parts against each other once, so mistakes surface at definition time with the
 * part and the fix named, not as a lost record later. `deadLetters` is added when not given.
 */
export function defineJob(spec: JobSpec, deadLetters: () => Egress): Job {
  const name = spec.name;
  if (typeof name !== 'string' || name.length === 0) throw invalid(String(name), 'name must be a non-empty string');
  if (typeof spec.module !== 'string' || !spec.module.startsWith('file:')) {
    throw invalid(name, 'module must be the job module\'s file URL: pass `module: import.meta.url`');
  }
  const functions = new Map<string, AnyFunctionType>();
  for (const fn of spec.functions ?? []) {
    if (fn?.kind !== 'regular' && fn?.kind !== 'tpc' && fn?.kind !== 'saga') {
      throw invalid(name, 'functions must be made with defineFunction(), tpcCoordinator() or sagaCoordinator()');
    }
    if (functions.has(fn.type)) throw invalid(name, `function type ${fn.type} is defined twice`);
    functions.set(fn.type, fn as AnyFunctionType);
  }
  if (functions.size === 0) throw invalid(name, 'functions must list at least one function type');

  const ingresses = [...(spec.ingresses ?? [])];
  const ingressNames = new Set<string>();
  for (const ingress of ingresses) {
    if (ingressNames.has(ingress.name)) throw invalid(name, `ingress ${ingress.name} is defined twice`);
    ingressNames.add(ingress.name);
  }
  const routers = new Map<string, Router[]>();
  for (const router of spec.routers ?? []) {
    if (!ingressNames.has(router.ingress)) {
      throw invalid(name, `a router reads ingress ${JSON.stringify(router.ingress)}, which the job does not define; add it to ingresses`);
    }
    if (router.source !== undefined && !ingresses.includes(router.source)) {
      throw invalid(name, `the router of ingress ${router.ingress} was defined with another ingress of that name; pass the job's ingress to defineRouter`);
    }
    if (typeof router.route !== 'function') throw invalid(name, `the router of ingress ${router.ingress} needs a route(record) function`);
    routers.set(router.ingress, [...(routers.get(router.ingress) ?? []), router]);
  }
  for (const ingress of ingresses) {
    if (!routers.has(ingress.name)) throw invalid(name, `ingress ${ingress.name} has no router: add defineRouter('${ingress.name}', ...)`);
  }

  const egresses = [...(spec.egresses ?? [])];
  const egressNames = new Set<string>();
  for (const egress of egresses) {
    if (egressNames.has(egress.name)) throw invalid(name, `egress ${egress.name} is defined twice`);
    egressNames.add(egress.name);
  }
  if (!egressNames.has(DEAD_LETTERS)) egresses.push(deadLetters());
  for (const fn of functions.values()) {
    for (const egress of fn.egresses ?? []) {
      if (egress !== DEAD_LETTERS && !egressNames.has(egress)) {
        throw invalid(name, `function ${fn.type} declares egress ${JSON.stringify(egress)}, which the job does not define; add it to egresses`);
      }
    }
  }

  return { kind: 'eddy-job', name, module: spec.module, functions, ingresses, routers, egresses };
}

export function isJob(value: unknown): value is Job {
  return typeof value === 'object' && value !== null && (value as Job).kind === 'eddy-job';
}

/** Finds the job a module exports: its default export, or the one named export that is a job. */
export function jobFromModule(exports: Record<string, unknown>, where: string): Job {
  if (isJob(exports.default)) return exports.default;
  const jobs = Object.values(exports).filter(isJob);
  if (jobs.length === 1 && jobs[0] !== undefined) return jobs[0];
  throw new EddyError(
    'EDDY_INVALID_JOB',
    `${where} must export a job made with defineJob() as its default export (found ${jobs.length} job exports)`,
  );
}
