/**
 * Per-call seeds derived from (run seed, attempt, step), so attempt k of a run gets the same seed whether the run
 * was interrupted or not. A 32-bit integer mix (murmur3 finalizer), kept within WebLLM's integer seed range.
 */
function mix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

export type SeedStep = 'instruction' | 'response';

export function deriveSeed(runSeed: number, attempt: number, step: SeedStep): number {
  let h = mix32(runSeed >>> 0);
  h = mix32(h ^ Math.imul(attempt >>> 0, 0x9e3779b1));
  h = mix32(h ^ (step === 'instruction' ? 0x1b873593 : 0x27d4eb2f));
  return h & 0x7fffffff;
}
