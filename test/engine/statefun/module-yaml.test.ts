// The module.yaml eddy statefun-module writes: read back as StateFun reads it (a stream of YAML
// documents), and the errors that name what a job lacks for StateFun.
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';
import { parseAllDocuments } from 'yaml';
import { statefunModuleYaml } from '../../../engine/statefun/module-yaml.js';
import { jsonType } from '../../../engine/statefun/types.js';
import { kafkaEgress, kafkaIngress } from '../../../connectors/kafka.js';
import { defineFunction, defineJob, defineRouter, memoryEgress, memoryIngress, tpcCoordinator } from '../../../index.js';

const repo = join(import.meta.dirname, '..', '..', '..');
const customer = defineFunction({ type: 'shop/customer', handler() {} });
const audit = defineFunction({ type: 'audit.v1/log', handler() {} });
const payment = tpcCoordinator<{ id: string }>('shop/payment', () => {});

function shopJob(ingressOptions: { topics?: string[]; brokers?: string } = { topics: ['orders-eu', 'orders-us'], brokers: 'k1:9092,k2:9092' }) {
  const orders = kafkaIngress<{ customer: string }>('orders', { ...ingressOptions, codec: jsonType('shop/Order'), startFrom: 'latest' } as never);
  return defineJob({
    name: 'shop',
    module: import.meta.url,
    functions: [customer, audit, payment],
    ingresses: [orders],
    routers: [defineRouter(orders, ({ value }) => ({ to: customer.address(value.customer), message: value }))],
    egresses: [kafkaEgress('receipts', { brokers: 'k1:9092', topic: 'receipts', transactionTimeoutMs: 30_000 }), memoryEgress('debug')],
  });
}

const documents = (yaml: string) => parseAllDocuments(yaml).map((document) => document.toJS() as { kind: string; spec: Record<string, unknown> });

void t.test('one endpoint per function namespace and per Kafka ingress, each Kafka ingress routed to its router functions, Kafka egresses exactly-once', async (t) => {
  const docs = documents(statefunModuleYaml(shopJob(), { endpoint: 'http://eddy:8000/statefun' }));
  const endpoints = docs.filter((d) => d.kind === 'io.statefun.endpoints.v2/http');
  t.same(endpoints.map((d) => d.spec.functions), ['audit.v1/*', 'shop/*', 'eddy.router.orders/*']);
  t.ok(endpoints.every((d) => d.spec.urlPathTemplate === 'http://eddy:8000/statefun'));
  t.same(endpoints[0]!.spec.transport, { type: 'io.statefun.transports.v1/async', call: '2min', connect: '10s' });
  const [ingress] = docs.filter((d) => d.kind === 'io.statefun.kafka.v1/ingress');
  t.same(ingress!.spec, {
    id: 'eddy.ingress/orders',
    address: 'k1:9092,k2:9092',
    consumerGroupId: 'eddy-orders',
    startupPosition: { type: 'latest' },
    properties: [{ 'isolation.level': 'read_committed' }],
    topics: [
      { topic: 'orders-eu', valueType: 'shop/Order', targets: ['eddy.router.orders/orders-eu'] },
      { topic: 'orders-us', valueType: 'shop/Order', targets: ['eddy.router.orders/orders-us'] },
    ],
  });
  const egresses = docs.filter((d) => d.kind === 'io.statefun.kafka.v1/egress');
  t.same(egresses.map((d) => d.spec), [{ id: 'eddy/receipts', address: 'k1:9092', deliverySemantic: { type: 'exactly-once', transactionTimeout: '30000ms' } }], 'a memory egress has no StateFun counterpart');
});

void t.test('options: brokers as the cluster sees them, topics left to submit time, the call deadline', async (t) => {
  const yaml = statefunModuleYaml(shopJob({}), { endpoint: 'https://eddy.internal/fn', brokers: ['kafka:9092'], topics: { orders: ['o'] }, callTimeout: '30s' });
  const docs = documents(yaml);
  t.equal(docs.find((d) => d.kind === 'io.statefun.kafka.v1/ingress')!.spec.address, 'kafka:9092');
  t.equal(docs.find((d) => d.kind === 'io.statefun.kafka.v1/egress')!.spec.address, 'kafka:9092', '--brokers replaces the egress brokers too');
  t.same((docs.find((d) => d.kind === 'io.statefun.kafka.v1/ingress')!.spec.topics as Array<{ topic: string }>).map((x) => x.topic), ['o']);
  t.equal((docs[0]!.spec.transport as { call: string }).call, '30s');
});

void t.test('what a job lacks for StateFun is refused with the option that fixes it', async (t) => {
  t.throws(() => statefunModuleYaml(shopJob(), { endpoint: 'eddy:8000' }), { code: 'EDDY_INVALID_OPTION', message: /--endpoint.*http:\/\/ or https:\/\//s });
  t.throws(() => statefunModuleYaml(shopJob(), { endpoint: 'not a url' }), { code: 'EDDY_INVALID_OPTION', message: /--endpoint.*eddy serve prints it/s });
  t.throws(() => statefunModuleYaml(shopJob({ brokers: 'k:1' }), { endpoint: 'http://e/' }), { code: 'EDDY_INVALID_OPTION', message: /--topics orders=.*--topics orders=requests/s });
  t.throws(() => statefunModuleYaml(shopJob({ topics: ['t'] }), { endpoint: 'http://e/' }), { code: 'EDDY_INVALID_OPTION', message: /--brokers.*kafkaIngress\(orders\)/s });
  const lines = memoryIngress<string>('lines');
  const memoryJob = defineJob({ name: 'm', module: import.meta.url, functions: [customer], ingresses: [lines], routers: [defineRouter(lines, (x) => ({ to: customer.address(x), message: x }))] });
  t.throws(() => statefunModuleYaml(memoryJob, { endpoint: 'http://e/' }), { code: 'EDDY_INVALID_OPTION', message: /ingress lines.*memory ingress.*Kafka ingresses/s });
});

void t.test('eddy statefun-module writes the file for the Kafka bank example, and refuses a bad --topics', async (t) => {
  const run = promisify(execFile);
  const dir = t.testdir();
  const out = join(dir, 'module.yaml');
  const env = { ...process.env, EDDY_KAFKA_BROKERS: '10.0.0.1:9092' };
  const { stderr } = await run(process.execPath, [join(repo, 'bin', 'eddy.js'), 'statefun-module', 'examples/bank/kafka-job.ts', '--endpoint', 'http://eddy:8000/statefun', '-o', out], { cwd: repo, env });
  t.match(stderr, /wrote/);
  const docs = documents(readFileSync(out, 'utf8'));
  t.same(docs.map((d) => d.kind), ['io.statefun.endpoints.v2/http', 'io.statefun.endpoints.v2/http', 'io.statefun.kafka.v1/ingress', 'io.statefun.kafka.v1/egress', 'io.statefun.kafka.v1/egress']);
  t.equal(docs[2]!.spec.address, '10.0.0.1:9092');
  const bad = await run(process.execPath, [join(repo, 'bin', 'eddy.js'), 'statefun-module', 'examples/bank/kafka-job.ts', '--endpoint', 'http://e/', '--topics', 'requests'], { cwd: repo, env }).catch((error: { code: number; stderr: string }) => error);
  t.not((bad as { code: number }).code, 0);
  t.match((bad as { stderr: string }).stderr, /--topics takes <ingress>=<topic>/);
});
