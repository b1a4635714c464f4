/**
 * Generation modes as attempt producers for the runner (src/core/runner.ts): every mode is "attempt k → one record
 * or one rejection", with all randomness (system prompt draw, sampling draw, engine seeds) derived from the attempt,
 * so the runner's ordering, durability and resume guarantees hold for every mode unchanged.
 */
import type { TextEngine } from '../engine';
import { instructionStopFor } from '../quirks';
import { recipeHash, type Recipe } from '../recipe';
import type { MagpieRecord, PreferenceCandidate, PreferenceJudgement, StepInfo, TurnRecord } from '../record';
import type { AttemptContext, AttemptOutcome, AttemptProducer, ProducedRecord } from '../runner';
import { sanitizeInstruction } from '../sanitize';
import type { ChatMessage, ChatTemplate } from '../templates/types';
import { withBos } from '../templates/types';
import { drawWithSeed } from './draw';
import { choosePair, judgeCandidates } from './judge';
import { firstQueryPrompt, followUpQueryPrompt, responsePromptFor } from './prompts';
import { callStep, notGeneratedStep } from './steps';

/** What a producer needs to know about the run (a Run satisfies it). */
export interface ModeRunInfo {
  modelId: string;
  engine: string;
  engineAddsBos: boolean;
}

export interface ModeProducerOptions {
  run: ModeRunInfo;
  recipe: Recipe;
  engine: TextEngine;
  template: ChatTemplate;
}

/** Judge sampling now lives with the judge; re-exported for existing imports. */
export { JUDGE_SAMPLING } from './judge';

type Rejected = Extract<AttemptOutcome, { kind: 'rejected' }>;
type Sanitized = NonNullable<MagpieRecord['sanitized']>;
type Query = { kind: 'query'; text: string; step: StepInfo; sanitized?: Sanitized } | Rejected | { kind: 'aborted' };

/** Per-attempt draws: which system prompt steers the conversation and which sampling writes its queries. */
interface Draws {
  system?: { key: string; prompt: string };
  samplingDraw?: NonNullable<MagpieRecord['samplingDraw']>;
}

export function modeProducer(options: ModeProducerOptions): AttemptProducer {
  const { run, recipe, engine, template } = options;
  const hash = recipeHash(recipe);
  const quirks = recipe.quirks;
  const instructionStop = quirks ? instructionStopFor(template, quirks) : [...template.instructionStop];
  const firstTokenBan = quirks?.firstTokenBan ?? null;
  const bos = (body: string) => withBos(template, body, run.engineAddsBos);

  const draw = (ctx: AttemptContext): Draws => {
    const draws: Draws = {};
    if (recipe.system) {
      const index = drawWithSeed(recipe.system.prompts.map((p) => p.weight), ctx.seedFor('system_prompt'));
      const choice = recipe.system.prompts[index];
      if (choice) draws.system = { key: choice.key, prompt: choice.prompt };
    }
    const mix = recipe.sampling.instructionMix;
    if (mix.length > 0) {
      const index = drawWithSeed(mix.map((m) => m.share), ctx.seedFor('sampling'));
      const setting = mix[index];
      if (setting) draws.samplingDraw = { index, temperature: setting.temperature, topP: setting.topP };
    }
    return draws;
  };

  const querySampling = (draws: Draws) =>
    draws.samplingDraw
      ? { ...recipe.sampling.instruction, temperature: draws.samplingDraw.temperature, topP: draws.samplingDraw.topP }
      : recipe.sampling.instruction;

  /** A query step: empty or cut queries reject the whole attempt (a conversation with a broken turn is not kept). */
  const query = async (ctx: AttemptContext, prompt: string, stepName: string, draws: Draws): Promise<Query> => {
    const { result, step } = await callStep(engine, ctx, {
      prompt: bos(prompt),
      sampling: querySampling(draws),
      stop: instructionStop,
      step: stepName,
      firstTokenBan,
    });
    if (result.finishReason === 'abort') return { kind: 'aborted' };
    if (result.finishReason === 'length') {
      return { kind: 'rejected', reason: 'length', text: result.text, step, completionTokens: step.completionTokens };
    }
    const raw = result.text.trim();
    const empty: Rejected = { kind: 'rejected', reason: 'empty', text: result.text, step, completionTokens: step.completionTokens };
    if (raw === '') return empty;
    if (!quirks?.sanitize) return { kind: 'query', text: raw, step };
    // Same rule as the classic pair (magpie.ts): keep what the sanitizer leaves, and record what it removed.
    const clean = sanitizeInstruction(raw);
    const text = clean.text.trim();
    if (text === '') return empty;
    if (text === raw) return { kind: 'query', text, step };
    return { kind: 'query', text, step, sanitized: { raw, rule: clean.rule, ruleName: clean.ruleName } };
  };

  const firstInstruction = async (ctx: AttemptContext, draws: Draws): Promise<Query & { imported?: { line: number } }> => {
    if (recipe.source.kind === 'imported') {
      const item = recipe.source.instructions[ctx.attempt - 1];
      if (!item) {
        throw new Error(
          `Attempt ${ctx.attempt} has no imported instruction: ${recipe.source.fileName} holds ` +
            `${recipe.source.instructions.length}. Lower the record count, or import more instructions.`,
        );
      }
      return { kind: 'query', text: item.text, step: notGeneratedStep(), imported: { line: item.line } };
    }
    return query(ctx, firstQueryPrompt(template, draws.system?.prompt), 'instruction', draws);
  };

  const respond = (ctx: AttemptContext, history: readonly ChatMessage[], stepName: string, draws: Draws, sampling = recipe.sampling.response) =>
    callStep(engine, ctx, {
      prompt: bos(responsePromptFor(template, history, draws.system?.prompt)),
      sampling,
      stop: template.responseStop,
      step: stepName,
    });

  const baseRecord = (draws: Draws, first: { text: string; step: StepInfo; imported?: { line: number }; sanitized?: Sanitized }): ProducedRecord => {
    const record: ProducedRecord = {
      modelId: run.modelId,
      engine: run.engine,
      templateId: template.id,
      preQueryTemplate: first.imported ? '' : firstQueryPrompt(template, draws.system?.prompt),
      instruction: first.text,
      response: '',
      instructionStep: first.step,
      responseStep: notGeneratedStep(),
      mode: recipe.mode.kind,
      recipeHash: hash,
    };
    if (draws.system) record.system = draws.system;
    if (draws.samplingDraw) record.samplingDraw = draws.samplingDraw;
    if (first.imported) record.imported = first.imported;
    if (first.sanitized) record.sanitized = first.sanitized;
    return record;
  };

  const conversation = async (ctx: AttemptContext): Promise<AttemptOutcome> => {
    const mode = recipe.mode;
    const turns = mode.kind === 'multi-turn' ? mode.turns : 1;
    const endWithUser = mode.kind === 'instruction-only' || (mode.kind === 'multi-turn' && mode.endWithUser);
    const draws = draw(ctx);
    const first = await firstInstruction(ctx, draws);
    if (first.kind !== 'query') return first;
    const record = baseRecord(draws, first);
    let tokens = first.step.completionTokens;
    const history: ChatMessage[] = [{ role: 'user', content: first.text }];

    if (turns === 1 && endWithUser) {
      record.noResponse = true;
    } else {
      const { result, step } = await respond(ctx, history, 'response', draws);
      // An interrupted conversation is dropped whole; a resumed run redoes the attempt with the same seeds.
      if (result.finishReason === 'abort') return { kind: 'aborted' };
      tokens += step.completionTokens;
      record.response = result.text.trim();
      record.responseStep = step;
      history.push({ role: 'assistant', content: record.response });
    }

    const later: TurnRecord[] = [];
    const followUpSystem = mode.kind === 'multi-turn' ? (mode.followUpSystem ?? draws.system?.prompt) : undefined;
    for (let t = 2; t <= turns; t++) {
      const q = await query(ctx, followUpQueryPrompt(template, history, followUpSystem), `instruction_${t}`, draws);
      if (q.kind !== 'query') {
        return q.kind === 'rejected' ? { ...q, completionTokens: q.completionTokens + tokens } : q;
      }
      tokens += q.step.completionTokens;
      history.push({ role: 'user', content: q.text });
      const turn: TurnRecord = { instruction: q.text, instructionStep: q.step };
      if (q.sanitized) turn.sanitized = q.sanitized;
      if (!(t === turns && endWithUser)) {
        const { result, step } = await respond(ctx, history, `response_${t}`, draws);
        if (result.finishReason === 'abort') return { kind: 'aborted' };
        tokens += step.completionTokens;
        turn.response = result.text.trim();
        turn.responseStep = step;
        history.push({ role: 'assistant', content: turn.response });
      }
      later.push(turn);
    }
    if (later.length > 0) record.turns = later;
    return { kind: 'record', record, completionTokens: tokens };
  };

  const preference = async (ctx: AttemptContext): Promise<AttemptOutcome> => {
    const mode = recipe.mode;
    if (mode.kind !== 'preference') throw new Error('preference producer used for another mode');
    const draws = draw(ctx);
    const first = await firstInstruction(ctx, draws);
    if (first.kind !== 'query') return first;
    const record = baseRecord(draws, first);
    let tokens = first.step.completionTokens;
    const history: ChatMessage[] = [{ role: 'user', content: first.text }];
    const sampling = { temperature: mode.temperature, topP: mode.topP, maxTokens: recipe.sampling.response.maxTokens };
    const candidates: PreferenceCandidate[] = [];
    for (let i = 1; i <= mode.candidates; i++) {
      // Each candidate has its own derived seed, so the k samples differ while staying reproducible.
      const { result, step } = await respond(ctx, history, `candidate_${i}`, draws, sampling);
      if (result.finishReason === 'abort') return { kind: 'aborted' };
      tokens += step.completionTokens;
      candidates.push({ text: result.text.trim(), step });
    }
    record.candidates = candidates;
    const texts = candidates.map((c) => c.text);
    const lastStep = candidates.at(-1)?.step ?? first.step;
    if (new Set(texts).size < 2) {
      return { kind: 'rejected', reason: 'no-distinct-pair', text: first.text, step: lastStep, completionTokens: tokens };
    }
    const shown = candidates[0];
    if (mode.judge === 'manual' || !shown) {
      // Until the user picks a pair, the record shows the first candidate; exports skip unjudged records.
      record.response = shown?.text ?? '';
      record.responseStep = shown?.step ?? notGeneratedStep();
      return { kind: 'record', record, completionTokens: tokens };
    }

    const verdict = await judgeCandidates(engine, ctx, {
      instruction: first.text,
      texts,
      renderRaw: (messages) => bos(template.render(messages, { addGenerationPrompt: true })),
      stop: template.responseStop,
    });
    if (verdict.kind === 'aborted') return { kind: 'aborted' };
    tokens += verdict.completionTokens;
    const judgeStep = verdict.steps.at(-1) ?? lastStep;
    if (verdict.kind === 'failed') {
      return { kind: 'rejected', reason: 'judge', text: verdict.text, step: judgeStep, completionTokens: tokens };
    }
    const pair = choosePair(texts, verdict.scores);
    if (!pair) return { kind: 'rejected', reason: 'no-distinct-pair', text: first.text, step: judgeStep, completionTokens: tokens };
    const judgement: PreferenceJudgement = {
      by: 'model',
      chosen: pair.chosen,
      rejected: pair.rejected,
      scores: verdict.scores,
      reason: verdict.reason,
      steps: verdict.steps,
      via: verdict.via,
    };
    record.judgement = judgement;
    const chosen = candidates[pair.chosen];
    if (chosen) {
      record.response = chosen.text;
      record.responseStep = chosen.step;
    }
    return { kind: 'record', record, completionTokens: tokens };
  };

  return recipe.mode.kind === 'preference' ? preference : conversation;
}

/** A record with a hand-made preference: checked so that chosen and rejected texts always differ. */
export function withManualJudgement(record: MagpieRecord, chosen: number, rejected: number): MagpieRecord {
  const candidates = record.candidates;
  if (!candidates) throw new Error('This record has no candidate responses.');
  const a = candidates[chosen];
  const b = candidates[rejected];
  if (!a || !b || chosen === rejected || a.text.trim() === b.text.trim()) {
    throw new Error('Pick two different responses with different texts.');
  }
  return { ...record, judgement: { by: 'manual', chosen, rejected }, response: a.text, responseStep: a.step };
}
