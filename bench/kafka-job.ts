/**
 * The job the Kafka benchmark runs: the YCSB record function of bench/ycsb-job.ts between a Kafka
 * ingress (requests keyed by record key) and a Kafka egress (responses keyed by request id).
 * Workers load this module for the handlers; the topics they read come from the main thread's plan.
 */
import { defineJob, defineRouter, type Job, kafkaEgress, kafkaIngress, type KafkaRecord } from '../index.js';
import { record, type YcsbRequest } from './ycsb-job.js';

export interface KafkaYcsbTopics {
  brokers: string;
  requests: string;
  responses: string;
}

export function kafkaYcsbJob(topics: KafkaYcsbTopics): Job {
  return defineJob({
    name: 'ycsb-kafka',
    module: import.meta.url,
    functions: [record],
    ingresses: [kafkaIngress<YcsbRequest>('requests', { brokers: topics.brokers, topics: topics.requests, splits: 4 })],
    routers: [defineRouter<KafkaRecord<YcsbRequest>>('requests', ({ value: { target: _target, key, ...op } }) => ({ to: record.address(key), message: op }))],
    egresses: [kafkaEgress<{ requestId: number }>('responses', { brokers: topics.brokers, topic: topics.responses, key: (r) => String(r.requestId) })],
  });
}

// Workers of `eddy run` get the topics from the main thread's plan; `eddy serve` and `eddy
// statefun-module` (the statefun benchmark) read them from the environment.
export default kafkaYcsbJob({
  brokers: process.env.EDDY_KAFKA_BROKERS ?? '127.0.0.1:9092',
  requests: process.env.EDDY_BENCH_REQUESTS_TOPIC ?? 'planned-on-the-main-thread',
  responses: process.env.EDDY_BENCH_RESPONSES_TOPIC ?? 'published-on-the-main-thread',
});
