/**
 * Key groups: the unit of state ownership, shuffling and rescaling.
 *
 * FROZEN FORMULA (every checkpoint and every state directory depends on it):
 *
 *   keyGroup(id) = flinkMurmur(javaStringHashCode(id)) mod maxParallelism
 *   owner(kg)    = floor(kg * workers / maxParallelism)
 *
 * This is exactly Flink's `KeyGroupRangeAssignment.assignToKeyGroup(id, maxParallelism)` for a
 * `String` key, which is what Flink StateFun uses for an address (it keys by the id only). Hashing
 * the id only co-locates every function type that shares an id (an account and its transfers' helper
 * functions stay in one thread), and matching Flink's layout keeps the door open to running the same
 * functions on StateFun. The vectors in test/engine/key-groups.test.ts were produced by Flink itself.
 */

export const DEFAULT_MAX_PARALLELISM = 128;
export const MAX_MAX_PARALLELISM = 32768;

/** `java.lang.String#hashCode`: over UTF-16 code units, 32-bit wrapping. */
export function javaStringHashCode(s: string): number {
  let h = 0;
  for (let i = 0; i < s.length; i++) h = (Math.imul(31, h) + s.charCodeAt(i)) | 0;
  return h;
}

/** Flink's `MathUtils.murmurHash(int)`: one murmur3_32 round plus finalizer, made non-negative. */
export function flinkMurmurHash(code: number): number {
  let h = Math.imul(code, 0xcc9e2d51);
  h = (h << 15) | (h >>> 17);
  h = Math.imul(h, 0x1b873593);
  h = (h << 13) | (h >>> 19);
  h = (Math.imul(h, 5) + 0xe6546b64) | 0;
  h ^= 4;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  if (h >= 0) return h;
  return h === -0x80000000 ? 0 : -h;
}

export function keyGroupOf(id: string, maxParallelism: number): number {
  return flinkMurmurHash(javaStringHashCode(id)) % maxParallelism;
}

export function ownerOfKeyGroup(keyGroup: number, workers: number, maxParallelism: number): number {
  return Math.floor((keyGroup * workers) / maxParallelism);
}

export interface KeyGroupRange {
  /** First key group, inclusive. */
  readonly start: number;
  /** Last key group, inclusive. */
  readonly end: number;
}

/** The contiguous key groups owned by `worker`; the inverse of `ownerOfKeyGroup`. */
export function keyGroupRangeOf(worker: number, workers: number, maxParallelism: number): KeyGroupRange {
  return {
    start: Math.ceil((worker * maxParallelism) / workers),
    end: Math.floor(((worker + 1) * maxParallelism - 1) / workers),
  };
}
