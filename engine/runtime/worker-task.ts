/**
 * The one long-lived task of each worker thread, and the composition root of the dataflow graph:
 * the only place in engine/ that wires operators together (one ingress-router, one
 * function-dispatcher, one feedback operator per worker).
 */
import { IngressRouter } from '../../operators/ingress-router.js';
import { Feedback } from '../../operators/feedback.js';
import { FunctionDispatcher } from '../../operators/function-dispatcher.js';
import { EgressOutbox } from '../channels/egress-outbox.js';
import { Mesh } from '../channels/mesh.js';
import { describeError } from '../errors.js';
import type { ChannelDelay } from '../options.js';
import { DEAD_LETTERS, jobFromModule } from '../job.js';
import { keyGroupOf, keyGroupRangeOf } from '../key-groups.js';
import { addressOfKey, typeStatePrefix } from '../state/state-keys.js';
import { LevelDbBackend } from '../state/leveldb-backend.js';
import { MemoryBackend } from '../state/memory-backend.js';
import { StateStore } from '../state/state-store.js';
import { Channel } from '../wire/envelope.js';
import { restoreKeyGroups, WorkerCheckpoints } from './worker-checkpoints.js';
import { ThreadStats } from './worker-stats.js';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { threadId } from 'node:worker_threads';
import { type FromWorker, type InstanceList, type InstanceState, LOCK_WAITS_SHOWN, type ToWorker, type WorkerInit, type WorkerMetrics, type WorkerResult } from './worker-protocol.js';
import { Invocation } from '../../operators/invocation.js';
import type { Envelope } from '../wire/envelope.js';
import type { CoreReads } from '../../operators/core-host.js';
import type { Address, FunctionType } from '../function-types.js';
import type { StateSpecs } from '../state/state-types.js';

/** The attempt was given up (abandon, crash drill) while this worker was still starting. */
class StartGivenUp extends Error {}

/**
 * Ends this worker thread, as the crash drill asks. Only ever called with the LevelDB closed: a thread
 * ended with LevelDB work in flight (a batch, an iterator, a snapshot) aborts the whole process
 * (leveldb's `~VersionSet` assertion, or a segfault).
 */
function endThread(): never {
  process.exit(1);
}

/** Changed keys a worker's store remembers between checkpoints; beyond it the next one is full. */
const CHANGES_TRACKED = 500_000;

export async function runWorker(init: WorkerInit): Promise<WorkerResult> {
  const { worker, workers, options, control } = init;
  const post = (message: FromWorker): void => control.postMessage(message);
  const log = (line: string): void => post({ type: 'log', line });
  // Messages that come while this worker still starts are kept and handled, in order, once it is up.
  // An abandon (another worker failed) or a crash drill cuts the start short instead: a second
  // failure during a long restore must not wait for that restore to finish.
  const early: ToWorker[] = [];
  let givenUp: 'abandon' | 'crash' | undefined;
  const keepEarly = (message: ToWorker): void => {
    if (message.type === 'crash' || (message.type === 'abandon' && givenUp === undefined)) givenUp = message.type;
    early.push(message);
  };
  control.on('message', keepEarly);
  // The job manager closed this attempt's channel (it was given up before this task even ran): abandon.
  const closedEarly = (): void => keepEarly({ type: 'abandon' });
  control.once('close', closedEarly);
  const checkGivenUp = (): void => {
    if (givenUp !== undefined) throw new StartGivenUp();
  };

  // The thread runs later attempts too (the pool keeps it): the job module is imported once per thread.
  const job = jobFromModule((await import(init.jobModule)) as Record<string, unknown>, init.jobModule);
  if (job.name !== init.jobName) {
    throw new Error(`worker ${worker}: ${init.jobModule} exports job ${job.name}, expected ${init.jobName}`);
  }
  const backend = init.stateLocation === undefined ? new MemoryBackend() : new LevelDbBackend(init.stateLocation);
  // With checkpoints, the store remembers what changed between cuts: most checkpoints write only that.
  const store = new StateStore(backend, options.stateCacheEntries, init.checkpointDir === undefined ? 0 : CHANGES_TRACKED, {
    intervalMs: options.stateFlushIntervalMs,
    maxDirty: Math.max(1, Math.floor(options.stateCacheEntries / 10)),
    onError: (error) => log(`worker ${worker}: state write failed, will retry: ${describeError(error)}`),
  });
  const keyGroups = keyGroupRangeOf(worker, workers, options.maxParallelism);
  const egress = new EgressOutbox(control);
  // After a restore of checkpoint n, output belongs to epoch n + 1 on: never to an epoch at or below
  // n, which a later failure would treat as confirmed by checkpoint n.
  if (init.restore !== undefined) egress.epoch = init.restore.id + 1;

  // The operators refer to each other in a cycle; batches only arrive after all of them exist.
  const delaysTo = (delays: ReadonlyArray<ChannelDelay> | undefined): number[] => init.peers.map((_, to) => delays?.find((d) => d.from === worker && d.to === to)?.ms ?? 0);
  const mesh = new Mesh(worker, init.peers, options.batchSize, (from, batch) => {
    if (batch.channel === Channel.ACK) router.onAck(from, batch.credits, batch.feedbackAcks);
    else if (batch.channel === Channel.FEEDBACK) feedback.onBatch(from, batch.envelopes);
    else dispatcher.acceptRouterBatch(from, batch.envelopes);
  }, { [Channel.ROUTER]: delaysTo(options.faultInjection.delayRouterChannels), [Channel.FEEDBACK]: delaysTo(options.faultInjection.delayFeedbackChannels) });
  const dispatcher = new FunctionDispatcher({
    worker,
    workers,
    maxParallelism: options.maxParallelism,
    keyGroups,
    job,
    store,
    mesh,
    egress,
    deadLetterIndex: job.egresses.findIndex((e) => e.name === DEAD_LETTERS),
    log,
    onBacklogDrained: () => router.kick(),
    lowWaterMark: options.feedbackHighWaterMark / 2,
    maxTransactions: options.maxTransactionsPerWorker,
    maxSagas: options.maxSagasPerWorker,
    staleProbes: options.faultInjection.staleProbes === true,
    onCut: (id, snapshot) => checkpoints.cut(id, snapshot, feedback.onOwnSnapshot(id)),
  });
  const feedback = new Feedback(dispatcher, workers, options.maxParallelism);
  const router = new IngressRouter({
    worker,
    workers,
    maxParallelism: options.maxParallelism,
    job,
    mesh,
    dispatcher,
    splits: init.splits,
    channelCapacity: options.channelCapacity,
    feedbackHighWaterMark: options.feedbackHighWaterMark,
  });
  dispatcher.functionStats.declare([...job.functions].filter(([, fn]) => fn.kind === 'regular').map(([type]) => type));
  store.observer = (key, access) => dispatcher.functionStats.stateAccess(key, access);
  const threadStats = new ThreadStats(init.stateLocation);
  const checkpoints = new WorkerCheckpoints({ worker, keyGroups, directory: init.checkpointDir, post, log });
  const metrics = (): WorkerMetrics => ({
    worker,
    recordsRead: router.recordsRead,
    envelopesRouted: router.envelopesRouted,
    invocations: dispatcher.invocations,
    invocationsFailed: dispatcher.invocationsFailed,
    handlerErrors: dispatcher.handlerErrors,
    deadLetters: dispatcher.deadLetters,
    egressRecords: egress.recordsSent,
    messagesSent: dispatcher.messagesSent,
    delayedScheduled: dispatcher.delayed.scheduled,
    delayedFired: dispatcher.delayed.fired,
    mailboxDepth: dispatcher.mailboxDepth,
    feedbackBacklog: dispatcher.backlog,
    feedbackHeldForCheckpoint: feedback.heldTotal,
    connectors: router.connectorMetrics(),
    routerThrottled: router.throttled,
    stateCacheDirty: store.pendingWrites,
    ...dispatcher.transactions.metrics(),
    transactionsWaiting: dispatcher.transactionsWaiting,
    routerBlockedOnCreditsMs: router.blockedClock.ms('credits'),
    routerBlockedOnFeedbackMs: router.blockedClock.ms('feedback'),
    functions: dispatcher.functionStats.snapshot(),
    lockWaits: dispatcher.core.lockWaits(LOCK_WAITS_SHOWN),
    sentTo: [...mesh.sent],
    ...threadStats.read(),
  });

  /**
   * A state lookup, answered from this message handler: between two turns of the event loop, so
   * between invocations (an async one still running has its writes staged, not in the store).
   * Values are decoded as a handler would read them, through the function type's state handles.
   */
  const inspectInstance = async (address: { type: string; id: string }): Promise<InstanceState | { error: string }> => {
    const fn = job.functions.get(address.type);
    if (fn?.kind !== 'regular') return { error: `no function type ${address.type} with state in job ${job.name}` };
    const kg = keyGroupOf(address.id, options.maxParallelism);
    try {
      const reader = new Invocation(dispatcher, fn, { targetType: address.type, targetId: address.id } as Envelope, kg);
      const handles = reader.state as Record<string, { get?: () => unknown; values?: () => unknown[]; entries?: () => Promise<Array<[unknown, unknown]>> }>;
      const state: Record<string, unknown> = {};
      // Everything is read or started in this one turn: a map's scan takes the store's view (its
      // unflushed writes and a backend snapshot) when it starts, so the maps are read as of this
      // turn too, however long their entries take to come.
      const maps: Array<[string, Promise<Array<[unknown, unknown]>>]> = [];
      for (const [name, spec] of Object.entries(fn.state)) {
        const handle = handles[name];
        if (spec.kind === 'map') maps.push([name, handle!.entries!()]);
        else if (spec.kind === 'list') {
          const values = handle!.values!();
          if (values.length > 0) state[name] = values;
        } else {
          const value = handle?.get?.();
          if (value !== undefined) state[name] = value;
        }
      }
      const { mailboxDepth, running, held } = dispatcher.activityOf(address);
      const transaction = stagedView(fn, address, kg, reader);
      const delayed = dispatcher.delayed.pendingOf(address, kg);
      for (const [name, entries] of maps) {
        const read = await entries;
        if (read.length > 0) state[name] = read;
      }
      const pendingDelayed = (await delayed).map(({ token, fireAt, envelope }) => {
        const to = { type: envelope.targetType, id: envelope.targetId };
        let message: unknown;
        try {
          message = job.functions.get(to.type)?.codec.decode(envelope.payload);
        } catch {
          message = undefined; // shown without it: the lookup is for people, the message may be any bytes
        }
        return { token, fireAt, to, ...(message === undefined ? {} : { message }) };
      });
      return { ...address, worker, keyGroup: kg, state, mailboxDepth, running, heldByTransaction: held, ...(transaction === undefined ? {} : { transaction }), pendingDelayed };
    } catch (error) {
      return { error: describeError(error) };
    }
  };

  /**
   * How transactions hold an instance, with what an exclusive lock staged decoded through the same
   * state handles as the committed state, read over the staged writes.
   */
  const stagedView = (fn: FunctionType<unknown, StateSpecs>, address: Address, kg: number, committed: Invocation): InstanceState['transaction'] => {
    const held = dispatcher.core.transactionOf(address);
    if (held === undefined) return undefined;
    const base = { ids: held.transactions, since: held.since };
    if (held.staged === undefined) return base;
    const writes = held.staged;
    const overlay = Object.create(dispatcher) as CoreReads;
    overlay.readState = (key: string) => (writes.has(key) ? (writes.get(key) ?? undefined) : dispatcher.readState(key));
    const reader = new Invocation(overlay, fn, { targetType: address.type, targetId: address.id } as Envelope, kg);
    const handles = reader.state as Record<string, { get?: () => unknown; values?: () => unknown[] }>;
    const staged: Record<string, unknown> = {};
    for (const [name, spec] of Object.entries(fn.state)) {
      const key = committed.stateKey(name);
      if (![...writes.keys()].some((written) => written.startsWith(key))) continue;
      if (spec.kind === 'map') staged[name] = { changed: true };
      else if (spec.kind === 'list') staged[name] = handles[name]!.values!();
      else staged[name] = handles[name]!.get!() ?? null;
    }
    return { ...base, staged };
  };

  /**
   * The instances of `type` in this worker's key groups whose ids start with `prefix`: the first
   * `limit` in id order, each read as `inspectInstance` reads one. Ids come from a scan of the
   * type's state in each key group (an instance with no state value is not listed).
   */
  const listInstances = async ({ type, prefix, limit }: { type: string; prefix: string; limit: number }): Promise<InstanceList | { error: string }> => {
    if (job.functions.get(type)?.kind !== 'regular') return { error: `no function type ${type} with state in job ${job.name}` };
    const ids = new Set<string>();
    for (let kg = keyGroups.start; kg <= keyGroups.end; kg++) {
      let last = '';
      for await (const [key] of store.scanLive(typeStatePrefix(kg, type))) {
        const { id } = addressOfKey(key);
        if (id !== last && id.startsWith(prefix)) ids.add(id);
        last = id;
      }
    }
    const sorted = [...ids].sort();
    const instances: InstanceState[] = [];
    for (const id of sorted.slice(0, limit)) {
      const answer = await inspectInstance({ type, id });
      if ('error' in answer) return answer;
      instances.push(answer);
    }
    return { type, prefix, instances, truncated: sorted.length > limit };
  };

  // Engine state to load at start: unknown (look) unless a restore just wrote the state and counted
  // it (a scan per key group and space costs a restore tens of milliseconds even when empty).
  let parkedToReplay = true;
  let timersToLoad = true;
  let transactionsToLoad = true;
  // Where a restore's time goes, logged once it is done (ms since the task began).
  const began = performance.now();
  const phases: string[] = [];
  let phaseStart = began;
  const phase = (name: string): void => {
    const now = performance.now();
    phases.push(`${name} ${Math.round(now - phaseStart)}`);
    phaseStart = now;
  };
  try {
    checkGivenUp();
    await backend.open();
    phase('open');
    checkGivenUp();
    // A restore loads the key groups this worker now owns from every part of the checkpoint that has
    // them, before anything reads state; the feedback in flight at the cut is replayed at start.
    if (init.restore !== undefined) {
      const restored = await restoreKeyGroups(init.restore, keyGroups, store, () => givenUp !== undefined);
      parkedToReplay = restored.parked > 0;
      timersToLoad = restored.timers > 0;
      transactionsToLoad = restored.transactions > 0;
      phase(`state (${restored.entries} entries; user state written in the background)`);
    }
    checkGivenUp();
    await router.open();
    phase('sources');
    if (timersToLoad) await dispatcher.delayed.load(keyGroups);
    if (transactionsToLoad) await dispatcher.loadTransactions();
    // Before 'ready': a checkpoint cut once the workers run must park its envelopes after these.
    if (parkedToReplay) await dispatcher.loadParked();
    phase('timers, transactions, parked');
    checkGivenUp();
    if (init.restore !== undefined) log(`worker ${worker}: restored checkpoint ${init.restore.id} in ${Math.round(performance.now() - began)} ms (${phases.join(', ')})`);
  } catch (error) {
    // Closed before the task ends, whatever happened: the thread lives on for the next attempt, and a
    // thread ended later with this LevelDB open and work in flight would take the process down.
    control.off('message', keepEarly);
    control.off('close', closedEarly);
    dispatcher.abandon();
    mesh.close();
    await router.stop().catch(() => {});
    await store.close().catch(() => {});
    threadStats.close();
    if (!(error instanceof StartGivenUp)) throw error;
    // Its LevelDB is closed: the job manager need not wait for this thread to end (a crash drill's exit).
    post({ type: 'closed' });
    control.close();
    if (givenUp === 'crash') endThread();
    return { worker, metrics: metrics(), positions: [] };
  }

  let starting = false;
  let stopping = false;
  return new Promise<WorkerResult>((resolve, reject) => {
    let ending = false;
    const close = async (): Promise<void> => {
      ending = true;
      await router.stop();
      dispatcher.pause();
      // Parked from a fresh turn: an async invocation that just ended finishes its bookkeeping in the
      // same microtask run (a PREPARE locks, then leaves the running set), never half of it.
      await nextTurn();
      const { parked, running } = dispatcher.parkWaiting();
      if (parked > 0) {
        log(`worker ${worker}: parked ${parked} envelopes in state (${running} of them still running); they run first on the next start`);
      }
      mesh.flush();
      egress.flush();
      await store.flushAll();
      await store.close();
      mesh.close();
      post({ type: 'closed' });
      control.close();
      settle({ worker, metrics: metrics(), positions: router.positions() });
    };
    // Another worker failed: this attempt's state and output are thrown away (the job restores a
    // checkpoint), but the task ends by itself with its LevelDB closed (iterators, snapshots and
    // writes ended first), and the thread stays in the pool for the next attempt.
    let abandoning: Promise<void> | undefined;
    const abandon = (): Promise<void> =>
      (abandoning ??= (async () => {
        ending = true;
        stopping = true;
        dispatcher.abandon();
        mesh.close();
        await router.stop().catch(() => {});
        await store.close();
        // Its LevelDB is closed: the job manager need not wait for this thread to end (a crash drill's exit).
        post({ type: 'closed' });
        control.close();
      })());
    // This task failed: state closed first, for the same reason.
    const fail = (error: unknown): void => {
      stopFatalHandlers();
      void abandon()
        .catch(() => {})
        .then(() => reject(error instanceof Error ? error : new Error(`worker ${worker}: ${describeError(error)}`)));
    };
    // An error nothing caught would end the thread with its LevelDB open: fail the task instead.
    const onFatal = (error: unknown): void => fail(error);
    process.on('uncaughtException', onFatal);
    process.on('unhandledRejection', onFatal);
    const stopFatalHandlers = (): void => {
      threadStats.close();
      process.off('uncaughtException', onFatal);
      process.off('unhandledRejection', onFatal);
    };
    const settle = (result: WorkerResult): void => {
      stopFatalHandlers();
      resolve(result);
    };
    const handle = (message: ToWorker): void => {
      switch (message.type) {
        case 'start':
          starting = true;
          void (parkedToReplay ? dispatcher.replayParked() : Promise.resolve(0))
            .then((replayed) => {
              if (replayed > 0) log(`worker ${worker}: replaying ${replayed} envelopes (parked by the last stop, or in flight at the restored checkpoint)`);
              dispatcher.resume();
              if (!stopping) {
                dispatcher.delayed.start();
                router.start();
              }
              starting = false;
              post({ type: 'started' });
            })
            .catch(fail);
          break;
        case 'checkpoint':
          router
            .checkpoint(message.id)
            .then((positions) => checkpoints.positions(message.id, positions))
            .catch(fail);
          break;
        case 'state-query':
          void inspectInstance(message.address).then((answer) => post({ type: 'state-answer', id: message.id, answer }));
          break;
        case 'state-list':
          void listInstances(message.list).then(
            (answer) => post({ type: 'state-answer', id: message.id, answer }),
            (error: unknown) => post({ type: 'state-answer', id: message.id, answer: { error: describeError(error) } }),
          );
          break;
        case 'checkpoint-abort':
          dispatcher.abortAlignment(message.id);
          feedback.abort(message.id);
          checkpoints.abort(message.id);
          break;
        case 'status':
          post({
            type: 'status',
            wave: message.wave,
            status: {
              sent: [...mesh.sent],
              accepted: [...dispatcher.accepted],
              idle: !starting && dispatcher.idle && egress.idle && !router.reading,
              noneRunning: !starting && dispatcher.noneRunning && !router.reading,
              sourcesDone: router.sourcesDone,
              timersPending: dispatcher.delayed.pending,
              egressBatchesSent: egress.batchesSent,
            },
          });
          break;
        case 'metrics':
          post({ type: 'metrics', id: message.id, metrics: metrics() });
          break;
        case 'stop-sources':
          // Timers stay in state from now on and fire after the next start: a timer firing while
          // the job manager decides the job is done would send an envelope nobody takes in.
          stopping = true;
          dispatcher.delayed.stop();
          void router.stop().catch(fail);
          break;
        case 'pause':
          dispatcher.pause();
          break;
        case 'close':
          close().catch((error: unknown) => fail(new Error(`worker ${worker}: close failed: ${describeError(error)}`, { cause: error })));
          break;
        case 'abandon':
          abandon().then(() => settle({ worker, metrics: metrics(), positions: [] }), fail);
          break;
        case 'crash':
          // The drill ends the thread, as a crash would, but only once its LevelDB is closed.
          void abandon()
            .catch(() => {})
            .then(endThread);
          break;
      }
    };
    control.off('message', keepEarly);
    control.off('close', closedEarly);
    control.on('message', handle);
    control.once('close', () => {
      if (!ending) handle({ type: 'abandon' });
    });
    early.forEach(handle);
    post({ type: 'ready', threadId });
  });
}
