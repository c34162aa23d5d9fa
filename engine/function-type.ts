/**
 * Function types: `defineFunction`, `egressType`, and the checks of addresses and declarations. The
 * public types are in function-types.ts (and state/state-types.ts), re-exported here.
 */
import { jsonCodec } from './codec.js';
import { EddyError } from './errors.js';
import type { Address, EgressDeclarations, EgressRecordsOf, EgressType, FunctionSpec, FunctionType } from './function-types.js';
import { isStateSpec } from './state/state-kinds.js';
import type { StateSpecs } from './state/state-types.js';

export type {
  Address,
  AnyEgressRecords,
  Context,
  EgressDeclarations,
  EgressRecords,
  EgressRecordsOf,
  EgressType,
  Effects,
  FailureHandler,
  FunctionSpec,
  FunctionType,
  Handler,
  RecordsOf,
  SendAfterOptions,
} from './function-types.js';

export { listState, mapState, valueState } from './state/state-kinds.js';
export type {
  AnyStateSpec,
  ListStateHandle,
  ListStateOptions,
  ListStateSpec,
  MapStateHandle,
  MapStateOptions,
  MapStateSpec,
  StateHandle,
  StateHandleOf,
  StateHandles,
  StateSpec,
  StateSpecs,
  ValueStateOptions,
} from './state/state-types.js';

/** `egresses: { responses: egressType<Response>() }`: the function writes `Response`s to `responses`. */
export function egressType<R>(): EgressType<R> {
  return { kind: 'egress-type' };
}

/**
 * Checks `egresses` of a function or coordinator: each is an egress whose name is its key, or an
 * `egressType()`.
 */
export function validateEgressDeclarations(egresses: unknown, where: string): void {
  if (egresses === undefined) return;
  if (egresses === null || typeof egresses !== 'object' || Array.isArray(egresses)) {
    throw new EddyError('EDDY_INVALID_JOB', `${where}: egresses must be an object of egress name to egress or egressType<Record>()`);
  }
  for (const [name, decl] of Object.entries(egresses as Record<string, unknown>)) {
    const d = decl as { kind?: unknown; name?: unknown } | null;
    if (d !== null && typeof d === 'object' && d.kind === 'egress-type') continue;
    if (d !== null && typeof d === 'object' && typeof d.name === 'string') {
      if (d.name === name) continue;
      throw new EddyError('EDDY_INVALID_JOB', `${where}: egresses.${name} is the egress ${JSON.stringify(d.name)}; use its name as the key: { ${JSON.stringify(d.name)}: ... }`);
    }
    throw new EddyError('EDDY_INVALID_JOB', `${where}: egresses.${name} must be an egress or egressType<Record>()`);
  }
}

const TYPE_PATTERN = /^[A-Za-z0-9_.-]+\/[A-Za-z0-9_.-]+$/;

export function validateFunctionTypeName(type: string, where: string): void {
  if (typeof type !== 'string' || !TYPE_PATTERN.test(type)) {
    throw new EddyError(
      'EDDY_INVALID_JOB',
      `${where}: function type ${JSON.stringify(type)} must look like "namespace/name" (letters, digits, _ . -)`,
    );
  }
}

export function validateAddress(value: unknown, where: string): asserts value is Address {
  const candidate = value as Partial<Address> | null | undefined;
  if (
    candidate === null ||
    typeof candidate !== 'object' ||
    typeof candidate.type !== 'string' ||
    typeof candidate.id !== 'string' ||
    candidate.id.length === 0
  ) {
    throw new EddyError(
      'EDDY_INVALID_ADDRESS',
      `${where}: ${JSON.stringify(value)} is not an address: pass { type: "namespace/name", id: "<non-empty string>" }`,
    );
  }
  // State keys and the wire carry ids as UTF-8, which has no encoding for an unpaired surrogate.
  if (!(candidate.id as string & { isWellFormed(): boolean }).isWellFormed()) {
    throw new EddyError(
      'EDDY_INVALID_ADDRESS',
      `${where}: id ${JSON.stringify(candidate.id)} is not well-formed Unicode (it has an unpaired surrogate); pass a well-formed string`,
    );
  }
}

export function formatAddress(address: Address): string {
  return `${address.type}:${address.id}`;
}

/**
 * Defines a function type. Its message type comes from the handler's parameter
 * (`handler(ctx, message: AccountOp)`) or the first type argument.
 */
export function defineFunction<M = unknown, S extends StateSpecs = Record<string, never>, E extends EgressDeclarations = Record<string, never>>(
  spec: FunctionSpec<M, S, E>,
): FunctionType<M, S, EgressRecordsOf<E>> {
  validateFunctionTypeName(spec.type, 'defineFunction');
  validateEgressDeclarations(spec.egresses, `function ${spec.type}`);
  if (typeof spec.handler !== 'function') {
    throw new EddyError('EDDY_INVALID_JOB', `function ${spec.type}: handler must be a function (ctx, message) => void`);
  }
  const state = spec.state ?? ({} as S);
  for (const [name, decl] of Object.entries(state)) {
    if (name.length === 0 || name.includes('\u0000')) {
      throw new EddyError('EDDY_INVALID_JOB', `function ${spec.type}: state name ${JSON.stringify(name)} must be non-empty and without \\u0000; rename it`);
    }
    if (!isStateSpec(decl)) {
      throw new EddyError('EDDY_INVALID_JOB', `function ${spec.type}: state ${JSON.stringify(name)} must be declared with valueState(), mapState() or listState()`);
    }
  }
  const type = spec.type;
  return {
    kind: 'regular',
    type,
    state,
    codec: spec.codec ?? jsonCodec<M>(),
    egresses: Object.keys(spec.egresses ?? {}),
    handler: spec.handler,
    onInvocationFailed: spec.onInvocationFailed,
    address: (id: string) => ({ type, id }),
  };
}
