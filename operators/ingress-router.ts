import type { Mesh } from '../engine/channels/mesh.js';
import { describeError, EddyError, type ErrorCode } from '../engine/errors.js';
import { validateAddress } from '../engine/function-type.js';
import type { ConnectorMetric, Job, ReadResult, Route, Router, SplitReader } from '../engine/job.js';
import { keyGroupOf, ownerOfKeyGroup } from '../engine/key-groups.js';
import type { SplitAssignment } from '../engine/runtime/worker-protocol.js';
import { barrier, Channel, Kind } from '../engine/wire/envelope.js';
import { isPromise } from '../engine/promises.js';
import type { FunctionDispatcher } from './function-dispatcher.js';
import { BlockedClock } from '../engine/runtime/worker-stats.js';

export interface IngressRouterConfig {
  worker: number;
  workers: number;
  maxParallelism: number;
  job: Job;
  mesh: Mesh;
  dispatcher: FunctionDispatcher;
  splits: readonly SplitAssignment[];
  /** Router envelopes in flight to one dispatcher before reading stops. */
  channelCapacity: number;
  /** Local feedback in flight plus waiting envelopes above which reading stops. */
  feedbackHighWaterMark: number;
}

interface OpenSplit {
  assignment: SplitAssignment;
  ingressName: string;
  routers: readonly Router[];
  reader: SplitReader<unknown>;
  done: boolean;
  retryAt: number;
}

/** Records read per `read` call; also the credit a destination must have before a read. */
const CHUNK = 64;
/** Chunks per event-loop turn, so acks, feedback and timers are never starved by reading. */
const CHUNKS_PER_TURN = 8;

/**
 * The ingress-router: reads the splits assigned to this worker, applies the job's routers, and
 * shuffles the resulting envelopes by key group to their owners. It is the only operator that ever
 * waits: when a destination has no credits left, or when feedback backs up past the high-water mark.
 */
export class IngressRouter {
  recordsRead = 0;
  envelopesRouted = 0;
  throttled = false;
  /** Time this router could not read: no credits at a destination, or feedback past its high-water mark. */
  readonly blockedClock = new BlockedClock<'credits' | 'feedback'>();
  private readonly credits: number[];
  private feedbackAcked = 0;
  private splits: OpenSplit[] = [];
  private stopped = true;
  /** A checkpoint waits for the running read: no new read starts meanwhile. */
  private barrierPending = false;
  private pumping = false;
  /** Settles when the pump that is running (possibly waiting for a read) has routed what it read. */
  private pumped: Promise<void> = Promise.resolve();
  private kickScheduled = false;
  private retryTimer: NodeJS.Timeout | undefined;
  private readonly chunk: number;

  constructor(private readonly config: IngressRouterConfig) {
    this.credits = Array.from({ length: config.workers }, () => config.channelCapacity);
    this.chunk = Math.max(1, Math.min(CHUNK, Math.floor(config.channelCapacity / 2)));
  }

  /** What the readers of this worker's splits report, labelled with their ingress. */
  connectorMetrics(): ConnectorMetric[] {
    return this.splits.flatMap((split) =>
      (split.reader.connectorMetrics?.() ?? []).map((metric) => ({ ...metric, labels: { ingress: split.ingressName, ...metric.labels } })),
    );
  }

  get sourcesDone(): boolean {
    return this.splits.every((split) => split.done);
  }

  async open(): Promise<void> {
    const { job } = this.config;
    for (const assignment of this.config.splits) {
      const ingress = job.ingresses[assignment.ingress]!;
      let reader: SplitReader<unknown>;
      try {
        reader = await ingress.openSplit(assignment.description, assignment.position);
      } catch (cause) {
        throw new EddyError('EDDY_SOURCE_FAILED', `ingress ${ingress.name} split ${assignment.split}: ${describeError(cause)}`, { cause });
      }
      this.splits.push({ assignment, ingressName: ingress.name, routers: job.routers.get(ingress.name) ?? [], reader, done: false, retryAt: 0 });
    }
  }

  /**
   * Checkpoint `id`: records where every split stands and emits barrier `id` on every router channel,
   * between two reads (a read under way is routed first: its records are before the cut).
   */
  async checkpoint(id: number): Promise<Array<{ ingress: number; split: number; position: unknown }>> {
    this.barrierPending = true;
    await this.pumped;
    const positions = this.positions();
    for (let destination = 0; destination < this.config.workers; destination++) {
      this.config.mesh.push(destination, Channel.ROUTER, barrier(id, this.config.worker));
    }
    this.barrierPending = false;
    this.kick();
    return positions;
  }

  start(): void {
    this.stopped = false;
    this.kick();
  }

  /** Whether a read is under way (its records are not routed yet). */
  get reading(): boolean {
    return this.pumping;
  }

  /**
   * Stops reading; the splits keep their positions. A read under way finishes first and its records
   * are routed: the reader has already moved past them, so dropping them would lose them for good.
   */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.retryTimer !== undefined) clearTimeout(this.retryTimer);
    await this.pumped;
    for (const split of this.splits) {
      if (!split.done) await split.reader.close();
    }
  }

  positions(): Array<{ ingress: number; split: number; position: unknown }> {
    return this.splits.map((s) => ({ ingress: s.assignment.ingress, split: s.assignment.split, position: s.reader.position() }));
  }

  /** A destination dispatcher took in envelopes: router credits back, feedback acknowledged. */
  onAck(from: number, credits: number, feedbackAcks: number): void {
    this.credits[from]! += credits;
    this.feedbackAcked += feedbackAcks;
    if (this.throttled || credits > 0) this.kick();
  }

  kick(): void {
    if (this.kickScheduled || this.stopped) return;
    this.kickScheduled = true;
    setImmediate(() => {
      this.kickScheduled = false;
      void this.pump().catch((error: unknown) => {
        // A source that fails is a job failure: surface it on the worker, where the job manager sees it.
        setImmediate(() => {
          throw error;
        });
      });
    });
  }

  private blocked(): boolean {
    const { dispatcher, feedbackHighWaterMark } = this.config;
    const backlog = dispatcher.feedbackSent - this.feedbackAcked + dispatcher.backlog;
    if (this.throttled) this.throttled = backlog > feedbackHighWaterMark / 2;
    else this.throttled = backlog > feedbackHighWaterMark;
    let reason: 'credits' | 'feedback' | undefined = this.throttled ? 'feedback' : undefined;
    if (reason === undefined && this.credits.some((credit) => credit < this.chunk)) reason = 'credits';
    this.blockedClock.mark(reason);
    return reason !== undefined;
  }

  private async pump(): Promise<void> {
    if (this.pumping || this.stopped) return;
    this.pumping = true;
    let pumped!: () => void;
    this.pumped = new Promise((resolve) => (pumped = resolve));
    try {
      for (let turn = 0; turn < CHUNKS_PER_TURN; turn++) {
        if (this.stopped || this.barrierPending || this.blocked()) return;
        const split = this.nextReadable();
        if (split === undefined) return;
        let result = split.reader.read(this.chunk);
        if (isPromise(result)) result = await result;
        // Routed even if stop() came meanwhile: the split's position is already past these records.
        this.routeAll(split, result);
        if (result.done) {
          split.done = true;
          await split.reader.close();
        } else if (result.retryAfterMs !== undefined && result.records.length === 0) {
          split.retryAt = Date.now() + result.retryAfterMs;
        }
      }
      this.kick();
    } finally {
      this.pumping = false;
      pumped();
    }
  }

  /** Round-robin over the splits that can be read now; arms a timer for the ones that said wait. */
  private rotation = 0;
  private nextReadable(): OpenSplit | undefined {
    const now = Date.now();
    let earliest = Infinity;
    for (let i = 0; i < this.splits.length; i++) {
      const split = this.splits[(this.rotation + i) % this.splits.length]!;
      if (split.done) continue;
      if (split.retryAt <= now) {
        this.rotation = (this.rotation + i + 1) % this.splits.length;
        return split;
      }
      earliest = Math.min(earliest, split.retryAt);
    }
    if (earliest !== Infinity && this.retryTimer === undefined) {
      this.retryTimer = setTimeout(() => {
        this.retryTimer = undefined;
        this.kick();
      }, earliest - now);
    }
    return undefined;
  }

  private routeAll(split: OpenSplit, result: ReadResult<unknown>): void {
    const ingressTime = performance.timeOrigin + performance.now();
    for (const rejected of result.rejected ?? []) {
      this.deadLetter(split, 'EDDY_UNDECODABLE_PAYLOAD', rejected.reason, rejected.raw);
    }
    for (const record of result.records) {
      this.recordsRead++;
      for (const router of split.routers) {
        let routes: Route | readonly Route[];
        try {
          routes = routesOf(router, record, split.ingressName);
        } catch (error) {
          this.deadLetter(split, (error as EddyError).code, (error as EddyError).message, record);
          continue;
        }
        if (Array.isArray(routes)) for (const route of routes as readonly Route[]) this.send(split, route, record, ingressTime);
        else this.send(split, routes as Route, record, ingressTime);
      }
    }
  }

  private send(split: OpenSplit, route: Route, record: unknown, ingressTime: number): void {
    const { job, maxParallelism, workers, worker, dispatcher, mesh } = this.config;
    let payload: Uint8Array;
    try {
      payload = encodeRoute(job, split.ingressName, route);
    } catch (error) {
      this.deadLetter(split, routeFailureCode(error), describeError(error), record);
      return;
    }
    const owner = ownerOfKeyGroup(keyGroupOf(route.to.id, maxParallelism), workers, maxParallelism);
    this.credits[owner]!--;
    this.envelopesRouted++;
    mesh.push(owner, Channel.ROUTER, {
      kind: Kind.INVOKE,
      targetType: route.to.type,
      targetId: route.to.id,
      sourceType: '',
      sourceId: '',
      payload,
      ingressTime,
      origin: worker,
      seq: dispatcher.nextSeq(),
    });
  }

  private deadLetter(split: OpenSplit, code: ErrorCode, reason: string, record: unknown): void {
    this.config.dispatcher.deadLetter(undefined, code, reason, { ingress: split.ingressName, record: jsonSafe(record) });
  }
}

function jsonSafe(value: unknown): unknown {
  try {
    return JSON.parse(JSON.stringify(value) ?? 'null') as unknown;
  } catch {
    return String(value);
  }
}

/**
 * The routes `router` gives `record`. Throws an EddyError (EDDY_ROUTER_FAILED, EDDY_ROUTER_NO_ADDRESS)
 * when there are none: the record is then a dead letter. Shared with the routers `eddy serve` runs
 * as functions (engine/statefun/router-functions.ts).
 */
export function routesOf(router: Router, record: unknown, ingressName: string): Route | readonly Route[] {
  let routes: Route | readonly Route[] | undefined;
  try {
    routes = router.route(record);
  } catch (error) {
    throw new EddyError('EDDY_ROUTER_FAILED', `router of ingress ${ingressName} threw: ${describeError(error)}`);
  }
  if (routes === undefined || routes === null || (Array.isArray(routes) && routes.length === 0)) {
    throw new EddyError('EDDY_ROUTER_NO_ADDRESS', `router of ingress ${ingressName} returned no address for a record; return { to: address, message }`);
  }
  return routes;
}

/** The payload of `route`, checked: a valid address of a function type of the job, and a message its codec encodes. */
export function encodeRoute(job: Job, ingressName: string, route: Route): Uint8Array {
  validateAddress(route?.to, `router of ingress ${ingressName}`);
  const fn = job.functions.get(route.to.type);
  if (fn === undefined) {
    throw new EddyError('EDDY_UNKNOWN_FUNCTION_TYPE', `router of ingress ${ingressName} addressed unknown function type ${JSON.stringify(route.to.type)}; add it to the job's functions`);
  }
  return fn.codec.encode(route.message);
}

/** The dead-letter code of a route `encodeRoute` refused. */
export function routeFailureCode(error: unknown): ErrorCode {
  return error instanceof EddyError ? error.code : 'EDDY_ROUTER_FAILED';
}
