/**
 * The invocation core driven by a host with no threads, channels or store (test/fixtures/core-host.ts):
 * state handed in, effects handed back, as a request-reply server would drive it. What it does with
 * a message, a failing handler, a host that loads state asynchronously, and a whole two-phase-commit
 * transfer with no dispatcher in between.
 */
import t from 'tap';
import { defineFunction, defineJob, defineRouter, InvocationFailed, memoryEgress, memoryIngress, valueState } from '../../index.js';
import type { Address } from '../../engine/function-type.js';
import { type Envelope, Kind } from '../../engine/wire/envelope.js';
import { FakeCoreHost } from '../fixtures/core-host.js';
import transferJob, { account, type Applied, INITIAL_BALANCE, type Outcome, transfer } from '../fixtures/transfer-job.js';

class Declined extends InvocationFailed {}

const counterState = { count: valueState<number>() };
const counter = defineFunction<{ by: number; fail?: 'bug' | 'declined' | 'engine' }, typeof counterState>({
  type: 'core/counter',
  state: counterState,
  handler(ctx, message) {
    const count = (ctx.state.count.get() ?? 0) + message.by;
    ctx.state.count.set(count);
    ctx.egress('counts', { id: ctx.self.id, count });
    ctx.send({ type: 'core/counter', id: `${ctx.self.id}-echo` }, { by: 0 });
    if (message.fail === 'bug') throw new TypeError('a bug in the handler');
    if (message.fail === 'declined') throw new Declined('declined');
    if (message.fail === 'engine') ctx.egress('nowhere', {});
  },
  onInvocationFailed(ctx, error) {
    ctx.egress('counts', { id: ctx.self.id, count: -1, why: error.message });
  },
});

const job = defineJob({
  name: 'core-test',
  module: import.meta.url,
  functions: [counter],
  ingresses: [memoryIngress<{ id: string }>('in')],
  routers: [defineRouter<{ id: string }>('in', (record) => ({ to: counter.address(record.id), message: { by: 1 } }))],
  egresses: [memoryEgress('counts')],
});

let seq = 0;
function message(to: Address, body: unknown, codec = counter.codec): Envelope {
  return { kind: Kind.INVOKE, targetType: to.type, targetId: to.id, sourceType: '', sourceId: '', payload: codec.encode(body as never), ingressTime: 0, origin: 0, seq: ++seq };
}

void t.test('a message runs its handler against the state it was given and hands back writes, messages and egress as effects', async (t) => {
  const host = new FakeCoreHost(job);
  t.equal(host.core.run(message(counter.address('a'), { by: 2 })), undefined, 'a synchronous handler runs at once');
  t.equal(host.core.run(message(counter.address('a'), { by: 3 })), undefined);
  t.same(host.egress('counts'), [{ id: 'a', count: 2 }, { id: 'a', count: 5 }], 'the second run read what the first wrote');
  t.equal(host.state.size, 1, 'one state value written');
  t.same(host.sent.map((e) => [e.kind, e.targetId, e.sourceId]), [[Kind.INVOKE, 'a-echo', 'a'], [Kind.INVOKE, 'a-echo', 'a']], 'the messages, from the instance');
  t.equal(host.core.stats.invocations, 2);
});

void t.test('a handler that throws a bug applies nothing and is dead-lettered with the code of the engine error it hit', async (t) => {
  const host = new FakeCoreHost(job);
  await host.core.run(message(counter.address('a'), { by: 1, fail: 'bug' }));
  await host.core.run(message(counter.address('b'), { by: 1, fail: 'engine' }));
  t.equal(host.state.size, 0, 'no state written');
  t.same(host.sent, [], 'no message sent');
  t.same(host.egress('counts'), [], 'no egress');
  t.same(host.deadLetters.map((l) => l.code), ['EDDY_HANDLER_FAILED', 'EDDY_UNKNOWN_EGRESS']);
  t.equal(host.core.stats.handlerErrors, 2);
});

void t.test('InvocationFailed discards the effects and runs onInvocationFailed, whose effects apply instead', async (t) => {
  const host = new FakeCoreHost(job);
  await host.core.run(message(counter.address('a'), { by: 1, fail: 'declined' }));
  t.same(host.egress('counts'), [{ id: 'a', count: -1, why: 'declined' }]);
  t.equal(host.state.size, 0, 'the handler\'s write was discarded');
  t.equal(host.core.stats.invocationsFailed, 1);
  t.same(host.deadLetters, []);
});

void t.test('an undecodable message or an unknown function type is dead-lettered with its code', async (t) => {
  const host = new FakeCoreHost(job);
  await host.core.run({ ...message(counter.address('a'), {}), payload: new Uint8Array([0xff, 0x00]) });
  await host.core.run(message({ type: 'core/nowhere', id: 'x' }, {}));
  t.same(host.deadLetters.map((l) => l.code), ['EDDY_UNDECODABLE_PAYLOAD', 'EDDY_UNKNOWN_FUNCTION_TYPE']);
});

void t.test('when the host loads state asynchronously, the handler runs after the load and reads the loaded state', async (t) => {
  const host = new FakeCoreHost(job);
  const first = new FakeCoreHost(job);
  await first.core.run(message(counter.address('a'), { by: 40 }));
  host.loadDelayMs = 5;
  host.onLoad = () => {
    for (const [key, value] of first.state) host.state.set(key, value);
  };
  const done = host.core.run(message(counter.address('a'), { by: 2 }));
  t.ok(done instanceof Promise, 'the invocation is async');
  t.same(host.egress('counts'), [], 'nothing ran before the load');
  await done;
  t.same(host.loaded, [counter.address('a')], 'the instance\'s state was loaded once');
  t.same(host.egress('counts'), [{ id: 'a', count: 42 }], 'the handler read the loaded state');
});

void t.test('late effects of an async invocation are discarded once the host closed', async (t) => {
  const host = new FakeCoreHost(job);
  host.loadDelayMs = 5;
  const done = host.core.run(message(counter.address('a'), { by: 1 }));
  host.isClosed = true;
  await done;
  t.equal(host.state.size, 0);
  t.same(host.egress('counts'), []);
});

void t.test('a two-phase-commit transfer runs through the core alone: coordinator, participants and decisions', async (t) => {
  const host = new FakeCoreHost(transferJob);
  host.deliver(message(transfer.address('c1'), { txn: 'T1', from: 'a', to: 'b', amount: 7 }, transfer.codec as never));
  t.equal(host.holdOf(transfer.address('c1')), 'busy', 'the coordinator is held while its transaction runs');
  t.same(host.sent.map((e) => [e.kind, e.targetId]).sort(), [[Kind.PREPARE, 'a'], [Kind.PREPARE, 'b']], 'a PREPARE to each participant');
  await host.deliverAll();
  const applied = host.egress('applied') as Applied[];
  t.same(applied.map((a) => [a.account, a.balance]).sort(), [['a', INITIAL_BALANCE - 7], ['b', INITIAL_BALANCE + 7]], 'both legs applied');
  t.same((host.egress('outcomes') as Outcome[]).map((o) => o.status), ['committed']);
  t.equal(host.holdOf(transfer.address('c1')), undefined, 'the coordinator is free again');
  t.equal(host.holdOf(account.address('a')), undefined, 'and the participants');
  t.equal(host.core.metrics().transactionsCommitted, 1);
  t.same(host.core.records(), [], 'no transaction bookkeeping is left');
});
