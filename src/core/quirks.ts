/**
 * Per-family quirks of the Magpie reference, as options with the reference's defaults: which stops the instruction
 * step uses, whether its first token may be a markdown header, and whether the query is sanitized afterwards.
 */
import { cutAtStop, type CompleteOptions, type CompletionRequest, type CompletionResult, type TextEngine } from './engine';
import type { ChatTemplate } from './templates/types';

/** Tokens the first generated token may not be (Llama-3.1+: markdown headers), by id and by text. */
export interface FirstTokenBan {
  readonly tokenIds: readonly number[];
  readonly strings: readonly string[];
}

export interface Quirks {
  /** Ban these tokens for the first generated token of the instruction step only; null: no ban. */
  firstTokenBan: FirstTokenBan | null;
  /** Stop the instruction step at the first "\n", so every query is one line ("early stopping"). */
  earlyStopNewline: boolean;
  /** Stop the instruction step at the bare word "assistant" (also cuts any query that contains the word). */
  assistantStopWord: boolean;
  /** Clean the instruction with the sanitizer (src/core/sanitize.ts) before answering it. */
  sanitize: boolean;
}

/** What each quirk does, for the options panel: every quirk is visible, none is applied silently. */
export const QUIRK_INFO: Readonly<Record<keyof Quirks, { label: string; description: string }>> = {
  firstTokenBan: {
    label: 'Ban markdown headers as the first token',
    description:
      'The first token of a query may not be "#", "##", "###" or "####" (later tokens are free, so "C#" is fine). ' +
      'Costs one extra prefill per query: the first token is generated on its own.',
  },
  earlyStopNewline: {
    label: 'Stop queries at the first newline',
    description: 'Every query becomes a single line. The reference turns this off for Llama-3.1/3.3 and Gemma-2.',
  },
  assistantStopWord: {
    label: 'Stop queries at the word "assistant"',
    description: 'Catches a role name written as text; also cuts any query that contains the word.',
  },
  sanitize: {
    label: 'Sanitize queries',
    description:
      'Keeps only the first question or first line of a rambling query (strips enumerators and labels, cuts ' +
      'answer markers) and records which rule fired. The reference uses it for Llama-3.1+ and Gemma-2.',
  },
};

/** The quirks of families the reference did not run: its generic defaults. */
export const GENERIC_QUIRKS: Quirks = {
  firstTokenBan: null,
  earlyStopNewline: true,
  assistantStopWord: true,
  sanitize: false,
};

/** The Llama-3 tokenizer's markdown-header tokens (ids checked against the real tokenizer in the tests). */
export const LLAMA3_HEADER_BAN: FirstTokenBan = {
  tokenIds: [2, 567, 14711, 827],
  strings: ['#', '##', '###', '####'],
};

/** The instruction step's stop strings: the family's special tokens, plus the newline and word stops when on. */
export function instructionStopFor(
  template: Pick<ChatTemplate, 'instructionStop'>,
  quirks: Pick<Quirks, 'earlyStopNewline' | 'assistantStopWord'>,
): string[] {
  const stops = [...template.instructionStop];
  if (quirks.earlyStopNewline) stops.push('\n');
  if (quirks.assistantStopWord) stops.push('assistant');
  return [...new Set(stops)];
}

/** The two requests of a first-token ban, and how to join their results. */
export interface TwoPhasePlan {
  /** One token, with the banned ids biased to -100 (on the GPU in WebLLM, no per-token CPU copy). */
  readonly first: CompletionRequest;
  /** What to do after the first phase. */
  next(first: CompletionResult): TwoPhaseNext;
}

export type TwoPhaseNext =
  /** The first phase already ended the completion (a stop, an abort, or maxTokens 1). */
  | { kind: 'done'; result: CompletionResult }
  /** Continue from prompt + first token without the ban, then `finish` joins both phases. */
  | { kind: 'continue'; request: CompletionRequest; finish(rest: CompletionResult): CompletionResult }
  /**
   * The first token decoded to an incomplete character (U+FFFD): its text cannot be fed back as the same token,
   * so the first phase must be drawn again.
   */
  | { kind: 'incomplete' };

function joinResults(first: CompletionResult, rest: CompletionResult, stops: readonly string[]): CompletionResult {
  // A stop string that spans the phase boundary is invisible to either phase alone.
  const whole = first.text + rest.text;
  const text = cutAtStop(whole, stops);
  const joined = { text, cut: text.length < whole.length };
  const usage: CompletionResult['usage'] = {
    // The second prompt re-counts the first token; the real prompt is the first phase's.
    promptTokens: first.usage.promptTokens,
    completionTokens: first.usage.completionTokens + rest.usage.completionTokens,
  };
  const ttft = first.usage.timeToFirstTokenSeconds;
  if (ttft !== undefined) usage.timeToFirstTokenSeconds = ttft;
  if (rest.usage.decodeTokensPerSecond !== undefined) usage.decodeTokensPerSecond = rest.usage.decodeTokensPerSecond;
  if (rest.usage.prefillTokensPerSecond !== undefined) usage.prefillTokensPerSecond = rest.usage.prefillTokensPerSecond;
  if (first.usage.latencySeconds !== undefined && rest.usage.latencySeconds !== undefined) {
    usage.latencySeconds = first.usage.latencySeconds + rest.usage.latencySeconds;
  }
  return { text: joined.text, finishReason: joined.cut ? 'stop' : rest.finishReason, usage };
}

/**
 * A first-token-only ban that any TextEngine can run: generate one token with the banned ids at bias -100, then
 * continue from prompt + that token with no bias. WebLLM resets the KV cache per completion anyway, so the cost is
 * one extra prefill of the prompt per query; a LogitProcessor would instead copy the logits to the CPU every token.
 */
export function twoPhaseFirstToken(request: CompletionRequest, ban: FirstTokenBan): TwoPhasePlan {
  const bias: Record<string, number> = { ...request.logitBias };
  for (const id of ban.tokenIds) bias[String(id)] = -100;
  const first: CompletionRequest = { ...request, maxTokens: 1, logitBias: bias };
  return {
    first,
    next(result) {
      if (result.finishReason !== 'length' || request.maxTokens <= 1) return { kind: 'done', result };
      if (result.text.includes('\uFFFD')) return { kind: 'incomplete' };
      const rest: CompletionRequest = {
        ...request,
        prompt: request.prompt + result.text,
        maxTokens: request.maxTokens - 1,
      };
      if (request.logitBias === undefined) delete rest.logitBias;
      return { kind: 'continue', request: rest, finish: (second) => joinResults(result, second, request.stop) };
    },
  };
}

/** How a completion with a first-token ban went, for the record. */
export interface FirstTokenBanReport {
  /** Engine calls made (2 normally; 1 when the first token ended the completion; more after redraws). */
  calls: number;
  /** First phases drawn again because the first token was an incomplete character. */
  redraws: number;
}

/** Draws of the first phase before giving up on an incomplete first character. */
const MAX_FIRST_DRAWS = 4;

/**
 * Run a completion with a first-token ban on any TextEngine. A seeded request redraws with seed + k, since the same
 * seed would draw the same incomplete token again.
 */
export async function completeWithFirstTokenBan(
  engine: TextEngine,
  request: CompletionRequest,
  ban: FirstTokenBan,
  options: CompleteOptions = {},
): Promise<{ result: CompletionResult; report: FirstTokenBanReport }> {
  const { onDelta, ...quiet } = options;
  let calls = 0;
  for (let draw = 0; draw < MAX_FIRST_DRAWS; draw++) {
    const seeded: CompletionRequest =
      draw > 0 && request.seed !== undefined ? { ...request, seed: request.seed + draw } : request;
    const plan = twoPhaseFirstToken(seeded, ban);
    // Deltas of a redrawn first phase must not reach the caller: only a usable first token is streamed.
    const first = await engine.complete(plan.first, quiet);
    calls++;
    const next = plan.next(first);
    if (next.kind === 'incomplete') continue;
    if (first.text !== '') onDelta?.(first.text);
    if (next.kind === 'done') return { result: next.result, report: { calls, redraws: draw } };
    const rest = await engine.complete(next.request, options);
    calls++;
    return { result: next.finish(rest), report: { calls, redraws: draw } };
  }
  throw new Error(
    `First-token ban: the first token was an incomplete character in ${MAX_FIRST_DRAWS} draws; ` +
      'turn the ban off for this model or retry.',
  );
}
