import type { Mesh } from '../engine/channels/mesh.js';
import type { EgressOutbox } from '../engine/channels/egress-outbox.js';
import type { ErrorCode } from '../engine/errors.js';
import type { AnyFunctionType } from '../engine/coordinator-type.js';
import type { Address } from '../engine/function-type.js';
import type { Job } from '../engine/job.js';
import { type KeyGroupRange, keyGroupOf, ownerOfKeyGroup } from '../engine/key-groups.js';
import { addressOfKey, keyGroupPrefix, parkedKey, parkedSeqOf, Space, toBytes } from '../engine/state/state-keys.js';
import type { StateCut } from '../engine/state/state-store.js';
import type { StateStore } from '../engine/state/state-store.js';
import { barrier, Channel, decodeEnvelope, encodeEnvelope, type Envelope, Kind } from '../engine/wire/envelope.js';
import { DelayedMessages } from './delayed-messages.js';
import type { CoreHost, Effects, HoldMode, StagedTimer } from './core-host.js';
import { type CoordinatorKind, InvocationCore } from './invocation-core.js';
import { TransientMap } from '../engine/transient-map.js';
import { FunctionStats } from '../engine/runtime/worker-stats.js';
import type { DeadLetter } from '../engine/dead-letter.js';
import { addressKey, keyOfAddress } from './address-key.js';

export interface DispatcherConfig {
  worker: number;
  workers: number;
  maxParallelism: number;
  keyGroups: KeyGroupRange;
  job: Job;
  store: StateStore;
  mesh: Mesh;
  egress: EgressOutbox;
  deadLetterIndex: number;
  log: (line: string) => void;
  /** Checkpoint `id` was cut here; `snapshot` resolves when its state snapshot is taken. */
  onCut: (id: number, cut: Promise<StateCut>) => void;
  /** Called when the waiting backlog falls back under the low-water mark. */
  onBacklogDrained: () => void;
  lowWaterMark: number;
  /** Most two-phase-commit transactions this worker's coordinators run at once; further requests wait their turn. */
  maxTransactions: number;
  /** The same for sagas. */
  maxSagas: number;
  /** Failure drill (`faultInjection.staleProbes`): deadlock probes also go out in stale forms. */
  staleProbes?: boolean;
}

const COORDINATOR_KINDS: readonly CoordinatorKind[] = ['tpc', 'saga'];

/**
 * The function-dispatcher: the worker's host of the invocation core (see core-host.ts). It owns the
 * key groups of its worker, with their state, mailboxes and timers; per address, invocations run one
 * at a time in arrival order, and an async handler parks later messages for its address in a mailbox
 * while other addresses go on. What is about this engine's threads lives here: router credits,
 * feedback acknowledgements, barrier alignment and the cut, parking at a stop, admission of
 * transactions. What an envelope does lives in the core.
 */
export class FunctionDispatcher implements CoreHost {
  readonly worker: number;
  readonly delayed: DelayedMessages;
  /** Runs every envelope whose turn has come, and the transaction protocol. */
  readonly core: InvocationCore;
  /** Envelopes taken in from each worker (invoked, or waiting in a mailbox or while paused). */
  readonly accepted: number[];
  /** Per function type: invocations, failures, handler time, state access (for metrics). */
  readonly functionStats = new FunctionStats();
  deadLetters = 0;
  messagesSent = 0;
  /** Envelopes sent on feedback channels (messages and barriers): what feedback acks are counted against. */
  feedbackSent = 0;
  /** Id of the last checkpoint cut here (or aborted): older barriers are stale. */
  lastCut = 0;
  private alignment: { id: number; arrived: Set<number> } | undefined;
  /** Per router: envelopes behind its barrier, waiting for alignment. */
  private alignmentBuffers: Envelope[][];
  /** Handlers running (async) right now. */
  private running = 0;
  /** Envelopes waiting behind a running invocation of the same address, for a transaction slot, or while paused. */
  private waiting = 0;
  private readonly mailboxes = new TransientMap<string, Envelope[]>();
  /** Addresses a transaction holds (see HoldMode): their mailboxes wait for `release`. */
  private readonly held = new TransientMap<string, HoldMode>();
  /** The envelope each running async invocation works on, by address: parked with its mailbox on close. */
  private readonly inFlight = new TransientMap<string, Envelope>();
  /** After close, late completions of running handlers are discarded: their envelopes were parked. */
  private closed = false;
  /** Paused until `resume()`: at start (parked and replayed work goes first) and when stopping. */
  private paused = true;
  /** Router envelopes that waited in a mailbox: their credit goes back when they run, not when taken in. */
  private readonly creditOwed = new WeakSet<Envelope>();
  private readonly creditsDue: number[];
  private readonly feedbackAcksDue: number[];
  private readonly pausedQueue: Envelope[] = [];
  /**
   * Per protocol, requests to coordinators while its limit's worth run here (two-phase commit: at
   * most `maxTransactions`, fewer under lock contention; sagas: `maxSagas`): they wait in arrival
   * order and keep their router credit, so a burst of transactions back-pressures the routers instead
   * of piling up as lock convoys (2PC throughput collapses when every request starts at once).
   */
  private readonly admission: Record<CoordinatorKind, Envelope[]> = { tpc: [], saga: [] };
  private seq = 0;
  /**
   * Parked entries (at a stop or a cut) are keyed by this ever-growing number: later ones sort after
   * earlier ones (replay order) and never reuse the key of one still waiting to be replayed.
   */
  private parkSeq = Date.now() * 1000;
  private flushScheduled = false;
  /** Parked work read by `loadParked`, not queued yet. */
  private parked: { envelopes: Envelope[]; keys: string[] } | undefined;
  private readonly egressIndexes: Map<string, number>;

  constructor(private readonly config: DispatcherConfig) {
    this.worker = config.worker;
    this.accepted = Array.from({ length: config.workers }, () => 0);
    this.alignmentBuffers = Array.from({ length: config.workers }, () => []);
    this.creditsDue = Array.from({ length: config.workers }, () => 0);
    this.feedbackAcksDue = Array.from({ length: config.workers }, () => 0);
    this.egressIndexes = new Map(config.job.egresses.map((egress, index) => [egress.name, index]));
    this.delayed = new DelayedMessages(config.store, (envelope) => this.route(envelope), () => this.scheduleFlush());
    this.core = new InvocationCore(this, config.maxTransactions, config.maxSagas, config.staleProbes === true);
    this.core.stats.onHandled = (type, started, threw) => this.functionStats.invoked(type, started, threw);
  }

  /** The core under the name the worker's metrics use. */
  get transactions(): InvocationCore {
    return this.core;
  }

  get invocations(): number {
    return this.core.stats.invocations;
  }

  get invocationsFailed(): number {
    return this.core.stats.invocationsFailed;
  }

  get handlerErrors(): number {
    return this.core.stats.handlerErrors;
  }

  // ---- CoreHost ----

  get isClosed(): boolean {
    return this.closed;
  }

  get isPaused(): boolean {
    return this.paused;
  }

  slotFreed(): void {
    this.admit();
  }

  schedule(owner: Address, kg: number, timer: StagedTimer): void {
    this.delayed.schedule(owner, kg, timer.fireAt, timer.token, timer.envelope);
  }

  /**
   * A transaction holds `address`: later envelopes wait in its mailbox. Waiting behind a participant's
   * lock is not back-pressure: router envelopes queued there give their credit back at once.
   * Requests waiting for a busy coordinator keep their credit, as behind any running invocation.
   */
  hold(address: Address, mode: HoldMode): void {
    const key = keyOfAddress(address);
    this.held.set(key, mode);
    const mailbox = this.mailboxes.get(key);
    if (mailbox === undefined) this.mailboxes.set(key, []);
    else if (mode !== 'busy') for (const envelope of mailbox) this.dequeued(envelope);
  }

  reshare(address: Address): void {
    const key = keyOfAddress(address);
    this.held.set(key, 'shared');
    if (!this.inFlight.has(key)) this.drain(key);
  }

  requeueFirst(address: Address, envelope: Envelope): void {
    this.mailboxes.get(keyOfAddress(address))!.unshift(envelope);
    this.waiting++;
  }

  /** Whether the mailbox of `key` must wait before running `head`: a shared lock lets PREPAREs through. */
  private blocked(key: string, head: Envelope): boolean {
    const mode = this.held.get(key);
    return mode !== undefined && !(mode === 'shared' && head.kind === Kind.PREPARE);
  }

  afterTimer(): void {
    this.scheduleFlush();
  }

  release(address: Address): void {
    const key = keyOfAddress(address);
    if (!this.held.delete(key)) return;
    if (!this.inFlight.has(key)) this.drain(key);
    this.admit();
  }

  queued(address: Address): readonly Envelope[] {
    return this.mailboxes.get(keyOfAddress(address)) ?? [];
  }

  removeQueued(address: Address, index: number): void {
    const removed = this.mailboxes.get(keyOfAddress(address))?.splice(index, 1);
    if (removed?.length !== 1) return;
    this.waiting--;
    this.dequeued(removed[0]!);
  }

  /** For a state lookup: envelopes waiting for the address, whether an invocation of it runs, how a transaction holds it. */
  activityOf(address: Address): { mailboxDepth: number; running: boolean; held: HoldMode | undefined } {
    const key = keyOfAddress(address);
    return { mailboxDepth: this.mailboxes.get(key)?.length ?? 0, running: this.inFlight.has(key), held: this.held.get(key) };
  }

  inFlightOf(address: Address): Envelope | undefined {
    return this.inFlight.get(keyOfAddress(address));
  }

  readState(key: string): Uint8Array | undefined {
    return this.config.store.get(key);
  }

  scanState(prefix: string): AsyncIterable<[string, Uint8Array]> {
    return this.config.store.scanLive(prefix);
  }

  loadState(): undefined {
    // The store reads through its cache from the backend synchronously.
    return undefined;
  }

  functionType(type: string): AnyFunctionType | undefined {
    return this.config.job.functions.get(type);
  }

  egressIndex(name: string): number | undefined {
    return this.egressIndexes.get(name);
  }

  egressNames(): string[] {
    return [...this.egressIndexes.keys()];
  }

  encodeEgress(index: number, record: unknown): Uint8Array {
    return this.config.job.egresses[index]!.codec.encode(record);
  }

  private nextParkSeq(): number {
    return ++this.parkSeq;
  }

  nextSeq(): number {
    this.seq = (this.seq + 1) >>> 0;
    return this.seq;
  }

  keyGroup(id: string): number {
    return keyGroupOf(id, this.config.maxParallelism);
  }

  timerPending(owner: Address, kg: number, token: string): boolean {
    return this.delayed.isPending(owner, kg, token);
  }

  // ---- input ----

  /**
   * Takes in a batch from the router of worker `from`. Barriers are aligned: after barrier n from a
   * router, its later envelopes wait until barrier n has come from every router; then the state is
   * cut for checkpoint n and the waiting envelopes go on, in order.
   */
  acceptRouterBatch(from: number, envelopes: readonly Envelope[]): void {
    let taken = 0;
    let credits = 0;
    const waiting = this.alignmentBuffers[from]!;
    for (let i = 0; i < envelopes.length; i++) {
      const envelope = envelopes[i]!;
      if (waiting.length > 0 || this.alignment?.arrived.has(from) === true) {
        waiting.push(envelope);
        continue;
      }
      taken++;
      if (envelope.kind === Kind.BARRIER) this.routerBarrier(from, envelope.checkpointId ?? 0);
      else if (this.accept(envelope)) credits++;
      else this.creditOwed.add(envelope);
    }
    this.taken(from, taken, credits, 0);
  }

  /** Takes in envelopes the feedback operator released from worker `from`'s channel (`taken` counts barriers too). */
  acceptFeedback(from: number, envelopes: readonly Envelope[], taken: number): void {
    for (const envelope of envelopes) this.accept(envelope);
    this.taken(from, taken, 0, taken);
  }

  private taken(from: number, taken: number, credits: number, feedbackAcks: number): void {
    if (taken === 0) return;
    this.accepted[from]! += taken;
    this.creditsDue[from]! += credits;
    this.feedbackAcksDue[from]! += feedbackAcks;
    this.scheduleFlush();
  }

  private routerBarrier(from: number, id: number): void {
    if (id <= this.lastCut) return; // of an aborted checkpoint
    if (this.alignment !== undefined && this.alignment.id < id) this.abortAlignment(this.alignment.id);
    this.alignment ??= { id, arrived: new Set() };
    this.alignment.arrived.add(from);
    if (this.alignment.arrived.size < this.config.workers) return;
    this.alignment = undefined;
    this.cut(id);
    this.releaseAlignmentBuffers();
  }

  /** Checkpoint `id` will not complete: stop aligning on it and let the waiting envelopes go on. */
  abortAlignment(id: number): void {
    if (this.alignment?.id !== id) return;
    this.alignment = undefined;
    this.lastCut = Math.max(this.lastCut, id);
    this.releaseAlignmentBuffers();
  }

  private releaseAlignmentBuffers(): void {
    for (let from = 0; from < this.config.workers; from++) {
      const waiting = this.alignmentBuffers[from]!;
      if (waiting.length === 0) continue;
      this.alignmentBuffers[from] = [];
      this.acceptRouterBatch(from, waiting);
    }
  }

  /**
   * The cut of checkpoint `id`, at once and in one piece: egress so far belongs to epoch `id`; the
   * state, with the invocations still running, the mailboxes and what waits while paused (they run
   * again after a restore) and the transactions' locks and records, is snapshotted; then barrier `id` goes out on every feedback channel and processing goes on.
   */
  private cut(id: number): void {
    this.lastCut = id;
    this.config.egress.cut(id);
    const parked = this.unfinished().map((envelope) => this.parkedEntry(envelope));
    const snapshot = this.config.store.snapshot([...parked, ...this.core.records()]);
    for (let destination = 0; destination < this.config.workers; destination++) {
      this.feedbackSent++;
      this.config.mesh.push(destination, Channel.FEEDBACK, barrier(id, this.worker));
    }
    this.config.onCut(id, snapshot);
  }

  /**
   * Runs the envelope now, or queues it behind its address (or while paused). True if it no longer
   * counts against router credits: it ran, it was a protocol envelope, or it waits behind a transaction.
   */
  private accept(envelope: Envelope): boolean {
    if (this.paused) {
      this.pausedQueue.push(envelope);
      this.waiting++;
      return false;
    }
    if (envelope.kind !== Kind.INVOKE && this.core.arrive(envelope)) return true;
    if (envelope.kind === Kind.INVOKE) {
      const kind = this.core.coordinatorKind(envelope);
      if (kind !== undefined && (this.admission[kind].length > 0 || !this.core.slotFree(kind))) {
        this.admission[kind].push(envelope);
        this.waiting++;
        return false;
      }
    }
    return this.enter(envelope);
  }

  /** Runs the envelope now, or queues it behind its address. True if it no longer counts against router credits. */
  private enter(envelope: Envelope): boolean {
    const key = targetKey(envelope);
    const mailbox = this.mailboxes.get(key);
    if (mailbox !== undefined) {
      mailbox.push(envelope);
      this.waiting++;
      const mode = this.held.get(key);
      // Under a shared lock a PREPARE with nothing ahead of it runs now.
      if (mode === 'shared' && mailbox.length === 1 && !this.inFlight.has(key)) this.drain(key);
      return mode === 'locked' || mode === 'shared';
    }
    this.invokeNow(envelope);
    return true;
  }

  /** Lets requests waiting for a transaction slot in, in order, while slots are free. */
  private admit(): void {
    for (const kind of COORDINATOR_KINDS) {
      const queue = this.admission[kind];
      while (queue.length > 0 && !this.paused && this.core.slotFree(kind)) {
        const envelope = queue.shift()!;
        this.waiting--;
        if (this.enter(envelope)) this.dequeued(envelope);
      }
    }
  }

  get transactionsWaiting(): number {
    return this.admission.tpc.length + this.admission.saga.length;
  }

  /** A queued envelope runs now: if a router is owed its credit, it gets it back (batched per turn). */
  private dequeued(envelope: Envelope): void {
    if (this.creditOwed.delete(envelope)) this.creditsDue[envelope.origin]!++;
  }

  /** Acknowledgements go back once per turn and sender, not once per batch taken in. */
  private returnDueCredits(): void {
    for (let worker = 0; worker < this.creditsDue.length; worker++) {
      const credits = this.creditsDue[worker]!;
      const feedbackAcks = this.feedbackAcksDue[worker]!;
      if (credits === 0 && feedbackAcks === 0) continue;
      this.creditsDue[worker] = 0;
      this.feedbackAcksDue[worker] = 0;
      this.config.mesh.acknowledge(worker, credits, feedbackAcks);
    }
  }

  get backlog(): number {
    return this.waiting;
  }

  get mailboxDepth(): number {
    return this.waiting - this.pausedQueue.length - this.transactionsWaiting;
  }

  get idle(): boolean {
    // Pending state writes do not count: closing the worker writes them.
    return this.running === 0 && this.waiting === 0;
  }

  get noneRunning(): boolean {
    return this.running === 0;
  }

  /**
   * The attempt failed elsewhere and this worker's state is thrown away: closed like after a stop
   * (late completions and timers are discarded), but nothing is parked.
   */
  abandon(): void {
    this.closed = true;
    this.pause();
    this.core.stopTimers();
  }

  /** Stops starting invocations; running ones finish, arriving envelopes wait. */
  pause(): void {
    this.paused = true;
    this.delayed.stop();
  }

  /** Runs what waited while paused, in arrival order, then goes on normally. */
  resume(): void {
    if (!this.paused || this.closed) return;
    this.paused = false;
    this.admit();
    const queued = this.pausedQueue.splice(0);
    this.waiting -= queued.length;
    for (const envelope of queued) {
      if (this.accept(envelope)) this.dequeued(envelope);
    }
    this.scheduleFlush();
  }

  // ---- invoking ----

  private invokeNow(envelope: Envelope): void {
    const done = this.core.run(envelope);
    if (done === undefined) return;
    const key = targetKey(envelope);
    this.mailboxes.set(key, []);
    this.inFlight.set(key, envelope);
    this.running++;
    void done.then(() => this.afterAsync(key));
  }

  /** After an async invocation: run what waited for the same address, in order. */
  private afterAsync(key: string): void {
    this.running--;
    this.inFlight.delete(key);
    if (this.closed) return;
    this.drain(key);
  }

  /** Runs what waited for an address, in order, until one goes async or a transaction holds the address. */
  private drain(key: string): void {
    const mailbox = this.mailboxes.get(key)!;
    while (mailbox.length > 0 && !this.paused && !this.blocked(key, mailbox[0]!)) {
      const next = mailbox.shift()!;
      this.waiting--;
      this.dequeued(next);
      const done = this.core.run(next);
      if (done !== undefined) {
        this.inFlight.set(key, next);
        this.running++;
        void done.then(() => this.afterAsync(key));
        this.scheduleFlush();
        return;
      }
    }
    if (mailbox.length === 0 && !this.held.has(key)) this.mailboxes.delete(key);
    this.scheduleFlush();
    if (this.waiting < this.config.lowWaterMark) this.config.onBacklogDrained();
  }

  /** Applies the staged effects of a successful invocation. */
  apply(invocation: Effects): void {
    if (this.closed) return;
    const store = this.config.store;
    if (invocation.writes !== undefined) for (const [key, value] of invocation.writes) store.put(key, value);
    if (invocation.sends !== undefined) for (const envelope of invocation.sends) this.route(envelope);
    if (invocation.cancels !== undefined) for (const token of invocation.cancels) this.delayed.cancel(invocation.self, invocation.kg, token);
    if (invocation.timers !== undefined) {
      for (const timer of invocation.timers) this.delayed.schedule(invocation.self, invocation.kg, timer.fireAt, timer.token, timer.envelope);
    }
    if (invocation.egressRecords !== undefined) for (const record of invocation.egressRecords) this.config.egress.push(record);
  }

  /** Sends an envelope to the feedback operator of the worker that owns its target. */
  route(envelope: Envelope): void {
    const kg = this.keyGroup(envelope.targetId);
    this.messagesSent++;
    this.feedbackSent++;
    this.config.mesh.push(ownerOfKeyGroup(kg, this.config.workers, this.config.maxParallelism), Channel.FEEDBACK, envelope);
  }

  deadLetter(envelope: Envelope | undefined, code: ErrorCode, reason: string, extra: Partial<DeadLetter> = {}): void {
    if (this.closed) return;
    this.deadLetters++;
    const letter: DeadLetter = { code, reason, ...extra };
    if (envelope !== undefined) {
      letter.target = { type: envelope.targetType, id: envelope.targetId };
      if (envelope.sourceType !== '') letter.source = { type: envelope.sourceType, id: envelope.sourceId };
      letter.envelopeId = `${envelope.origin}:${envelope.seq}`;
      letter.payloadBase64 = Buffer.from(envelope.payload).toString('base64');
    }
    this.config.egress.push({
      egress: this.config.deadLetterIndex,
      payload: this.encodeEgress(this.config.deadLetterIndex, letter),
      ingressTime: envelope?.ingressTime ?? 0,
    });
  }

  // ---- state ----

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(() => {
      this.flushScheduled = false;
      this.returnDueCredits();
      this.config.store.flushSoon();
    });
  }

  /**
   * The work taken in and not done, in the order it runs again after a restart or restore: per
   * address the invocation still running, then its mailbox; then requests waiting for a transaction
   * slot; then what arrived while paused (taken in before a cut but not run yet: part of the cut).
   */
  private unfinished(): Envelope[] {
    const waiting: Envelope[] = [];
    for (const [key, mailbox] of this.mailboxes) {
      const running = this.inFlight.get(key);
      if (running !== undefined) waiting.push(running);
      waiting.push(...mailbox);
    }
    for (const kind of COORDINATOR_KINDS) waiting.push(...this.admission[kind]);
    waiting.push(...this.pausedQueue);
    return waiting;
  }

  /** A parked entry under the envelope's target key group, sorting after every earlier one. */
  private parkedEntry(envelope: Envelope): [string, Uint8Array] {
    return [parkedKey(this.keyGroup(envelope.targetId), this.nextParkSeq()), encodeEnvelope(envelope)];
  }

  /**
   * Work left when the job stops is parked in keyed state under its target's key group: per address,
   * the invocation still running (it runs again; its late effects are discarded) and then its
   * mailbox, then what arrived while paused, so per-address order survives the restart. Closes the
   * dispatcher.
   */
  parkWaiting(): { parked: number; running: number } {
    this.closed = true;
    const waiting = this.unfinished();
    for (const envelope of waiting) this.config.store.put(...this.parkedEntry(envelope));
    for (const [key, record] of this.core.records()) this.config.store.put(key, record);
    const running = this.inFlight.size;
    this.mailboxes.clear();
    this.inFlight.clear();
    this.pausedQueue.length = 0;
    for (const kind of COORDINATOR_KINDS) this.admission[kind].length = 0;
    this.waiting = 0;
    return { parked: waiting.length, running };
  }

  /**
   * Takes over the locks and running transactions of the owned key groups that a stop or a restored
   * checkpoint left in keyed state (before any work starts). From then on they live on the heap and
   * reach keyed state again only in a checkpoint's cut or at a stop (see InvocationCore.records).
   */
  async loadTransactions(): Promise<void> {
    const taken: string[] = [];
    const { start, end } = this.config.keyGroups;
    for (let kg = start; kg <= end; kg++) {
      for await (const [key, value] of this.config.store.scanPrefix(keyGroupPrefix(kg, Space.TXN))) {
        if (this.core.restore(addressOfKey(key), kg, value)) taken.push(key);
      }
    }
    for (const key of taken) this.config.store.put(key, null);
  }

  /**
   * Reads the work parked by an earlier stop or by a restored checkpoint (its running invocations,
   * mailboxes, and the feedback in flight at its cut) for the owned key groups. Call it before the
   * workers start: once the routers run, a checkpoint may be cut here at any moment, and envelopes
   * parked by that cut must sort after these (their keys come from `parkSeq`, raised here past the
   * highest parked key), or a restore from it would run later messages first (an ABORT before its
   * PREPARE, which then locks for good). The entries stay in state until `replayParked`.
   */
  async loadParked(): Promise<void> {
    if (this.parked !== undefined) return;
    const envelopes: Envelope[] = [];
    const keys: string[] = [];
    const { start, end } = this.config.keyGroups;
    for (let kg = start; kg <= end; kg++) {
      for await (const [key, value] of this.config.store.scanPrefix(keyGroupPrefix(kg, Space.PARKED))) {
        envelopes.push(decodeEnvelope(value));
        keys.push(key);
        this.parkSeq = Math.max(this.parkSeq, parkedSeqOf(toBytes(key)));
      }
    }
    this.parked = { envelopes, keys };
  }

  /**
   * Queues the parked work (see `loadParked`) ahead of anything that arrived meanwhile: call it while
   * paused, then `resume()`. The parked entries are deleted only once all of them are queued.
   */
  async replayParked(): Promise<number> {
    await this.loadParked();
    const { envelopes, keys } = this.parked!;
    this.parked = { envelopes: [], keys: [] };
    this.pausedQueue.unshift(...envelopes);
    this.waiting += envelopes.length;
    for (const key of keys) this.config.store.put(key, null);
    return envelopes.length;
  }
}

function targetKey(envelope: Envelope): string {
  return addressKey(envelope.targetType, envelope.targetId);
}
