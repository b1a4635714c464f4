/**
 * The loaded model as a preference judge: it scores the k candidate responses against a rubric and answers with a
 * JSON object. When the engine offers grammar-constrained JSON (TextEngine.completeJson: WebLLM's response_format,
 * a server's json_schema) that is tried first; its answer is still parsed and checked strictly. Otherwise, or when
 * that fails, the judge uses raw completions: the JSON is parsed strictly and a failed parse gets one retry that
 * shows the model its answer and asks again.
 */
import type { JsonChatMessage, JsonSchema, TextEngine } from '../engine';
import { classifyEngineError } from '../errors';
import type { StepInfo } from '../record';
import type { AttemptContext } from '../runner';
import type { ChatMessage } from '../templates/types';
import { callJsonStep, callStep } from './steps';

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

/** Judge calls are greedy and short: a JSON object of k scores and one sentence. */
export const JUDGE_SAMPLING = { temperature: 0, topP: 1, maxTokens: 512 } as const;

/**
 * The system message of the constrained (chat) judge: our own, so WebLLM does not inject its default system prompt,
 * and about grading, since the chat template is the engine's and the judge is not Magpie data.
 */
export const JUDGE_SYSTEM_MESSAGE =
  'You are a careful, impartial grader of answers written by AI assistants. You answer only with the JSON object asked for.';

/** The JSON schema of a judgement of k candidates: exactly k whole-number scores in range, and a short reason. */
export function judgeSchema(k: number): JsonSchema {
  return {
    type: 'object',
    properties: {
      scores: {
        type: 'array',
        items: { type: 'integer', minimum: JUDGE_MIN_SCORE, maximum: JUDGE_MAX_SCORE },
        minItems: k,
        maxItems: k,
      },
      reason: { type: 'string' },
    },
    required: ['scores', 'reason'],
    additionalProperties: false,
  };
}

/** The chat messages of the constrained judge call: our system message, then the same request as the raw judge. */
export function judgeChatMessages(instruction: string, candidates: readonly string[]): JsonChatMessage[] {
  return [
    { role: 'system', content: JUDGE_SYSTEM_MESSAGE },
    { role: 'user', content: judgeMessage(instruction, candidates) },
  ];
}

/**
 * A constrained answer checked against the schema's shape: one bare JSON object (no fence: a grammar cannot emit
 * one), exactly the keys scores and reason, k integer scores in range, a string reason.
 */
export function parseConstrainedJudgement(text: string, k: number): JudgeParse {
  const body = text.trim();
  if (!body.startsWith('{')) return { ok: false, error: 'the answer is not a bare JSON object' };
  const parsed = parseJudgement(body, k);
  if (!parsed.ok) return parsed;
  const o = JSON.parse(body) as Record<string, unknown>;
  const extra = Object.keys(o).filter((key) => key !== 'scores' && key !== 'reason');
  if (extra.length > 0) return { ok: false, error: `unexpected keys: ${extra.join(', ')}` };
  if (typeof o.reason !== 'string') return { ok: false, error: '"reason" is missing or not a string' };
  return parsed;
}

export type JudgeVia = 'constrained' | 'raw';

export interface JudgeCall {
  instruction: string;
  /** The candidate texts, in order. */
  texts: readonly string[];
  /** The full raw prompt (BOS handled) for the raw path: the judge conversation rendered with the family template. */
  renderRaw: (messages: readonly ChatMessage[]) => string;
  /** Stop strings of the raw path (the family's end-of-turn). */
  stop: readonly string[];
}

export type JudgeOutcome =
  | { kind: 'verdict'; scores: number[]; reason: string; via: JudgeVia; steps: StepInfo[]; completionTokens: number }
  /** Neither path gave a valid judgement; `text` is the last answer. */
  | { kind: 'failed'; text: string; steps: StepInfo[]; completionTokens: number }
  | { kind: 'aborted' };

/** Step names (and so seed names): the constrained call, then the raw call and its retry as before. */
export const JUDGE_STEPS = { constrained: 'judge_json', raw: ['judge', 'judge_2'] } as const;

/**
 * Errors after which the raw path is worth trying: the engine refused the request (a server without json_schema
 * support, WebLLM rejecting the schema) or failed in a way we cannot name (a grammar that did not compile).
 * A lost GPU, a network failure or a stop goes to the runner as before.
 */
function fallsBackToRaw(err: unknown): boolean {
  const kind = classifyEngineError(err).kind;
  return kind === 'invalid-request' || kind === 'unknown';
}

type JsonEngine = TextEngine & Required<Pick<TextEngine, 'completeJson'>>;

function hasCompleteJson(engine: TextEngine): engine is JsonEngine {
  return typeof engine.completeJson === 'function';
}

/**
 * Judges the candidates: constrained JSON first when the engine offers it, else (or on any failure of it) the raw
 * completion with one retry. Every call the engine answered is in `steps`, in order.
 */
export async function judgeCandidates(engine: TextEngine, ctx: AttemptContext, call: JudgeCall): Promise<JudgeOutcome> {
  const k = call.texts.length;
  const steps: StepInfo[] = [];
  let tokens = 0;

  if (hasCompleteJson(engine)) {
    try {
      const { result, step } = await callJsonStep(engine, ctx, {
        messages: judgeChatMessages(call.instruction, call.texts),
        schema: judgeSchema(k),
        schemaName: 'judgement',
        sampling: JUDGE_SAMPLING,
        step: JUDGE_STEPS.constrained,
      });
      if (result.finishReason === 'abort') return { kind: 'aborted' };
      steps.push(step);
      tokens += step.completionTokens;
      const parsed = parseConstrainedJudgement(result.text, k);
      if (parsed.ok) {
        return { kind: 'verdict', scores: parsed.scores, reason: parsed.reason, via: 'constrained', steps, completionTokens: tokens };
      }
    } catch (err) {
      if (ctx.signal.aborted) return { kind: 'aborted' };
      if (!fallsBackToRaw(err)) throw err;
    }
  }

  let failed: string | undefined;
  for (const stepName of JUDGE_STEPS.raw) {
    const { result, step } = await callStep(engine, ctx, {
      prompt: call.renderRaw(judgeConversation(call.instruction, call.texts, failed)),
      sampling: JUDGE_SAMPLING,
      stop: call.stop,
      step: stepName,
      stream: false,
    });
    if (result.finishReason === 'abort') return { kind: 'aborted' };
    tokens += step.completionTokens;
    steps.push(step);
    const parsed = parseJudgement(result.text, k);
    if (parsed.ok) return { kind: 'verdict', scores: parsed.scores, reason: parsed.reason, via: 'raw', steps, completionTokens: tokens };
    failed = result.text;
  }
  return { kind: 'failed', text: failed ?? '', steps, completionTokens: tokens };
}
