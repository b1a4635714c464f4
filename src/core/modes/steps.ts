/** One engine call of a mode, recorded as a StepInfo exactly like the classic pair's steps. */
import type { CompletionResult, JsonRequest, TextEngine } from '../engine';
import { callEngine, completionRequest, stepInfo } from '../magpie';
import type { FirstTokenBan } from '../quirks';
import type { SamplingSettings, StepInfo } from '../record';
import type { AttemptContext, GenerationStep } from '../runner';

export interface StepCall {
  prompt: string;
  sampling: Pick<SamplingSettings, 'temperature' | 'topP' | 'maxTokens'>;
  stop: readonly string[];
  /** Seed name within the attempt ('instruction_2', 'candidate_3', …). */
  step: GenerationStep;
  /** Ban these tokens for the first generated token only (a quirk of the query step). */
  firstTokenBan?: FirstTokenBan | null;
  /** Stream deltas to the UI (off for judge calls, whose JSON is not worth showing). */
  stream?: boolean;
}

export async function callStep(
  engine: TextEngine,
  ctx: AttemptContext,
  call: StepCall,
): Promise<{ result: CompletionResult; step: StepInfo }> {
  const request = completionRequest(call.prompt, call.sampling, call.stop, ctx.seedFor(call.step));
  ctx.events.onStepStart?.(call.step, ctx.attempt);
  const options = {
    signal: ctx.signal,
    ...(call.stream === false ? {} : { onDelta: (d: string) => ctx.events.onDelta?.(call.step, d, ctx.attempt) }),
    onRestart: () => ctx.events.onStepRestart?.(call.step, ctx.attempt),
  };
  const { result, step } = await callEngine(engine, request, options, ctx.now, call.firstTokenBan);
  if (result.finishReason !== 'abort') ctx.events.onTokens?.(step.completionTokens);
  return { result, step };
}

/** A constrained-JSON chat call, for engines that offer one (see TextEngine.completeJson). */
export interface JsonStepCall {
  messages: JsonRequest['messages'];
  schema: JsonRequest['schema'];
  schemaName?: string;
  sampling: Pick<SamplingSettings, 'temperature' | 'topP' | 'maxTokens'>;
  step: GenerationStep;
}

/**
 * One constrained-JSON call, recorded as a StepInfo: there is no raw prompt, so `prompt` holds the chat messages as
 * JSON (what was sent; the engine applied its own chat template) and `stop` is empty. Not streamed.
 */
export async function callJsonStep(
  engine: TextEngine & Required<Pick<TextEngine, 'completeJson'>>,
  ctx: AttemptContext,
  call: JsonStepCall,
): Promise<{ result: CompletionResult; step: StepInfo }> {
  const seed = ctx.seedFor(call.step);
  const request: JsonRequest = {
    messages: call.messages.map((m) => ({ ...m })),
    schema: call.schema,
    temperature: call.sampling.temperature,
    topP: call.sampling.topP,
    maxTokens: call.sampling.maxTokens,
  };
  if (call.schemaName !== undefined) request.schemaName = call.schemaName;
  if (seed !== null) request.seed = seed;
  ctx.events.onStepStart?.(call.step, ctx.attempt);
  const started = ctx.now();
  const result = await engine.completeJson(request, { signal: ctx.signal });
  if (result.finishReason !== 'abort') ctx.events.onTokens?.(result.usage.completionTokens);
  const prompt = JSON.stringify(request.messages);
  const step = stepInfo({ prompt, temperature: request.temperature, topP: request.topP, maxTokens: request.maxTokens, stop: [], ...(seed !== null ? { seed } : {}) }, result, ctx.now() - started);
  return { result, step };
}

/**
 * The step of an instruction that was imported, not generated: nothing was sent (empty prompt, maxTokens 0), so
 * exports can tell it apart. Kept as a StepInfo because records of every mode share the same required fields.
 */
export function notGeneratedStep(): StepInfo {
  return {
    prompt: '',
    temperature: 0,
    topP: 1,
    maxTokens: 0,
    stop: [],
    seed: null,
    finishReason: 'stop',
    promptTokens: 0,
    completionTokens: 0,
    durationMs: 0,
  };
}
