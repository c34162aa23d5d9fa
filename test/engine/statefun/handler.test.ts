import t from 'tap';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { egressTypename, StatefunHandler, type ServedDeadLetter } from '../../../engine/statefun/handler.js';
import { kafkaDeadLetterEgress, kafkaEgress } from '../../../connectors/kafka.js';
import { defineFunction, defineJob, mapState, memoryEgress, valueState } from '../../../index.js';
import {
  decodeFromFunction,
  decodeKafkaProducerRecord,
  encodeToFunction,
  type InvocationResponse,
  KAFKA_PRODUCER_RECORD_TYPENAME,
  type PersistedValue,
  type ToFunctionInvocation,
  sfAddress,
  typedValue,
  valueBytes,
} from '../../../engine/statefun/protocol.js';
import { intType, jsonType, stringType } from '../../../engine/statefun/types.js';
import job, { counter, type CounterOp } from '../../fixtures/statefun-job.js';

const wireDir = fileURLToPath(new URL('../../fixtures/statefun-wire/', import.meta.url));
const sample = (name: string): Buffer => readFileSync(`${wireDir}${name}.bin`);
const op = jsonType<CounterOp>('test/CounterOp');

function counterRequest(id: string, state: PersistedValue[], ops: CounterOp[], caller?: string): Uint8Array {
  const invocations: ToFunctionInvocation[] = ops.map((o) => ({
    argument: typedValue('test/CounterOp', op.encode(o)),
    ...(caller === undefined ? {} : { caller: sfAddress('test/counter', caller) }),
  }));
  return encodeToFunction({ invocation: { target: sfAddress('test/counter', id), state, invocations } });
}

/** Both declared values registered; `count` set when given. */
function counterState(count?: number): PersistedValue[] {
  return [
    count === undefined ? { stateName: 'count' } : { stateName: 'count', stateValue: typedValue('io.statefun.types/int', intType.encode(count)) },
    { stateName: 'touched' },
  ];
}

function result(bytes: Uint8Array): InvocationResponse {
  const answer = decodeFromFunction(bytes);
  if (answer.invocationResult === null || answer.invocationResult === undefined) throw new Error(`not an invocation result: ${JSON.stringify(answer)}`);
  return answer.invocationResult;
}

void t.test('the captured requests get the Python SDK greeter answers, byte for byte', async (t) => {
  const handler = new StatefunHandler(job);
  for (const [request, response] of [
    ['01-request', '01-response'],
    ['02-request', '02-response'],
    ['03-request', '03-response'],
    ['203-batched-request', '203-batched-response'],
  ] as const) {
    const answer = await handler.handleToFunction(sample(request));
    t.same(Buffer.from(answer), sample(response), `${request} -> ${response}`);
  }
});

void t.test('missing state: the declared specs (TTL as AFTER_WRITE) are asked for and nothing runs', async (t) => {
  const letters: ServedDeadLetter[] = [];
  const handler = new StatefunHandler(job, { onDeadLetter: (l) => letters.push(l) });
  const none = await handler.serve(counterRequest('c1', [], [{ add: 1 }]));
  t.equal(none.incomplete, true);
  t.equal(none.invocations, 0, 'no handler ran');
  const asked = decodeFromFunction(none.response).incompleteInvocationContext!.missingValues!;
  t.same(
    asked.map((spec) => ({ name: spec.stateName, type: spec.typeTypename, mode: spec.expirationSpec?.mode ?? 0, ms: Number(spec.expirationSpec?.expireAfterMillis ?? 0) })),
    [
      { name: 'count', type: 'io.statefun.types/int', mode: 0, ms: 0 },
      { name: 'touched', type: 'io.statefun.types/string', mode: 1, ms: 60_000 },
    ],
  );
  const one = await handler.serve(counterRequest('c1', [{ stateName: 'count' }, { stateName: 'other' }], [{ add: 1 }]));
  t.same(decodeFromFunction(one.response).incompleteInvocationContext!.missingValues!.map((spec) => spec.stateName), ['touched'], 'only what is missing; unknown names ignored');
  const all = await handler.serve(counterRequest('c1', [...counterState(), { stateName: 'other' }], [{ add: 1 }]));
  t.equal(all.incomplete, false, 'registered but unset values are enough');
  t.same(letters, []);
});

void t.test('a batch of 3 runs in order against one working copy: one mutation, three egress records', async (t) => {
  const handler = new StatefunHandler(job);
  const served = await handler.serve(counterRequest('c2', counterState(5), [{ add: 1 }, { addLater: 2 }, { add: 3 }]));
  t.equal(served.invocations, 3);
  const res = result(served.response);
  t.equal(res.stateMutations!.length, 1, 'one mutation per value changed, with the final value');
  t.equal(res.stateMutations![0]!.stateName, 'count');
  t.equal(res.stateMutations![0]!.mutationType, 1);
  t.equal(res.stateMutations![0]!.stateValue!.typename, 'io.statefun.types/int');
  t.equal(intType.decode(valueBytes(res.stateMutations![0]!.stateValue)), 11);
  t.same(
    res.outgoingEgresses!.map((e) => [e.egressNamespace, e.egressType, e.argument!.typename, intType.decode(valueBytes(e.argument))]),
    [
      ['eddy', 'totals', 'io.statefun.types/int', 6],
      ['eddy', 'totals', 'io.statefun.types/int', 8],
      ['eddy', 'totals', 'io.statefun.types/int', 11],
    ],
  );
  t.equal(res.outgoingMessages!.length, 0, 'no messages');
  t.equal(res.delayedInvocations!.length, 0, 'no delayed messages');
});

void t.test('delayed messages carry their delay and token; a cancellation carries only the token', async (t) => {
  const handler = new StatefunHandler(job);
  const res = result(await handler.handleToFunction(counterRequest('c3', counterState(1), [{ cancel: 'r1' }, { remind: 1500, token: 'r1' }, { remind: 0 }])));
  const delayed = res.delayedInvocations!;
  t.equal(delayed.length, 3);
  t.same(delayed[0], { isCancellationRequest: true, cancellationToken: 'r1' });
  t.equal(Number(delayed[1]!.delayInMs), 1500);
  t.same(delayed[1]!.target, { namespace: 'test', type: 'counter', id: 'c3' });
  t.equal(delayed[1]!.argument!.typename, 'test/CounterOp');
  t.same(op.decode(valueBytes(delayed[1]!.argument)), { add: 0 });
  t.equal(delayed[1]!.cancellationToken, 'r1');
  t.notOk(delayed[1]!.isCancellationRequest);
  t.equal(Number(delayed[2]!.delayInMs ?? 0), 0);
  t.match(delayed[2]!.cancellationToken, /^[\w-]{16}\.1$/, 'a token without one given: derived from the request');
  const touched = res.stateMutations!.find((m) => m.stateName === 'touched')!;
  t.equal(stringType.decode(valueBytes(touched.stateValue)), delayed[2]!.cancellationToken, 'the handler saw the token it answers with');
});

void t.test('a message to another instance names the target; the caller reaches the handler', async (t) => {
  const handler = new StatefunHandler(job);
  const res = result(await handler.handleToFunction(counterRequest('c4', counterState(7), [{ forward: 'c5' }], 'c9')));
  t.equal(res.outgoingMessages!.length, 1);
  t.same(res.outgoingMessages![0]!.target, { namespace: 'test', type: 'counter', id: 'c5' });
  t.equal(res.outgoingMessages![0]!.argument!.typename, 'test/CounterOp');
  t.same(op.decode(valueBytes(res.outgoingMessages![0]!.argument)), { add: 7 });
  t.equal(res.stateMutations!.length, 0, 'reading state changes nothing');
  const called = result(await handler.handleToFunction(counterRequest('c4', counterState(7), [{ who: true }], 'c9')));
  t.equal(stringType.decode(valueBytes(called.stateMutations![0]!.stateValue)), 'test/counter:c9');
  const fromIngress = result(await handler.handleToFunction(counterRequest('c4', counterState(7), [{ who: true }])));
  t.equal(stringType.decode(valueBytes(fromIngress.stateMutations![0]!.stateValue)), 'an ingress');
});

void t.test('a deleted value is a DELETE mutation', async (t) => {
  const handler = new StatefunHandler(job);
  const res = result(await handler.handleToFunction(counterRequest('c6', counterState(3), [{ add: 1 }, { reset: true }])));
  t.same(res.stateMutations, [{ stateName: 'count' }], 'DELETE is the default mutation type: only the name on the wire');
  t.equal(res.outgoingEgresses!.length, 1);
});

void t.test('a failed invocation leaves no effects but its onInvocationFailed; a bug is a dead letter; the rest of the batch applies', async (t) => {
  const letters: ServedDeadLetter[] = [];
  const handler = new StatefunHandler(job, { onDeadLetter: (l) => letters.push(l) });
  const served = await handler.serve(counterRequest('c7', counterState(10), [{ fail: true }, { bug: true }, { add: 1 }]));
  const res = result(served.response);
  t.equal(intType.decode(valueBytes(res.stateMutations![0]!.stateValue)), 11, 'neither the failed nor the buggy write applied');
  t.same(res.outgoingEgresses!.map((e) => intType.decode(valueBytes(e.argument))), [-1, 11], 'onInvocationFailed egressed -1');
  t.equal(served.deadLetters.length, 1);
  t.equal(served.deadLetters[0]!.code, 'EDDY_HANDLER_FAILED');
  t.equal(served.deadLetters[0]!.target, 'test/counter:c7');
  t.same(letters, served.deadLetters, 'reported to onDeadLetter too');
});

void t.test('with a Kafka dead-letter egress, a dead letter also goes out through StateFun\'s Kafka egress', async (t) => {
  const withTopic = defineJob({
    name: 'statefun-dl',
    module: import.meta.url,
    functions: [counter],
    egresses: [memoryEgress('totals', { codec: intType }), kafkaDeadLetterEgress({ brokers: '127.0.0.1:9092', topic: 'counter-dead-letters' })],
  });
  const served = await new StatefunHandler(withTopic).serve(counterRequest('c7', counterState(10), [{ bug: true }]));
  const dead = (result(served.response).outgoingEgresses ?? []).filter((e) => e.egressType === 'dead-letters');
  t.equal(dead.length, 1);
  const record = decodeKafkaProducerRecord(valueBytes(dead[0]!.argument));
  t.equal(record.topic, 'counter-dead-letters');
  const letter = JSON.parse(Buffer.from(record.valueBytes!).toString()) as { code: string; target: unknown; payloadBase64: string };
  t.equal(letter.code, 'EDDY_HANDLER_FAILED');
  t.same(letter.target, { type: 'test/counter', id: 'c7' });
  t.same(JSON.parse(Buffer.from(letter.payloadBase64, 'base64').toString()), { bug: true }, 'with the message that failed');
});

void t.test('a message of another typename is a dead letter, not a decoding accident', async (t) => {
  const handler = new StatefunHandler(job);
  const request = encodeToFunction({
    invocation: {
      target: sfAddress('test/counter', 'c8'),
      state: counterState(1),
      invocations: [{ argument: typedValue('io.statefun.types/string', stringType.encode('{"add":1}')) }, { argument: typedValue('test/CounterOp', op.encode({ add: 1 })) }],
    },
  });
  const served = await handler.serve(request);
  t.equal(served.deadLetters.length, 1);
  t.equal(served.deadLetters[0]!.code, 'EDDY_UNDECODABLE_PAYLOAD');
  t.equal(intType.decode(valueBytes(result(served.response).stateMutations![0]!.stateValue)), 2, 'the next message still ran');
});

void t.test('a batch sent twice gets the same answer, byte for byte (tokens included)', async (t) => {
  const request = counterRequest('c10', counterState(2), [{ add: 1 }, { remind: 100 }, { forward: 'c11' }, { addLater: 4 }, { remind: 5 }]);
  const first = await new StatefunHandler(job).handleToFunction(request);
  await new Promise((resolve) => setTimeout(resolve, 20)); // the clock moves between the two
  const handler = new StatefunHandler(job);
  const second = await handler.handleToFunction(request);
  const third = await handler.handleToFunction(request);
  t.same(Buffer.from(second), Buffer.from(first));
  t.same(Buffer.from(third), Buffer.from(first));
  const other = await handler.handleToFunction(counterRequest('c10', counterState(2), [{ add: 1 }, { remind: 100 }, { forward: 'c11' }, { addLater: 4 }, { remind: 6 }]));
  t.not(result(other).delayedInvocations![0]!.cancellationToken, result(first).delayedInvocations![0]!.cancellationToken, 'another request gets other tokens');
});

void t.test('requests that cannot be served at all throw with the fix named', async (t) => {
  const handler = new StatefunHandler(job);
  const unknown = encodeToFunction({ invocation: { target: sfAddress('example/nobody', 'x'), invocations: [{ argument: typedValue('io.statefun.types/string', new Uint8Array(0)) }] } });
  t.throws(() => handler.serve(unknown), { code: 'EDDY_UNKNOWN_FUNCTION_TYPE' });
  t.throws(() => handler.serve(encodeToFunction({})), { code: 'EDDY_INVALID_ARGUMENT' });
  t.throws(() => handler.serve(Uint8Array.of(0xff, 0xff)), { code: 'EDDY_UNDECODABLE_PAYLOAD' });
});

void t.test('egress typenames: a namespace/name egress keeps its name; a plain name goes to the eddy namespace', async (t) => {
  t.equal(egressTypename('example/out'), 'example/out');
  t.equal(egressTypename('totals'), 'eddy/totals');
});

void t.test('requests served at the same time keep their own working copies', async (t) => {
  const handler = new StatefunHandler(job);
  // The first is async (addLater waits), so the second runs while the first is in its handler.
  const [slow, fast] = await Promise.all([
    handler.serve(counterRequest('same', counterState(100), [{ addLater: 1 }, { add: 1 }])),
    handler.serve(counterRequest('same', counterState(5), [{ add: 1 }])),
  ]);
  t.equal(intType.decode(valueBytes(result(slow.response).stateMutations![0]!.stateValue)), 102);
  t.equal(intType.decode(valueBytes(result(fast.response).stateMutations![0]!.stateValue)), 6);
});

void t.test('a job with map or list state is refused when served, naming the state and the way out', (t) => {
  const basket = defineFunction({ type: 'shop/basket', state: { items: mapState<string, number>() }, handler() {} });
  const mapJob = defineJob({ name: 'baskets', module: import.meta.url, functions: [basket] });
  t.throws(() => new StatefunHandler(mapJob), { code: 'EDDY_INVALID_JOB', message: /state items of shop\/basket is a mapState: eddy serve serves valueState only so far/ });
  t.end();
});

void t.test('a Kafka egress record goes out as a KafkaProducerRecord with the topic, key and value eddy would write', async (t) => {
  type Total = { id: string; total: number };
  const totals = jsonType<Total>('test/Total');
  const adder = defineFunction({
    type: 'test/adder',
    codec: intType,
    state: { sum: valueState({ codec: intType }) },
    handler(ctx, n: number) {
      const sum = (ctx.state.sum.get() ?? 0) + n;
      ctx.state.sum.set(sum);
      ctx.egress('example/totals', { id: ctx.self.id, total: sum });
      ctx.egress('plain', sum);
    },
  });
  const kafkaJob = defineJob({
    name: 'adders',
    module: import.meta.url,
    functions: [adder],
    egresses: [kafkaEgress<Total>('example/totals', { brokers: ['127.0.0.1:9'], topic: 'totals-out', codec: totals, key: (r) => r.id }), memoryEgress('plain', { codec: intType })],
  });
  const handler = new StatefunHandler(kafkaJob);
  const request = encodeToFunction({
    invocation: {
      target: sfAddress('test/adder', 'k1'),
      state: [{ stateName: 'sum', stateValue: typedValue('io.statefun.types/int', intType.encode(4)) }],
      invocations: [{ argument: typedValue('io.statefun.types/int', intType.encode(3)) }],
    },
  });
  const res = result(await handler.handleToFunction(request));
  const [kafka, plain] = res.outgoingEgresses!;
  t.same([kafka!.egressNamespace, kafka!.egressType, kafka!.argument!.typename], ['example', 'totals', KAFKA_PRODUCER_RECORD_TYPENAME]);
  const record = decodeKafkaProducerRecord(valueBytes(kafka!.argument));
  t.equal(record.topic, 'totals-out', 'the topic of the egress');
  t.equal(record.key, 'k1', 'the key function of the egress');
  t.same(totals.decode(new Uint8Array(record.valueBytes!)), { id: 'k1', total: 7 }, 'the value bytes are the egress codec\'s');
  t.same([plain!.egressNamespace, plain!.egressType, plain!.argument!.typename, intType.decode(valueBytes(plain!.argument))], ['eddy', 'plain', 'io.statefun.types/int', 7], 'a non-Kafka egress keeps its codec typename');
});
