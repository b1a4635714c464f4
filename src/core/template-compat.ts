/**
 * Whether two chat templates write the same prompts. A run that goes on with another model (after repeated GPU loss)
 * may only change to a template that renders every prompt of the run byte for byte as before, so one run's records
 * never mix prompt formats and its recipe (and the hash on every record) still says how they were made.
 */
import type { ChatMessage, FamilyTemplate } from './templates/types';

const TURNS: readonly (readonly ChatMessage[])[] = [
  [{ role: 'user', content: 'Q1' }],
  [
    { role: 'user', content: 'Q1' },
    { role: 'assistant', content: 'A1' },
    { role: 'user', content: 'Q2' },
  ],
];

/** A rendering, or the template's refusal (e.g. Gemma-2 refuses system prompts), as comparable text. */
function attempt(render: () => string): string {
  try {
    return `ok:${render()}`;
  } catch {
    return 'refused';
  }
}

/** Everything a run sends that depends on the template: BOS, stops, pre-queries and rendered conversations. */
function promptFingerprint(t: FamilyTemplate, systems: readonly string[]): string[] {
  const out = [t.bosToken, t.endOfTurn, t.userHeader, t.generationPrompt, JSON.stringify(t.instructionStop), JSON.stringify(t.responseStop)];
  out.push(attempt(() => t.preQuery()));
  for (const system of systems) out.push(attempt(() => t.preQuery({ system })));
  for (const turns of TURNS) {
    for (const system of [undefined, ...systems]) {
      const messages: ChatMessage[] = system === undefined ? [...turns] : [{ role: 'system', content: system }, ...turns];
      out.push(attempt(() => t.render(messages, { addGenerationPrompt: true })));
      out.push(attempt(() => t.render(messages, { addGenerationPrompt: false })));
    }
  }
  return out;
}

/**
 * True when `b` writes the prompts `a` writes for a run whose system prompts are `systems`: the same pre-query
 * (also after each system prompt), the same rendered conversations with and without a generation prompt, the same
 * BOS and stop strings. System prompts the run does not use are not compared (a custom pre-query refuses any).
 */
export function samePrompts(a: FamilyTemplate, b: FamilyTemplate, systems: readonly string[] = []): boolean {
  const fa = promptFingerprint(a, systems);
  const fb = promptFingerprint(b, systems);
  return fa.length === fb.length && fa.every((x, i) => x === fb[i]);
}
