/**
 * Kafka connectors (kafkajs): `kafkaIngress` reads topics with positions in checkpoints;
 * `kafkaEgress` is a write-ahead sink that publishes each completed checkpoint's output in one
 * transaction; `kafkaDeadLetterEgress` puts the job's dead letters on a topic.
 */
export { type KafkaClientOptions } from './kafka-client.js';
export {
  kafkaIngress,
  type KafkaIngressInput,
  type KafkaIngressOptions,
  type KafkaPosition,
  type KafkaRawRecord,
  type KafkaReaderMetrics,
  type KafkaRecord,
  type KafkaSplitReader,
} from './kafka-ingress.js';
export { DeadLetterHeaders, kafkaDeadLetterEgress, kafkaEgress, type KafkaEgressOptions, type KafkaSink, type KafkaSinkMetrics } from './kafka-egress.js';
