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
