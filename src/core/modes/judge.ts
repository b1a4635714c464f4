/**
 * The loaded model as a preference judge: it scores the k candidate responses against a rubric and answers with a
 * JSON object. Our engines only do raw completions (no response_format), so the JSON is parsed strictly and a
 * failed parse gets one retry that shows the model its answer and asks again.
 */
import type { ChatMessage } from '../templates/types';

export const JUDGE_MIN_SCORE = 1;
export const JUDGE_MAX_SCORE = 10;

/** The rubric; written for this project. */
export const JUDGE_RUBRIC = [
  'Helpfulness: does the answer do what the user asked, completely and directly?',
  'Correctness: are the facts, reasoning, code and calculations right?',
  'Clarity: is it well organised and easy to follow, at a sensible length?',
  'Honesty and safety: no invented facts presented as true, no harmful content.',
] as const;

export function judgeMessage(instruction: string, candidates: readonly string[]): string {
  const k = candidates.length;
  const parts = [
    `You are grading ${k} candidate answers to the same user request. Score each one from ${JUDGE_MIN_SCORE} ` +
      `(very poor) to ${JUDGE_MAX_SCORE} (excellent) using these criteria:`,
    ...JUDGE_RUBRIC.map((c) => `- ${c}`),
    'A longer answer is not better for being longer. Give different scores when the answers differ in quality.',
    '',
    '[User request]',
    instruction,
  ];
  candidates.forEach((text, i) => parts.push('', `[Candidate ${i + 1}]`, text));
  parts.push(
    '',
    `Reply with only this JSON object and nothing else: {"scores": [${Array.from({ length: k }, (_, i) => `<score of candidate ${i + 1}>`).join(', ')}], "reason": "<one sentence>"}. ` +
      `"scores" must hold exactly ${k} whole numbers from ${JUDGE_MIN_SCORE} to ${JUDGE_MAX_SCORE}, in candidate order.`,
  );
  return parts.join('\n');
}

export const JUDGE_RETRY_MESSAGE =
  'That reply was not the requested JSON object. Reply again with only the JSON object, no other text.';

/** The judge conversation: the request, and on the retry the failed answer plus the reminder. */
export function judgeConversation(instruction: string, candidates: readonly string[], failedAnswer?: string): ChatMessage[] {
  const first: ChatMessage = { role: 'user', content: judgeMessage(instruction, candidates) };
  if (failedAnswer === undefined) return [first];
  return [first, { role: 'assistant', content: failedAnswer }, { role: 'user', content: JUDGE_RETRY_MESSAGE }];
}

export type JudgeParse = { ok: true; scores: number[]; reason: string } | { ok: false; error: string };

/**
 * Strict: the whole answer must be one JSON object (a ```json fence around it is the only thing tolerated), with
 * exactly k integer scores in range. Anything else is a failure, never a guess.
 */
export function parseJudgement(text: string, k: number): JudgeParse {
  let body = text.trim();
  const fenced = /^```(?:json)?\s*\n([\s\S]*?)\n?```$/.exec(body);
  if (fenced?.[1] !== undefined) body = fenced[1].trim();
  let value: unknown;
  try {
    value = JSON.parse(body) as unknown;
  } catch {
    return { ok: false, error: 'the answer is not valid JSON' };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return { ok: false, error: 'the answer is not a JSON object' };
  const o = value as Record<string, unknown>;
  const scores = o.scores;
  if (!Array.isArray(scores)) return { ok: false, error: '"scores" is missing or not a list' };
  if (scores.length !== k) return { ok: false, error: `"scores" has ${scores.length} entries, expected ${k}` };
  const valid = scores.every(
    (s): s is number => typeof s === 'number' && Number.isInteger(s) && s >= JUDGE_MIN_SCORE && s <= JUDGE_MAX_SCORE,
  );
  if (!valid) return { ok: false, error: `every score must be a whole number from ${JUDGE_MIN_SCORE} to ${JUDGE_MAX_SCORE}` };
  const reason = typeof o.reason === 'string' ? o.reason : '';
  return { ok: true, scores: scores as number[], reason };
}

/** Texts count as identical after trimming: a pair that differs only in surrounding whitespace teaches nothing. */
const same = (a: string, b: string): boolean => a.trim() === b.trim();

/**
 * chosen = the highest score (earliest on ties); rejected = the lowest-scored candidate whose text differs from the
 * chosen one and whose score is strictly lower. When the lowest is a copy of the chosen text, the next lowest
 * distinct one is taken. undefined when no such pair exists (all tied, or all the same text).
 */
export function choosePair(texts: readonly string[], scores: readonly number[]): { chosen: number; rejected: number } | undefined {
  if (texts.length !== scores.length || texts.length < 2) return undefined;
  let chosen = 0;
  scores.forEach((s, i) => {
    if (s > (scores[chosen] ?? -Infinity)) chosen = i;
  });
  const chosenText = texts[chosen] ?? '';
  const chosenScore = scores[chosen] ?? 0;
  let rejected: number | undefined;
  scores.forEach((s, i) => {
    if (i === chosen || same(texts[i] ?? '', chosenText) || s >= chosenScore) return;
    if (rejected === undefined || s < (scores[rejected] ?? Infinity)) rejected = i;
  });
  return rejected === undefined ? undefined : { chosen, rejected };
}

/** A hand-made choice is valid when it names two different candidates with different texts. */
export function checkManualPair(texts: readonly string[], chosen: number, rejected: number): string | null {
  if (!Number.isInteger(chosen) || chosen < 0 || chosen >= texts.length) return 'Pick a chosen response.';
  if (!Number.isInteger(rejected) || rejected < 0 || rejected >= texts.length) return 'Pick a rejected response.';
  if (chosen === rejected) return 'The chosen and rejected responses must be different.';
  if (same(texts[chosen] ?? '', texts[rejected] ?? '')) return 'These two responses have the same text; pick two that differ.';
  return null;
}
