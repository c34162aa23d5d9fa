// The routers eddy serve runs as functions (eddy.router.<ingress>/<topic>): a StateFun Kafka ingress
// record in, the messages the job's routers route out, and dead letters for what they cannot route.
import t from 'tap';
import { StatefunHandler, type ServedDeadLetter } from '../../../engine/statefun/handler.js';
import { decodeFromFunction, decodeKafkaProducerRecord, encodeToFunction, KAFKA_PRODUCER_RECORD_TYPENAME, sfAddress, typedValue, valueBytes } from '../../../engine/statefun/protocol.js';
import { isRouterFunctionType, routerFunctionType } from '../../../engine/statefun/router-functions.js';
import { intType, jsonType, stringType } from '../../../engine/statefun/types.js';
import { kafkaDeadLetterEgress, kafkaIngress, type KafkaRecord } from '../../../connectors/kafka.js';
import { defineFunction, defineJob, defineRouter, memoryIngress, valueState } from '../../../index.js';

interface Order {
  customer: string;
  amount: number;
}

const orderType = jsonType<Order>('shop/Order');
const customer = defineFunction({
  type: 'shop/customer',
  codec: intType,
  state: { total: valueState({ codec: intType }) },
  handler(ctx, amount: number) {
    ctx.state.total.set((ctx.state.total.get() ?? 0) + amount);
  },
});
const audit = defineFunction({ type: 'shop/audit', codec: stringType, handler() {} });
const orders = kafkaIngress<Order>('orders', { brokers: '127.0.0.1:9092', topics: ['orders-eu', 'orders-us'], codec: orderType });

const job = defineJob({
  name: 'shop',
  module: import.meta.url,
  functions: [customer, audit],
  ingresses: [orders],
  routers: [
    defineRouter(orders, (record: KafkaRecord<Order>) => {
      if (record.value.amount < 0) throw new Error('negative amount');
      if (record.value.amount === 0) return [];
      return [
        { to: customer.address(record.value.customer), message: record.value.amount },
        { to: audit.address(record.key ?? 'none'), message: `${record.topic}:${record.value.customer}` },
      ];
    }),
  ],
});

function recordRequest(type: string, key: string, values: Array<{ typename: string; bytes: Uint8Array }>): Uint8Array {
  const slash = type.lastIndexOf('/');
  return encodeToFunction({
    invocation: {
      target: { namespace: type.slice(0, slash), type: type.slice(slash + 1), id: key },
      invocations: values.map(({ typename, bytes }) => ({ argument: typedValue(typename, bytes) })),
    },
  });
}

const order = (o: Order) => ({ typename: 'shop/Order', bytes: orderType.encode(o) });

void t.test('a record is routed by the job\'s router, as the ingress-router routes it, to messages typed for their targets', async (t) => {
  const type = routerFunctionType('orders', 'orders-eu');
  t.equal(type, 'eddy.router.orders/orders-eu');
  t.ok(isRouterFunctionType(type));
  t.notOk(isRouterFunctionType('shop/customer'));
  const handler = new StatefunHandler(job);
  const served = await handler.serve(recordRequest(type, 'k1', [order({ customer: 'ann', amount: 5 }), order({ customer: 'bob', amount: 7 })]));
  t.equal(served.invocations, 2);
  t.same(served.deadLetters, []);
  const result = decodeFromFunction(served.response).invocationResult!;
  t.same(result.stateMutations ?? [], [], 'a router function has no state');
  const messages = (result.outgoingMessages ?? []).map((m) => ({ to: `${m.target!.namespace}/${m.target!.type}:${m.target!.id}`, typename: m.argument!.typename, bytes: valueBytes(m.argument) }));
  t.same(
    messages.map(({ to, typename }) => ({ to, typename })),
    [
      { to: 'shop/customer:ann', typename: 'io.statefun.types/int' },
      { to: 'shop/audit:k1', typename: 'io.statefun.types/string' },
      { to: 'shop/customer:bob', typename: 'io.statefun.types/int' },
      { to: 'shop/audit:k1', typename: 'io.statefun.types/string' },
    ],
    'in record order, each route in order, the record key as KafkaRecord.key',
  );
  t.equal(intType.decode(messages[0]!.bytes), 5);
  t.equal(stringType.decode(messages[1]!.bytes), 'orders-eu:ann', 'the topic comes from the router function type');
  const again = await handler.serve(recordRequest(type, 'k1', [order({ customer: 'ann', amount: 5 }), order({ customer: 'bob', amount: 7 })]));
  t.same(Buffer.from(again.response), Buffer.from(served.response), 'a batch sent twice gets the same answer');
});

void t.test('records the routers cannot route are dead letters, and the rest of the batch goes on', async (t) => {
  const letters: ServedDeadLetter[] = [];
  const handler = new StatefunHandler(job, { onDeadLetter: (letter) => letters.push(letter) });
  const type = routerFunctionType('orders', 'orders-us');
  const served = await handler.serve(
    recordRequest(type, 'k2', [
      { typename: 'shop/Other', bytes: orderType.encode({ customer: 'x', amount: 1 }) },
      { typename: 'shop/Order', bytes: new TextEncoder().encode('{not json') },
      order({ customer: 'cat', amount: -1 }),
      order({ customer: 'dan', amount: 0 }),
      order({ customer: 'eve', amount: 3 }),
    ]),
  );
  t.same(
    served.deadLetters.map((letter) => letter.code),
    ['EDDY_UNDECODABLE_PAYLOAD', 'EDDY_UNDECODABLE_PAYLOAD', 'EDDY_ROUTER_FAILED', 'EDDY_ROUTER_NO_ADDRESS'],
  );
  t.match(served.deadLetters[0]!.reason, /typename "shop\/Other".*set valueType: shop\/Order/, 'a wrong valueType names the fix');
  t.equal(served.deadLetters[0]!.target, 'eddy.router.orders/orders-us:k2');
  t.equal(letters.length, 4, 'each reported to onDeadLetter');
  const result = decodeFromFunction(served.response).invocationResult!;
  t.same((result.outgoingMessages ?? []).map((m) => m.target!.id), ['eve', 'k2'], 'the routable record still routed');
});

void t.test('a router function of an ingress the job does not have is refused as a whole, naming the fix', async (t) => {
  const handler = new StatefunHandler(job);
  t.throws(() => handler.serve(recordRequest('eddy.router.payments/p', 'k', [order({ customer: 'a', amount: 1 })])), {
    code: 'EDDY_UNKNOWN_FUNCTION_TYPE',
    message: /no Kafka ingress "payments" \(it has orders\).*eddy statefun-module/,
  });
  const memoryJob = defineJob({
    name: 'mem',
    module: import.meta.url,
    functions: [audit],
    ingresses: [memoryIngress<string>('lines')],
    routers: [defineRouter<string>('lines', (line) => ({ to: audit.address(line), message: line }))],
  });
  t.throws(() => new StatefunHandler(memoryJob).serve(recordRequest('eddy.router.lines/t', 'k', [])), { code: 'EDDY_UNKNOWN_FUNCTION_TYPE', message: /it has none/ });
});

void t.test('a router sending to a function type the job does not have is a dead letter with that code', async (t) => {
  const stray = kafkaIngress<Order>('stray', { brokers: '127.0.0.1:9092', topics: 'stray', codec: orderType });
  const strayJob = defineJob({
    name: 'stray',
    module: import.meta.url,
    functions: [audit],
    ingresses: [stray],
    routers: [defineRouter(stray, () => ({ to: { type: 'shop/nowhere', id: 'x' }, message: 1 }))],
  });
  const served = await new StatefunHandler(strayJob).serve(recordRequest(routerFunctionType('stray', 'stray'), 'k', [order({ customer: 'a', amount: 1 })]));
  t.same(served.deadLetters.map((letter) => letter.code), ['EDDY_UNKNOWN_FUNCTION_TYPE']);
  t.same(decodeFromFunction(served.response).invocationResult!.outgoingMessages ?? [], []);
});

void t.test('sfAddress of a router type parses as StateFun does (namespace up to the last slash)', async (t) => {
  t.same(sfAddress(routerFunctionType('orders', 'orders-eu'), 'k'), { namespace: 'eddy.router.orders', type: 'orders-eu', id: 'k' });
});

void t.test('with a Kafka dead-letter egress, dead letters go out through StateFun\'s Kafka egress as eddy run writes them', async (t) => {
  const withTopic = defineJob({
    name: 'shop-dl',
    module: import.meta.url,
    functions: [customer, audit],
    ingresses: [orders],
    routers: [defineRouter(orders, (record: KafkaRecord<Order>) => ({ to: customer.address(record.value.customer), message: record.value.amount }))],
    egresses: [kafkaDeadLetterEgress({ brokers: '127.0.0.1:9092', topic: 'shop-dead-letters' })],
  });
  const bad = new TextEncoder().encode('{not json');
  const served = await new StatefunHandler(withTopic).serve(recordRequest(routerFunctionType('orders', 'orders-eu'), 'k9', [{ typename: 'shop/Order', bytes: bad }]));
  const egresses = decodeFromFunction(served.response).invocationResult!.outgoingEgresses ?? [];
  t.equal(egresses.length, 1, 'one dead letter, one egress record');
  t.same([egresses[0]!.egressNamespace, egresses[0]!.egressType], ['eddy', 'dead-letters']);
  t.equal(egresses[0]!.argument!.typename, KAFKA_PRODUCER_RECORD_TYPENAME);
  const record = decodeKafkaProducerRecord(valueBytes(egresses[0]!.argument));
  t.equal(record.topic, 'shop-dead-letters');
  t.equal(record.key, 'k9', 'the record republished with its key');
  t.same(Buffer.from(record.valueBytes!), Buffer.from(bad), 'and its value bytes as they were');

  const plain = await new StatefunHandler(job).serve(recordRequest(routerFunctionType('orders', 'orders-eu'), 'k9', [{ typename: 'shop/Order', bytes: bad }]));
  t.same(decodeFromFunction(plain.response).invocationResult!.outgoingEgresses ?? [], [], 'a job whose dead letters go to memory sends none (StateFun has no memory egress)');
});
