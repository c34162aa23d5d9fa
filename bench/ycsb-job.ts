/**
 * The job the YCSB benchmark runs: YCSB records (10 fields of 128 random bits) as keyed state.
 * `ycsb/record` does the real work (read: state to egress; write: replace a field, store, ack);
 * `ycsb/limit` receives the same envelopes through the same channels and only acks: the no-op engine
 * that tells how far from the machine's limit the real handlers are.
 */
import { defineFunction, defineJob, defineRouter, generatorIngress, memoryEgress, valueState } from '../index.js';
import { field, mix } from './ycsb-records.js';

export interface YcsbRequest {
  /** Which function runs it: the real record or the no-op limit. */
  target: 'record' | 'limit';
  key: string;
  op: 'insert' | 'read' | 'write';
  requestId: number;
  field?: number;
  value?: string;
  fields?: string[];
}

type Op = Omit<YcsbRequest, 'target' | 'key'>;

const state = { record: valueState<string[]>() };

export const record = defineFunction<Op, typeof state>({
  type: 'ycsb/record',
  state,
  handler(ctx, message) {
    switch (message.op) {
      case 'insert':
        ctx.state.record.set(message.fields ?? []);
        ctx.egress('responses', { requestId: message.requestId, status: 200 });
        return;
      case 'read':
        ctx.egress('responses', { requestId: message.requestId, status: 200, fields: ctx.state.record.get() });
        return;
      case 'write': {
        const fields = ctx.state.record.get() ?? [];
        fields[message.field ?? 0] = message.value ?? '';
        ctx.state.record.set(fields);
        ctx.egress('responses', { requestId: message.requestId, status: 200 });
        return;
      }
    }
  },
});

export const limit = defineFunction<Op>({
  type: 'ycsb/limit',
  handler(ctx, message) {
    ctx.egress('responses', { requestId: message.requestId, status: 200 });
  },
});

export interface YcsbParams {
  target: 'record' | 'limit';
  workload: 'read-only' | 'write-only';
  keys: number;
  seed: number;
}

export const SPLITS = 16;


/** Keys of split s are s, s + SPLITS, ...; a split first inserts its keys, then runs the workload on them. */
export function generateRequest(params: YcsbParams, index: number, split: number): YcsbRequest {
  const keysInSplit = Math.max(1, Math.ceil((params.keys - split) / SPLITS));
  const requestId = index * SPLITS + split;
  if (index < keysInSplit) {
    const fields = Array.from({ length: 10 }, (_, n) => field(params.seed, split, index, n));
    return { target: params.target, key: `user${split + index * SPLITS}`, op: 'insert', requestId, fields };
  }
  const key = `user${split + (mix(params.seed, split, index, 1) % keysInSplit) * SPLITS}`;
  if (params.workload === 'read-only') return { target: params.target, key, op: 'read', requestId };
  return { target: params.target, key, op: 'write', requestId, field: mix(params.seed, split, index, 2) % 10, value: field(params.seed, split, index, 3) };
}

export default defineJob({
  name: 'ycsb',
  module: import.meta.url,
  functions: [record, limit],
  ingresses: [generatorIngress<YcsbRequest, YcsbParams>('requests', { splits: SPLITS, generate: generateRequest })],
  routers: [
    defineRouter<YcsbRequest>('requests', ({ target, key, ...op }) => ({ to: (target === 'record' ? record : limit).address(key), message: op })),
  ],
  egresses: [memoryEgress('responses', { retain: false })],
});
