/**
 * The bank job over Kafka: requests (JSON `BankRequest`s, keyed by account so each account's
 * requests stay in order) from a topic, one response per request to another topic (keyed by
 * account), and records that are not JSON to a dead-letter topic with the reason in headers.
 *
 *   scripts/kafka start                        # prints 127.0.0.1:PORT
 *   EDDY_KAFKA_BROKERS=127.0.0.1:PORT npx eddy run examples/bank/kafka-job.ts --checkpoint-dir /tmp/bank-chk
 *
 * Topics (create them first): BANK_REQUESTS_TOPIC (default bank-requests), BANK_RESPONSES_TOPIC
 * (bank-responses), BANK_DEAD_LETTERS_TOPIC (bank-dead-letters).
 */
import { defineJob, defineRouter, type Job, kafkaDeadLetterEgress, kafkaEgress, kafkaIngress } from '../../index.js';
import { account, type Response } from './account.js';
import { routeRequest } from './job.js';
import { transfer, transferSaga } from './transfer.js';
import type { BankRequest } from './workload.js';

export interface KafkaBankConfig {
  brokers: string | readonly string[];
  requests: string;
  responses: string;
  deadLetters: string;
  /** Splits of the requests ingress. Default: 8. */
  splits?: number;
  /** The responses egress's transactionTimeoutMs (tests shorten it). Default: the egress's. */
  transactionTimeoutMs?: number;
}

export function kafkaBankConfigFromEnv(env: NodeJS.ProcessEnv = process.env): KafkaBankConfig {
  return {
    brokers: env.EDDY_KAFKA_BROKERS ?? '127.0.0.1:9092',
    requests: env.BANK_REQUESTS_TOPIC ?? 'bank-requests',
    responses: env.BANK_RESPONSES_TOPIC ?? 'bank-responses',
    deadLetters: env.BANK_DEAD_LETTERS_TOPIC ?? 'bank-dead-letters',
  };
}

export function kafkaBankJob(config: KafkaBankConfig): Job {
  const requests = kafkaIngress<BankRequest>('requests', { brokers: config.brokers, topics: config.requests, splits: config.splits ?? 8 });
  return defineJob({
    name: 'bank-kafka',
    module: import.meta.url,
    functions: [account, transfer, transferSaga],
    ingresses: [requests],
    routers: [
      // Transfers went to the account function, which ignored them, until routes were typed.
      defineRouter(requests, ({ value }) => routeRequest(value)),
    ],
    egresses: [
      kafkaEgress<Response>('responses', {
        brokers: config.brokers,
        topic: config.responses,
        key: (response) => response.account,
        ...(config.transactionTimeoutMs === undefined ? {} : { transactionTimeoutMs: config.transactionTimeoutMs }),
      }),
      kafkaDeadLetterEgress({ brokers: config.brokers, topic: config.deadLetters }),
    ],
  });
}

export default kafkaBankJob(kafkaBankConfigFromEnv());
