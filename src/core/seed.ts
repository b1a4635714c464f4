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

/** 'instruction' and 'response' for the first turn; other step names (e.g. 'instruction_2') hash their text. */
export type SeedStep = string;

const STEP_KEYS: Record<string, number> = { instruction: 0x1b873593, response: 0x27d4eb2f };

function stepKey(step: SeedStep): number {
  return STEP_KEYS[step] ?? fnv1a32(step);
}

/** FNV-1a over UTF-16 code units: a stable 32-bit hash of a string. */
export function fnv1a32(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/** mulberry32: a small 32-bit PRNG; uniform floats in [0, 1). */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function deriveSeed(runSeed: number, attempt: number, step: SeedStep): number {
  let h = mix32(runSeed >>> 0);
  h = mix32(h ^ Math.imul(attempt >>> 0, 0x9e3779b1));
  h = mix32(h ^ stepKey(step));
  return h & 0x7fffffff;
}
