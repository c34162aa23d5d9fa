/**
 * The Kafka ingress: a fixed number of splits, split i reading the partitions p of every topic with
 * p mod splits == i, so the partitions spread over the ingress-routers of all workers and a split's
 * meaning does not depend on the worker count (checkpoint positions are restored per split index).
 * Positions are next offsets per topic-partition and live in checkpoints; consumer-group offsets
 * play no part in where reading starts.
 */
import { randomUUID } from 'node:crypto';
import { type Admin, AssignerProtocol, type Batch, type Consumer, type Kafka, type KafkaMessage, type PartitionAssigner } from 'kafkajs';
import { type Codec, jsonCodec } from '../engine/codec.js';
import { describeError, EddyError, invalidOption } from '../engine/errors.js';
import type { ConnectorMetric, Ingress, ReadResult, SourceContext, SplitReader } from '../engine/job.js';
import { defaultOptions } from '../engine/options.js';
import {
  checkTopic,
  headersAsStrings,
  kafkaClient,
  type KafkaClientOptions,
  positiveInteger,
  resolveBrokers,
  resolveClientOptions,
  type ResolvedClientOptions,
  retryTransient,
  withinConnectTimeout,
} from './kafka-client.js';
import type { KafkaIngressDescription } from '../engine/statefun/kafka-descriptions.js';

/** One record of a Kafka ingress, as its router sees it. */
export interface KafkaRecord<V = unknown> {
  topic: string;
  partition: number;
  offset: number;
  /** The key as UTF-8, or null when the record has none. */
  key: string | null;
  /** The value, decoded with the ingress's codec. */
  value: V;
  /** The record's Kafka timestamp (ms since the epoch). */
  timestamp: number;
  headers: Record<string, string>;
}

/** What a rejected (undecodable) record carries to the dead-letter egress: enough to publish it again as it was. */
export interface KafkaRawRecord {
  topic: string;
  partition: number;
  offset: number;
  timestamp: number;
  key: string | null;
  headers: Record<string, string>;
  /** The value bytes, base64; null for a record without a value. */
  valueBase64: string | null;
}

export interface KafkaIngressOptions<V> extends KafkaClientOptions {
  /** The topics to read (one or several). Required, here or in `inputs.<name>.topics` of submit. */
  topics?: string | readonly string[];
  /**
   * Decodes each record's value. A record it cannot decode (or one without a value) goes to the
   * dead-letter egress with the reason; reading goes on. Default: JSON.
   */
  codec?: Codec<V>;
  /**
   * Splits, each read by one ingress-router: split i reads partitions p with p mod splits == i. Must
   * stay the same for as long as checkpoints are restored. Default: 8.
   */
  splits?: number;
  /** Where a partition without a checkpointed position starts when the job starts. Default: `earliest`. */
  startFrom?: 'earliest' | 'latest';
  /**
   * End each split at the offsets that were the end of its partitions when it opened (a bounded
   * input, for tests and benchmarks); partitions created later are not read. Default: false (the
   * topics are read for as long as the job runs).
   */
  stopAtEnd?: boolean;
  /** How often partitions added to the topics are looked for. Default: 5000 ms. */
  partitionDiscoveryIntervalMs?: number;
  /** Records a split buffers before it pauses fetching (it resumes below half). Default: 2000. */
  bufferRecords?: number;
  /** Longest a fetch waits at the broker for new records. Default: 100 ms. */
  maxWaitMs?: number;
  /**
   * Prefix of the consumer groups (`<prefix>-<split>-<random>`): kafkajs reads only as a group member,
   * so each open split joins a fresh group of its own (a fresh one, so a restarted split never waits
   * for a dead member of an earlier attempt to time out). Default: `eddy-<ingress name>`.
   */
  groupIdPrefix?: string;
}

/** What `inputs.<name>` of submit may override. */
export interface KafkaIngressInput {
  brokers?: string | readonly string[];
  topics?: string | readonly string[];
  startFrom?: 'earliest' | 'latest';
  stopAtEnd?: boolean;
}

export const kafkaIngressDefaults = {
  splits: 8,
  startFrom: 'earliest',
  stopAtEnd: false,
  partitionDiscoveryIntervalMs: 5000,
  bufferRecords: 2000,
  maxWaitMs: 100,
} as const;

/** Plain data that travels to the worker reading the split (and is compared to resume from a state directory). */
interface KafkaSplit extends ResolvedClientOptions {
  topics: string[];
  split: number;
  splits: number;
  startFrom: 'earliest' | 'latest';
  stopAtEnd: boolean;
  partitionDiscoveryIntervalMs: number;
  bufferRecords: number;
  maxWaitMs: number;
  groupIdPrefix: string;
  /** The job's connectorRetryDeadlineMs. */
  retryDeadlineMs: number;
}

/** A split's position: the next offset per topic and partition, and the split count it belongs to. */
export interface KafkaPosition {
  splits: number;
  next: Record<string, Record<string, number>>;
}

/** What a split reader reports (see `KafkaSplitReader.metrics`). */
export interface KafkaReaderMetrics {
  split: number;
  recordsIn: number;
  rejected: number;
  buffered: number;
  /** Per owned partition: the position, the last high watermark seen, and the lag between them. */
  partitions: Array<{ topic: string; partition: number; position: number; highWatermark: number; lag: number }>;
}

/** Ms a split with nothing buffered asks the router to wait before the next read. */
const IDLE_RETRY_MS = 5;

/**
 * Reads Kafka topics. Records are `KafkaRecord`s: route them per `record.topic` as needed. Positions
 * (next offsets) are recorded by checkpoints; a restore, also on another number of workers, seeks
 * every partition to its checkpointed offset.
 */
export function kafkaIngress<V = unknown>(name: string, options: KafkaIngressOptions<V>): Ingress<KafkaRecord<V>> {
  const where = `kafkaIngress(${name})`;
  if (typeof options !== 'object' || options === null) throw invalidOption(where, 'is missing', 'pass { brokers, topics }');
  const splits = positiveInteger(`${where}.splits`, options.splits, kafkaIngressDefaults.splits);
  const partitionDiscoveryIntervalMs = positiveInteger(`${where}.partitionDiscoveryIntervalMs`, options.partitionDiscoveryIntervalMs, kafkaIngressDefaults.partitionDiscoveryIntervalMs, 100);
  const bufferRecords = positiveInteger(`${where}.bufferRecords`, options.bufferRecords, kafkaIngressDefaults.bufferRecords);
  const maxWaitMs = positiveInteger(`${where}.maxWaitMs`, options.maxWaitMs, kafkaIngressDefaults.maxWaitMs);
  const groupIdPrefix = options.groupIdPrefix ?? `eddy-${name}`;
  if (typeof groupIdPrefix !== 'string' || groupIdPrefix.length === 0) throw invalidOption(`${where}.groupIdPrefix`, `is ${JSON.stringify(groupIdPrefix)}`, 'must be a non-empty string');
  const codec = options.codec ?? jsonCodec<V>();
  // Brokers may come from inputs instead: check the rest of the client options now, brokers at plan time.
  resolveClientOptions(where, { ...options, brokers: 'placeholder:1' });

  const startFrom = options.startFrom ?? kafkaIngressDefaults.startFrom;
  // `kafka` lets eddy serve and eddy statefun-module hand StateFun's Kafka ingress the same topics (engine/statefun/kafka-descriptions.ts).
  const kafka: KafkaIngressDescription = {
    topics: options.topics === undefined ? undefined : resolveTopics(`${where}.topics`, options.topics),
    brokers: options.brokers === undefined ? undefined : resolveBrokers(`${where}.brokers`, options.brokers),
    codec: codec,
    startFrom,
    groupIdPrefix,
  };
  const ingress: Ingress<KafkaRecord<V>> & { readonly kafka: KafkaIngressDescription } = {
    name,
    kind: 'kafka',
    resumable: true,
    kafka,
    async planSplits(input: unknown, context?: SourceContext): Promise<KafkaSplit[]> {
      const retryDeadlineMs = context?.retryDeadlineMs ?? defaultOptions.connectorRetryDeadlineMs;
      const given = checkInput(name, input);
      const client = resolveClientOptions(where, { ...options, brokers: given.brokers ?? options.brokers });
      const topics = resolveTopics(`${where}.topics`, given.topics ?? options.topics);
      const startFrom = given.startFrom ?? options.startFrom ?? kafkaIngressDefaults.startFrom;
      if (startFrom !== 'earliest' && startFrom !== 'latest') throw invalidOption(`${where}.startFrom`, `is ${JSON.stringify(startFrom)}`, 'must be "earliest" or "latest"');
      const stopAtEnd = given.stopAtEnd ?? options.stopAtEnd ?? kafkaIngressDefaults.stopAtEnd;
      if (typeof stopAtEnd !== 'boolean') throw invalidOption(`${where}.stopAtEnd`, `is ${JSON.stringify(stopAtEnd)}`, 'must be true or false');
      // Fail at submit, with the brokers named, when a topic is missing or they stay unreachable
      // (a restore during a broker outage retries until connectorRetryDeadlineMs).
      await sourceRetry(`ingress ${name}`, 'looking up its topics', Date.now() + retryDeadlineMs, () =>
        checkTopicsExist(kafkaClient(client, options, 'ingress-plan', 'patient'), client, topics, `ingress ${name}`),
      );
      return Array.from({ length: splits }, (_, split) => ({
        ...client,
        topics,
        split,
        splits,
        startFrom,
        stopAtEnd,
        partitionDiscoveryIntervalMs,
        bufferRecords,
        maxWaitMs,
        groupIdPrefix,
        retryDeadlineMs,
      }));
    },
    async openSplit(description: unknown, position: unknown): Promise<KafkaSplitReader<V>> {
      const split = description as KafkaSplit;
      const reader = new KafkaSplitReader<V>(name, split, codec, kafkaClient(split, options, `ingress-${name}-${split.split}`, 'patient'));
      await reader.open(checkPosition(where, split, position));
      return reader;
    },
  };
  return ingress;
}

function checkInput(name: string, input: unknown): KafkaIngressInput {
  if (input === undefined) return {};
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    throw invalidOption(`inputs.${name}`, 'is not an object', 'pass { brokers?, topics?, startFrom?, stopAtEnd? } for a Kafka ingress');
  }
  for (const key of Object.keys(input)) {
    if (!['brokers', 'topics', 'startFrom', 'stopAtEnd'].includes(key)) {
      throw invalidOption(`inputs.${name}.${key}`, 'is not an input of a Kafka ingress', 'use brokers, topics, startFrom or stopAtEnd');
    }
  }
  const given = input as KafkaIngressInput;
  if (given.brokers !== undefined) resolveBrokers(`inputs.${name}`, given.brokers);
  return given;
}

function resolveTopics(where: string, topics: unknown): string[] {
  const list = typeof topics === 'string' ? [topics] : Array.isArray(topics) ? (topics as unknown[]) : undefined;
  if (list === undefined || list.length === 0) throw invalidOption(where, 'is missing', 'name the topic(s) to read, e.g. topics: ["requests"]');
  const checked = list.map((topic, i) => checkTopic(`${where}[${i}]`, topic));
  if (new Set(checked).size !== checked.length) throw invalidOption(where, 'names a topic twice', 'list each topic once');
  return checked;
}

function checkPosition(where: string, split: KafkaSplit, position: unknown): KafkaPosition | undefined {
  if (position === undefined) return undefined;
  const p = position as Partial<KafkaPosition>;
  if (typeof p !== 'object' || p === null || typeof p.next !== 'object' || p.next === null) {
    throw new EddyError('EDDY_CHECKPOINT_CORRUPT', `${where} split ${split.split}: the stored position ${JSON.stringify(position)} is not a Kafka position`);
  }
  if (p.splits !== split.splits) {
    throw invalidOption(
      `${where}.splits`,
      `is ${split.splits} but the checkpoint was taken with ${p.splits}`,
      `it may not change while checkpoints are restored; set it back to ${p.splits}`,
    );
  }
  return p as KafkaPosition;
}

/** Connects an admin client within the connect timeout and checks that every topic exists. */
async function checkTopicsExist(kafka: Kafka, client: ResolvedClientOptions, topics: readonly string[], what: string): Promise<void> {
  const admin = kafka.admin();
  try {
    const existing = await withinConnectTimeout(client, 'EDDY_SOURCE_FAILED', what, admin.connect().then(() => admin.listTopics()), () => admin.disconnect());
    const missing = topics.filter((topic) => !existing.includes(topic));
    if (missing.length > 0) {
      throw new EddyError(
        'EDDY_SOURCE_FAILED',
        `${what}: topic(s) ${missing.join(', ')} do not exist on ${client.brokers.join(',')}: create them (e.g. kafka-topics.sh --create, or admin.createTopics) or fix the topics option`,
      );
    }
  } finally {
    await admin.disconnect().catch(() => {});
  }
}

/** retryTransient for the ingress: what finally fails is an EDDY_SOURCE_FAILED (retryable unless it is permanent). */
async function sourceRetry<T>(who: string, what: string, deadline: number, call: () => Promise<T>): Promise<T> {
  try {
    return await retryTransient({ what: `${who}: ${what}`, deadline, permanent: isPermanent, log: () => {} }, call);
  } catch (error) {
    if (error instanceof EddyError) throw error;
    throw new EddyError('EDDY_SOURCE_FAILED', `${who}: ${what} failed, retried for connectorRetryDeadlineMs: ${describeError(error)}`, { cause: error, retryable: true });
  }
}

/** An error retrying cannot cure: an EddyError not marked retryable (a missing topic, bad input). */
function isPermanent(error: unknown): boolean {
  return error instanceof EddyError && !error.retryable;
}

const tpKey = (topic: string, partition: number): string => `${topic}/${partition}`;
function parseTp(key: string): { topic: string; partition: number } {
  const slash = key.lastIndexOf('/');
  return { topic: key.slice(0, slash), partition: Number(key.slice(slash + 1)) };
}

type Buffered<V> = { tp: string; record: KafkaRecord<V> } | { tp: string; offset: number; rejected: { reason: string; raw: KafkaRawRecord } };

/**
 * Reads one split with a kafkajs consumer in a group of its own, whose assigner gives it exactly the
 * partitions the split owns. Fetched records wait in a buffer for the router's `read`; above
 * `bufferRecords` fetching pauses. Every (re)join of the group seeks each partition to the offset
 * after what was fetched, since kafkajs would otherwise start over from the group's (absent) offsets.
 */
export class KafkaSplitReader<V> implements SplitReader<KafkaRecord<V>> {
  private admin: Admin | undefined;
  private consumer: Consumer | undefined;
  private readonly buffer: Array<Buffered<V>> = [];
  private head = 0;
  /** Per partition: records in the buffer. */
  private readonly bufferedPer = new Map<string, number>();
  /** Per partition: the offset after the last record read (the position). */
  private readonly next = new Map<string, number>();
  /** Per partition: the offset after the last record buffered (a re-fetch below it is a duplicate). */
  private readonly fetched = new Map<string, number>();
  /** Per partition: the offset after the last one the consumer went past, control records included. */
  private readonly scanned = new Map<string, number>();
  private readonly highWatermarks = new Map<string, number>();
  /** With stopAtEnd: where each partition known at open ends. */
  private end: Map<string, number> | undefined;
  private assigned: Array<{ topic: string; partitions: number[] }> = [];
  private readonly paused = new Set<string>();
  private full = false;
  private failure: unknown;
  /** When the current run of transient consumer failures began (reset by a successful join). */
  private failingSince: number | undefined;
  /** Transient failures since the last successful join (the pause before a new consumer grows with it). */
  private streak = 0;
  private discoveryTimer: NodeJS.Timeout | undefined;
  private closed = false;
  private recordsIn = 0;
  private rejectedIn = 0;

  constructor(
    private readonly ingress: string,
    private readonly split: KafkaSplit,
    private readonly codec: Codec<V>,
    private readonly kafka: Kafka,
  ) {}

  private get what(): string {
    return `ingress ${this.ingress} split ${this.split.split}`;
  }

  private owns(partition: number): boolean {
    return partition % this.split.splits === this.split.split;
  }

  async open(position: KafkaPosition | undefined): Promise<void> {
    for (const [topic, partitions] of Object.entries(position?.next ?? {})) {
      for (const [partition, offset] of Object.entries(partitions)) {
        if (!this.owns(Number(partition)) || !this.split.topics.includes(topic)) continue;
        this.next.set(tpKey(topic, Number(partition)), offset);
        this.fetched.set(tpKey(topic, Number(partition)), offset);
      }
    }
    if (this.split.stopAtEnd) this.end = new Map();
    const deadline = Date.now() + this.split.retryDeadlineMs;
    const owned = await this.retrying('opening', deadline, async () => {
      await this.admin?.disconnect().catch(() => {});
      const admin = this.kafka.admin();
      this.admin = admin;
      await withinConnectTimeout(this.split, 'EDDY_SOURCE_FAILED', this.what, admin.connect(), () => admin.disconnect());
      return this.discover(true);
    });
    if (owned > 0) await this.retrying('starting its consumer', deadline, () => this.startConsumer());
    else if (!this.split.stopAtEnd) this.scheduleDiscovery();
  }

  /** Runs `call` again on transient errors until `deadline` (connectorRetryDeadlineMs). */
  private retrying<T>(what: string, deadline: number, call: () => Promise<T>): Promise<T> {
    return sourceRetry(this.what, what, deadline, call);
  }

  /**
   * The consumer crashed for good, or looking for new partitions failed: a transient error is
   * retried with a new consumer (it seeks to what was fetched) until connectorRetryDeadlineMs
   * after the first failure of a run of them; then `read` fails the attempt.
   */
  private consumerFailed(error: unknown): void {
    if (this.closed || this.failure !== undefined) return;
    const now = Date.now();
    this.failingSince ??= now;
    if (isPermanent(error) || now - this.failingSince >= this.split.retryDeadlineMs) {
      this.failure = error;
      return;
    }
    const old = this.consumer;
    this.consumer = undefined;
    this.streak++;
    const pauseMs = Math.min(2000, 100 * 2 ** Math.min(5, this.streak - 1));
    setTimeout(() => {
      void (async () => {
        await old?.disconnect().catch(() => {});
        if (this.closed) return;
        // No consumer yet: the failure was a look for partitions, which goes on as scheduled.
        if (old === undefined) this.scheduleDiscovery();
        else await this.startConsumer();
      })().catch((again: unknown) => this.consumerFailed(again));
    }, pauseMs);
  }

  /**
   * Looks up the partitions of the topics; gives each owned one not seen before a start offset
   * (and with stopAtEnd, at open only, an end). Returns how many partitions the split owns.
   */
  private async discover(atOpen: boolean): Promise<number> {
    const admin = this.admin!;
    let owned = 0;
    for (const topic of this.split.topics) {
      const offsets = await admin.fetchTopicOffsets(topic);
      for (const { partition, low, high } of offsets) {
        if (!this.owns(partition)) continue;
        if (!atOpen && this.end !== undefined) continue;
        owned++;
        const key = tpKey(topic, partition);
        this.highWatermarks.set(key, Math.max(this.highWatermarks.get(key) ?? 0, Number(high)));
        if (!this.next.has(key)) {
          // Partitions found after the start are new: everything in them is after the start too.
          const start = atOpen && this.split.startFrom === 'latest' ? Number(high) : Number(low);
          this.next.set(key, start);
          this.fetched.set(key, start);
        }
        if (atOpen && this.end !== undefined) this.end.set(key, Number(high));
      }
    }
    return owned;
  }

  private scheduleDiscovery(): void {
    this.discoveryTimer = setTimeout(() => {
      this.discoveryTimer = undefined;
      void this.discover(false)
        .then((owned) => (owned > 0 ? this.startConsumer() : this.scheduleDiscovery()))
        .catch((error: unknown) => this.consumerFailed(error));
    }, this.split.partitionDiscoveryIntervalMs);
  }

  private async startConsumer(): Promise<void> {
    if (this.closed) return;
    // One that failed to start (a retry after a transient error) lets go of its connections first.
    await this.consumer?.disconnect().catch(() => {});
    const consumer = this.kafka.consumer({
      groupId: `${this.split.groupIdPrefix}-${this.split.split}-${randomUUID().slice(0, 8)}`,
      partitionAssigners: [this.assigner()],
      readUncommitted: false,
      maxWaitTimeInMs: this.split.maxWaitMs,
      // kafkajs rejoins (and the assigner runs again) when a refresh shows new partitions.
      metadataMaxAge: this.split.partitionDiscoveryIntervalMs,
      sessionTimeout: 10_000,
      heartbeatInterval: 1000,
      allowAutoTopicCreation: false,
    });
    this.consumer = consumer;
    consumer.on(consumer.events.GROUP_JOIN, ({ payload }) => {
      this.failingSince = undefined;
      this.streak = 0;
      this.assigned = Object.entries(payload.memberAssignment).map(([topic, partitions]) => ({ topic, partitions }));
      for (const { topic, partitions } of this.assigned) {
        for (const partition of partitions) {
          const key = tpKey(topic, partition);
          if (this.end !== undefined && !this.end.has(key)) continue;
          if (!this.next.has(key)) {
            // Added since the split opened: read from its start (offset 0 below the log start resets
            // to the earliest offset), and record that, so that a restore does not take it for new.
            this.next.set(key, 0);
            this.fetched.set(key, 0);
          }
          const from = Math.max(this.fetched.get(key)!, this.scanned.get(key) ?? 0);
          consumer.seek({ topic, partition, offset: String(from) });
        }
      }
      // kafkajs keeps pauses across a rejoin but forgets them when it restarts a crashed consumer: state them all again.
      this.applyPauses(true);
    });
    consumer.on(consumer.events.END_BATCH_PROCESS, ({ payload }) => {
      const key = tpKey(payload.topic, payload.partition);
      const end = this.end?.get(key) ?? Infinity;
      this.scanned.set(key, Math.min(end, Math.max(this.scanned.get(key) ?? 0, Number(payload.lastOffset) + 1)));
      this.highWatermarks.set(key, Number(payload.highWatermark));
      this.applyPauses();
    });
    consumer.on(consumer.events.CRASH, ({ payload }) => {
      // A consumer replaced after a failure may still report: only the current one counts.
      if (!payload.restart && this.consumer === consumer) this.consumerFailed(payload.error);
    });
    await withinConnectTimeout(this.split, 'EDDY_SOURCE_FAILED', this.what, consumer.connect(), () => consumer.disconnect());
    await consumer.subscribe({ topics: this.split.topics, fromBeginning: true });
    await consumer.run({ autoCommit: false, eachBatch: async ({ batch }) => this.take(batch) });
  }

  /** Gives the one member of the split's group the partitions the split owns. */
  private assigner(): PartitionAssigner {
    const name = 'EddySplit';
    return ({ cluster }) => ({
      name,
      version: 1,
      protocol: ({ topics }) => ({ name, metadata: AssignerProtocol.MemberMetadata.encode({ version: 1, topics, userData: Buffer.alloc(0) }) }),
      assign: async ({ members, topics }) => {
        const assignment: Record<string, number[]> = {};
        for (const topic of topics) {
          const partitions = cluster
            .findTopicPartitionMetadata(topic)
            .map((p) => p.partitionId)
            .filter((p) => this.owns(p));
          if (partitions.length > 0) assignment[topic] = partitions;
        }
        return members.map(({ memberId }) => ({
          memberId,
          memberAssignment: AssignerProtocol.MemberAssignment.encode({ version: 1, assignment, userData: Buffer.alloc(0) }),
        }));
      },
    });
  }

  private take(batch: Batch): void {
    const key = tpKey(batch.topic, batch.partition);
    const end = this.end === undefined ? Infinity : this.end.get(key);
    if (end === undefined) return; // stopAtEnd: a partition that did not exist at open
    let fetched = this.fetched.get(key) ?? 0;
    let added = 0;
    for (const message of batch.messages) {
      const offset = Number(message.offset);
      if (offset < fetched) continue; // fetched again after a rejoin
      if (offset >= end) break;
      this.buffer.push(this.decode(key, batch.topic, batch.partition, offset, message));
      fetched = offset + 1;
      added++;
    }
    this.fetched.set(key, fetched);
    this.bufferedPer.set(key, (this.bufferedPer.get(key) ?? 0) + added);
    this.applyPauses();
  }

  private decode(key: string, topic: string, partition: number, offset: number, message: KafkaMessage): Buffered<V> {
    const headers = headersAsStrings(message.headers);
    const timestamp = Number(message.timestamp);
    const recordKey = message.key === null ? null : message.key.toString('utf8');
    let problem: string;
    if (message.value === null) problem = 'has no value (a tombstone)';
    else {
      try {
        return { tp: key, record: { topic, partition, offset, key: recordKey, value: this.codec.decode(message.value), timestamp, headers } };
      } catch (error) {
        problem = `is not valid ${this.codec.name}: ${describeError(error)}`;
      }
    }
    return {
      tp: key,
      offset,
      rejected: {
        reason: `${this.what}: the record at ${topic}/${partition} offset ${offset} ${problem}`,
        raw: { topic, partition, offset, timestamp, key: recordKey, headers, valueBase64: message.value === null ? null : message.value.toString('base64') },
      },
    };
  }

  /** Pauses what should not be fetched now: everything while the buffer is full, and (stopAtEnd) partitions at their end. */
  private applyPauses(force = false): void {
    const consumer = this.consumer;
    if (consumer === undefined) return;
    const size = this.buffer.length - this.head;
    if (this.full) this.full = size >= this.split.bufferRecords / 2;
    else this.full = size >= this.split.bufferRecords;
    const pause: Array<{ topic: string; partitions: number[] }> = [];
    const resume: Array<{ topic: string; partitions: number[] }> = [];
    for (const { topic, partitions } of this.assigned) {
      const toPause: number[] = [];
      const toResume: number[] = [];
      for (const partition of partitions) {
        const key = tpKey(topic, partition);
        const atEnd = this.end !== undefined && !((this.end.get(key) ?? -1) > (this.fetched.get(key) ?? 0));
        const want = this.full || atEnd;
        if (want && (force || !this.paused.has(key))) {
          toPause.push(partition);
          this.paused.add(key);
        } else if (!want && (force || this.paused.has(key))) {
          toResume.push(partition);
          this.paused.delete(key);
        }
      }
      if (toPause.length > 0) pause.push({ topic, partitions: toPause });
      if (toResume.length > 0) resume.push({ topic, partitions: toResume });
    }
    if (pause.length > 0) consumer.pause(pause);
    if (resume.length > 0) consumer.resume(resume);
  }

  read(max: number): ReadResult<KafkaRecord<V>> {
    if (this.failure !== undefined) {
      const cause = this.failure;
      throw new EddyError('EDDY_SOURCE_FAILED', `${this.what}: the Kafka consumer failed: ${describeError(cause)}`, { cause, retryable: true });
    }
    const records: Array<KafkaRecord<V>> = [];
    const rejected: Array<{ reason: string; raw: unknown }> = [];
    while (records.length + rejected.length < max && this.head < this.buffer.length) {
      const item = this.buffer[this.head++]!;
      this.bufferedPer.set(item.tp, this.bufferedPer.get(item.tp)! - 1);
      if ('record' in item) {
        records.push(item.record);
        this.next.set(item.tp, item.record.offset + 1);
      } else {
        rejected.push(item.rejected);
        this.next.set(item.tp, item.offset + 1);
      }
    }
    if (this.head === this.buffer.length) {
      this.buffer.length = 0;
      this.head = 0;
    } else if (this.head > 4096) {
      this.buffer.splice(0, this.head);
      this.head = 0;
    }
    this.recordsIn += records.length;
    this.rejectedIn += rejected.length;
    if (this.full) this.applyPauses();
    const done = this.isDone();
    if (records.length === 0 && rejected.length === 0 && !done) return { records, rejected, done, retryAfterMs: IDLE_RETRY_MS };
    return { records, rejected, done };
  }

  private isDone(): boolean {
    if (this.end === undefined || this.head < this.buffer.length) return false;
    for (const [key, end] of this.end) if (this.positionOf(key) < end) return false;
    return true;
  }

  /** The next offset to read in a partition: past trailing control records once all its fetched records are read. */
  private positionOf(key: string): number {
    const next = this.next.get(key) ?? 0;
    return (this.bufferedPer.get(key) ?? 0) === 0 ? Math.max(next, this.scanned.get(key) ?? 0) : next;
  }

  position(): KafkaPosition {
    const next: Record<string, Record<string, number>> = {};
    for (const key of this.next.keys()) {
      const { topic, partition } = parseTp(key);
      (next[topic] ??= {})[String(partition)] = this.positionOf(key);
    }
    return { splits: this.split.splits, next };
  }

  /**
   * Counters and consumer lag per partition, for the job manager to collect (lag is from the high
   * watermark of the latest fetch, so it is fresh while the partition is fetched).
   */
  metrics(): KafkaReaderMetrics {
    const partitions = [...this.next.keys()].sort().map((key) => {
      const { topic, partition } = parseTp(key);
      const position = this.positionOf(key);
      const highWatermark = this.highWatermarks.get(key) ?? position;
      return { topic, partition, position, highWatermark, lag: Math.max(0, highWatermark - position) };
    });
    return { split: this.split.split, recordsIn: this.recordsIn, rejected: this.rejectedIn, buffered: this.buffer.length - this.head, partitions };
  }

  connectorMetrics(): ConnectorMetric[] {
    const m = this.metrics();
    const split = { split: String(m.split) };
    return [
      { name: 'eddy_kafka_records_in_total', help: 'Eddy Kafka ingress: records read', type: 'counter', labels: split, value: m.recordsIn },
      { name: 'eddy_kafka_records_rejected_total', help: 'Eddy Kafka ingress: records that could not be decoded', type: 'counter', labels: split, value: m.rejected },
      ...m.partitions.map((p) => ({
        name: 'eddy_kafka_consumer_lag',
        help: 'Eddy Kafka ingress: records between the position and the last high watermark seen, per partition',
        type: 'gauge' as const,
        labels: { topic: p.topic, partition: String(p.partition) },
        value: p.lag,
      })),
    ];
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.discoveryTimer !== undefined) clearTimeout(this.discoveryTimer);
    // Leaving the group can wait for a fetch in flight; never let a dead broker hold up a stop.
    const quit = Promise.allSettled([this.consumer?.disconnect(), this.admin?.disconnect()]);
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([quit, new Promise((resolve) => (timer = setTimeout(resolve, 5000)))]);
    clearTimeout(timer);
  }
}
