/** Deterministic YCSB record contents, shared by the ycsb and ycsb-t jobs: every choice derives from the seed. */

/** A 32-bit hash of (seed, split, index): every random choice derives from the seed. */
export function mix(seed: number, split: number, index: number, salt: number): number {
  let h = (seed ^ Math.imul(split + 1, 0x9e3779b9) ^ Math.imul(index + 1, 0x85ebca6b) ^ Math.imul(salt, 0xc2b2ae35)) >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x7feb352d);
  h = Math.imul(h ^ (h >>> 15), 0x846ca68b);
  return (h ^ (h >>> 16)) >>> 0;
}

export function field(seed: number, split: number, index: number, n: number): string {
  let hex = '';
  for (let i = 0; i < 4; i++) hex += mix(seed, split, index, n * 4 + i + 10).toString(16).padStart(8, '0');
  return hex;
}

/**
 * The JSON of one request of the Kafka YCSB benchmarks (kafka, statefun) for record `key`: an insert
 * with all 10 fields, or a write of one field; its contents derive from (seed, requestId).
 */
export function kafkaRequestValue(seed: number, requestId: number, op: 'insert' | 'read' | 'write', key: string): string {
  const value = (salt: number): string => mix(seed, 0, requestId, salt).toString(16).padStart(8, '0').repeat(4);
  if (op === 'insert') return JSON.stringify({ target: 'record', key, op, requestId, fields: Array.from({ length: 10 }, (_, n) => value(n + 10)) });
  if (op === 'read') return JSON.stringify({ target: 'record', key, op, requestId });
  return JSON.stringify({ target: 'record', key, op, requestId, field: mix(seed, 0, requestId, 2) % 10, value: value(3) });
}

/** The key of the record request `i` of the Kafka YCSB benchmarks goes to, uniform over `keys`. */
export function kafkaRequestKey(seed: number, i: number, keys: number): string {
  return `user${mix(seed, 0, i, 1) % keys}`;
}
