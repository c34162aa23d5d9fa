/**
 * Eddy's public API: everything a job module, a test or an embedding application uses. Explicit
 * named exports only; nothing else is public.
 */
import { memoryEgress } from './connectors/memory.js';
import { defineJob as defineJobWith, DEAD_LETTERS, type Job, type JobSpec } from './engine/job.js';
import { EddyError } from './engine/errors.js';
import type { SubmitOptions } from './engine/options.js';
import type { JobHandle } from './engine/runtime/job-handle.js';
import { submit as startJob } from './engine/runtime/job-manager.js';

export { type Codec, jsonCodec, protobufCodec } from './engine/codec.js';
export { EddyError, type ErrorCode, ErrorCodes, InvocationFailed } from './engine/errors.js';
export {
  type Address,
  type AnyEgressRecords,
  type AnyStateSpec,
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
  type ListStateHandle,
  type ListStateOptions,
  type ListStateSpec,
  listState,
  type MapStateHandle,
  type MapStateOptions,
  type MapStateSpec,
  mapState,
  type StateHandle,
  type StateHandleOf,
  type StateHandles,
  type StateSpec,
  type StateSpecs,
  type ValueStateOptions,
  valueState,
} from './engine/function-type.js';
export {
  type AnyFunctionType,
  type CoordinatorBase,
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
export { boolType, doubleType, floatType, intType, jsonType, longType, stringType, type TypedCodec } from './engine/statefun/types.js';
export { remoteFunction, type RemoteStateSpecs } from './engine/remote/remote-function.js';
export type { RemoteFunctionOptions } from './engine/remote/remote-function-options.js';
export { keyGroupOf, ownerOfKeyGroup, keyGroupRangeOf, type KeyGroupRange, DEFAULT_MAX_PARALLELISM } from './engine/key-groups.js';
export { type ChannelDelay, type FaultInjection, type SubmitOptions, defaultOptions } from './engine/options.js';
export type { RestartStrategyOptions } from './engine/runtime/restart-strategy.js';
export type { CheckpointInfo, CheckpointRecord, CheckpointTrigger } from './engine/checkpoint/coordinator.js';
export type { JobHandle, JobMetrics, JobStatus, JobSummary, LatencySummary, RecoveryEvent } from './engine/runtime/job-handle.js';
export type { InstanceList, InstanceState, LockWait } from './engine/runtime/worker-protocol.js';
export type { CheckpointAbortCause } from './engine/checkpoint/coordinator.js';
export type { FunctionTypeMetrics } from './engine/runtime/worker-stats.js';
export type { TransactionMetrics, WorkerMetrics } from './engine/runtime/worker-protocol.js';
export { showProgress, type ProgressOptions } from './engine/runtime/progress.js';
export type { DeadLetter } from './engine/dead-letter.js';
export type { DeadLetterRecord } from './connectors/kafka-egress.js';
export {
  generatorIngress,
  type GeneratorIngressOptions,
  type GeneratorInput,
  memoryEgress,
  type MemoryEgressOptions,
  memoryIngress,
  type MemoryIngressOptions,
  type MemoryInput,
} from './connectors/memory.js';
export { fileEgress, type FileEgressOptions, fileIngress, type FileIngressOptions } from './connectors/file.js';
export * from './connectors/kafka.js';

/**
 * Defines a job: its functions, ingresses with their routers, and egresses. A job without a
 * `dead-letters` egress gets a memory one (read it with `handle.output('dead-letters')`).
 */
export function defineJob(spec: JobSpec): Job {
  return defineJobWith(spec, () => memoryEgress(DEAD_LETTERS));
}

/**
 * Starts a job and returns its handle. Refuses inside Eddy's workers: they import the job module, so
 * a module that submits at top level would start the job again in every worker, and each of those
 * in its workers, without end.
 */
export function submit(job: Job, options?: SubmitOptions): JobHandle {
  if ((globalThis as Record<symbol, unknown>)[Symbol.for('eddy.worker')] === true) {
    // The code also leads the message: the error reaches the main thread as a plain Error (the worker
    // pool clones only message and stack), inside the job's EDDY_WORKER_FAILED.
    throw new EddyError(
      'EDDY_SUBMIT_IN_WORKER',
      `EDDY_SUBMIT_IN_WORKER: engine.submit was called inside an Eddy worker thread while it imported the job module of ${JSON.stringify(job?.name)}: ` +
        'keep the job module free of top-level side effects; submit from another module that imports the job, or run it with `eddy run <job module>`',
    );
  }
  return startJob(job, options);
}

/** The engine: `engine.submit(job, options)` starts a job and returns its handle. */
export const engine = { submit } as const;
