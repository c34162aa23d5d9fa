/**
 * EgressSinks' order of publication, with a real exactly-once sink over an in-memory store (records
 * and marker written together, as a Kafka transaction does): a failed publication stops the sink's
 * queue, so no later epoch moves the marker past it; recover() publishes the failed epoch and the
 * ones after it again, in order, on a new sink, and nothing twice.
 */
import t from 'tap';
import { jsonCodec } from '../../../engine/codec.js';
import { EddyError } from '../../../engine/errors.js';
import type { Egress, Job, Sink } from '../../../engine/job.js';
import { EgressSinks } from '../../../engine/runtime/egress-sinks.js';
import { encodeEgressBatch } from '../../../engine/wire/envelope.js';

/** The external system: what is durably published, and its faults. */
class Store {
  readonly records: string[] = [];
  /** Epochs in the order they were published. */
  readonly epochs: number[] = [];
  marker = 0;
  opens = 0;
  /** The next publications fail before writing anything. */
  down = false;
  /** The next publication is written, but its answer is lost (the caller sees a failure). */
  loseNextAnswer = false;
}

function storeEgress(store: Store): Egress<string> {
  return {
    name: 'out',
    kind: 'store',
    codec: jsonCodec<string>(),
    openSink(): Sink<string> {
      store.opens++;
      let closed = false;
      return {
        write() {
          throw new Error('the engine publishes epochs to this sink');
        },
        async publishEpoch(epoch, records) {
          await new Promise((resolve) => setTimeout(resolve, 1));
          if (closed) throw new Error('the sink is closed');
          if (store.down) throw new Error('the store is unreachable');
          store.records.push(...records);
          store.epochs.push(epoch);
          store.marker = epoch;
          if (store.loseNextAnswer) {
            store.loseNextAnswer = false;
            throw new Error('request timed out (the write went through)');
          }
        },
        async publishedEpoch() {
          return store.marker;
        },
        close() {
          closed = true;
        },
      };
    },
  };
}

function setUp() {
  const store = new Store();
  // EgressSinks reads only the job's name and egresses.
  const job = { name: 'j', egresses: [storeEgress(store)] } as unknown as Job;
  const failures: EddyError[] = [];
  const sinks = new EgressSinks(job, { epochScope: 's' }, () => {}, (error) => failures.push(error), 1000);
  const codec = jsonCodec<string>();
  /** The output of epoch `epoch` arrives, and checkpoint `epoch` completes. */
  const complete = (epoch: number, values: string[]): void => {
    sinks.receive(encodeEgressBatch(values.map((v) => ({ egress: 0, payload: codec.encode(v), ingressTime: 0 })), epoch));
    sinks.publishUpTo(epoch);
  };
  return { store, sinks, failures, complete };
}

void t.test('a failed publication stops the queue: later epochs do not run, the marker stays below the failed one', async (t) => {
  const { store, sinks, failures, complete } = setUp();
  await sinks.open();
  complete(1, ['a']);
  complete(2, ['b']);
  await sinks.idle();
  store.down = true;
  complete(3, ['c']);
  await sinks.idle();
  store.down = false; // the store is back before the next epochs: they still must not go out before epoch 3
  complete(4, ['d']);
  complete(5, ['e']);
  await sinks.idle();
  t.equal(failures.length, 1, 'the job was told once');
  t.equal(failures[0]?.code, 'EDDY_SINK_FAILED');
  t.equal(failures[0]?.retryable, true, 'as a failure a restore can cure');
  t.same(store.epochs, [1, 2], 'nothing after the failed epoch was published');
  t.equal(store.marker, 2, 'the marker never passed the unpublished epoch');
  t.equal(sinks.unpublishedFrom(), 3, "checkpoint 3 and later are kept: they hold what is not out");
  t.equal(sinks.failed, true);

  sinks.recover();
  await sinks.idle();
  t.same(store.epochs, [1, 2, 3, 4, 5], 'after recover: the failed epoch and the ones after it, in order');
  t.same(store.records, ['a', 'b', 'c', 'd', 'e'], 'each record once');
  t.equal(store.opens, 2, 'on a newly opened sink');
  t.equal(sinks.unpublishedFrom(), 6);
  complete(6, ['f']);
  await sinks.idle();
  t.same(store.records, ['a', 'b', 'c', 'd', 'e', 'f'], 'and the queue runs on');
  t.equal(failures.length, 1);
  await sinks.close();
});

void t.test('a publication that went through but reported a failure is not published again', async (t) => {
  const { store, sinks, failures, complete } = setUp();
  await sinks.open();
  complete(1, ['a']);
  await sinks.idle();
  store.loseNextAnswer = true;
  complete(2, ['b']);
  complete(3, ['c']);
  await sinks.idle();
  t.equal(failures.length, 1, 'the lost answer counts as a failure');
  t.same(store.epochs, [1, 2], 'epoch 3 waited');
  sinks.recover();
  await sinks.idle();
  t.same(store.epochs, [1, 2, 3], 'the new sink read the marker (2) and published only epoch 3');
  t.same(store.records, ['a', 'b', 'c'], 'nothing twice');
  await sinks.close();
});

void t.test('a sink that fails again while recovering stops again and is reported again; the next recover finishes', async (t) => {
  const { store, sinks, failures, complete } = setUp();
  await sinks.open();
  store.down = true;
  complete(1, ['a']);
  await sinks.idle();
  sinks.recover();
  await sinks.idle();
  t.equal(failures.length, 2, 'the failed republication is a second failure');
  t.same(store.epochs, []);
  store.down = false;
  complete(2, ['b']);
  await sinks.idle();
  t.same(store.epochs, [], 'epoch 2 waits behind epoch 1');
  sinks.recover();
  await sinks.idle();
  t.same(store.epochs, [1, 2]);
  t.same(store.records, ['a', 'b']);
  await sinks.close();
});
