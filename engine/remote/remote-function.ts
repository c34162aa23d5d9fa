import { Agent, request as httpRequest } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { type Codec, jsonCodec } from '../codec.js';
import { describeError, EddyError, invalidOption } from '../errors.js';
import { defineFunction, validateFunctionTypeName } from '../function-type.js';
import type { Context, FunctionType } from '../function-types.js';
import type { StateSpec } from '../state/state-types.js';
import { valueState } from '../state/state-kinds.js';
import {
  decodeFromFunction,
  decodeKafkaProducerRecord,
  encodeToFunction,
  ExpireMode,
  type FromFunction,
  functionTypeOf,
  KAFKA_PRODUCER_RECORD_TYPENAME,
  type PersistedValueSpec,
  sfAddress,
  type SfAddress,
  typedValue,
  valueBytes,
} from '../statefun/protocol.js';
import { typenameOf } from '../statefun/types.js';
import type { EncodedEffects } from './encoded-effects.js';
import type { RemoteFunctionOptions } from './remote-function-options.js';

/** One state value of a remote function instance, as StateFun keeps it: bytes, typename, expiry. */
interface RemoteValue {
  typename: string;
  value: Uint8Array;
  /** Milliseconds since the epoch; absent: never. */
  expiresAt?: number;
}

type RemoteState = Record<string, RemoteValue>;

/** The instance's remote values in one Eddy state value (base64 inside JSON: small, and readable by `eddy state`). */
const remoteStateCodec: Codec<RemoteState> = {
  name: 'remote-state',
  encode: (state) =>
    Buffer.from(JSON.stringify(Object.fromEntries(Object.entries(state).map(([name, v]) => [name, { typename: v.typename, value: Buffer.from(v.value).toString('base64'), ...(v.expiresAt === undefined ? {} : { expiresAt: v.expiresAt }) }])))),
  decode: (bytes) => {
    const stored = JSON.parse(Buffer.from(bytes).toString()) as Record<string, { typename: string; value: string; expiresAt?: number }>;
    return Object.fromEntries(Object.entries(stored).map(([name, v]) => [name, { typename: v.typename, value: new Uint8Array(Buffer.from(v.value, 'base64')), ...(v.expiresAt === undefined ? {} : { expiresAt: v.expiresAt }) }]));
  },
};

const remoteStateSpec: { values: StateSpec<RemoteState> } = { values: valueState({ codec: remoteStateCodec }) };
/** The state of a remote function instance: its values as the endpoint keeps them (bytes, typename, expiry). */
export type RemoteStateSpecs = typeof remoteStateSpec;

export const remoteFunctionDefaults = { timeoutMs: 60_000, maxBatch: 100 } as const;
const FIRST_BACKOFF_MS = 50;
const MAX_BACKOFF_MS = 2_000;

/**
 * A function type served elsewhere, over Apache Flink StateFun's remote-function protocol: a function
 * written with any StateFun SDK (Python, Java, Go, JavaScript), or another job's `eddy serve`. The job
 * sends to it like to any function (`fn.address(id)`), and it can be a 2PC participant or a saga step.
 *
 * Eddy calls it as StateFun does: one request per instance at a time (later messages wait in its
 * mailbox), with the instance's state (bytes and typename, kept in Eddy's keyed state and learned
 * through the missing-state handshake); its answer's state changes, messages, delayed messages and
 * egress records apply like a handler's effects. A request still running at a checkpoint is part of
 * it and is sent again after a restore. A failed request is retried with backoff until `timeoutMs`;
 * then the attempt fails and the job restores (`EDDY_REMOTE_FUNCTION_FAILED`).
 */
export function remoteFunction<M = unknown>(options: RemoteFunctionOptions<M>): FunctionType<M, RemoteStateSpecs> {
  const where = 'remoteFunction';
  if (typeof options !== 'object' || options === null) throw invalidOption(where, 'is missing', "pass { type: 'ns/name', url }");
  validateFunctionTypeName(options.type, `${where}.type`);
  let url: URL;
  try {
    url = new URL(options.url);
  } catch {
    throw invalidOption(`${where}(${options.type}).url`, `is ${JSON.stringify(options.url)}`, 'give the URL the function is served at, e.g. http://127.0.0.1:8000/statefun');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw invalidOption(`${where}(${options.type}).url`, `is ${JSON.stringify(options.url)}`, 'must be an http:// or https:// URL');
  const timeoutMs = options.timeoutMs ?? remoteFunctionDefaults.timeoutMs;
  if (!Number.isInteger(timeoutMs) || timeoutMs < 100) throw invalidOption(`${where}(${options.type}).timeoutMs`, `is ${String(options.timeoutMs)}`, 'give whole milliseconds >= 100 (default 60000)');
  if (options.states !== undefined && (!Array.isArray(options.states) || options.states.some((name) => typeof name !== 'string' || name === ''))) {
    throw invalidOption(`${where}(${options.type}).states`, `is ${JSON.stringify(options.states)}`, 'give the names of the state values the function declares, e.g. ["seen"]');
  }
  const maxBatch = options.maxBatch ?? remoteFunctionDefaults.maxBatch;
  if (!Number.isInteger(maxBatch) || maxBatch < 1) throw invalidOption(`${where}(${options.type}).maxBatch`, `is ${String(options.maxBatch)}`, 'give a whole number of messages >= 1 (default 100)');
  const codec = options.codec ?? jsonCodec<M>();
  const typename = typenameOf(codec);
  const client = new RemoteClient(options.type, url, timeoutMs);
  /** The state specs the endpoint asked for, by name: learned once per thread, as StateFun learns them. */
  const specs = new Map<string, PersistedValueSpec>();
  const allowed = options.states === undefined ? undefined : new Set(options.states);

  return defineFunction<M, RemoteStateSpecs>({
    type: options.type,
    codec,
    state: remoteStateSpec,
    async handler(ctx: Context<RemoteStateSpecs, M>, message: M) {
      const now = Date.now();
      const values: RemoteState = { ...(ctx.state.values.get() ?? {}) };
      let changed = false;
      for (const [name, value] of Object.entries(values)) {
        if (value.expiresAt !== undefined && value.expiresAt <= now) {
          delete values[name];
          changed = true;
        }
      }
      const effects = ctx as unknown as EncodedEffects;
      const target = sfAddress(options.type, ctx.self.id);
      const caller = ctx.caller === undefined ? undefined : sfAddress(ctx.caller.type, ctx.caller.id);
      // This message and those waiting behind it (their payloads are already this codec's bytes), as StateFun batches.
      const waiting = effects.waitingInvokes(maxBatch - 1);
      const invocations = [
        { ...(caller === undefined ? {} : { caller }), argument: typedValue(typename, codec.encode(message)) },
        ...waiting.map((envelope) => ({
          ...(envelope.sourceType === '' ? {} : { caller: sfAddress(envelope.sourceType, envelope.sourceId) }),
          argument: typedValue(typename, envelope.payload),
        })),
      ];
      let answer: FromFunction;
      for (;;) {
        const request = encodeToFunction({
          invocation: {
            target,
            state: [...specs.values()].map((spec) => {
              const value = values[spec.stateName!];
              return value === undefined ? { stateName: spec.stateName! } : { stateName: spec.stateName!, stateValue: typedValue(value.typename, value.value) };
            }),
            invocations,
          },
        });
        answer = await client.call(request);
        const missing = answer.incompleteInvocationContext?.missingValues;
        if (missing === undefined || missing === null) break;
        if (missing.length === 0) throw client.refused('asked for missing state but named none');
        for (const spec of missing) {
          const name = spec.stateName ?? '';
          if (allowed !== undefined && !allowed.has(name)) {
            throw client.refused(`asked for state ${JSON.stringify(name)}, which is not among its declared states (${[...allowed].join(', ')}); check the url, or add it to states`);
          }
          specs.set(name, spec);
        }
      }
      const result = answer.invocationResult;
      if (result === null || result === undefined) throw client.refused('answered neither an invocation result nor missing state');
      // Expiry after an invocation: AFTER_INVOKE values are refreshed by any invocation, AFTER_WRITE ones by a write.
      for (const [name, value] of Object.entries(values)) {
        const spec = specs.get(name);
        if (spec?.expirationSpec?.mode === ExpireMode.AFTER_INVOKE) {
          value.expiresAt = now + Number(spec.expirationSpec.expireAfterMillis ?? 0);
          changed = true;
        }
      }
      for (const mutation of result.stateMutations ?? []) {
        const name = mutation.stateName ?? '';
        const spec = specs.get(name);
        if (spec === undefined) throw client.refused(`changed state ${JSON.stringify(name)}, which it never declared`);
        changed = true;
        if ((mutation.mutationType ?? 0) === 0) {
          delete values[name];
          continue;
        }
        const written = mutation.stateValue?.typename ?? '';
        if (written !== spec.typeTypename) throw client.refused(`wrote state ${name} as ${written}, but declared it as ${spec.typeTypename}`);
        const ttl = Number(spec.expirationSpec?.expireAfterMillis ?? 0);
        const mode = spec.expirationSpec?.mode ?? ExpireMode.NONE;
        values[name] = { typename: written, value: valueBytes(mutation.stateValue), ...(mode !== ExpireMode.NONE && ttl > 0 ? { expiresAt: now + ttl } : {}) };
      }
      if (changed) {
        if (Object.keys(values).length === 0) ctx.state.values.delete();
        else ctx.state.values.set(values);
      }
      for (const outgoing of result.outgoingMessages ?? []) {
        effects.sendEncoded(addressOf(outgoing.target), outgoing.argument?.typename ?? '', valueBytes(outgoing.argument));
      }
      for (const delayed of result.delayedInvocations ?? []) {
        const token = delayed.cancellationToken === undefined || delayed.cancellationToken === null || delayed.cancellationToken === '' ? undefined : delayed.cancellationToken;
        if (delayed.isCancellationRequest === true) {
          if (token !== undefined) ctx.cancelDelayed(token);
          continue;
        }
        const delayMs = typeof delayed.delayInMs === 'object' && delayed.delayInMs !== null ? delayed.delayInMs.toNumber() : Number(delayed.delayInMs ?? 0);
        effects.sendAfterEncoded(delayMs, addressOf(delayed.target), delayed.argument?.typename ?? '', valueBytes(delayed.argument), token);
      }
      for (const egress of result.outgoingEgresses ?? []) {
        const egressTypename = `${egress.egressNamespace ?? ''}/${egress.egressType ?? ''}`;
        const kind = egress.argument?.typename ?? '';
        // A Kafka egress record names its topic and key too; Eddy's Kafka egress makes those from the record.
        const payload = kind === KAFKA_PRODUCER_RECORD_TYPENAME ? (decodeKafkaProducerRecord(valueBytes(egress.argument)).valueBytes ?? new Uint8Array(0)) : valueBytes(egress.argument);
        effects.egressEncoded(egressTypename, kind, payload);
      }
      // Last, in the turn the core applies these effects: a cut before now still holds them waiting.
      effects.takeWaiting(waiting.length);
    },
  });
}

function addressOf(address: SfAddress | null | undefined): { type: string; id: string } {
  if (address === null || address === undefined) throw new EddyError('EDDY_INVALID_ADDRESS', 'a remote function answered with a message without a target');
  return { type: functionTypeOf(address), id: address.id ?? '' };
}

/** HTTP/1.1 with keep-alive to one endpoint; each call retried with backoff until the function's timeout. */
class RemoteClient {
  private readonly agent: Agent;
  private readonly send: typeof httpRequest;

  constructor(
    private readonly type: string,
    private readonly url: URL,
    private readonly timeoutMs: number,
  ) {
    this.agent = url.protocol === 'https:' ? new HttpsAgent({ keepAlive: true }) : new Agent({ keepAlive: true });
    this.send = url.protocol === 'https:' ? httpsRequest : httpRequest;
  }

  /** An answer that is not a valid one for the request: the function or the URL is wrong. */
  refused(what: string): EddyError {
    return new EddyError('EDDY_REMOTE_FUNCTION_FAILED', `remote function ${this.type} at ${this.url.href} ${what}`);
  }

  async call(request: Uint8Array): Promise<FromFunction> {
    const deadline = Date.now() + this.timeoutMs;
    let backoff = FIRST_BACKOFF_MS;
    let attempts = 0;
    for (;;) {
      attempts++;
      let problem: string;
      try {
        const { status, body } = await this.post(request, deadline - Date.now());
        if (status >= 200 && status < 300) return decodeFromFunction(body);
        problem = `answered ${status}: ${Buffer.from(body).toString('utf8', 0, Math.min(body.byteLength, 300)).trim()}`;
      } catch (error) {
        problem = describeError(error);
      }
      const wait = Math.min(backoff, deadline - Date.now());
      if (wait <= 0) {
        const error = new EddyError(
          'EDDY_REMOTE_FUNCTION_FAILED',
          `remote function ${this.type} at ${this.url.href} did not answer within ${this.timeoutMs} ms (${attempts} attempts; last: ${problem}); the attempt fails and the job restores its last checkpoint`,
        );
        // Not the handler's failure (a dead letter) but the attempt's: an error nothing catches fails
        // the worker, and the job restores and sends the request again, as StateFun fails its job.
        setImmediate(() => {
          throw error;
        });
        return new Promise<never>(() => {});
      }
      await new Promise((resolve) => setTimeout(resolve, wait));
      backoff = Math.min(backoff * 2, MAX_BACKOFF_MS);
    }
  }

  private post(body: Uint8Array, timeoutMs: number): Promise<{ status: number; body: Uint8Array }> {
    return new Promise((resolve, reject) => {
      const req = this.send(
        this.url,
        { method: 'POST', agent: this.agent, timeout: Math.max(1, timeoutMs), headers: { 'Content-Type': 'application/octet-stream', 'Content-Length': body.byteLength } },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (chunk: Buffer) => chunks.push(chunk));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
          res.on('error', reject);
        },
      );
      req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
      req.on('error', reject);
      req.end(body);
    });
  }
}
