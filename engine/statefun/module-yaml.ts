import { stringify } from 'yaml';
import { invalidOption } from '../errors.js';
import type { Job } from '../job.js';
import { kafkaEgressOf, kafkaIngressOf } from './kafka-descriptions.js';
import { ROUTER_NAMESPACE_PREFIX, routerFunctionType } from './router-functions.js';
import { egressTypename, typenameOf } from './types.js';

export interface StatefunModuleOptions {
  /** The URL StateFun calls, where `eddy serve` listens (e.g. `http://eddy-host:8000/statefun`). Required. */
  endpoint: string;
  /** Brokers for every Kafka ingress and egress, replacing the job's own (the cluster's address of the same brokers). */
  brokers?: readonly string[];
  /** Topics of Kafka ingresses that leave them to submit-time inputs, by ingress name. */
  topics?: Readonly<Record<string, readonly string[]>>;
  /** StateFun's total deadline of one call, retries included, before it fails the job (a Flink duration). Default `2min`. */
  callTimeout?: string;
}

/**
 * The module.yaml that runs `job` on an Apache Flink StateFun 3.x cluster behind `eddy serve`: one
 * HTTP endpoint per function namespace (and per Kafka ingress, for its router functions), each
 * Kafka ingress with its topics routed to those router functions, and each Kafka egress with
 * exactly-once delivery. Throws (naming the option) when something it needs is not in the job.
 */
export function statefunModuleYaml(job: Job, options: StatefunModuleOptions): string {
  let url: URL;
  try {
    url = new URL(options.endpoint);
  } catch {
    throw invalidOption('--endpoint', `is ${JSON.stringify(options.endpoint)}`, 'give the URL StateFun calls, e.g. http://eddy-host:8000/statefun (eddy serve prints it)');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw invalidOption('--endpoint', `is ${JSON.stringify(options.endpoint)}`, 'must be an http:// or https:// URL');
  const transport = { type: 'io.statefun.transports.v1/async', call: options.callTimeout ?? '2min', connect: '10s' };
  const endpoint = (functions: string): object => ({ kind: 'io.statefun.endpoints.v2/http', spec: { functions, urlPathTemplate: url.href, transport } });

  const namespaces = [...new Set([...job.functions.keys()].map((type) => type.slice(0, type.lastIndexOf('/'))))].sort();
  const documents: object[] = namespaces.map((namespace) => endpoint(`${namespace}/*`));

  for (const ingress of job.ingresses) {
    const kafka = kafkaIngressOf(ingress);
    if (kafka === undefined) {
      throw invalidOption(`ingress ${ingress.name}`, `is a ${ingress.kind} ingress`, 'StateFun reads Kafka only: give the job Kafka ingresses to run it on StateFun');
    }
    const topics = options.topics?.[ingress.name] ?? kafka.topics;
    if (topics === undefined || topics.length === 0) {
      throw invalidOption(`--topics ${ingress.name}=...`, 'is missing', `kafkaIngress(${ingress.name}) leaves its topics to submit-time inputs: name them, e.g. --topics ${ingress.name}=requests`);
    }
    documents.push(endpoint(`${ROUTER_NAMESPACE_PREFIX}${ingress.name}/*`));
    documents.push({
      kind: 'io.statefun.kafka.v1/ingress',
      spec: {
        id: `eddy.ingress/${ingress.name}`,
        address: brokersOf(options.brokers ?? kafka.brokers, `kafkaIngress(${ingress.name})`),
        consumerGroupId: kafka.groupIdPrefix,
        startupPosition: { type: kafka.startFrom },
        // Records written by exactly-once producers: only committed ones, as eddy run reads them.
        properties: [{ 'isolation.level': 'read_committed' }],
        topics: topics.map((topic) => ({ topic, valueType: typenameOf(kafka.codec), targets: [routerFunctionType(ingress.name, topic)] })),
      },
    });
  }
  for (const egress of job.egresses) {
    const kafka = kafkaEgressOf(egress);
    if (kafka === undefined) continue;
    documents.push({
      kind: 'io.statefun.kafka.v1/egress',
      spec: {
        id: egressTypename(egress.name),
        address: brokersOf(options.brokers ?? kafka.brokers, `kafkaEgress(${egress.name})`),
        deliverySemantic: { type: 'exactly-once', transactionTimeout: `${kafka.transactionTimeoutMs}ms` },
      },
    });
  }
  const header = `# module.yaml for job ${job.name}, written by eddy statefun-module: serve the job with\n#   eddy serve <job-module> --port ${url.port === '' ? '<port>' : url.port}\n# and put this file in the StateFun deployment (see docs/statefun.md).\n`;
  return header + documents.map((document) => stringify(document, { lineWidth: 0 })).join('---\n');
}

function brokersOf(brokers: readonly string[] | undefined, where: string): string {
  if (brokers === undefined || brokers.length === 0) {
    throw invalidOption('--brokers', 'is missing', `${where} leaves its brokers to submit-time inputs: give the brokers the StateFun cluster reaches, e.g. --brokers kafka:9092`);
  }
  return brokers.join(',');
}
