/**
 * A test driver of StateFun's remote-function protocol, not a mock of Eddy: it does what the StateFun
 * runtime does around an endpoint (statefun-flink-core's RequestReplyFunction), in one process, with
 * a seeded interleaving:
 * - per address: the declared state values (bytes and typename), learned through the missing-state
 *   handshake (a request answered with `incomplete_invocation_context` is sent again with them);
 * - per address: one request in flight; messages that arrive meanwhile are the next batch, in order;
 * - messages of a response go to their targets with the responder as caller, each after a random
 *   transit time (`jitterMs`) but in order per (sender, receiver) pair, as over Flink's channels (so
 *   two participants can see two transactions' PREPAREs in opposite orders); delayed messages wait
 *   on a virtual clock, keyed by (owner, cancellation token), and can be cancelled;
 * - egress messages are collected;
 * - failover: `checkpoint()` copies everything (state, queues, delayed messages, egress), `restore()`
 *   goes back to that copy, which is what a Flink restore does (the egress after it was never
 *   committed); `retryRate` answers a request, drops the answer and sends the same bytes again (a
 *   retry after a lost reply).
 */
import { seededRandom } from '../../../examples/bank/workload.js';
import { StatefunHandler } from '../../../engine/statefun/handler.js';
import {
  decodeFromFunction,
  encodeToFunction,
  type EgressMessage,
  MutationType,
  type PersistedValue,
  type SfAddress,
  type ToFunctionInvocation,
  type TypedValue,
} from '../../../engine/statefun/protocol.js';

interface Delayed {
  dueAt: number;
  owner: string;
  token: string;
  target: SfAddress;
  invocation: ToFunctionInvocation;
}

interface World {
  /** Registered state names and their values, by address key. */
  state: Map<string, Map<string, TypedValue | null>>;
  /** Messages waiting for each address, in arrival order. */
  pending: Map<string, ToFunctionInvocation[]>;
  targets: Map<string, SfAddress>;
  delayed: Delayed[];
  /** Messages on their way (Delayed with no owner or token), and per (sender, receiver) the arrival time of the last one. */
  transit: Delayed[];
  lastArrival: Map<string, number>;
  delivered: Map<string, number>;
  egress: EgressMessage[];
  now: number;
}

export const keyOf = (address: SfAddress): string => `${address.namespace}/${address.type}:${address.id}`;

export class StatefunSimulator {
  private world: World = { state: new Map(), pending: new Map(), targets: new Map(), delayed: [], transit: [], lastArrival: new Map(), delivered: new Map(), egress: [], now: 0 };
  private saved: World | undefined;
  readonly random: () => number;
  /** Requests sent (handshakes and retries included), and those sent twice. */
  requests = 0;
  retries = 0;
  /** Requests sent twice whose answers differed. */
  differentAnswers = 0;
  restores = 0;

  /** The endpoint: ToFunction bytes in, FromFunction bytes out. */
  private readonly call: (request: Uint8Array) => Promise<Uint8Array>;

  constructor(
    /** The handler in this process, or a function that calls an endpoint (e.g. `eddy serve` over HTTP). */
    endpoint: StatefunHandler | ((request: Uint8Array) => Promise<Uint8Array>),
    private readonly options: {
      seed: number;
      maxBatch?: number;
      retryRate?: number;
      msPerRequest?: number;
      jitterMs?: number;
      /** A slow channel: extra transit time for a message (FIFO per channel still holds). */
      slowness?: (from: string, target: SfAddress, argument: TypedValue) => number;
    },
  ) {
    this.random = seededRandom(options.seed); // seeded, so that an interleaving can be run again
    this.call = typeof endpoint === 'function' ? endpoint : (request) => endpoint.handleToFunction(request);
  }

  get egress(): readonly EgressMessage[] {
    return this.world.egress;
  }

  get now(): number {
    return this.world.now;
  }

  /** Messages of `typename` delivered to functions so far (in requests that got an answer). */
  delivered(typename: string): number {
    return this.world.delivered.get(typename) ?? 0;
  }

  /** A message from outside (an ingress). */
  send(target: SfAddress, argument: TypedValue): void {
    this.enqueue(target, { argument });
  }

  /** The value of state `name` of `address`, if set. */
  stateOf(address: SfAddress, name: string): TypedValue | undefined {
    return this.world.state.get(keyOf(address))?.get(name) ?? undefined;
  }

  /** Every address with state, and its values. */
  allState(): Array<[string, Map<string, TypedValue | null>]> {
    return [...this.world.state];
  }

  checkpoint(): void {
    this.saved = structuredClone(this.world);
  }

  /** A Flink failover: back to the last checkpoint (or the start); everything after it never happened. */
  restore(): void {
    this.restores++;
    this.world = this.saved === undefined ? { state: new Map(), pending: new Map(), targets: new Map(), delayed: [], transit: [], lastArrival: new Map(), delivered: new Map(), egress: [], now: 0 } : structuredClone(this.saved);
  }

  /** Whether anything is left to do. */
  get idle(): boolean {
    return this.world.pending.size === 0 && this.world.delayed.length === 0 && this.world.transit.length === 0;
  }

  /**
   * One step: an address with waiting messages (chosen at random) gets its batch; when none has
   * any, the clock moves on to the next delayed message. False when nothing is left.
   */
  async step(): Promise<boolean> {
    const { world } = this;
    // Messages and delayed messages that are due join their targets' queues (the sort is stable: FIFO per channel holds).
    for (const list of [world.transit, world.delayed]) {
      list.sort((a, b) => a.dueAt - b.dueAt);
      while (list.length > 0 && list[0]!.dueAt <= world.now) {
        const due = list.shift()!;
        this.enqueue(due.target, due.invocation);
      }
    }
    if (world.pending.size === 0) {
      const next = Math.min(world.transit[0]?.dueAt ?? Infinity, world.delayed[0]?.dueAt ?? Infinity);
      if (next === Infinity) return false;
      world.now = next;
      return true;
    }
    const keys = [...world.pending.keys()];
    const key = keys[Math.floor(this.random() * keys.length)]!;
    const queue = world.pending.get(key)!;
    const batch = queue.splice(0, this.options.maxBatch ?? 10);
    if (queue.length === 0) world.pending.delete(key);
    await this.invoke(world.targets.get(key)!, batch);
    world.now += this.options.msPerRequest ?? 1;
    return true;
  }

  /** Runs until nothing is left (or `maxSteps`); `between` runs after each step (checkpoints, failovers). */
  async run(maxSteps: number, between?: (step: number) => void): Promise<number> {
    for (let i = 0; i < maxSteps; i++) {
      if (!(await this.step())) return i;
      between?.(i);
    }
    throw new Error(`the simulation did not settle in ${maxSteps} steps`);
  }

  private enqueue(target: SfAddress, invocation: ToFunctionInvocation): void {
    const key = keyOf(target);
    this.world.targets.set(key, target);
    let queue = this.world.pending.get(key);
    if (queue === undefined) this.world.pending.set(key, (queue = []));
    queue.push(invocation);
  }

  private async invoke(target: SfAddress, invocations: ToFunctionInvocation[]): Promise<void> {
    const key = keyOf(target);
    for (;;) {
      const values = this.world.state.get(key) ?? new Map<string, TypedValue | null>();
      const state: PersistedValue[] = [...values].map(([stateName, value]) => (value === null ? { stateName } : { stateName, stateValue: value }));
      const request = encodeToFunction({ invocation: { target, state, invocations } });
      this.requests++;
      let answer: ReturnType<typeof decodeFromFunction>;
      if (this.random() < (this.options.retryRate ?? 0)) {
        // The reply was lost: StateFun sends the same request again and uses that answer.
        this.retries++;
        this.requests++;
        const first = await this.call(request);
        const second = await this.call(request);
        if (!Buffer.from(first).equals(Buffer.from(second))) this.differentAnswers++;
        answer = decodeFromFunction(second);
      } else answer = decodeFromFunction(await this.call(request));
      const missing = answer.incompleteInvocationContext?.missingValues;
      if (missing !== undefined && missing !== null) {
        for (const spec of missing) values.set(spec.stateName!, null);
        this.world.state.set(key, values);
        continue;
      }
      const result = answer.invocationResult!;
      for (const invocation of invocations) {
        const typename = invocation.argument?.typename ?? '';
        this.world.delivered.set(typename, (this.world.delivered.get(typename) ?? 0) + 1);
      }
      for (const mutation of result.stateMutations ?? []) {
        const name = mutation.stateName!;
        if (!values.has(name)) throw new Error(`${key} mutated undeclared state ${name}`);
        values.set(name, (mutation.mutationType ?? MutationType.DELETE) === MutationType.MODIFY ? mutation.stateValue! : null);
      }
      this.world.state.set(key, values);
      for (const message of result.outgoingMessages ?? []) {
        const channel = `${key}>${keyOf(message.target!)}`;
        const transit = Math.floor(this.random() * ((this.options.jitterMs ?? 0) + 1)) + (this.options.slowness?.(key, message.target!, message.argument!) ?? 0);
        const dueAt = Math.max(this.world.now + transit, this.world.lastArrival.get(channel) ?? 0);
        this.world.lastArrival.set(channel, dueAt);
        this.world.transit.push({ dueAt, owner: '', token: '', target: message.target!, invocation: { caller: target, argument: message.argument! } });
      }
      for (const delayed of result.delayedInvocations ?? []) {
        const token = delayed.cancellationToken ?? '';
        if (delayed.isCancellationRequest === true) {
          this.world.delayed = this.world.delayed.filter((d) => !(d.owner === key && d.token === token));
          continue;
        }
        this.world.delayed.push({
          dueAt: this.world.now + Number(delayed.delayInMs ?? 0),
          owner: key,
          token,
          target: delayed.target!,
          invocation: { caller: target, argument: delayed.argument! },
        });
      }
      for (const egress of result.outgoingEgresses ?? []) this.world.egress.push(egress);
      return;
    }
  }
}
