import type { CoordinatorType, OutcomeEffects as OutcomeContext, SagaContext, TpcContext } from '../../engine/coordinator-type.js';
import { EddyError } from '../../engine/errors.js';
import { type Address, type SendAfterOptions, validateAddress } from '../../engine/function-type.js';
import type { Envelope } from '../../engine/wire/envelope.js';
import { type OutcomeEffects, StepStatus, type Step } from '../../engine/wire/transactions.js';
import type { CoreReads } from '../core-host.js';
import { egressRecordFor, envelopeTo, freshTimerToken } from '../invocation.js';

/** Collects the effects of one outcome, encoded at once so mistakes surface in the handler. */
class Outcome implements OutcomeContext {
  readonly effects: OutcomeEffects = { sends: [], delayed: [], egress: [] };

  constructor(
    private readonly host: CoreReads,
    private readonly request: Envelope,
    private readonly self: Address,
    private readonly name: string,
  ) {}

  send(to: Address, message: unknown): void {
    this.effects.sends.push(envelopeTo(this.host, this.self, this.request.ingressTime, to, message, `${this.name}.send`));
  }

  sendAfter(delayMs: number, to: Address, message: unknown, options: SendAfterOptions = {}): string {
    if (typeof delayMs !== 'number' || !Number.isFinite(delayMs) || delayMs < 0) {
      throw new EddyError('EDDY_INVALID_ARGUMENT', `${this.name}.sendAfter: delayMs must be a finite number >= 0, got ${String(delayMs)}`);
    }
    const token = options.token ?? freshTimerToken(this.host);
    const envelope = envelopeTo(this.host, this.self, this.request.ingressTime, to, message, `${this.name}.sendAfter`);
    this.effects.delayed.push({ envelope, delayMs, token });
    return token;
  }

  egress(name: string, record: unknown): void {
    this.effects.egress.push(egressRecordFor(this.host, name, record, this.request.ingressTime));
  }
}

/** What a coordinator's handler declared: the steps of its transaction and the effects of its outcomes. */
abstract class CoordinatorDeclaration {
  readonly steps: Step[] = [];
  readonly onSuccess: Outcome;
  readonly onFailure: Outcome;
  readonly onRetryable: Outcome;
  readonly self: Address;

  constructor(
    protected readonly host: CoreReads,
    readonly fn: CoordinatorType,
    readonly request: Envelope,
  ) {
    this.self = { type: request.targetType, id: request.targetId };
    this.onSuccess = new Outcome(host, request, this.self, 'onSuccess');
    this.onFailure = new Outcome(host, request, this.self, 'onFailure');
    this.onRetryable = new Outcome(host, request, this.self, 'onRetryable');
  }

  get caller(): Address | undefined {
    return this.request.sourceType === '' ? undefined : { type: this.request.sourceType, id: this.request.sourceId };
  }

  /** The encoded message for participant `to`, which must be a regular function of the job. */
  protected encodeFor(to: Address, message: unknown, what: string): Uint8Array {
    validateAddress(to, `${what} in coordinator ${this.fn.type}`);
    const target = this.host.functionType(to.type);
    if (target === undefined) {
      throw new EddyError(
        'EDDY_UNKNOWN_FUNCTION_TYPE',
        `${what} in coordinator ${this.fn.type}: unknown function type ${JSON.stringify(to.type)}; add it to the job's functions`,
      );
    }
    if (target.kind !== 'regular') {
      throw new EddyError(
        'EDDY_INVALID_ARGUMENT',
        `${what} in coordinator ${this.fn.type}: ${to.type} is a coordinator; participants must be regular functions (defineFunction)`,
      );
    }
    return target.codec.encode(message);
  }
}

export class TpcDeclaration extends CoordinatorDeclaration implements TpcContext {
  invoke(to: Address, message: unknown): void {
    const payload = this.encodeFor(to, message, 'ctx.invoke');
    // Several invocations of one instance are one participant, staged in declared order.
    const participant = this.steps.find((step) => step.type === to.type && step.id === to.id);
    if (participant !== undefined) participant.invocations.push(payload);
    else this.steps.push({ type: to.type, id: to.id, invocations: [payload], compensation: new Uint8Array(0), status: StepStatus.PENDING, attempts: 0 });
  }
}

export class SagaDeclaration extends CoordinatorDeclaration implements SagaContext {
  invokePair(to: Address, forward: unknown, compensation: unknown): void {
    const forwardPayload = this.encodeFor(to, forward, 'ctx.invokePair (forward)');
    const compensationPayload = this.encodeFor(to, compensation, 'ctx.invokePair (compensation)');
    this.steps.push({ type: to.type, id: to.id, invocations: [forwardPayload], compensation: compensationPayload, status: StepStatus.PENDING, attempts: 0 });
  }
}
