/**
 * The two Magpie steps as functions over the TextEngine interface:
 * 1. instruction: the model continues the raw pre-query template and writes a user query;
 * 2. response: the query is rendered as a normal user turn plus the assistant header, and the model answers it.
 */
import type { CompleteOptions, CompletionRequest, CompletionResult, TextEngine } from './engine';
import { completeWithFirstTokenBan, instructionStopFor, type FirstTokenBan, type Quirks } from './quirks';
import type { RejectionReason, SamplingSettings, StepInfo } from './record';
import { sanitizeInstruction, type SanitizeRuleName } from './sanitize';
import type { ChatTemplate } from './templates/types';
import { withBos } from './templates/types';

export interface StepContext {
  /** Measured at load time: the engine prepends BOS itself, so prompts must not carry one. */
  engineAddsBos: boolean;
  seed: number | null;
  onDelta?: (delta: string) => void;
  signal?: AbortSignal;
  /** Milliseconds clock (injectable for tests). */
  now?: () => number;
  /** The run's per-family quirks (stops, first-token ban, sanitizer); absent: the template's special tokens only. */
  quirks?: Quirks;
}

/** What the sanitizer changed, kept on the record so a cleaned query can be traced back. */
export interface SanitizeNote {
  raw: string;
  rule: number;
  ruleName: SanitizeRuleName;
}

export type InstructionOutcome =
  | { kind: 'accepted'; instruction: string; step: StepInfo; sanitized?: SanitizeNote }
  | { kind: 'rejected'; reason: RejectionReason; text: string; step: StepInfo }
  | { kind: 'aborted'; step: StepInfo };

export type ResponseOutcome =
  | { kind: 'done'; response: string; step: StepInfo }
  | { kind: 'aborted'; step: StepInfo };

export function instructionPrompt(template: ChatTemplate, engineAddsBos: boolean, system?: string): string {
  return withBos(template, template.preQuery(system === undefined ? {} : { system }), engineAddsBos);
}

export function responsePrompt(template: ChatTemplate, instruction: string, engineAddsBos: boolean): string {
  const body = template.render([{ role: 'user', content: instruction }], { addGenerationPrompt: true });
  return withBos(template, body, engineAddsBos);
}

/** The StepInfo of one engine call: what was sent, what came back, and how long it took. */
export function stepInfo(request: CompletionRequest, result: CompletionResult, durationMs: number): StepInfo {
  const step: StepInfo = {
    prompt: request.prompt,
    temperature: request.temperature,
    topP: request.topP,
    maxTokens: request.maxTokens,
    stop: [...request.stop],
    seed: request.seed ?? null,
    finishReason: result.finishReason,
    promptTokens: result.usage.promptTokens,
    completionTokens: result.usage.completionTokens,
    durationMs,
  };
  if (result.usage.timeToFirstTokenSeconds !== undefined) {
    step.timeToFirstTokenMs = result.usage.timeToFirstTokenSeconds * 1000;
  }
  if (result.usage.decodeTokensPerSecond !== undefined) {
    step.decodeTokensPerSecond = result.usage.decodeTokensPerSecond;
  }
  return step;
}

/** A completion request from sampling settings; no seed field when the run has none. */
export function completionRequest(
  prompt: string,
  sampling: Pick<SamplingSettings, 'temperature' | 'topP' | 'maxTokens'>,
  stop: readonly string[],
  seed: number | null,
): CompletionRequest {
  const req: CompletionRequest = {
    prompt,
    temperature: sampling.temperature,
    topP: sampling.topP,
    maxTokens: sampling.maxTokens,
    stop: [...stop],
  };
  if (seed !== null) req.seed = seed;
  return req;
}

/** One engine call, with the first-token ban when asked for, timed and recorded as a StepInfo. */
export async function callEngine(
  engine: TextEngine,
  request: CompletionRequest,
  options: CompleteOptions,
  now: () => number,
  ban?: FirstTokenBan | null,
): Promise<{ result: CompletionResult; step: StepInfo }> {
  const started = now();
  const result = ban
    ? (await completeWithFirstTokenBan(engine, request, ban, options)).result
    : await engine.complete(request, options);
  return { result, step: stepInfo(request, result, now() - started) };
}

function runStep(
  engine: TextEngine,
  request: CompletionRequest,
  ctx: StepContext,
  ban?: FirstTokenBan | null,
): Promise<{ result: CompletionResult; step: StepInfo }> {
  const options = { ...(ctx.onDelta ? { onDelta: ctx.onDelta } : {}), ...(ctx.signal ? { signal: ctx.signal } : {}) };
  return callEngine(engine, request, options, ctx.now ?? (() => Date.now()), ban);
}

/**
 * Step 1. Stops on every special token of the family, so a role header can never leak into the instruction.
 * Empty instructions and instructions cut by max_tokens are rejected (not answered).
 */
export async function generateInstruction(
  engine: TextEngine,
  template: ChatTemplate,
  sampling: SamplingSettings,
  ctx: StepContext,
  system?: string,
): Promise<InstructionOutcome> {
  const prompt = instructionPrompt(template, ctx.engineAddsBos, system);
  const stop = ctx.quirks ? instructionStopFor(template, ctx.quirks) : template.instructionStop;
  const ban = ctx.quirks?.firstTokenBan ?? undefined;
  const { result, step } = await runStep(engine, completionRequest(prompt, sampling, stop, ctx.seed), ctx, ban);
  if (result.finishReason === 'abort') return { kind: 'aborted', step };
  if (result.finishReason === 'length') return { kind: 'rejected', reason: 'length', text: result.text, step };
  const raw = result.text.trim();
  if (raw === '') return { kind: 'rejected', reason: 'empty', text: result.text, step };
  if (!ctx.quirks?.sanitize) return { kind: 'accepted', instruction: raw, step };
  const clean = sanitizeInstruction(raw);
  if (clean.text.trim() === '') return { kind: 'rejected', reason: 'empty', text: result.text, step };
  if (clean.text === raw) return { kind: 'accepted', instruction: raw, step };
  return {
    kind: 'accepted',
    instruction: clean.text.trim(),
    step,
    sanitized: { raw, rule: clean.rule, ruleName: clean.ruleName },
  };
}

/** Step 2. No system prompt is injected: the user turn is rendered by the family's own template. */
export async function generateResponse(
  engine: TextEngine,
  template: ChatTemplate,
  instruction: string,
  sampling: SamplingSettings,
  ctx: StepContext,
): Promise<ResponseOutcome> {
  const prompt = responsePrompt(template, instruction, ctx.engineAddsBos);
  const { result, step } = await runStep(engine, completionRequest(prompt, sampling, template.responseStop, ctx.seed), ctx);
  if (result.finishReason === 'abort') return { kind: 'aborted', step };
  return { kind: 'done', response: result.text.trim(), step };
}
