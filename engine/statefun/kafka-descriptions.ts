import type { Codec } from '../codec.js';
import type { Egress, Ingress } from '../job.js';

/**
 * What a Kafka ingress tells `eddy serve` and `eddy statefun-module`, which hand its topics to
 * StateFun's Kafka ingress and run its routers as functions. Topics and brokers are absent when the
 * job leaves them to submit-time inputs.
 */
export interface KafkaIngressDescription {
  readonly topics: readonly string[] | undefined;
  readonly brokers: readonly string[] | undefined;
  readonly codec: Codec<unknown>;
  readonly startFrom: 'earliest' | 'latest';
  readonly groupIdPrefix: string;
}

/** What a Kafka egress tells `eddy serve` and `eddy statefun-module`: where it writes, and how it makes a record's Kafka message. */
export interface KafkaEgressDescription {
  readonly topic: string;
  readonly brokers: readonly string[];
  readonly transactionTimeoutMs: number;
  toMessage(record: unknown): { key?: string | Buffer | null; value: Buffer | string | null };
}

/** The Kafka side of an ingress, if it is a Kafka ingress. */
export function kafkaIngressOf(ingress: Ingress): KafkaIngressDescription | undefined {
  const kafka = (ingress as Ingress & { kafka?: KafkaIngressDescription }).kafka;
  return ingress.kind === 'kafka' && kafka !== undefined ? kafka : undefined;
}

/** The Kafka side of an egress, if it is a Kafka egress. */
export function kafkaEgressOf(egress: Egress): KafkaEgressDescription | undefined {
  const kafka = (egress as Egress & { kafka?: KafkaEgressDescription }).kafka;
  return egress.kind === 'kafka' && kafka !== undefined && typeof kafka.topic === 'string' ? kafka : undefined;
}
