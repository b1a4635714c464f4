/**
 * Seeded draws for generation modes: attempt k draws its system prompt and sampling setting from a PRNG seeded
 * with a seed derived from (run seed, k, draw name), so a resumed or re-run recipe draws the same for every record.
 */
import { seededRandom } from '../seed';

export { seededRandom };

/** Index i with probability weights[i] / sum(weights), from one uniform number u in [0, 1). */
export function drawIndex(weights: readonly number[], u: number): number {
  const total = weights.reduce((sum, w) => sum + w, 0);
  if (!(total > 0) || weights.some((w) => !(w >= 0) || !Number.isFinite(w))) {
    throw new Error('drawIndex: weights must be finite, non-negative and not all zero.');
  }
  let target = u * total;
  for (let i = 0; i < weights.length; i++) {
    const w = weights[i] ?? 0;
    if (target < w) return i;
    target -= w;
  }
  // Rounding can leave u * total a hair above the sum: the last positive weight takes it.
  for (let i = weights.length - 1; i >= 0; i--) if ((weights[i] ?? 0) > 0) return i;
  return 0;
}

/** A seeded draw, or an unseeded one when the run has no seed (such a run is not reproducible anyway). */
export function drawWithSeed(weights: readonly number[], seed: number | null): number {
  const u = seed === null ? Math.random() : seededRandom(seed)();
  return drawIndex(weights, u);
}
