import { createHash } from 'node:crypto';
import type { AnyFunctionType } from '../coordinator-type.js';
import { EddyError, type ErrorCode } from '../errors.js';
import type { Address } from '../function-type.js';
import type { DeadLetter } from '../dead-letter.js';
import { DEAD_LETTERS, type Job } from '../job.js';
import { instancePrefix, txnKey, userStateKey } from '../state/state-keys.js';
import { type EgressRecord, type Envelope, Kind } from '../wire/envelope.js';
import type { CoreHost, Effects, StagedTimer } from '../../operators/core-host.js';
import { InvocationCore } from '../../operators/invocation-core.js';
import { kafkaEgressOf } from './kafka-descriptions.js';
import { isRouterFunctionType, RouterFunctions } from './router-functions.js';
import {
  type DelayedInvocation,
  decodeToFunction,
  type EgressMessage,
  encodeFromFunction,
  encodeKafkaProducerRecord,
  ExpireMode,
  type FromFunctionInvocation,
  functionTypeOf,
  type InvocationBatchRequest,
  KAFKA_PRODUCER_RECORD_TYPENAME,
  MutationType,
  type PersistedValueMutation,
  type PersistedValueSpec,
  sfAddress,
  splitTypename,
  typedValue,
  valueBytes,
} from './protocol.js';
import { egressTypename, hasOwnTypename, messageTypenameOf, typenameOf } from './types.js';
import {
  decodeOrder,
  decodeProtocolMessage,
  encodeOrder,
  encodeProtocolMessage,
  isProtocolTypename,
  LOCK_WAIT_TYPENAME,
  ORDER_STATE,
  ORDER_TYPENAME,
  protocolTypename,
  type ServedOrder,
  TXN_RECORD_TYPENAME,
  TXN_STATE,
  transactionStateSpecs,
} from './coordinators-served.js';
import type { HoldMode } from '../../operators/core-host.js';

/** A message the served job could not take (the embedded engine writes these to `dead-letters`). */
export interface ServedDeadLetter {
  code: ErrorCode;
  reason: string;
  /** `type:id` of the instance the message was for. */
  target: string;
}

/** What serving one request did. */
export interface ServedBatch {
  /** The FromFunction bytes to answer with. */
  response: Uint8Array;
  /** True when the answer asks for the declared state (no invocation ran). */
  incomplete: boolean;
  /** Handler runs. */
  invocations: number;
  deadLetters: ServedDeadLetter[];
}

export { egressTypename } from './types.js';

/**
 * Stored state values carry a header (operators/invocation.ts: [flags:u8][expiresAt:f64 if flags & 1]);
 * StateFun holds only the codec's bytes, and enforces the TTL itself.
 */
const EXPIRES = 1;

function withHeader(bytes: Uint8Array): Uint8Array {
  const stored = new Uint8Array(1 + bytes.byteLength);
  stored.set(bytes, 1);
  return stored;
}

function withoutHeader(stored: Uint8Array): Uint8Array {
  return stored.subarray((stored[0]! & EXPIRES) !== 0 ? 9 : 1);
}

/**
 * Serves a job's functions over StateFun's remote-function protocol: one ToFunction (a batch of
 * messages for one address, with that address's state) in, one FromFunction out. No state is kept
 * here between requests: StateFun owns it, so the answer is a function of the request alone, and a
 * request sent twice (a retry after a lost reply, or after a Flink restore) gets the same answer.
 */
export class StatefunHandler {
  /** The missing-state answer of each function type, by declared state name. */
  private readonly specs = new Map<string, Map<string, PersistedValueSpec>>();
  private readonly egressTypenames: ReadonlyArray<{ namespace: string; name: string }>;
  /** @internal The job's egresses by name (the core refers to them by index). */
  readonly egressIndexes: ReadonlyMap<string, number>;
  private readonly routers: RouterFunctions;

  constructor(
    readonly job: Job,
    private readonly options: { onDeadLetter?: (letter: ServedDeadLetter) => void } = {},
  ) {
    const hasCoordinators = [...job.functions.values()].some((fn) => fn.kind !== 'regular');
    for (const fn of job.functions.values()) {
      const specs = new Map<string, PersistedValueSpec>();
      // Transaction bookkeeping lives in declared state of every instance that can take part (coordinators-served.ts).
      for (const spec of transactionStateSpecs(fn, hasCoordinators)) specs.set(spec.stateName!, spec);
      for (const [name, spec] of Object.entries(fn.state)) {
        // StateFun keeps one value per declared name: map and list state (an entry per key) have no counterpart yet.
        if (spec.kind !== 'value') {
          throw new EddyError('EDDY_INVALID_JOB', `state ${name} of ${fn.type} is a ${spec.kind}State: eddy serve serves valueState only so far; declare it as a valueState, or run the job with eddy run`);
        }
        // Eddy's ttlMs counts from the last write: StateFun's AFTER_WRITE. No TTL is an empty spec (mode NONE, 0 ms).
        const expirationSpec = spec.ttlMs === undefined ? {} : { mode: ExpireMode.AFTER_WRITE, expireAfterMillis: spec.ttlMs };
        specs.set(name, { stateName: name, expirationSpec, typeTypename: typenameOf(spec.codec) });
      }
      this.specs.set(fn.type, specs);
    }
    this.egressTypenames = job.egresses.map((egress) => splitTypename(egressTypename(egress.name)));
    this.egressIndexes = new Map(job.egresses.map((egress, index) => [egress.name, index]));
    this.routers = new RouterFunctions(job, this);
  }

  /** The FromFunction bytes that answer the ToFunction `request`. */
  async handleToFunction(request: Uint8Array): Promise<Uint8Array> {
    return (await this.serve(request)).response;
  }

  /**
   * Answers one request. Throws (an EddyError naming the problem) when the request cannot be served at
   * all: not a ToFunction, no batch, a function type this job does not have. StateFun retries a failed
   * call until its timeout, then fails the job: these are deployment mistakes, not bad messages.
   */
  serve(request: Uint8Array): Promise<ServedBatch> | ServedBatch {
    const batch = decodeToFunction(request).invocation;
    if (batch === null || batch === undefined || batch.target === null || batch.target === undefined) {
      throw new EddyError('EDDY_INVALID_ARGUMENT', 'the ToFunction has no invocation batch with a target; only StateFun 3.x InvocationBatchRequest is served');
    }
    const type = functionTypeOf(batch.target);
    if (isRouterFunctionType(type)) return this.routers.serve(type, batch);
    const fn = this.job.functions.get(type);
    if (fn === undefined) {
      throw new EddyError(
        'EDDY_UNKNOWN_FUNCTION_TYPE',
        `StateFun called function type ${type}, which job ${this.job.name} does not have (it has ${[...this.job.functions.keys()].join(', ')}); ` +
          'fix the functions pattern of the endpoint in module.yaml',
      );
    }
    const missing = this.missingState(fn, batch);
    if (missing.length > 0) {
      return { response: encodeFromFunction({ incompleteInvocationContext: { missingValues: missing } }), incomplete: true, invocations: 0, deadLetters: [] };
    }
    return new BatchHost(this, fn, batch, request).run();
  }

  /** Every declared state value the request does not carry (names it carries but we do not declare are ignored). */
  private missingState(fn: AnyFunctionType, batch: InvocationBatchRequest): PersistedValueSpec[] {
    const specs = this.specs.get(fn.type)!;
    if (specs.size === 0) return [];
    const present = new Set((batch.state ?? []).map((value) => value.stateName));
    return [...specs.values()].filter((spec) => !present.has(spec.stateName));
  }

  /** @internal */
  egressTarget(index: number): { namespace: string; name: string } {
    return this.egressTypenames[index]!;
  }

  /** @internal A record for one of the job's egresses as StateFun takes it (a KafkaProducerRecord for a Kafka egress). */
  egressMessage(record: EgressRecord): EgressMessage {
    const { namespace, name } = this.egressTarget(record.egress);
    const egress = this.job.egresses[record.egress]!;
    const kafka = kafkaEgressOf(egress);
    if (kafka === undefined) return { egressNamespace: namespace, egressType: name, argument: typedValue(typenameOf(egress.codec), record.payload) };
    // StateFun's Kafka egress takes a KafkaProducerRecord: the key and value eddy's own sink would write.
    const message = kafka.toMessage(egress.codec.decode(record.payload));
    const key = message.key === null || message.key === undefined ? undefined : message.key.toString();
    const value = message.value === null ? new Uint8Array(0) : new Uint8Array(Buffer.from(message.value));
    const bytes = encodeKafkaProducerRecord({ ...(key === undefined ? {} : { key }), valueBytes: value, topic: kafka.topic });
    return { egressNamespace: namespace, egressType: name, argument: typedValue(KAFKA_PRODUCER_RECORD_TYPENAME, bytes) };
  }
  /**
   * @internal A dead letter as a record for the job's dead-letter egress, when that is a Kafka egress
   * (kafkaDeadLetterEgress): StateFun's Kafka egress then writes it as `eddy run` would. Undefined
   * when the job's dead letters go to memory, which StateFun has no counterpart for.
   */
  deadLetterEgress(letter: DeadLetter): EgressMessage | undefined {
    const index = this.egressIndexes.get(DEAD_LETTERS);
    if (index === undefined || kafkaEgressOf(this.job.egresses[index]!) === undefined) return undefined;
    return this.egressMessage({ egress: index, payload: this.job.egresses[index]!.codec.encode(letter), ingressTime: 0 });
  }

  /** @internal */
  deadLetter(letter: ServedDeadLetter): void {
    this.options.onDeadLetter?.(letter);
  }
}

/**
 * The invocation core's host for one request: the request's state is the working copy the handlers
 * read, every applied effect is collected in order, and the answer is built from them.
 */
class BatchHost implements CoreHost {
  readonly worker = 0;
  readonly isClosed = false;
  readonly isPaused = false;
  /** The state values the request carried, by state key (stored layout). */
  private readonly state = new Map<string, Uint8Array>();
  /** What the batch wrote so far, by state key; null deletes. */
  private readonly writes = new Map<string, Uint8Array | null>();
  /** The declared state names, by state key. */
  private readonly declared = new Map<string, string>();
  private readonly prefix: string;
  private readonly outgoing: FromFunctionInvocation[] = [];
  private readonly delayed: DelayedInvocation[] = [];
  private readonly egresses: EgressMessage[] = [];
  private readonly deadLetters: ServedDeadLetter[] = [];
  private readonly core: InvocationCore;
  private seq = 0;
  private tokenPrefix: string | undefined;
  private tokens = 0;
  /** This address, for the transaction state machines. */
  private readonly self: Address;
  /** The transaction record the request carried (`eddy_txn`), if any. */
  private readonly txnRecord: Uint8Array | undefined;
  /** How a transaction holds this address, what waits for it, in order (`eddy_order`). */
  private readonly order: ServedOrder;
  private readonly orderBytes: Uint8Array | undefined;

  constructor(
    private readonly server: StatefunHandler,
    private readonly fn: AnyFunctionType,
    private readonly batch: InvocationBatchRequest,
    private readonly request: Uint8Array,
  ) {
    const id = batch.target!.id ?? '';
    this.self = { type: fn.type, id };
    this.prefix = instancePrefix(0, fn.type, id);
    let txnRecord: Uint8Array | undefined;
    let orderBytes: Uint8Array | undefined;
    for (const value of batch.state ?? []) {
      const name = value.stateName ?? '';
      if (name === TXN_STATE || name === ORDER_STATE) {
        const bytes = value.stateValue?.hasValue === true ? valueBytes(value.stateValue) : undefined;
        if (name === TXN_STATE) txnRecord = bytes;
        else orderBytes = bytes;
        continue;
      }
      if (!Object.prototype.hasOwnProperty.call(fn.state, name)) continue;
      const stateValue = value.stateValue;
      if (stateValue === null || stateValue === undefined || stateValue.hasValue !== true) continue;
      this.state.set(userStateKey(this.prefix, name), withHeader(valueBytes(stateValue)));
    }
    for (const name of Object.keys(fn.state)) this.declared.set(userStateKey(this.prefix, name), name);
    this.core = new InvocationCore(this, 1, 1);
    this.txnRecord = txnRecord;
    this.orderBytes = orderBytes;
    this.order = decodeOrder(orderBytes);
    // The transaction goes on where the last request left it; the stored hold mode wins over the one
    // the record implies (a writer waiting behind read-only holders holds the address locked).
    const mode = this.order.mode;
    if (txnRecord !== undefined && txnRecord.byteLength > 0) this.core.load(this.self, txnRecord);
    this.order.mode = mode;
  }

  /** Runs the invocations in order (each sees the writes of those before it) and builds the answer. */
  run(): Promise<ServedBatch> | ServedBatch {
    const invocations = this.batch.invocations ?? [];
    // What the last request left waiting and may run now (a request answered before its queue drained cannot happen, but a stored queue is never trusted to be blocked).
    const first = this.drain();
    if (first !== undefined) return this.finishAsync(first, 0);
    for (let i = 0; i < invocations.length; i++) {
      const done = this.invoke(invocations[i]!);
      if (done !== undefined) return this.finishAsync(done, i + 1);
    }
    return this.answer();
  }

  private async finishAsync(pending: Promise<void>, next: number): Promise<ServedBatch> {
    await pending;
    const invocations = this.batch.invocations ?? [];
    for (let i = next; i < invocations.length; i++) await this.invoke(invocations[i]!);
    return this.answer();
  }

  /**
   * One message of the batch: a protocol envelope is offered to the core first (votes, decisions and
   * probes are consumed there); anything else waits its turn behind what waits already (`drain`).
   */
  private invoke(invocation: NonNullable<InvocationBatchRequest['invocations']>[number]): Promise<void> | undefined {
    const typename = invocation.argument?.typename ?? '';
    if (typename === LOCK_WAIT_TYPENAME) {
      this.core.lockWaitExpired(this.self, Buffer.from(valueBytes(invocation.argument)).toString('utf8'));
      return this.drain();
    }
    if (isProtocolTypename(typename)) {
      let envelope: Envelope;
      try {
        envelope = decodeProtocolMessage(typename, valueBytes(invocation.argument), this.self);
      } catch (error) {
        this.deadLetter(undefined, 'EDDY_UNDECODABLE_PAYLOAD', error instanceof Error ? error.message : String(error));
        return undefined;
      }
      envelope.seq = this.nextSeq();
      if (!this.core.arrive(envelope)) this.order.queue.push(envelope);
      return this.drain();
    }
    const envelope = this.userEnvelope(invocation);
    if (envelope === undefined) return undefined;
    this.order.queue.push(envelope);
    return this.drain();
  }

  /** Runs what waits for this address, in order, while no transaction holds it (a shared lock lets a PREPARE at the head through). */
  private drain(): Promise<void> | undefined {
    const { queue } = this.order;
    while (queue.length > 0 && !this.blocked(queue[0]!)) {
      const done = this.core.run(queue.shift()!);
      if (done !== undefined) return done.then(() => this.drain());
    }
    return undefined;
  }

  private blocked(head: Envelope): boolean {
    const { mode } = this.order;
    return mode !== undefined && !(mode === 'shared' && head.kind === Kind.PREPARE);
  }

  private userEnvelope(invocation: NonNullable<InvocationBatchRequest['invocations']>[number]): Envelope | undefined {
    const { fn } = this;
    const target = this.batch.target!;
    const caller = invocation.caller;
    const envelope: Envelope = {
      kind: Kind.INVOKE,
      targetType: fn.type,
      targetId: target.id ?? '',
      sourceType: caller === null || caller === undefined ? '' : functionTypeOf(caller),
      sourceId: caller?.id ?? '',
      payload: valueBytes(invocation.argument),
      ingressTime: 0,
      origin: 0,
      seq: this.nextSeq(),
    };
    const typename = invocation.argument?.typename ?? '';
    if (hasOwnTypename(fn.codec) && typename !== typenameOf(fn.codec)) {
      this.deadLetter(envelope, 'EDDY_UNDECODABLE_PAYLOAD', `message for ${fn.type}:${envelope.targetId} has typename ${JSON.stringify(typename)}, but ${fn.type} takes ${typenameOf(fn.codec)}; send it that type`);
      return undefined;
    }
    return envelope;
  }

  private answer(): ServedBatch {
    const stateMutations: PersistedValueMutation[] = [];
    for (const [key, name] of this.declared) {
      const value = this.writes.get(key);
      if (value === undefined) continue;
      if (value === null) stateMutations.push({ stateName: name });
      else {
        const codec = this.fn.state[name]!.codec;
        stateMutations.push({ mutationType: MutationType.MODIFY, stateName: name, stateValue: typedValue(typenameOf(codec), withoutHeader(value)) });
      }
    }
    this.transactionMutations(stateMutations);
    const response = encodeFromFunction({
      invocationResult: {
        ...(stateMutations.length > 0 ? { stateMutations } : {}),
        ...(this.outgoing.length > 0 ? { outgoingMessages: this.outgoing } : {}),
        ...(this.delayed.length > 0 ? { delayedInvocations: this.delayed } : {}),
        ...(this.egresses.length > 0 ? { outgoingEgresses: this.egresses } : {}),
      },
    });
    return { response, incomplete: false, invocations: this.core.stats.invocations, deadLetters: this.deadLetters };
  }

  /** The transaction record and the order of this address, where they changed. */
  private transactionMutations(mutations: PersistedValueMutation[]): void {
    // Only this address runs here, so its state machines keep records of it only.
    const key = txnKey(0, this.self.type, this.self.id);
    const record = this.core.records().find(([k]) => k === key)?.[1];
    if (!sameBytes(record, this.txnRecord)) {
      mutations.push(record === undefined ? { stateName: TXN_STATE } : { mutationType: MutationType.MODIFY, stateName: TXN_STATE, stateValue: typedValue(TXN_RECORD_TYPENAME, record) });
    }
    const order = encodeOrder(this.order) ?? undefined;
    if (!sameBytes(order, this.orderBytes)) {
      mutations.push(order === undefined ? { stateName: ORDER_STATE } : { mutationType: MutationType.MODIFY, stateName: ORDER_STATE, stateValue: typedValue(ORDER_TYPENAME, order) });
    }
  }

  // ---- CoreReads ----

  scanState(): AsyncIterable<[string, Uint8Array]> {
    // Unreachable: a job with map or list state is refused when the handler is made.
    throw new EddyError('EDDY_INVALID_JOB', 'eddy serve serves valueState only');
  }

  readState(key: string): Uint8Array | undefined {
    const written = this.writes.get(key);
    return written === undefined ? this.state.get(key) : (written ?? undefined);
  }

  loadState(): undefined {
    return undefined;
  }

  /** StateFun keeps the delayed messages: a token reused while pending replaces the earlier message there. */
  timerPending(): boolean {
    return false;
  }

  functionType(type: string): AnyFunctionType | undefined {
    return this.server.job.functions.get(type);
  }

  egressIndex(name: string): number | undefined {
    return this.server.egressIndexes.get(name);
  }

  egressNames(): string[] {
    return this.server.job.egresses.map((egress) => egress.name);
  }

  encodeEgress(index: number, record: unknown): Uint8Array {
    return this.server.job.egresses[index]!.codec.encode(record);
  }

  /** One address per request: its state keys need no key group. */
  keyGroup(): number {
    return 0;
  }

  nextSeq(): number {
    return ++this.seq;
  }

  /** Tokens from a digest of the request and a counter: the same request gets the same tokens. */
  timerToken(): string {
    this.tokenPrefix ??= createHash('sha256').update(this.request).digest('base64url').slice(0, 16);
    return `${this.tokenPrefix}.${++this.tokens}`;
  }

  /** From a counter kept in the coordinator's state: the same request starts the same transaction, and no two of an instance share an id. */
  transactionId(): string {
    this.tokenPrefix ??= createHash('sha256').update(this.request).digest('base64url').slice(0, 16);
    // The digest first: with every transaction started at 0 (see `now`), ids order deadlock victims, at random.
    return `${this.tokenPrefix}.${++this.order.started}`;
  }

  /**
   * No clock: the request carries no time, and a request sent twice must get the same answer. Every
   * transaction starts at 0 (its id breaks the tie when a deadlock's victim is chosen) and delays
   * count from the answer.
   */
  now(): number {
    return 0;
  }

  // ---- CoreEmits ----

  apply(effects: Effects): void {
    for (const [key, value] of effects.writes ?? []) this.writes.set(key, value);
    for (const envelope of effects.sends ?? []) this.outgoing.push({ target: sfAddress(envelope.targetType, envelope.targetId), argument: this.argument(envelope) });
    // Cancellations first: an invocation that cancels token t and sends again with t means "replace".
    for (const token of effects.cancels ?? []) this.delayed.push({ isCancellationRequest: true, cancellationToken: token });
    for (const timer of effects.timers ?? []) this.delayed.push(this.delayedInvocation(timer));
    for (const record of effects.egressRecords ?? []) this.egresses.push(this.server.egressMessage(record));
  }

  /** Protocol envelopes are StateFun messages of `io.eddy.types/<kind>`. */
  route(envelope: Envelope): void {
    this.outgoing.push({ target: sfAddress(envelope.targetType, envelope.targetId), argument: this.argument(envelope) });
  }

  /** A saga's retried compensation: a StateFun delayed message (its token is made from the transaction, step and attempt). */
  schedule(_owner: Address, _kg: number, timer: StagedTimer): void {
    this.delayed.push(this.delayedInvocation(timer));
  }

  scheduleLockWait(owner: Address, txnId: string, delayMs: number): void {
    this.delayed.push({
      delayInMs: delayMs,
      target: sfAddress(owner.type, owner.id),
      argument: typedValue(LOCK_WAIT_TYPENAME, new Uint8Array(Buffer.from(txnId, 'utf8'))),
      cancellationToken: `${txnId}/lock-wait`,
    });
  }

  cancelLockWait(_owner: Address, txnId: string): void {
    this.delayed.push({ isCancellationRequest: true, cancellationToken: `${txnId}/lock-wait` });
  }

  deadLetter(envelope: Envelope | undefined, code: ErrorCode, reason: string): void {
    const letter = { code, reason, target: envelope === undefined ? `${this.fn.type}:${this.batch.target!.id ?? ''}` : `${envelope.targetType}:${envelope.targetId}` };
    this.deadLetters.push(letter);
    this.server.deadLetter(letter);
    const record: DeadLetter = { code, reason };
    if (envelope !== undefined) {
      record.target = { type: envelope.targetType, id: envelope.targetId };
      if (envelope.sourceType !== '') record.source = { type: envelope.sourceType, id: envelope.sourceId };
      record.payloadBase64 = Buffer.from(envelope.payload).toString('base64');
    }
    const egress = this.server.deadLetterEgress(record);
    if (egress !== undefined) this.egresses.push(egress);
  }

  afterTimer(): void {}

  slotFreed(): void {}

  // ---- InstanceOrder: one address per request; its hold and queue are kept in its state (`eddy_order`) ----

  hold(address: Address, mode: HoldMode): void {
    if (this.isSelf(address)) this.order.mode = mode;
  }

  reshare(address: Address): void {
    if (this.isSelf(address)) this.order.mode = 'shared';
  }

  /** What waited runs when the message that released the address is done (see `invoke`). */
  release(address: Address): void {
    if (this.isSelf(address)) this.order.mode = undefined;
  }

  requeueFirst(address: Address, envelope: Envelope): void {
    if (this.isSelf(address)) this.order.queue.unshift(envelope);
  }

  queued(address: Address): readonly Envelope[] {
    return this.isSelf(address) ? this.order.queue : [];
  }

  removeQueued(address: Address, index: number): void {
    if (this.isSelf(address)) this.order.queue.splice(index, 1);
  }

  /** The messages of a batch run one after another: none runs while another arrives. */
  inFlightOf(): Envelope | undefined {
    return undefined;
  }

  private isSelf(address: Address): boolean {
    return address.type === this.self.type && address.id === this.self.id;
  }

  // ---- building the answer ----

  private argument(envelope: Envelope): ReturnType<typeof typedValue> {
    // A protocol envelope (a PREPARE, a saga step, ...) goes whole, as an io.eddy.types message.
    if (envelope.kind !== Kind.INVOKE) return typedValue(protocolTypename(envelope.kind), encodeProtocolMessage(envelope));
    // envelopeTo checked that the target exists.
    return typedValue(messageTypenameOf(this.server.job.functions.get(envelope.targetType)), envelope.payload);
  }

  private delayedInvocation(timer: StagedTimer): DelayedInvocation {
    // A timer staged in a participant's lock record kept its fire time only (on the worker's clock, in invocation.ts): it counts from the commit.
    const delayMs = Math.max(0, Math.round(timer.delayMs ?? timer.fireAt - Date.now()));
    const { envelope } = timer;
    return {
      ...(delayMs > 0 ? { delayInMs: delayMs } : {}),
      target: sfAddress(envelope.targetType, envelope.targetId),
      argument: this.argument(envelope),
      cancellationToken: timer.token,
    };
  }

}

function sameBytes(a: Uint8Array | undefined, b: Uint8Array | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
}
