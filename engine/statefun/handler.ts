import { createHash } from 'node:crypto';
import type { AnyFunctionType } from '../coordinator-type.js';
import { EddyError, type ErrorCode } from '../errors.js';
import type { Address, FunctionType, StateSpecs } from '../function-type.js';
import type { DeadLetter } from '../dead-letter.js';
import { DEAD_LETTERS, type Job } from '../job.js';
import { instancePrefix, userStateKey } from '../state/state-keys.js';
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
    for (const fn of job.functions.values()) {
      if (fn.kind !== 'regular') continue;
      const specs = new Map<string, PersistedValueSpec>();
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
    if (fn.kind !== 'regular') {
      throw new EddyError('EDDY_INVALID_ARGUMENT', `${type} is a ${fn.kind} coordinator; eddy serve does not serve coordinators yet (issue 13)`);
    }
    const missing = this.missingState(fn, batch);
    if (missing.length > 0) {
      return { response: encodeFromFunction({ incompleteInvocationContext: { missingValues: missing } }), incomplete: true, invocations: 0, deadLetters: [] };
    }
    return new BatchHost(this, fn, batch, request).run();
  }

  /** Every declared state value the request does not carry (names it carries but we do not declare are ignored). */
  private missingState(fn: FunctionType<unknown, StateSpecs>, batch: InvocationBatchRequest): PersistedValueSpec[] {
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

  constructor(
    private readonly server: StatefunHandler,
    private readonly fn: FunctionType<unknown, StateSpecs>,
    private readonly batch: InvocationBatchRequest,
    private readonly request: Uint8Array,
  ) {
    const id = batch.target!.id ?? '';
    this.prefix = instancePrefix(0, fn.type, id);
    for (const value of batch.state ?? []) {
      const name = value.stateName ?? '';
      if (!Object.prototype.hasOwnProperty.call(fn.state, name)) continue;
      const stateValue = value.stateValue;
      if (stateValue === null || stateValue === undefined || stateValue.hasValue !== true) continue;
      this.state.set(userStateKey(this.prefix, name), withHeader(valueBytes(stateValue)));
    }
    for (const name of Object.keys(fn.state)) this.declared.set(userStateKey(this.prefix, name), name);
    this.core = new InvocationCore(this, 1, 1);
  }

  /** Runs the invocations in order (each sees the writes of those before it) and builds the answer. */
  run(): Promise<ServedBatch> | ServedBatch {
    const invocations = this.batch.invocations ?? [];
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

  private invoke(invocation: NonNullable<InvocationBatchRequest['invocations']>[number]): Promise<void> | undefined {
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
    if (this.core.arrive(envelope)) return undefined;
    return this.core.run(envelope);
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

  // ---- CoreEmits ----

  apply(effects: Effects): void {
    for (const [key, value] of effects.writes ?? []) this.writes.set(key, value);
    for (const envelope of effects.sends ?? []) this.outgoing.push({ target: sfAddress(envelope.targetType, envelope.targetId), argument: this.argument(envelope) });
    // Cancellations first: an invocation that cancels token t and sends again with t means "replace".
    for (const token of effects.cancels ?? []) this.delayed.push({ isCancellationRequest: true, cancellationToken: token });
    for (const timer of effects.timers ?? []) this.delayed.push(this.delayedInvocation(timer));
    for (const record of effects.egressRecords ?? []) this.egresses.push(this.server.egressMessage(record));
  }

  route(envelope: Envelope): void {
    this.deadLetter(envelope, 'EDDY_INVALID_ARGUMENT', `transaction protocol envelope (kind ${envelope.kind}) for ${envelope.targetType}:${envelope.targetId}: eddy serve does not serve transactions yet`);
  }

  schedule(owner: Address, _kg: number, timer: StagedTimer): void {
    this.deadLetter(timer.envelope, 'EDDY_INVALID_ARGUMENT', `saga retry of ${owner.type}:${owner.id}: eddy serve does not serve sagas yet`);
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

  // ---- InstanceOrder: a request is one address's batch, run in order; transactions are not served yet ----

  hold(): void {
    throw unsupported('holding an address for a transaction');
  }

  reshare(): void {
    throw unsupported('holding an address for a transaction');
  }

  release(): void {}

  requeueFirst(): void {
    throw unsupported('requeueing a PREPARE');
  }

  queued(): readonly Envelope[] {
    return [];
  }

  removeQueued(): void {}

  inFlightOf(): Envelope | undefined {
    return undefined;
  }

  // ---- building the answer ----

  private argument(envelope: Envelope): ReturnType<typeof typedValue> {
    // envelopeTo checked that the target exists.
    return typedValue(messageTypenameOf(this.server.job.functions.get(envelope.targetType)), envelope.payload);
  }

  private delayedInvocation(timer: StagedTimer): DelayedInvocation {
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

function unsupported(what: string): EddyError {
  return new EddyError('EDDY_INVALID_ARGUMENT', `${what}: eddy serve does not serve transactions yet (issue 13)`);
}
