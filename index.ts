/**
 * Eddy's public API: everything a job module, a test or an embedding application uses. Explicit
 * named exports only; nothing else is public.
 */
import { memoryEgress } from './connectors/memory.js';
import { defineJob as defineJobWith, DEAD_LETTERS, type Job, type JobSpec } from './engine/job.js';
import { submit } from './engine/runtime/job-manager.js';

export { type Codec, jsonCodec, protobufCodec } from './engine/codec.js';
export { EddyError, type ErrorCode, ErrorCodes, InvocationFailed } from './engine/errors.js';
export {
  type Address,
  type AnyEgressRecords,
  type Context,
  defineFunction,
  type EgressDeclarations,
  type EgressRecords,
  type EgressRecordsOf,
  type EgressType,
  egressType,
  type Effects,
  type FailureHandler,
  type FunctionSpec,
  type FunctionType,
  type Handler,
  type RecordsOf,
  type SendAfterOptions,
  type StateHandle,
  type StateSpec,
  valueState,
} from './engine/function-type.js';
export {
  type CoordinatorContext,
  type CoordinatorType,
  type OutcomeEffects,
  type SagaContext,
  sagaCoordinator,
  type SagaCoordinatorType,
  type SagaOptions,
  type TpcContext,
  tpcCoordinator,
  type TpcCoordinatorType,
  type TpcOptions,
} from './engine/coordinator-type.js';
export { type ConnectorMetric, DEAD_LETTERS, defineRouter, type Egress, type Ingress, type Job, type JobSpec, type ReadResult, type Route, type Router, routeTo, type Sink, type SinkContext, type SourceContext, type SplitReader } from './engine/job.js';
export { keyGroupOf, ownerOfKeyGroup, keyGroupRangeOf, DEFAULT_MAX_PARALLELISM } from './engine/key-groups.js';
export { type SubmitOptions, defaultOptions } from './engine/options.js';
export { type CheckpointInfo, type JobHandle, type JobMetrics, type JobStatus, type JobSummary, type LatencySummary, submit } from './engine/runtime/job-manager.js';
export type { TransactionMetrics, WorkerMetrics } from './engine/runtime/worker-protocol.js';
export { showProgress, type ProgressOptions } from './engine/runtime/progress.js';
export type { DeadLetter } from './operators/function-dispatcher.js';
export { generatorIngress, type GeneratorInput, memoryEgress, memoryIngress, type MemoryInput } from './connectors/memory.js';
export { fileEgress, fileIngress } from './connectors/file.js';
export * from './connectors/kafka.js';

/**
 * Defines a job: its functions, ingresses with their routers, and egresses. A job without a
 * `dead-letters` egress gets a memory one (read it with `handle.output('dead-letters')`).
 */
export function defineJob(spec: JobSpec): Job {
  return defineJobWith(spec, () => memoryEgress(DEAD_LETTERS));
}

/** The engine: `engine.submit(job, options)` starts a job and returns its handle. */
export const engine = { submit } as const;
