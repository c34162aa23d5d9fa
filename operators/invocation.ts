import { EddyError } from '../engine/errors.js';
import {
  type Address,
  type Context,
  type FunctionType,
  type SendAfterOptions,
  type StateSpecs,
  validateAddress,
} from '../engine/function-type.js';
import type { EncodedEffects } from '../engine/remote/encoded-effects.js';
import { instancePrefix, userStateKey } from '../engine/state/state-keys.js';
import { egressTypename, hasOwnTypename, typenameOf } from '../engine/statefun/types.js';
import { bindState, type StateAccess } from '../engine/state/state-kinds.js';
import { type EgressRecord, type Envelope, Kind } from '../engine/wire/envelope.js';

import type { CoreReads, Effects, InstanceOrder, StagedTimer } from './core-host.js';

/**
 * An envelope with a message from `from` to `to`, encoded with the target's codec. `what` names the
 * call in errors (an unknown target type is the caller's mistake, named with the fix).
 */
export function envelopeTo(host: CoreReads, from: Address, ingressTime: number, to: Address, message: unknown, what: string): Envelope {
  validateAddress(to, `${what} from ${from.type}:${from.id}`);
  const target = host.functionType(to.type);
  if (target === undefined) {
    throw new EddyError(
      'EDDY_UNKNOWN_FUNCTION_TYPE',
      `${what} from ${from.type}:${from.id} to unknown function type ${JSON.stringify(to.type)}; add it to the job's functions`,
    );
  }
  return {
    kind: Kind.INVOKE,
    targetType: to.type,
    targetId: to.id,
    sourceType: from.type,
    sourceId: from.id,
    payload: target.codec.encode(message),
    ingressTime,
    origin: host.worker,
    seq: host.nextSeq(),
  };
}

/** An egress record for the egress called `name`, which must exist. */
export function egressRecordFor(host: CoreReads, name: string, record: unknown, ingressTime: number): EgressRecord {
  const index = host.egressIndex(name);
  if (index === undefined) {
    throw new EddyError(
      'EDDY_UNKNOWN_EGRESS',
      `egress ${JSON.stringify(name)} is not defined by the job; defined: ${host.egressNames().join(', ')}`,
    );
  }
  return { egress: index, payload: host.encodeEgress(index, record), ingressTime };
}

/** A fresh token for a delayed message: unique per worker run and time. */
export function freshTimerToken(host: CoreReads): string {
  if (host.timerToken !== undefined) return host.timerToken();
  return `${Date.now().toString(36)}.${host.worker}.${host.nextSeq()}`;
}

/**
 * The context of one invocation. Every effect is staged here and applied by the dispatcher only if
 * the handler succeeds, so a failed invocation leaves no trace.
 */
export class Invocation implements Context, Effects, StateAccess, EncodedEffects {
  readonly kg: number;
  writes: Map<string, Uint8Array | null> | undefined;
  sends: Envelope[] | undefined;
  timers: StagedTimer[] | undefined;
  cancels: string[] | undefined;
  egressRecords: EgressRecord[] | undefined;
  private prefix: string | undefined;
  // Made on first use: many handlers never touch some of them, and this runs per invocation.
  private selfAddress: Address | undefined;
  private stateAccessor: Context['state'] | undefined;

  constructor(
    private readonly host: CoreReads,
    readonly fn: FunctionType<unknown, StateSpecs>,
    readonly envelope: Envelope,
    kg: number,
  ) {
    this.kg = kg;
  }

  get self(): Address {
    return (this.selfAddress ??= { type: this.envelope.targetType, id: this.envelope.targetId });
  }

  get caller(): Address | undefined {
    const { sourceType, sourceId } = this.envelope;
    return sourceType === '' ? undefined : { type: sourceType, id: sourceId };
  }

  get state(): Context['state'] {
    return (this.stateAccessor ??= new (stateAccessorClass(this.fn))(this));
  }

  /** Key of a declared state value of this instance. */
  stateKey(name: string): string {
    this.prefix ??= instancePrefix(this.kg, this.self.type, this.self.id);
    return userStateKey(this.prefix, name);
  }

  readStaged(key: string): Uint8Array | null | undefined {
    const staged = this.writes?.get(key);
    return staged !== undefined ? staged : this.host.readState(key);
  }

  stageWrite(key: string, value: Uint8Array | null): void {
    (this.writes ??= new Map()).set(key, value);
  }

  get instanceName(): string {
    return `${this.self.type}:${this.self.id}`;
  }

  scanState(prefix: string): AsyncIterable<[string, Uint8Array]> {
    return this.host.scanState(prefix);
  }

  send(to: Address, message: unknown): void {
    (this.sends ??= []).push(this.envelopeTo(to, message, 'send'));
  }

  sendAfter(delayMs: number, to: Address, message: unknown, options: SendAfterOptions = {}): string {
    if (typeof delayMs !== 'number' || !Number.isFinite(delayMs) || delayMs < 0) {
      throw new EddyError('EDDY_INVALID_ARGUMENT', `sendAfter: delayMs must be a finite number >= 0, got ${String(delayMs)}`);
    }
    const token = options.token ?? freshTimerToken(this.host);
    if (
      this.timers?.some((t) => t.token === token) === true ||
      (this.cancels?.includes(token) !== true && this.host.timerPending(this.self, this.kg, token))
    ) {
      throw new EddyError(
        'EDDY_DUPLICATE_TIMER_TOKEN',
        `sendAfter from ${this.self.type}:${this.self.id}: token ${JSON.stringify(token)} is already pending; cancel it first or use another token`,
      );
    }
    (this.timers ??= []).push({ fireAt: Date.now() + delayMs, delayMs, token, envelope: this.envelopeTo(to, message, 'sendAfter') });
    return token;
  }

  cancelDelayed(token: string): void {
    const staged = this.timers?.findIndex((t) => t.token === token) ?? -1;
    if (staged >= 0) this.timers!.splice(staged, 1);
    else (this.cancels ??= []).push(token);
  }

  egress(name: string, record: unknown): void {
    (this.egressRecords ??= []).push(egressRecordFor(this.host, name, record, this.envelope.ingressTime));
  }

  private envelopeTo(to: Address, message: unknown, what: string): Envelope {
    return envelopeTo(this.host, this.self, this.envelope.ingressTime, to, message, what);
  }

  // ---- EncodedEffects: a remote function's answer, already encoded ----

  sendEncoded(to: Address, typename: string, payload: Uint8Array): void {
    (this.sends ??= []).push(this.encodedEnvelopeTo(to, typename, payload, 'a message'));
  }

  sendAfterEncoded(delayMs: number, to: Address, typename: string, payload: Uint8Array, token: string | undefined): void {
    const envelope = this.encodedEnvelopeTo(to, typename, payload, 'a delayed message');
    const staged = token ?? freshTimerToken(this.host);
    // StateFun replaces a pending delayed message of the same token: cancel it first.
    if (token !== undefined && this.host.timerPending(this.self, this.kg, token)) this.cancelDelayed(token);
    (this.timers ??= []).push({ fireAt: Date.now() + delayMs, delayMs, token: staged, envelope });
  }

  egressEncoded(egress: string, typename: string, payload: Uint8Array): void {
    const names = this.host.egressNames();
    const index = names.findIndex((name) => egressTypename(name) === egress);
    if (index < 0) {
      throw new EddyError('EDDY_UNKNOWN_EGRESS', `remote function ${this.fn.type} wrote to egress ${egress}, which the job does not have; its egresses are ${names.map(egressTypename).join(', ')}`);
    }
    (this.egressRecords ??= []).push({ egress: index, payload, ingressTime: this.envelope.ingressTime });
  }

  waitingInvokes(max: number): readonly Envelope[] {
    // Only a plain invocation takes others along: a PREPARE or saga step runs one transaction's messages.
    const order = this.host as CoreReads & Partial<InstanceOrder>;
    if (this.envelope.kind !== Kind.INVOKE || typeof order.queued !== 'function' || max <= 0) return [];
    const waiting = order.queued(this.self);
    let count = 0;
    while (count < max && count < waiting.length && waiting[count]!.kind === Kind.INVOKE) count++;
    return waiting.slice(0, count);
  }

  takeWaiting(count: number): void {
    const order = this.host as CoreReads & Partial<InstanceOrder>;
    for (let i = 0; i < count; i++) order.removeQueued!(this.self, 0);
  }

  private encodedEnvelopeTo(to: Address, typename: string, payload: Uint8Array, what: string): Envelope {
    validateAddress(to, `${what} from remote function ${this.fn.type}`);
    const target = this.host.functionType(to.type);
    if (target === undefined) {
      throw new EddyError('EDDY_UNKNOWN_FUNCTION_TYPE', `remote function ${this.fn.type} sent ${what} to function type ${to.type}, which the job does not have`);
    }
    if (target.kind === 'regular' && hasOwnTypename(target.codec) && typename !== typenameOf(target.codec)) {
      throw new EddyError('EDDY_UNDECODABLE_PAYLOAD', `remote function ${this.fn.type} sent ${what} of type ${typename} to ${to.type}, which takes ${typenameOf(target.codec)}`);
    }
    return {
      kind: Kind.INVOKE,
      targetType: to.type,
      targetId: to.id,
      sourceType: this.self.type,
      sourceId: this.self.id,
      payload,
      ingressTime: this.envelope.ingressTime,
      origin: this.host.worker,
      seq: this.host.nextSeq(),
    };
  }
}

type StateAccessorClass = new (invocation: Invocation) => Context['state'];
const accessorClasses = new WeakMap<FunctionType<unknown, StateSpecs>, StateAccessorClass>();

/**
 * One class per function type with a getter per declared state name. A name that was not declared
 * falls through the prototype chain to a proxy that throws a clear error, at no cost for the rest.
 */
function stateAccessorClass(fn: FunctionType<unknown, StateSpecs>): StateAccessorClass {
  let cls = accessorClasses.get(fn);
  if (cls !== undefined) return cls;
  const declared = Object.keys(fn.state);
  const undeclared = new Proxy(
    {},
    {
      get(_target, property) {
        if (typeof property !== 'string' || property === 'then' || property === 'toJSON' || property === 'constructor') return undefined;
        throw new EddyError(
          'EDDY_UNDECLARED_STATE',
          `function ${fn.type} reads state ${JSON.stringify(property)}, which it does not declare; ` +
            `declared: ${declared.length === 0 ? '(none)' : declared.join(', ')}; add it to state: { ${property}: valueState() }`,
        );
      },
    },
  );
  const proto: Record<string, unknown> = Object.create(undeclared);
  for (const name of declared) {
    const spec = fn.state[name]!;
    Object.defineProperty(proto, name, {
      get(this: { invocation: Invocation }) {
        return bindState(this.invocation, name, spec);
      },
    });
  }
  const accessor = function (this: { invocation: Invocation }, invocation: Invocation) {
    this.invocation = invocation;
  } as unknown as StateAccessorClass;
  (accessor as unknown as { prototype: unknown }).prototype = proto;
  accessorClasses.set(fn, accessor);
  cls = accessor;
  return cls;
}
