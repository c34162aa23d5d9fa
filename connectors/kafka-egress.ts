/**
 * The Kafka egress: a write-ahead sink (DESIGN.md section 8). With checkpoints, the engine hands it
 * each completed epoch's records, and it publishes them in one Kafka transaction that also commits
 * the epoch number as the offset of a marker consumer group; that marker says, across crashes,
 * which epochs are out. kafkajs cannot resume another producer's open transaction, so a transaction
 * is only ever opened for records that a complete checkpoint already holds.
 */
import * as hdr from 'hdr-histogram-js';
import type { Admin, Kafka, Message, Producer } from 'kafkajs';
import { Partitioners } from 'kafkajs';
import { type Codec, jsonCodec } from '../engine/codec.js';
import { describeError, EddyError, invalidOption } from '../engine/errors.js';
import { type ConnectorMetric, DEAD_LETTERS, type Egress, type Sink, type SinkContext } from '../engine/job.js';
import type { KafkaRawRecord } from './kafka-ingress.js';
import {
  checkTopic,
  kafkaClient,
  type KafkaClientOptions,
  positiveInteger,
  resolveClientOptions,
  type ResolvedClientOptions,
  retryTransient,
  withDeadline,
  withinConnectTimeout,
} from './kafka-client.js';
import type { KafkaEgressDescription } from '../engine/statefun/kafka-descriptions.js';

export interface KafkaEgressOptions<R> extends KafkaClientOptions {
  /** The topic records are published to (it must exist). Required. */
  topic: string;
  /** Encodes each record as the Kafka value (and carries it from the workers). Default: JSON. */
  codec?: Codec<R>;
  /** The Kafka key of a record (UTF-8); records with the same key land in the same partition. Default: none. */
  key?: (record: R) => string | null | undefined;
  /** Headers of a record. Default: none. */
  headers?: (record: R) => Record<string, string> | undefined;
  /**
   * The producer's transactional id: stable per job and egress, so that a restarted job fences the
   * producer of the one before. Default: `eddy-<job>-<egress>`.
   */
  transactionalId?: string;
  /** How long the broker lets a transaction stay open (at most its transaction.max.timeout.ms). Default: 60000 ms. */
  transactionTimeoutMs?: number;
}

/** What a Kafka sink reports (see `KafkaSink.metrics`). */
export interface KafkaSinkMetrics {
  topic: string;
  mode: 'exactly-once' | 'at-least-once';
  recordsOut: number;
  /** Transactions committed (one per published epoch). */
  transactions: number;
  /** The highest epoch known published (exactly-once mode); 0 before the first. */
  publishedEpoch: number;
  /** From opening a transaction to the end of its commit. */
  commitLatencyMs: { count: number; p50: number; p99: number; max: number };
}

/** A Sink with the Kafka egress's metrics. */
export interface KafkaSink<R> extends Sink<R> {
  metrics(): KafkaSinkMetrics;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** The broker refused the producer's epoch: another producer took over, or the broker aborted a transaction that outlived its timeout. */
function isOldEpoch(error: unknown): boolean {
  const cause = error instanceof EddyError ? error.cause : error;
  return /fenced|PRODUCER_FENCED|INVALID_PRODUCER_EPOCH/i.test(`${describeError(cause)} ${(cause as { type?: string } | undefined)?.type ?? ''}`);
}

/**
 * The broker aborted the sink's transaction because it stayed open longer than transactionTimeoutMs
 * (e.g. while the broker stalled) and bumped the producer's epoch: a new producer can go on.
 */
class TransactionTimedOut extends Error {
  constructor(ms: number, cause: unknown) {
    super(`the transaction stayed open ${Math.round(ms)} ms, past transactionTimeoutMs, and the broker aborted it (${describeError(cause)})`, { cause });
    this.name = 'TransactionTimedOut';
  }
}

/**
 * Another producer with the same transactional id took over: retrying with this one cannot help.
 * kafkajs 2.2 sees a fence and a timed-out transaction alike (INVALID_PRODUCER_EPOCH), so one that
 * outlived its timeout is taken as timed out (TransactionTimedOut), anything else as a fence.
 */
function isFenced(error: unknown): boolean {
  return !(error instanceof TransactionTimedOut) && isOldEpoch(error);
}

/**
 * kafkajs puts all of one send's records for a partition into one record batch, and the broker
 * refuses a batch above its message.max.bytes (1 MB by default): an epoch goes out in sends of at
 * most this many bytes.
 */
const SEND_BYTES = 256 * 1024;

function* chunks(messages: Message[]): Generator<Message[]> {
  let start = 0;
  let bytes = 0;
  for (let i = 0; i < messages.length; i++) {
    const m = messages[i]!;
    const size = 64 + (m.value?.length ?? 0) + (m.key?.length ?? 0) + Object.entries(m.headers ?? {}).reduce((n, [k, v]) => n + k.length + String(v).length, 0);
    if (i > start && bytes + size > SEND_BYTES) {
      yield messages.slice(start, i);
      start = i;
      bytes = 0;
    }
    bytes += size;
  }
  if (start < messages.length) yield messages.slice(start);
}

export const kafkaEgressDefaults = { transactionTimeoutMs: 60_000 } as const;

/**
 * Publishes an egress's records to a Kafka topic. With checkpoints (exactly-once), output becomes
 * visible to `read_committed` consumers once the checkpoint that ends its epoch completes, exactly
 * once across crashes. Without checkpoints records are sent at once, at least once.
 */
export function kafkaEgress<R = unknown>(name: string, options: KafkaEgressOptions<R>): Egress<R> {
  const where = `kafkaEgress(${name})`;
  if (typeof options !== 'object' || options === null) throw invalidOption(where, 'is missing', 'pass { brokers, topic }');
  for (const fn of ['key', 'headers'] as const) {
    if (options[fn] !== undefined && typeof options[fn] !== 'function') throw invalidOption(`${where}.${fn}`, 'is not a function', `pass (record) => ${fn === 'key' ? 'string' : '{ name: value }'}`);
  }
  const codec = options.codec ?? jsonCodec<R>();
  const toMessage = (record: R): Message => {
    const key = options.key?.(record);
    const headers = options.headers?.(record);
    return { key: key ?? null, value: Buffer.from(codec.encode(record)), ...(headers === undefined ? {} : { headers }) };
  };
  return kafkaSinkEgress(name, where, options, codec, toMessage);
}

/** What the engine puts on the dead-letter egress (operators' DeadLetter, as far as this sink reads it). */
export interface DeadLetterRecord {
  code: string;
  reason: string;
  ingress?: string;
  record?: unknown;
}

/** Headers of a dead-letter record: why it is there, and where it came from when it was a Kafka record. */
export const DeadLetterHeaders = {
  reason: 'eddy-dead-letter-reason',
  code: 'eddy-dead-letter-code',
  ingress: 'eddy-dead-letter-ingress',
  topic: 'eddy-source-topic',
  partition: 'eddy-source-partition',
  offset: 'eddy-source-offset',
} as const;

function isRawKafkaRecord(record: unknown): record is KafkaRawRecord {
  const r = record as Partial<KafkaRawRecord> | undefined;
  return typeof r === 'object' && r !== null && typeof r.topic === 'string' && typeof r.partition === 'number' && typeof r.offset === 'number' && 'valueBase64' in r;
}

/**
 * The job's dead-letter egress as a Kafka topic. A record a Kafka ingress could not decode is
 * published as it was (key, value bytes, headers) plus the reason, the error code and its source
 * topic, partition and offset in headers; any other dead letter is published as JSON with the same
 * reason headers. Add it to a job's egresses: it replaces the default memory dead-letter egress.
 */
export function kafkaDeadLetterEgress(options: Omit<KafkaEgressOptions<DeadLetterRecord>, 'codec' | 'key' | 'headers'>): Egress<DeadLetterRecord> {
  const where = 'kafkaDeadLetterEgress';
  if (typeof options !== 'object' || options === null) throw invalidOption(where, 'is missing', 'pass { brokers, topic }');
  const codec = jsonCodec<DeadLetterRecord>();
  const toMessage = (letter: DeadLetterRecord): Message => {
    const headers: Record<string, string> = { [DeadLetterHeaders.reason]: letter.reason, [DeadLetterHeaders.code]: letter.code };
    if (letter.ingress !== undefined) headers[DeadLetterHeaders.ingress] = letter.ingress;
    const raw = letter.record;
    if (!isRawKafkaRecord(raw)) return { key: null, value: Buffer.from(codec.encode(letter)), headers };
    return {
      key: raw.key,
      value: raw.valueBase64 === null ? null : Buffer.from(raw.valueBase64, 'base64'),
      headers: {
        ...raw.headers,
        ...headers,
        [DeadLetterHeaders.topic]: raw.topic,
        [DeadLetterHeaders.partition]: String(raw.partition),
        [DeadLetterHeaders.offset]: String(raw.offset),
      },
    };
  };
  return kafkaSinkEgress(DEAD_LETTERS, where, options, codec, toMessage);
}

function kafkaSinkEgress<R>(name: string, where: string, options: KafkaClientOptions & { topic: string; transactionalId?: string; transactionTimeoutMs?: number }, codec: Codec<R>, toMessage: (record: R) => Message): Egress<R> {
  const client = resolveClientOptions(where, options);
  const topic = checkTopic(`${where}.topic`, options.topic);
  const transactionTimeoutMs = positiveInteger(`${where}.transactionTimeoutMs`, options.transactionTimeoutMs, kafkaEgressDefaults.transactionTimeoutMs, 1000);
  if (options.transactionalId !== undefined && (typeof options.transactionalId !== 'string' || options.transactionalId.length === 0)) {
    throw invalidOption(`${where}.transactionalId`, `is ${JSON.stringify(options.transactionalId)}`, 'must be a non-empty string');
  }
  // `kafka` lets eddy serve hand StateFun's Kafka egress the same topic, key and value (engine/statefun/kafka-descriptions.ts).
  const kafka: KafkaEgressDescription = { topic, brokers: client.brokers, transactionTimeoutMs, toMessage: toMessage };
  const egress: Egress<R> & { readonly kafka: KafkaEgressDescription } = {
    name,
    kind: 'kafka',
    codec,
    kafka,
    async openSink(context: SinkContext): Promise<KafkaSink<R>> {
      const sink = new KafkaSinkImpl<R>(context, client, kafkaClient(client, options, `egress-${name}`, 'transactions'), topic, toMessage, {
        transactionalId: options.transactionalId ?? `eddy-${context.job}-${context.egress}`,
        transactionTimeoutMs,
      });
      try {
        await sink.open();
      } catch (error) {
        await sink.close();
        if (error instanceof EddyError) throw error;
        throw new EddyError('EDDY_SINK_FAILED', `egress ${context.egress} (Kafka topic ${topic}): opening failed: ${describeError(error)}`, { cause: error });
      }
      return sink;
    },
  };
  return egress;
}

class KafkaSinkImpl<R> implements KafkaSink<R> {
  private admin: Admin | undefined;
  private producer: Producer | undefined;
  /** The highest epoch known to be published. */
  private published = 0;
  private recordsOut = 0;
  private transactions = 0;
  private readonly latency = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 3_600_000_000, numberOfSignificantValueDigits: 3 });
  /** Publications run one at a time, in call order. */
  private queue: Promise<unknown> = Promise.resolve();
  private readonly what: string;
  /** The marker group: its committed offset on partition 0 of the topic is the last published epoch of the scope. */
  readonly markerGroup: string;

  constructor(
    private readonly context: SinkContext,
    private readonly client: ResolvedClientOptions,
    private readonly kafka: Kafka,
    private readonly topic: string,
    private readonly toMessage: (record: R) => Message,
    private readonly producerOptions: { transactionalId: string; transactionTimeoutMs: number },
  ) {
    this.what = `egress ${context.egress}`;
    this.markerGroup = `eddy-epochs-${context.job}-${context.egress}${context.epochScope === '' ? '' : `-${context.epochScope}`}`;
  }

  async open(): Promise<void> {
    const { context } = this;
    const admin = this.kafka.admin();
    this.admin = admin;
    const topics = await withinConnectTimeout(this.client, 'EDDY_SINK_FAILED', this.what, admin.connect().then(() => admin.listTopics()), () => admin.disconnect());
    if (!topics.includes(this.topic)) {
      throw new EddyError(
        'EDDY_SINK_FAILED',
        `${this.what}: topic ${this.topic} does not exist on ${this.client.brokers.join(',')}: create it (e.g. kafka-topics.sh --create, or admin.createTopics) or fix the topic option`,
      );
    }
    await this.newProducer();
    if (context.exactlyOnce) {
      this.published = await this.readMarker();
    } else {
      context.log(
        `${this.what} (Kafka topic ${this.topic}): the job takes no checkpoints, so its output is at-least-once: records are sent at once and ` +
          'may be sent again after a failure. Submit with checkpointDir for exactly-once output (visible to read_committed consumers per checkpoint)',
      );
    }
  }

  /**
   * Connects a new producer. With exactly-once it also runs InitProducerId now (kafkajs defers it to
   * the first transaction): that fences every earlier producer with the transactional id (of an
   * earlier attempt, or this sink's own after a failure) and ends its open transaction (aborted, or
   * committed if its commit had begun), so the marker read next is final.
   */
  private async newProducer(): Promise<void> {
    const producer = this.kafka.producer(
      this.context.exactlyOnce
        ? { createPartitioner: Partitioners.DefaultPartitioner, transactionalId: this.producerOptions.transactionalId, idempotent: true, maxInFlightRequests: 1, transactionTimeout: this.producerOptions.transactionTimeoutMs }
        : { createPartitioner: Partitioners.DefaultPartitioner, idempotent: true },
    );
    this.producer = producer;
    await withinConnectTimeout(this.client, 'EDDY_SINK_FAILED', this.what, producer.connect(), () => producer.disconnect());
    if (this.context.exactlyOnce) {
      const fence = await producer.transaction();
      await fence.abort();
    }
  }

  /**
   * Runs `call`, retrying transient failures until the sink's retry deadline (the job's
   * connectorRetryDeadlineMs); `reset` runs before each retry. A fence fails at once. The failure
   * that ends it becomes EDDY_SINK_FAILED.
   */
  private async retrying<T>(what: string, attemptMs: number, call: () => Promise<T>, reset?: () => Promise<void>): Promise<T> {
    try {
      return await retryTransient(
        { what: `${this.what}: ${what}`, deadline: Date.now() + this.context.retryDeadlineMs, attemptMs, permanent: isFenced, log: (line) => this.context.log(line), ...(reset === undefined ? {} : { reset }) },
        call,
      );
    } catch (failure) {
      if (failure instanceof EddyError) throw failure;
      const fenced = isFenced(failure);
      throw new EddyError(
        'EDDY_SINK_FAILED',
        fenced
          ? `${this.what}: another producer with transactional id ${this.producerOptions.transactionalId} took over (is the job running twice?): ${describeError(failure)}`
          : `${this.what}: ${what} failed, retried for connectorRetryDeadlineMs (${this.context.retryDeadlineMs} ms): ${describeError(failure)}`,
        { cause: failure, retryable: !fenced },
      );
    }
  }

  private readMarker(): Promise<number> {
    return this.retrying('reading the epoch marker', this.context.retryDeadlineMs, () => this.fetchMarker());
  }

  private async fetchMarker(): Promise<number> {
    const offsets = await this.admin!.fetchOffsets({ groupId: this.markerGroup, topics: [this.topic] });
    const offset = Number(offsets[0]?.partitions.find((p) => p.partition === 0)?.offset ?? -1);
    return offset > 0 ? offset : 0;
  }

  async publishedEpoch(): Promise<number> {
    await this.queue;
    this.published = Math.max(this.published, await this.readMarker());
    return this.published;
  }

  publishEpoch(epoch: number, records: readonly R[]): Promise<void> {
    return this.enqueue(async () => {
      // Already out (a re-publication after a restore that raced with the marker): publishing again would duplicate.
      if (epoch <= this.published) return;
      await this.retrying(
        `publishing epoch ${epoch} (${records.length} records) to ${this.topic}`,
        this.producerOptions.transactionTimeoutMs,
        async () => {
          // After a failed attempt: the new producer ended the old transaction, so the marker says whether it is out.
          if (epoch <= this.published) return;
          await this.transaction(records, epoch);
        },
        async () => {
          // The failed producer may be in any state (kafkajs's sends inside the transaction half
          // done, its abort unanswered): a new one, whose InitProducerId fences it, starts clean.
          const old = this.producer;
          void old?.disconnect().catch(() => {});
          await this.newProducer();
          this.published = Math.max(this.published, await this.fetchMarker());
        },
      );
      this.published = epoch;
    });
  }

  write(records: readonly R[]): Promise<void> {
    return this.enqueue(async () => {
      if (this.context.exactlyOnce) {
        // The engine publishes completed epochs with write() until it drives publishEpoch: one transaction each, no marker.
        try {
          await this.transaction(records, undefined);
        } catch (error) {
          throw new EddyError('EDDY_SINK_FAILED', `${this.what}: publishing ${records.length} records to ${this.topic} failed: ${describeError(error)}`, { cause: error, retryable: !isFenced(error) });
        }
        return;
      }
      for (const chunk of chunks(records.map(this.toMessage))) await this.producer!.send({ topic: this.topic, acks: -1, messages: chunk });
      this.recordsOut += records.length;
    });
  }

  private enqueue(work: () => Promise<void>): Promise<void> {
    const run = this.queue.then(work);
    this.queue = run.catch(() => {});
    return run;
  }

  private async transaction(records: readonly R[], epoch: number | undefined): Promise<void> {
    const started = performance.now();
    const messages = records.map(this.toMessage);
    const txn = await this.producer!.transaction();
    try {
      for (const chunk of chunks(messages)) await txn.send({ topic: this.topic, messages: chunk });
      if (epoch !== undefined) {
        const marker = { consumerGroupId: this.markerGroup, topics: [{ topic: this.topic, partitions: [{ partition: 0, offset: String(epoch) }] }] };
        // kafkajs retries CONCURRENT_TRANSACTIONS (the previous commit's markers not yet written) when
        // it adds partitions, but not when it adds offsets, which comes first in an empty epoch.
        for (let attempt = 0; ; attempt++) {
          try {
            await txn.sendOffsets(marker);
            break;
          } catch (error) {
            if ((error as { type?: string }).type !== 'CONCURRENT_TRANSACTIONS' || attempt >= 40) throw error;
            await sleep(Math.min(100, 2 ** attempt));
          }
        }
      }
      await txn.commit();
    } catch (error) {
      // Best effort, and not awaited for long: the broker may be the thing that failed. A new producer fences this transaction anyway.
      await withDeadline(txn.abort(), 1000, 'abort').catch(() => {});
      const openMs = performance.now() - started;
      if (isOldEpoch(error) && openMs >= this.producerOptions.transactionTimeoutMs) throw new TransactionTimedOut(openMs, error);
      throw error;
    }
    this.latency.recordValue(Math.max(1, Math.round((performance.now() - started) * 1000)));
    this.transactions++;
    this.recordsOut += records.length;
  }

  metrics(): KafkaSinkMetrics {
    const q = (p: number): number => (this.latency.totalCount === 0 ? 0 : this.latency.getValueAtPercentile(p) / 1000);
    return {
      topic: this.topic,
      mode: this.context.exactlyOnce ? 'exactly-once' : 'at-least-once',
      recordsOut: this.recordsOut,
      transactions: this.transactions,
      publishedEpoch: this.published,
      commitLatencyMs: { count: this.latency.totalCount, p50: q(50), p99: q(99), max: this.latency.maxValue / 1000 },
    };
  }

  connectorMetrics(): ConnectorMetric[] {
    const m = this.metrics();
    const labels = { topic: m.topic };
    return [
      { name: 'eddy_kafka_records_out_total', help: 'Eddy Kafka egress: records published', type: 'counter', labels, value: m.recordsOut },
      { name: 'eddy_kafka_transactions_total', help: 'Eddy Kafka egress: transactions committed', type: 'counter', labels, value: m.transactions },
      { name: 'eddy_kafka_published_epoch', help: 'Eddy Kafka egress: the highest epoch published', type: 'gauge', labels, value: m.publishedEpoch },
      ...(['p50', 'p99', 'max'] as const).map((quantile) => ({
        name: 'eddy_kafka_commit_latency_seconds',
        help: 'Eddy Kafka egress: transaction latency, open to commit',
        type: 'gauge' as const,
        labels: { ...labels, quantile: quantile === 'p50' ? '0.5' : quantile === 'p99' ? '0.99' : '1' },
        value: m.commitLatencyMs[quantile] / 1000,
      })),
    ];
  }

  async close(): Promise<void> {
    await this.queue;
    await Promise.allSettled([this.producer?.disconnect(), this.admin?.disconnect()]);
  }
}
