/**
 * The job of the map-state benchmark: one instance per split, each holding `entries` entries of 128
 * random bits, then reads and writes of single entries. `bench/map` keeps them in a mapState (one key
 * per entry); `bench/blob` in a valueState holding one object (the whole map rewritten on each
 * write): the baseline a map state exists to beat.
 */
import { defineFunction, defineJob, defineRouter, generatorIngress, mapState, memoryEgress, routeTo, valueState } from '../index.js';
import { field, mix } from './ycsb-records.js';

export interface MapParams {
  kind: 'map' | 'blob';
  /** Entries per instance. */
  entries: number;
  seed: number;
}

export type MapOp =
  /** Fills the instance with `entries` entries in one invocation. */
  | { op: 'fill'; entries: number; seed: number; split: number; requestId: number }
  | { op: 'put'; entry: number; value: string; requestId: number }
  | { op: 'get'; entry: number; requestId: number };

function* filling(m: Extract<MapOp, { op: 'fill' }>): Iterable<[number, string]> {
  for (let i = 0; i < m.entries; i++) yield [i, field(m.seed, m.split, i, 0)];
}

export const SPLITS = 16;

const responses = memoryEgress<{ requestId: number; value?: string | undefined }>('responses', { retain: false });

export const map = defineFunction({
  type: 'bench/map',
  state: { entries: mapState<number, string>() },
  egresses: { responses },
  handler(ctx, m: MapOp) {
    if (m.op === 'fill') for (const [entry, value] of filling(m)) ctx.state.entries.set(entry, value);
    else if (m.op === 'put') ctx.state.entries.set(m.entry, m.value);
    ctx.egress('responses', { requestId: m.requestId, value: m.op === 'get' ? ctx.state.entries.get(m.entry) : undefined });
  },
});

export const blob = defineFunction({
  type: 'bench/blob',
  state: { entries: valueState<Record<number, string>>() },
  egresses: { responses },
  handler(ctx, m: MapOp) {
    const entries = ctx.state.entries.get() ?? {};
    if (m.op === 'fill') ctx.state.entries.set(Object.fromEntries(filling(m)));
    else if (m.op === 'put') {
      entries[m.entry] = m.value;
      ctx.state.entries.set(entries);
    }
    ctx.egress('responses', { requestId: m.requestId, value: m.op === 'get' ? entries[m.entry] : undefined });
  },
});

type Request = MapOp & { kind: MapParams['kind']; instance: string };

/** Split s fills instance `s` with its entries, then reads (half) and writes (half) uniformly chosen entries. */
export function generateRequest(params: MapParams, index: number, split: number): Request {
  const requestId = index * SPLITS + split;
  const base = { kind: params.kind, instance: `instance-${split}`, requestId };
  if (index === 0) return { ...base, op: 'fill', entries: params.entries, seed: params.seed, split };
  const entry = mix(params.seed, split, index, 1) % params.entries;
  return mix(params.seed, split, index, 2) % 2 === 0 ? { ...base, op: 'get', entry } : { ...base, op: 'put', entry, value: field(params.seed, split, index, 3) };
}

const requests = generatorIngress<Request, MapParams>('requests', { splits: SPLITS, generate: generateRequest });

export default defineJob({
  name: 'map-state',
  module: import.meta.url,
  functions: [map, blob],
  ingresses: [requests],
  routers: [defineRouter(requests, ({ kind, instance, ...op }) => (kind === 'map' ? routeTo(map.address(instance), op) : routeTo(blob.address(instance), op)))],
  egresses: [responses],
});
